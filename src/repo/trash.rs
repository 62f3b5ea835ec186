//! Trash objects: packs a prune marked for deletion, kept whole until a later prune sweeps them.
//!
//! A trash object lists the packs with their full index entries and the time of marking, so
//! readers (restore, check) still find blobs in marked packs, and a later prune can put a pack
//! back into the index if a snapshot written since uses it. Backups never dedup against marked
//! packs.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::index::IndexedPack;
use crate::repo::Repository;
use crate::storage::Kind;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrashFile {
    pub marked_at: chrono::DateTime<chrono::Utc>,
    pub host: String,
    pub packs: Vec<IndexedPack>,
}

/// Trash objects that decode, and errors naming those that do not.
pub type TrashList = (Vec<(Id, TrashFile)>, Vec<Error>);

/// Every trash object of the repository.
///
/// # Errors
/// `Corrupt` naming a damaged trash object.
pub fn load_trash(repo: &Repository) -> Result<Vec<(Id, TrashFile)>> {
    let (good, mut damaged) = read_trash(repo)?;
    match damaged.is_empty() {
        true => Ok(good),
        false => Err(damaged.swap_remove(0)),
    }
}

/// Every trash object that decodes, and an error naming each one that does not (check reports
/// them one by one).
///
/// # Errors
/// Storage errors while listing or reading.
pub fn read_trash(repo: &Repository) -> Result<TrashList> {
    let names: Vec<String> = repo.storage().list(Kind::Trash)?.into_iter().map(|o| o.name).collect();
    let mut good = Vec::new();
    let mut damaged = Vec::new();
    for (name, bytes) in repo.fetch_many(Kind::Trash, names) {
        let bytes = match bytes {
            Ok(b) => b,
            Err(Error::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        let what = Kind::Trash.describe(&name);
        let decoded = (|| {
            if Id::of_bytes(&bytes).to_hex() != name {
                return Err(Error::corrupt(&what, "content does not hash to its name"));
            }
            let plain = crate::crypto::seal::open_object(repo.keys(), "trash", &bytes, &what)?;
            let t: TrashFile = serde_json::from_slice(&plain).map_err(|e| Error::corrupt(&what, e))?;
            Ok((Id::from_hex(&name)?, t))
        })();
        match decoded {
            Ok(t) => good.push(t),
            Err(e) => damaged.push(e),
        }
    }
    Ok((good, damaged))
}

/// Stores a trash object.
pub fn save_trash(repo: &Repository, t: &TrashFile) -> Result<Id> {
    repo.save_object(Kind::Trash, "trash", &serde_json::to_vec(t).expect("serializable"))
}
