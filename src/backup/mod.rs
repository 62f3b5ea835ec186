//! Backup: puts file trees (and, through `stream`, database dumps) into a repository.
//!
//! Threads of one backup (none of them on the async executor):
//!
//! ```text
//! walker ──File jobs (bounded)──▶ workers ×cores ──packs (bounded)──▶ uploader (async task)
//!    └──directories (post-order)──▶ tree builder ──tree packs──────────────┘      │
//!                                                             index checkpoints ◀─┘
//! ```
//!
//! Write order: packs, then the index objects that list them, then the snapshot; each durable
//! before the next is written. A failed or cancelled backup writes the index of the packs it
//! stored (so the next run reuses them) and no snapshot.

pub(crate) mod adopt;
pub(crate) mod blob_set;
pub(crate) mod commit;
pub(crate) mod database;
pub(crate) mod filters;
pub(crate) mod fsmeta;
pub(crate) mod lister;
pub(crate) mod shared;
pub(crate) mod stream;
#[cfg(test)]
pub(crate) mod testing;
pub(crate) mod trees;
pub(crate) mod uploader;
pub(crate) mod walker;
pub(crate) mod workers;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::error::{Error, ExitStatus, Result};
use crate::id::Id;
use crate::repo::lock::LockKind;
use crate::repo::snapshot::{Snapshot, SourceInfo};
use crate::repo::Repository;
use shared::{Counters, Shared};
use uploader::Uploader;
use walker::{absolute, SourceTrie, Walker};
use workers::WorkerState;

/// Which snapshot a backup compares against to skip unchanged files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ParentChoice {
    /// The newest snapshot of the same host and paths.
    #[default]
    Auto,
    /// Read every file again.
    None,
    Explicit(Id),
}

/// Everything a backup needs besides the repository.
#[derive(Clone, Debug)]
pub struct BackupOptions {
    pub paths: Vec<PathBuf>,
    pub excludes: Vec<String>,
    /// Marker files (`NAME` or `NAME:HEADER`) whose folder is kept with the marker alone.
    pub exclude_if_present: Vec<String>,
    /// Leave out the contents of folders tagged with a valid `CACHEDIR.TAG`.
    pub exclude_caches: bool,
    /// Leave out regular files larger than this many bytes.
    pub exclude_larger_than: Option<u64>,
    pub tags: Vec<String>,
    pub hostname: Option<String>,
    pub one_file_system: bool,
    pub parent: ParentChoice,
    pub job: Option<String>,
    /// Worker threads (default: the number of cores).
    pub workers: Option<usize>,
    /// Concurrent pack uploads (default: 2 local, 8 S3).
    pub upload_concurrency: Option<usize>,
    pub cancel: Arc<AtomicBool>,
    pub counters: Arc<Counters>,
    /// Snapshot time (default: now); tests pin it.
    pub time: Option<chrono::DateTime<chrono::Utc>>,
    /// Where packs are staged while they fill, for remote repositories (local ones stage
    /// inside the repository folder). Default: the system's temporary folder.
    pub staging_dir: Option<PathBuf>,
}

impl BackupOptions {
    pub fn new(paths: Vec<PathBuf>) -> BackupOptions {
        BackupOptions {
            paths,
            excludes: vec![],
            exclude_if_present: vec![],
            exclude_caches: false,
            exclude_larger_than: None,
            tags: vec![],
            hostname: None,
            one_file_system: false,
            parent: ParentChoice::Auto,
            job: None,
            workers: None,
            upload_concurrency: None,
            cancel: Arc::new(AtomicBool::new(false)),
            counters: Arc::new(Counters::default()),
            time: None,
            staging_dir: None,
        }
    }
}

/// A finished backup.
#[derive(Clone, Debug)]
pub struct BackupResult {
    pub snapshot_id: Id,
    pub snapshot: Snapshot,
}

impl BackupResult {
    /// `Partial` when some entries could not be read.
    pub fn status(&self) -> ExitStatus {
        if self.snapshot.summary.errors.is_empty() {
            ExitStatus::Success
        } else {
            ExitStatus::Partial
        }
    }
}

/// The number of worker threads to use by default.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

/// Packs uploaded at once: `--uploads`, else 1 for a local folder (one disk gains nothing from
/// parallel writes) and 4 for S3.
pub fn upload_concurrency(repo: &Repository, opts: &BackupOptions) -> usize {
    opts.upload_concurrency.unwrap_or(if crate::storage::is_local(&repo.storage().location()) {
        1
    } else {
        4
    })
}

/// Where packs fill: in staging files, not in memory, so memory stays flat whatever the pack
/// size. Stale files of killed backups are removed on the way.
pub fn staging_dir(repo: &Repository, opts: &BackupOptions) -> PathBuf {
    let dir = repo.storage().inner().staging_dir().unwrap_or_else(|| {
        opts.staging_dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("rempart-staging-{}", nix::unistd::getuid()))
        })
    });
    remove_stale_staging(&dir);
    dir
}

/// Removes staging files older than a day (left by backups that were killed).
fn remove_stale_staging(dir: &std::path::Path) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let name = e.file_name();
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .map(|t| t.elapsed().unwrap_or_default() > std::time::Duration::from_secs(24 * 3600))
            .unwrap_or(false);
        if old && name.to_string_lossy().starts_with(".pack-") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Chooses the parent snapshot for `paths` on `hostname`.
pub fn find_parent(
    repo: &Repository,
    choice: &ParentChoice,
    hostname: &str,
    paths: &[String],
) -> Result<Option<(Id, Snapshot)>> {
    match choice {
        ParentChoice::None => Ok(None),
        ParentChoice::Explicit(id) => Ok(Some((*id, repo.load_snapshot(id)?))),
        ParentChoice::Auto => {
            let (snaps, _) = repo.list_snapshots()?;
            Ok(snaps.into_iter().rev().find(|(_, s)| {
                s.hostname == hostname
                    && s.same_paths(paths)
                    && s.repaired.is_none()
                    && s.source.kind == "files"
            }))
        }
    }
}

/// Backs up `opts.paths` into `repo` and writes a snapshot.
///
/// # Errors
/// `InvalidInput` for a missing source path or a bad exclude, `Interrupted` when cancelled,
/// storage errors. Unreadable entries inside the sources do not fail the backup: they are
/// listed in the summary and make [`BackupResult::status`] `Partial`.
pub fn backup(repo: &Repository, opts: &BackupOptions) -> Result<BackupResult> {
    let started = Instant::now();
    let time = opts.time.unwrap_or_else(chrono::Utc::now);
    if opts.paths.is_empty() {
        return Err(Error::invalid("nothing to back up: give at least one path"));
    }
    let mut paths = Vec::new();
    for p in &opts.paths {
        let abs = absolute(p)?;
        std::fs::symlink_metadata(&abs).map_err(|e| {
            Error::invalid(format!(
                "source path '{}' cannot be read: {e}; expected an existing file or folder",
                p.display()
            ))
        })?;
        paths.push(abs);
    }
    paths.sort();
    paths.dedup();
    let path_strings: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let filters = filters::Filters::new(
        &opts.excludes,
        &opts.exclude_if_present,
        opts.exclude_caches,
        opts.exclude_larger_than,
    )?;
    let hostname = opts.hostname.clone().unwrap_or_else(crate::util::hostname);

    let lock = repo.lock(LockKind::Backup, "backup")?;
    // On an Object Lock repository, the packs this backup dedups against must stay locked at
    // least immutable_for from now: extended first when due (storage::object_lock).
    repo.storage()
        .handle()
        .block_on(crate::storage::object_lock::keep_locked(repo.storage().inner().as_ref(), false))?;
    // Only asked where blobs are: the lookup form (34 bytes per blob instead of 48).
    let index = Arc::new(adopt::dedup_index(repo)?.into_lookup());
    let parent = find_parent(repo, &opts.parent, &hostname, &path_strings)?;
    let parent_tree = match &parent {
        Some((_, s)) => match repo.load_tree(&index, &s.tree) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!("parent snapshot's tree is unreadable, reading every file: {e}");
                None
            }
        },
        None => None,
    };
    let trie = SourceTrie::build(&paths);
    let root_dev = std::os::unix::fs::MetadataExt::dev(
        &std::fs::symlink_metadata("/").map_err(|e| Error::io("cannot stat /", e))?,
    );

    let shared = Arc::new(Shared::new(repo.clone(), index, opts.counters.clone(), opts.cancel.clone()));
    let handle = repo.storage().handle().clone();
    let uploader =
        Uploader::start(repo, opts.counters.clone(), upload_concurrency(repo, opts), shared.stored.clone());

    let staging = staging_dir(repo, opts);
    let n_workers = opts.workers.unwrap_or_else(default_workers).max(1);
    let (job_tx, job_rx) = crossbeam_channel::bounded(n_workers * 4);
    let (tree_tx, tree_rx) = crossbeam_channel::unbounded();
    let workers =
        workers::spawn_workers(&shared, &uploader.sink(), &staging, n_workers, &job_rx, "backup-worker");
    drop(job_rx);
    let tree_builder = {
        let state = WorkerState::new(shared.clone(), uploader.sink(), Some(staging.clone()));
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("backup-trees".into())
            .spawn(move || trees::run_tree_builder(state, shared, tree_rx))
            .expect("spawn tree builder")
    };
    let walk = {
        let shared = shared.clone();
        let one_fs = opts.one_file_system;
        std::thread::Builder::new()
            .name("backup-walker".into())
            .stack_size(64 << 20)
            .spawn(move || {
                let mut w = Walker::new(shared, job_tx, tree_tx, filters, one_fs);
                let slot = if trie.is_source {
                    w.walk_dir(std::path::Path::new("/"), parent_tree.as_ref(), root_dev)
                } else {
                    w.walk_virtual(std::path::Path::new("/"), &trie, parent_tree.as_ref())
                };
                (slot, w.errors)
            })
            .expect("spawn walker")
    };

    let (root_slot, mut walk_errors) =
        walk.join().map_err(|_| Error::failed("the walker thread panicked"))?;
    opts.counters.walk_done.store(true, Ordering::Relaxed);
    if root_slot.is_err() {
        shared.abort.store(true, Ordering::Relaxed);
    }
    let worker_error = workers::join_workers(workers);
    let trees = tree_builder.join().map_err(|_| Error::failed("the tree builder panicked"))?;
    let upload_error = uploader.finish(&handle);

    // Report the root cause first: a storage error explains the stopped workers.
    if let Some(e) = upload_error.or_else(|| shared.take_fatal()) {
        return Err(stored_so_far(e));
    }
    let root_slot = root_slot?;
    if let Some(e) = worker_error {
        return Err(e);
    }
    let mut trees = trees?;
    if opts.cancel.load(Ordering::Relaxed) {
        return Err(Error::Interrupted(
            "backup cancelled; the data stored so far is indexed and will be reused".into(),
        ));
    }
    let root = trees
        .slots
        .remove(&root_slot)
        .ok_or_else(|| Error::failed("internal: the root tree was not built"))?;
    walk_errors.append(&mut trees.errors);

    let summary = opts.counters.summary(started.elapsed().as_secs_f64(), walk_errors);
    let snapshot = Snapshot {
        version: 1,
        time,
        hostname,
        username: crate::util::username(),
        paths: path_strings,
        tags: opts.tags.clone(),
        tree: root,
        parent: parent.map(|(id, _)| id),
        source: SourceInfo::default(),
        job: opts.job.clone(),
        summary,
        program_version: env!("CARGO_PKG_VERSION").to_string(),
        repaired: None,
    };
    let snapshot_id = commit::commit(repo, &lock, &mut trees.references, &snapshot)?;
    Ok(BackupResult { snapshot_id, snapshot })
}

/// Adds to a repository error what it means for this backup: nothing was committed, and what
/// was stored is kept for the next run.
pub fn stored_so_far(e: Error) -> Error {
    match e {
        Error::Storage { op, object, detail, retryable } => Error::Storage {
            op,
            object,
            detail: format!(
                "{detail}; the backup stopped and wrote no snapshot (the data stored before is indexed and the next backup reuses it)"
            ),
            retryable,
        },
        other => other,
    }
}
