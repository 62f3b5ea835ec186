//! State shared by the threads of one backup: the dedup set, counters and the abort flag.

use super::blob_set::BlobSet;
use super::commit::StoredBlobs;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::Error;
use crate::id::Id;
use crate::repo::chunker::Chunker;
use crate::repo::index::Index;
use crate::repo::Repository;

/// Live counters, read by progress displays while the backup runs.
#[derive(Default, Debug)]
pub struct Counters {
    pub files_new: AtomicU64,
    pub files_changed: AtomicU64,
    pub files_unmodified: AtomicU64,
    pub dirs: AtomicU64,
    pub other_entries: AtomicU64,
    pub bytes_read: AtomicU64,
    pub bytes_total: AtomicU64,
    pub data_blobs_added: AtomicU64,
    pub tree_blobs_added: AtomicU64,
    pub bytes_added: AtomicU64,
    pub bytes_stored: AtomicU64,
    pub packs_written: AtomicU64,
    /// Files whose content is done (read, or reused unchanged).
    pub files_done: AtomicU64,
    /// Regular files the walk has found so far, and their size: the total to do, once
    /// `walk_done` is set.
    pub files_found: AtomicU64,
    pub bytes_found: AtomicU64,
    /// Bytes of files reused unchanged from the parent snapshot (done without being read).
    pub bytes_unmodified: AtomicU64,
    pub walk_done: AtomicBool,
    /// When set, every file stored or reused is reported here (`backup -v`).
    pub changes: std::sync::OnceLock<crossbeam_channel::Sender<FileChange>>,
}

/// What a backup did with one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    New,
    Modified,
    Unchanged,
}

/// One file a backup stored or reused, for `backup -v`.
#[derive(Clone, Debug)]
pub struct FileChange {
    pub kind: ChangeKind,
    pub path: std::path::PathBuf,
    pub size: u64,
}

impl Counters {
    /// Reports a file to whoever listens (`backup -v`); nothing when no one does.
    pub fn report(&self, kind: ChangeKind, path: &std::path::Path, size: u64) {
        if let Some(tx) = self.changes.get() {
            let _ = tx.send(FileChange { kind, path: path.to_path_buf(), size });
        }
    }

    /// The snapshot summary of what was counted.
    pub fn summary(
        &self,
        duration_secs: f64,
        errors: Vec<crate::repo::snapshot::EntryError>,
    ) -> crate::repo::snapshot::Summary {
        crate::repo::snapshot::Summary {
            files_new: Self::get(&self.files_new),
            files_changed: Self::get(&self.files_changed),
            files_unmodified: Self::get(&self.files_unmodified),
            dirs: Self::get(&self.dirs),
            other_entries: Self::get(&self.other_entries),
            bytes_read: Self::get(&self.bytes_read),
            bytes_total: Self::get(&self.bytes_total),
            data_blobs_added: Self::get(&self.data_blobs_added),
            tree_blobs_added: Self::get(&self.tree_blobs_added),
            bytes_added: Self::get(&self.bytes_added),
            bytes_stored: Self::get(&self.bytes_stored),
            duration_secs,
            errors,
        }
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

pub struct Shared {
    pub repo: Repository,
    /// The index as loaded at the start: blobs already in the repository.
    pub index: Arc<Index>,
    /// Blobs this backup has decided to store (in a pack being filled or uploaded).
    pending: Mutex<BlobSet>,
    /// Blobs in packs this backup stored and indexed (filled by the uploader).
    pub stored: StoredBlobs,
    pub chunker: Chunker,
    pub counters: Arc<Counters>,
    /// Set when the backup must stop (cancellation or a fatal error).
    pub abort: Arc<AtomicBool>,
    /// The first error of the repository side (a pack that could not be staged or stored):
    /// it stops the backup, and is never reported as a skipped source file.
    fatal: Mutex<Option<Error>>,
}

impl Shared {
    pub fn new(
        repo: Repository,
        index: Arc<Index>,
        counters: Arc<Counters>,
        abort: Arc<AtomicBool>,
    ) -> Shared {
        let chunker = Chunker::new(repo.keys(), &repo.config().chunker);
        Shared {
            repo,
            index,
            pending: Mutex::new(BlobSet::default()),
            stored: StoredBlobs::default(),
            chunker,
            counters,
            abort,
            fatal: Mutex::new(None),
        }
    }

    /// Stops the backup because the repository side failed; the first such error is kept and
    /// becomes the backup's error (naming the repository).
    pub fn fail(&self, e: Error) {
        let e = repository_error(&self.repo.storage().location(), e);
        self.fatal.lock().get_or_insert(e);
        self.abort.store(true, Ordering::Relaxed);
    }

    /// The repository error that stopped the backup, if any.
    pub fn take_fatal(&self) -> Option<Error> {
        self.fatal.lock().take()
    }

    /// True when the caller must store this blob: it is neither in the repository nor
    /// already taken by another thread of this backup.
    pub fn reserve(&self, id: &Id) -> bool {
        !self.index.contains(id) && self.pending.lock().insert(*id)
    }

    /// True when the blob is stored or being stored.
    pub fn known(&self, id: &Id) -> bool {
        self.index.contains(id) || self.pending.lock().contains(id)
    }

    pub fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }
}

/// Words a failure of the repository side so that it names the repository: a full disk or a
/// read-only mount under a local repository is an I/O error of *its* folder, not of a source.
pub fn repository_error(location: &str, e: Error) -> Error {
    match e {
        Error::Io { context, source } => Error::Storage {
            op: "writing",
            object: format!("repository '{location}'"),
            detail: format!("{context}: {source}"),
            retryable: false,
        },
        other => other,
    }
}
