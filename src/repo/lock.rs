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
//! must stay below 10 minutes (the prune sweep's margin, `CLOCK_SKEW_MARGIN`).

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

    /// When this lock is stale, the note that says so and why it is skipped: its holder (host,
    /// pid) and how long ago it was last refreshed. Whoever skips a lock names it.
    pub fn stale_note(&self, now: chrono::DateTime<chrono::Utc>) -> Option<String> {
        if !self.is_stale(now) {
            return None;
        }
        let age = now.signed_duration_since(self.time).num_seconds().max(0);
        Some(format!(
            "skipping a stale {}: last refreshed {age} s ago (stale after {} s, or at once when its process on this host is gone); 'rempart unlock' removes it",
            self.describe(),
            STALE_AFTER.as_secs()
        ))
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
    list_locks_but(storage, keys, None)
}

/// Lock objects read at once.
const LOCKS_READ_AT_ONCE: usize = 16;

/// [`list_locks`] without the lock named `own` (the caller's, whose content it knows): the
/// others are read at once, so taking a lock costs one round trip whatever else is held.
fn list_locks_but(storage: &BlockingStorage, keys: &Keys, own: Option<&str>) -> Result<Vec<ListedLock>> {
    let names: Vec<String> =
        storage.list(Kind::Lock)?.into_iter().map(|o| o.name).filter(|n| Some(n.as_str()) != own).collect();
    let mut out = Vec::new();
    for (name, got) in storage.get_each(Kind::Lock, names, LOCKS_READ_AT_ONCE) {
        let info = match got {
            Ok(bytes) => open_object(keys, "lock", &bytes, &Kind::Lock.describe(&name))
                .ok()
                .and_then(|p| serde_json::from_slice::<LockInfo>(&p).ok()),
            Err(Error::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        out.push(ListedLock { name, info });
    }
    // Answers come as they arrive; callers see the locks in name order, as listed.
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// A held lock; dropping it stops the refresher and deletes the lock object.
///
/// A reading lock on a repository that cannot be written (a read-only mount, a WORM share,
/// read-only credentials), or taken with `--no-lock`, holds no object at all: the guard is
/// [`LockGuard::unlocked`] and says so in the log.
pub struct LockGuard {
    storage: BlockingStorage,
    current: Arc<parking_lot::Mutex<Option<String>>>,
    /// Dropping the sender wakes the refresher at once, so releasing a lock never waits.
    stop: Option<std::sync::mpsc::Sender<()>>,
    refresher: Option<std::thread::JoinHandle<()>>,
    /// When the lock object now in place was written (refreshes move it forward).
    written: Arc<parking_lot::Mutex<std::time::Instant>>,
    info: LockInfo,
}

/// How a command locks the repository.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Locking {
    /// Write a lock object (reading commands fall back to no lock on a read-only repository).
    #[default]
    Normal,
    /// `--no-lock`: reading commands write nothing; writing commands refuse.
    Off,
}

impl LockKind {
    /// Commands that only read (restore, ls, snapshots, check) may run without a lock object.
    pub fn is_reading(self) -> bool {
        matches!(self, LockKind::Read | LockKind::Check)
    }
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
        Self::acquire_with(storage, keys, kind, operation, Locking::Normal)
    }

    /// [`LockGuard::acquire`] with a locking mode (`--no-lock`).
    ///
    /// # Errors
    /// `Locked` naming the holder; `InvalidInput` for `--no-lock` on a writing command;
    /// the storage's error when a writing command cannot write its lock.
    pub fn acquire_with(
        storage: &BlockingStorage,
        keys: &Keys,
        kind: LockKind,
        operation: &str,
        locking: Locking,
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
        if locking == Locking::Off {
            if !kind.is_reading() {
                return Err(Error::invalid(format!(
                    "--no-lock applies only to reading commands (snapshots, ls, restore, check); '{operation}' changes the repository and must lock it"
                )));
            }
            return Ok(Self::unlocked(storage, info));
        }
        if kind.is_reading() && storage.inner().is_view_of_the_past() {
            return Ok(Self::unlocked(storage, info));
        }
        let name = match write_lock(storage, keys, &info) {
            Ok(name) => name,
            Err(e) if kind.is_reading() && e.is_read_only() => {
                tracing::warn!(
                    "repository '{}' cannot be written ({e}): {operation} goes on without a lock; a prune running elsewhere meanwhile could remove data it reads",
                    storage.location()
                );
                return Ok(Self::unlocked(storage, info));
            }
            Err(e) => return Err(e),
        };
        for other in list_locks_but(storage, keys, Some(&name))? {
            if let Some(o) = other.info {
                if let Some(note) = o.stale_note(chrono::Utc::now()).filter(|_| kind.conflicts_with(o.kind)) {
                    tracing::warn!("repository '{}': {note}", storage.location());
                    continue;
                }
                if kind.conflicts_with(o.kind) {
                    let _ = storage.delete(Kind::Lock, &name);
                    return Err(Error::Locked(format!(
                        "repository '{}' is locked: {}; wait for it to finish, or if that process is gone run 'rempart unlock'",
                        storage.location(),
                        o.describe()
                    )));
                }
            }
        }
        let current = Arc::new(parking_lot::Mutex::new(Some(name)));
        let written = Arc::new(parking_lot::Mutex::new(std::time::Instant::now()));
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let refresher = {
            let (storage, keys, current, written, mut info) =
                (storage.clone(), keys.clone(), current.clone(), written.clone(), info.clone());
            std::thread::Builder::new()
                .name("lock-refresh".into())
                .spawn(move || {
                    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                        stopped.recv_timeout(REFRESH_EVERY)
                    {
                        info.time = chrono::Utc::now();
                        match write_lock(&storage, &keys, &info) {
                            Ok(new) => {
                                *written.lock() = std::time::Instant::now();
                                let old = current.lock().replace(new);
                                if let Some(old) = old {
                                    let _ = storage.delete(Kind::Lock, &old);
                                }
                            }
                            Err(e) => tracing::warn!("could not refresh the repository lock: {e}"),
                        }
                    }
                })
                .expect("spawn lock refresher")
        };
        Ok(LockGuard {
            storage: storage.clone(),
            current,
            stop: Some(stop),
            refresher: Some(refresher),
            written,
            info,
        })
    }

    /// A guard that holds no lock object (read-only repository, `--no-lock`).
    fn unlocked(storage: &BlockingStorage, info: LockInfo) -> LockGuard {
        LockGuard {
            storage: storage.clone(),
            current: Arc::new(parking_lot::Mutex::new(None)),
            stop: None,
            refresher: None,
            written: Arc::new(parking_lot::Mutex::new(std::time::Instant::now())),
            info,
        }
    }

    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// True when no lock object protects this operation.
    pub fn is_unlocked(&self) -> bool {
        self.current.lock().is_none()
    }

    /// Proves the lock is still ours before something is committed: a lock object not
    /// refreshed for [`STALE_AFTER`] may have been declared stale by another host, whose prune
    /// may then have swept data this operation relies on.
    ///
    /// # Errors
    /// `Failed` saying how long the lock went without a refresh.
    pub fn ensure_held(&self) -> Result<()> {
        let age = self.written.lock().elapsed();
        if age >= STALE_AFTER {
            return Err(Error::failed(format!(
                "the lock on repository '{}' was not refreshed for {} s (the stale limit is {} s): another host may have treated this {} as dead, so nothing is committed; run it again",
                self.storage.location(),
                age.as_secs(),
                STALE_AFTER.as_secs(),
                self.info.operation
            )));
        }
        Ok(())
    }

    #[cfg(test)]
    fn age_for_test(&self, by: Duration) {
        let mut w = self.written.lock();
        *w = w.checked_sub(by).unwrap_or(*w);
    }
}

pub(crate) fn write_lock(storage: &BlockingStorage, keys: &Keys, info: &LockInfo) -> Result<String> {
    let name = Id::random().to_hex();
    let sealed = seal_object(keys, "lock", &serde_json::to_vec(info).expect("serializable"));
    storage.put(Kind::Lock, &name, Bytes::from(sealed))?;
    Ok(name)
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.refresher.take() {
            let _ = h.join();
        }
        let Some(name) = self.current.lock().clone() else { return };
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

    fn storage(dir: &std::path::Path) -> (tokio::runtime::Runtime, BlockingStorage) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let s = BlockingStorage::new(crate::storage::open_local(dir).unwrap(), rt.handle().clone());
        (rt, s)
    }

    #[test]
    fn a_lock_not_refreshed_for_the_stale_limit_is_no_longer_held() {
        let dir = tempfile::tempdir().unwrap();
        let (_rt, s) = storage(dir.path());
        let keys = Keys::generate();
        let g = LockGuard::acquire(&s, &keys, LockKind::Backup, "backup").unwrap();
        g.ensure_held().unwrap();
        g.age_for_test(STALE_AFTER + Duration::from_secs(1));
        let e = g.ensure_held().unwrap_err().to_string();
        assert!(e.contains("was not refreshed") && e.contains("nothing is committed"), "{e}");
    }

    #[test]
    fn a_stale_lock_of_another_host_does_not_block_and_is_named_with_its_host_pid_and_age() {
        let dir = tempfile::tempdir().unwrap();
        let (_rt, s) = storage(dir.path());
        let keys = Keys::generate();
        let then = chrono::Utc::now() - chrono::Duration::minutes(31);
        let dead = LockInfo {
            kind: LockKind::Prune,
            operation: "prune".into(),
            hostname: "gone-host".into(),
            username: "ops".into(),
            pid: 4242,
            started: then,
            time: then,
        };
        write_lock(&s, &keys, &dead).unwrap();
        let note = dead.stale_note(chrono::Utc::now()).unwrap();
        assert!(
            note.contains("ops@gone-host pid 4242")
                && note.contains("last refreshed 18")
                && note.contains("s ago"),
            "{note}"
        );
        // A live lock has no note; the stale one blocks nobody.
        assert!(LockInfo { time: chrono::Utc::now(), ..dead.clone() }
            .stale_note(chrono::Utc::now())
            .is_none());
        LockGuard::acquire(&s, &keys, LockKind::Prune, "prune").unwrap();
    }

    #[test]
    fn no_lock_reads_without_an_object_and_refuses_writers() {
        let dir = tempfile::tempdir().unwrap();
        let (_rt, s) = storage(dir.path());
        let keys = Keys::generate();
        let g = LockGuard::acquire_with(&s, &keys, LockKind::Read, "restore", Locking::Off).unwrap();
        assert!(g.is_unlocked());
        assert!(s.list(Kind::Lock).unwrap().is_empty());
        let e = LockGuard::acquire_with(&s, &keys, LockKind::Prune, "prune", Locking::Off).err().unwrap();
        assert!(e.to_string().contains("--no-lock applies only to reading commands"), "{e}");
        drop(g);
        let held = LockGuard::acquire(&s, &keys, LockKind::Read, "ls").unwrap();
        assert_eq!(s.list(Kind::Lock).unwrap().len(), 1);
        drop(held);
        assert!(s.list(Kind::Lock).unwrap().is_empty());
    }
}
