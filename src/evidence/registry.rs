//! Evidence keys registered in a repository.
//!
//! Every installation that writes evidence into a repository registers its public key there
//! first: a sealed, content-addressed object under `evidence-keys/` holding the key (PEM), its
//! fingerprint and the host name it was created on. Objects are never rewritten (a replacement
//! would be a new object), so any holder of the repository key can verify every chain the
//! repository holds, and a chain whose key registration has gone is a finding. Registering
//! says nothing about trust: readiness counts only keys pinned locally (docs/evidence.md).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::Repository;
use crate::storage::Kind;

/// One registered key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredKey {
    pub fingerprint: String,
    pub public_key_pem: String,
    /// The host the installation ran on when it registered (a label, not an identity).
    pub host: String,
    pub registered: chrono::DateTime<chrono::Utc>,
}

/// The keys registered in a repository, and the registrations that cannot be read (object, why).
pub type Registrations = (Vec<RegisteredKey>, Vec<(String, String)>);

/// Every key registered in `repo`, and the registrations that cannot be read (object, why):
/// one damaged object must not hide the others.
///
/// # Errors
/// Storage errors other than damage.
pub fn load(repo: &Repository) -> Result<Registrations> {
    let names: Vec<String> = repo.storage().list(Kind::EvidenceKey)?.into_iter().map(|o| o.name).collect();
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (name, bytes) in repo.fetch_many(Kind::EvidenceKey, names) {
        let what = Kind::EvidenceKey.describe(&name);
        let bytes = match bytes {
            Ok(b) => b,
            Err(Error::NotFound(_)) => continue,
            Err(e) if !e.is_integrity() => return Err(e),
            Err(e) => {
                bad.push((what, e.to_string()));
                continue;
            }
        };
        let decoded = repo.open_loaded(Kind::EvidenceKey, "evidence-key", &name, &bytes).and_then(|plain| {
            serde_json::from_slice::<RegisteredKey>(&plain).map_err(|e| Error::corrupt(&what, e))
        });
        match decoded {
            Ok(k) => out.push(k),
            Err(e) => bad.push((what, e.to_string())),
        }
    }
    Ok((out, bad))
}

/// Registers `key` in `repo` unless it is there already.
///
/// # Errors
/// Storage errors.
pub fn ensure(repo: &Repository, key: &ed25519_dalek::SigningKey) -> Result<()> {
    let fingerprint = super::key::fingerprint(&key.verifying_key());
    if load(repo)?.0.iter().any(|k| k.fingerprint == fingerprint) {
        return Ok(());
    }
    let reg = RegisteredKey {
        fingerprint,
        public_key_pem: super::key::public_pem(key),
        host: crate::util::hostname(),
        registered: chrono::Utc::now(),
    };
    let _: Id = repo.save_object(
        Kind::EvidenceKey,
        "evidence-key",
        &serde_json::to_vec(&reg).expect("serializable"),
    )?;
    Ok(())
}
