//! Repository locks: lock objects that keep apart only what must not overlap.
//!
//! | held \ wanted | backup | read | check | prune | exclusive |
//! |---------------|--------|------|-------|-------|-----------|
//! | backup        | ok     | ok   | ok    | ok    | wait      |
//! | read          | ok     | ok   | ok    | ok    | wait      |
//! | check         | ok     | ok   | ok    | wait  | wait      |
//! | prune         | ok     | ok   | wait  | wait  | wait      |
//! | exclusive     | wait   | wait | wait  | wait  | wait      |
//!
//! A backup never waits for a prune: deletion is two-phase (docs/format.md), and the second
//! phase reads the backup locks to know which backups started before its mark.
//!
//! Protocol (no conditional writes needed): write our lock object under a random name, then
//! list the lock objects; if a live conflicting lock exists, delete ours and report who holds
//! it. Two contenders may both back off; neither proceeds wrongly. This relies on the storage
//! listing what was put before (read-after-write consistent listing, as S3 and Garage give).
//! Locks are refreshed every 5 minutes by writing a new object and deleting the old one; a lock
//! not refreshed for 30 minutes, or held by a process of this host that no longer exists, is
//! stale: it never blocks anyone, and `rempart unlock` removes it. Clock skew between hosts
//! must stay well below the 30 minutes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::crypto::seal::{open_object, seal_object};
use crate::crypto::Keys;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::storage::{BlockingStorage, Kind};

pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    Backup,
    Read,
    Check,
    Prune,
    Exclusive,
}

impl LockKind {
    pub fn conflicts_with(self, other: LockKind) -> bool {
        use LockKind::*;
        matches!(
            (self, other),
            (Exclusive, _) | (_, Exclusive) | (Check, Prune) | (Prune, Check) | (Prune, Prune)
        )
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LockInfo {
    pub kind: LockKind,
    pub operation: String,
    pub hostname: String,
    pub username: String,
    pub pid: u32,
    /// When the operation took its first lock.
    pub started: chrono::DateTime<chrono::Utc>,
    /// When this lock object was written (refreshes write a new one).
    pub time: chrono::DateTime<chrono::Utc>,
}

impl LockInfo {
    /// Stale: not refreshed within [`STALE_AFTER`], or its process on this host is gone.
    pub fn is_stale(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        let age = now.signed_duration_since(self.time);
        if age.to_std().map(|a| a > STALE_AFTER).unwrap_or(false) {
            return true;
        }
        self.hostname == crate::util::hostname() && !process_alive(self.pid)
    }

    pub fn describe(&self) -> String {
        format!(
            "{} lock for '{}' held by {}@{} pid {} since {}",
            serde_json::to_value(self.kind)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            self.operation,
            self.username,
            self.hostname,
            self.pid,
            self.started.format("%Y-%m-%d %H:%M:%S UTC")
        )
    }
}

fn process_alive(pid: u32) -> bool {
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None) {
        Ok(()) => true,
        Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    }
}

/// A lock object as listed.
#[derive(Clone, Debug)]
pub struct ListedLock {
    pub name: String,
    /// `None` when the object could not be read or decrypted.
    pub info: Option<LockInfo>,
}

/// Reads every lock object of the repository.
pub fn list_locks(storage: &BlockingStorage, keys: &Keys) -> Result<Vec<ListedLock>> {
    let mut out = Vec::new();
    for obj in storage.list(Kind::Lock)? {
        let info = match storage.get(Kind::Lock, &obj.name) {
            Ok(bytes) => open_object(keys, "lock", &bytes, &Kind::Lock.describe(&obj.name))
                .ok()
                .and_then(|p| serde_json::from_slice::<LockInfo>(&p).ok()),
            Err(Error::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        out.push(ListedLock { name: obj.name, info });
    }
    Ok(out)
}

/// A held lock; dropping it stops the refresher and deletes the lock object.
pub struct LockGuard {
    storage: BlockingStorage,
    current: Arc<parking_lot::Mutex<String>>,
    stop: Arc<AtomicBool>,
    refresher: Option<std::thread::JoinHandle<()>>,
    info: LockInfo,
}

impl LockGuard {
    /// Takes a lock of `kind` for `operation`.
    ///
    /// # Errors
    /// `Locked` naming the holder when a live conflicting lock exists.
    pub fn acquire(
        storage: &BlockingStorage,
        keys: &Keys,
        kind: LockKind,
        operation: &str,
    ) -> Result<LockGuard> {
        let now = chrono::Utc::now();
        let info = LockInfo {
            kind,
            operation: operation.to_string(),
            hostname: crate::util::hostname(),
            username: crate::util::username(),
            pid: std::process::id(),
            started: now,
            time: now,
        };
        let name = write_lock(storage, keys, &info)?;
        for other in list_locks(storage, keys)? {
            if other.name == name {
                continue;
            }
            if let Some(o) = other.info {
                if !o.is_stale(chrono::Utc::now()) && kind.conflicts_with(o.kind) {
                    let _ = storage.delete(Kind::Lock, &name);
                    return Err(Error::Locked(format!(
                        "repository '{}' is locked: {}; wait for it to finish, or if that process is gone run 'rempart unlock'",
                        storage.location(),
                        o.describe()
                    )));
                }
            }
        }
        let current = Arc::new(parking_lot::Mutex::new(name));
        let stop = Arc::new(AtomicBool::new(false));
        let refresher = {
            let (storage, keys, current, stop, mut info) =
                (storage.clone(), keys.clone(), current.clone(), stop.clone(), info.clone());
            std::thread::Builder::new()
                .name("lock-refresh".into())
                .spawn(move || {
                    let mut waited = Duration::ZERO;
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(200));
                        waited += Duration::from_millis(200);
                        if waited < REFRESH_EVERY {
                            continue;
                        }
                        waited = Duration::ZERO;
                        info.time = chrono::Utc::now();
                        match write_lock(&storage, &keys, &info) {
                            Ok(new) => {
                                let old = std::mem::replace(&mut *current.lock(), new);
                                let _ = storage.delete(Kind::Lock, &old);
                            }
                            Err(e) => tracing::warn!("could not refresh the repository lock: {e}"),
                        }
                    }
                })
                .expect("spawn lock refresher")
        };
        Ok(LockGuard { storage: storage.clone(), current, stop, refresher: Some(refresher), info })
    }

    pub fn info(&self) -> &LockInfo {
        &self.info
    }
}

fn write_lock(storage: &BlockingStorage, keys: &Keys, info: &LockInfo) -> Result<String> {
    let name = Id::random().to_hex();
    let sealed = seal_object(keys, "lock", &serde_json::to_vec(info).expect("serializable"));
    storage.put(Kind::Lock, &name, Bytes::from(sealed))?;
    Ok(name)
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.refresher.take() {
            let _ = h.join();
        }
        let name = self.current.lock().clone();
        if let Err(e) = self.storage.delete(Kind::Lock, &name) {
            tracing::warn!("could not remove lock {name}: {e}; 'rempart unlock' will remove it once stale");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_table() {
        use LockKind::*;
        assert!(!Backup.conflicts_with(Prune));
        assert!(!Prune.conflicts_with(Backup));
        assert!(Prune.conflicts_with(Prune));
        assert!(Prune.conflicts_with(Check));
        assert!(!Check.conflicts_with(Check));
        assert!(Exclusive.conflicts_with(Read));
        assert!(Backup.conflicts_with(Exclusive));
    }
}
