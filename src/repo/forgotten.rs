//! Forget records: the intent of a `forget`, written in the repository before it deletes.
//!
//! Deleting snapshot objects takes one request each; a forget killed half-way, or one run by
//! another host, must not leave snapshots that look "deleted outside rempart" to this host's
//! `check`, nor snapshots half-forgotten. So `forget` first writes a forget record (sealed JSON,
//! content-addressed, under `forgotten/`) naming every snapshot it removes, and only then
//! deletes their objects. From the moment the record is durable the snapshots are forgotten for
//! every reader ([`crate::repo::Repository::list_snapshots`] leaves them out); the next `forget`
//! or `prune` deletes objects a killed run left behind ([`complete`]), and `check` only notes
//! them. Records are tiny and kept; `prune` merges them into one when they pile up.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::Repository;
use crate::storage::Kind;

/// Merge the records into one when there are more than this many.
const MERGE_ABOVE: usize = 32;

/// One forget record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgetRecord {
    pub version: u32,
    pub time: chrono::DateTime<chrono::Utc>,
    pub host: String,
    /// `forget`, `forget ID...`, `repair snapshots --forget`, or `prune` (a merge).
    pub operation: String,
    /// Names of the snapshot objects removed (also those that could not be decrypted).
    pub snapshots: Vec<Id>,
}

/// Every forgotten snapshot of the repository, and the records that say so.
#[derive(Clone, Debug, Default)]
pub struct Forgotten {
    pub snapshots: HashSet<Id>,
    pub records: Vec<Id>,
    /// Records that cannot be read (object name, why). Readers go on without them (the
    /// snapshots they forgot, if their objects remain, show up again: nothing is lost), `check`
    /// names them and `repair snapshots` removes them.
    pub damaged: Vec<(String, String)>,
}

impl Forgotten {
    pub fn contains(&self, id: &Id) -> bool {
        self.snapshots.contains(id)
    }
}

/// Reads every forget record; damaged ones are listed in [`Forgotten::damaged`], never
/// skipped silently.
///
/// # Errors
/// Storage errors other than damage.
pub fn load(repo: &Repository) -> Result<Forgotten> {
    let names: Vec<String> = repo.storage().list(Kind::Forgotten)?.into_iter().map(|o| o.name).collect();
    let mut out = Forgotten::default();
    for (name, bytes) in repo.fetch_many(Kind::Forgotten, names) {
        let what = Kind::Forgotten.describe(&name);
        let decoded = bytes.and_then(|bytes| {
            let plain = repo.open_loaded(Kind::Forgotten, "forgotten", &name, &bytes)?;
            let record: ForgetRecord =
                serde_json::from_slice(&plain).map_err(|e| Error::corrupt(&what, e))?;
            Ok((Id::from_hex(&name).map_err(|e| Error::corrupt(&what, e))?, record))
        });
        match decoded {
            Ok((id, record)) => {
                out.snapshots.extend(record.snapshots);
                out.records.push(id);
            }
            Err(Error::NotFound(_)) => {} // merged and deleted meanwhile
            Err(e) if e.is_integrity() => out.damaged.push((name, e.to_string())),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Writes a record that forgets `snapshots`; durable on return, so their objects may go.
///
/// # Errors
/// Storage errors.
pub fn record(repo: &Repository, operation: &str, snapshots: &[Id]) -> Result<Option<Id>> {
    if snapshots.is_empty() {
        return Ok(None);
    }
    let rec = ForgetRecord {
        version: 1,
        time: chrono::Utc::now(),
        host: crate::util::hostname(),
        operation: operation.to_string(),
        snapshots: snapshots.to_vec(),
    };
    let bytes = serde_json::to_vec(&rec).expect("serializable");
    repo.save_object(Kind::Forgotten, "forgotten", &bytes).map(Some)
}

/// Deletes the snapshot objects that forget records name but that are still stored (a forget
/// that was killed, or failed, between its record and its deletions); returns how many.
/// The caller holds the prune lock.
///
/// # Errors
/// Storage errors.
pub fn complete(repo: &Repository, forgotten: &Forgotten) -> Result<usize> {
    let mut done = 0;
    for o in repo.storage().list(Kind::Snapshot)? {
        if Id::from_hex(&o.name).is_ok_and(|id| forgotten.contains(&id)) {
            repo.storage().delete(Kind::Snapshot, &o.name)?;
            done += 1;
        }
    }
    Ok(done)
}

/// Merges the records into one when they pile up (new record first, then the old ones go).
/// The caller holds the prune lock.
///
/// # Errors
/// Storage errors.
pub fn merge(repo: &Repository, forgotten: &Forgotten) -> Result<bool> {
    if forgotten.records.len() <= MERGE_ABOVE {
        return Ok(false);
    }
    let mut all: Vec<Id> = forgotten.snapshots.iter().copied().collect();
    all.sort();
    let new = record(repo, "prune", &all)?;
    for r in &forgotten.records {
        if Some(*r) != new {
            repo.storage().delete(Kind::Forgotten, &r.to_hex())?;
        }
    }
    Ok(true)
}
