//! Key objects: the master secret wrapped by a passphrase-derived key.
//!
//! A key object is clear JSON holding the Argon2id parameters and salt, the wrapped master
//! secret (AES-256-GCM under the derived key, with the repository id as associated data), and
//! a sealed block of metadata (who created it, where, when, a label) that only someone who
//! opened the repository can read. Several key objects can open one repository; each is named
//! by the BLAKE3 hash of its bytes. `rempart key export` writes a recovery file: the key object
//! and the repository id, to keep offline with (not beside) the passphrase.

use serde::{Deserialize, Serialize};

use crate::crypto::kdf::KdfParams;
use crate::crypto::seal::{open_object, seal_object, unwrap_with_key, wrap_with_key};
use crate::crypto::Keys;
use crate::error::{Error, Result};
use crate::id::Id;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyFile {
    pub version: u32,
    pub repository_id: Id,
    pub kdf: KdfParams,
    #[serde(with = "crate::serde_b64")]
    pub wrapped_master: Vec<u8>,
    #[serde(with = "crate::serde_b64")]
    pub sealed_meta: Vec<u8>,
}

/// Who made a key, readable only with the master key.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyMeta {
    pub created: chrono::DateTime<chrono::Utc>,
    pub hostname: String,
    pub username: String,
    pub label: String,
}

/// The offline recovery file written by `rempart key export`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecoveryFile {
    pub rempart_recovery_file: u32,
    pub repository_id: Id,
    pub exported: chrono::DateTime<chrono::Utc>,
    pub note: String,
    pub key: KeyFile,
}

impl KeyFile {
    /// Wraps `keys` under `passphrase` with fresh Argon2id parameters.
    ///
    /// # Errors
    /// `InvalidInput` for an empty passphrase.
    pub fn create(keys: &Keys, repository_id: Id, passphrase: &[u8], label: &str) -> Result<KeyFile> {
        if passphrase.is_empty() {
            return Err(Error::invalid(
                "the passphrase is empty: a repository key needs a non-empty passphrase",
            ));
        }
        let kdf = KdfParams::new_random();
        let wrapping = kdf.derive(passphrase)?;
        let meta = KeyMeta {
            created: chrono::Utc::now(),
            hostname: crate::util::hostname(),
            username: crate::util::username(),
            label: label.to_string(),
        };
        Ok(KeyFile {
            version: 1,
            repository_id,
            wrapped_master: wrap_with_key(&wrapping, keys.master(), &repository_id.0),
            sealed_meta: seal_object(keys, "key-meta", &serde_json::to_vec(&meta).expect("serializable")),
            kdf,
        })
    }

    /// Tries `passphrase` on this key; `Ok(None)` when it is not the right one.
    ///
    /// # Errors
    /// `InvalidInput` when the key object's KDF parameters are unusable.
    pub fn unlock(&self, passphrase: &[u8]) -> Result<Option<Keys>> {
        let wrapping = self.kdf.derive(passphrase)?;
        Ok(unwrap_with_key(&wrapping, &self.wrapped_master, &self.repository_id.0).and_then(|m| {
            let master: [u8; 64] = m.try_into().ok()?;
            Some(Keys::from_master(master))
        }))
    }

    pub fn meta(&self, keys: &Keys) -> Result<KeyMeta> {
        let plain = open_object(keys, "key-meta", &self.sealed_meta, "key metadata")?;
        serde_json::from_slice(&plain).map_err(|e| Error::corrupt("key metadata", e))
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("serializable")
    }

    /// # Errors
    /// `Corrupt` naming `what` when the bytes are not a key object.
    pub fn from_bytes(bytes: &[u8], what: &str) -> Result<KeyFile> {
        serde_json::from_slice(bytes).map_err(|e| Error::corrupt(what, format!("not a key object: {e}")))
    }
}

impl RecoveryFile {
    pub fn new(key: KeyFile) -> RecoveryFile {
        RecoveryFile {
            rempart_recovery_file: 1,
            repository_id: key.repository_id,
            exported: chrono::Utc::now(),
            note:
                "rempart recovery file: the repository master key, wrapped by a passphrase. Keep it offline, \
                   apart from the passphrase. Use: rempart --recovery-file THIS_FILE -r REPOSITORY ..."
                    .into(),
            key,
        }
    }

    /// # Errors
    /// `InvalidInput` naming the file when it cannot be read or is not a recovery file.
    pub fn load(path: &std::path::Path) -> Result<RecoveryFile> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::io(format!("cannot read recovery file '{}'", path.display()), e))?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// # Errors
    /// `InvalidInput` naming `what` when the bytes are not a recovery file.
    pub fn from_bytes(bytes: &[u8], what: &str) -> Result<RecoveryFile> {
        serde_json::from_slice(bytes).map_err(|e| {
            Error::invalid(format!(
                "'{what}' is not a rempart recovery file ({e}); expected the JSON written by 'rempart key export'"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlock_with_right_and_wrong_passphrase() {
        std::env::set_var("REMPART_KDF_MEMORY_KIB", "1024");
        let keys = Keys::generate();
        let repo = Id::random();
        let kf = KeyFile::create(&keys, repo, b"correct horse", "test").unwrap();
        let back = KeyFile::from_bytes(&kf.to_bytes(), "k").unwrap();
        let opened = back.unlock(b"correct horse").unwrap().expect("right passphrase opens");
        assert_eq!(opened.master(), keys.master());
        assert!(back.unlock(b"wrong").unwrap().is_none());
        assert_eq!(back.meta(&keys).unwrap().label, "test");
        assert!(KeyFile::create(&keys, repo, b"", "x").is_err());
    }
}
