//! Restore: writes a snapshot (or part of it) back into a folder, verifying as it goes.
//!
//! The snapshot's trees are walked once. Folders, symlinks, FIFOs and devices are created on
//! the way; regular files are gathered in batches (bounded in count and bytes, so memory stays
//! flat on huge snapshots) and written by `writer`. Hard links are recreated once their
//! first path is written. Folder metadata is applied last, deepest first, so writing into a
//! folder does not change its restored mtime. Damaged parts are reported by path and do not
//! stop the rest.

pub(crate) mod database;
pub(crate) mod extraneous;
pub(crate) mod metadata;
pub mod overwrite;
pub(crate) mod select;
pub(crate) mod stream;
pub(crate) mod writer;

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;

use crate::error::{Error, ExitStatus, Result};
use crate::id::Id;
use crate::repo::index::Index;
use crate::repo::lock::LockKind;
use crate::repo::snapshot::Snapshot;
use crate::repo::tree::{Node, NodeKind};
use crate::repo::walk::{show, walk, WalkItem};
use crate::repo::Repository;
pub use overwrite::Overwrite;
use writer::{BatchWriter, FileTask};

/// Files written per batch at most: each batch's packs are planned, fetched and written
/// together (about 300 bytes of plan per file)...
const BATCH_FILES: usize = 20_000;
/// ...and from S3 the first batch is this small, each next one four times larger up to the
/// most, so the fetching starts soon after the walk does instead of once 20,000 files are
/// walked (locally the first batch waits for about 0.1 s of walking, and a pack whose blobs
/// are spread over more batches is read more often).
const FIRST_REMOTE_BATCH_FILES: usize = 1_000;
const BATCH_BYTES: u64 = 4 << 30;

#[derive(Default, Debug)]
pub struct RestoreCounters {
    pub files: AtomicU64,
    pub bytes: AtomicU64,
}

#[derive(Clone, Debug)]
pub struct RestoreOptions {
    pub target: PathBuf,
    /// Snapshot paths or globs to restore (with everything below them); empty: everything.
    pub includes: Vec<String>,
    /// Globs of entries to leave out (backup's `--exclude` rules).
    pub excludes: Vec<String>,
    /// Walk and count what would be restored; write nothing.
    pub dry_run: bool,
    /// What to do with entries already in the target.
    pub overwrite: Overwrite,
    /// Remove what the target holds and the snapshot does not (within the selection).
    pub delete: bool,
    /// A folder `--delete` never removes (nor anything above it): the state directory. The
    /// repository's own folder is protected too.
    pub protect: PathBuf,
    pub threads: Option<usize>,
    pub counters: Arc<RestoreCounters>,
    pub cancel: Arc<AtomicBool>,
}

impl RestoreOptions {
    pub fn new(target: PathBuf) -> RestoreOptions {
        RestoreOptions {
            target,
            includes: vec![],
            excludes: vec![],
            dry_run: false,
            overwrite: Overwrite::Always,
            delete: false,
            protect: PathBuf::new(),
            threads: None,
            counters: Arc::new(RestoreCounters::default()),
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// A path that could not be restored, and why.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Damaged {
    pub path: String,
    pub error: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RestoreResult {
    pub files: u64,
    pub dirs: u64,
    pub other: u64,
    pub bytes: u64,
    /// Entries left as they were (`--overwrite`).
    pub skipped: u64,
    /// Paths removed from the target (`--delete`), or that would be in a dry run.
    pub deleted: Vec<String>,
    pub damaged: Vec<Damaged>,
    pub warnings: Vec<String>,
    pub duration_secs: f64,
}

impl RestoreResult {
    pub fn status(&self) -> ExitStatus {
        if self.damaged.is_empty() {
            ExitStatus::Success
        } else {
            ExitStatus::Integrity
        }
    }
}

/// Restores snapshot `snapshot` into `opts.target`.
///
/// # Errors
/// `InvalidInput` for an unusable target; damaged data is reported in the result instead.
pub fn restore(repo: &Repository, snapshot: &Snapshot, opts: &RestoreOptions) -> Result<RestoreResult> {
    let _lock = repo.lock(LockKind::Read, "restore")?;
    let index = repo.load_index()?.into_lookup();
    restore_with_index(repo, &index, snapshot.tree, opts)
}

/// [`restore`] with an index already loaded (drills reuse one).
pub fn restore_with_index(
    repo: &Repository,
    index: &Index,
    root: Id,
    opts: &RestoreOptions,
) -> Result<RestoreResult> {
    let started = std::time::Instant::now();
    let selection = select::Selection::new(&opts.includes, &opts.excludes)?;
    if opts.delete {
        refuse_delete_into(repo, opts)?;
    }
    if !opts.dry_run {
        std::fs::create_dir_all(&opts.target).map_err(|e| {
            Error::invalid(format!("restore target '{}' cannot be created: {e}", opts.target.display()))
        })?;
    }
    let chown = metadata::can_chown();
    // Writing threads: one per core. From S3 the fetching runs ahead of them on the runtime
    // (writer.rs), so no thread waits on a round trip; remote storage without the request
    // scheduler (a view of the past, `--as-of`) is read by the threads themselves, 8 at least.
    let threads = opts.threads.unwrap_or_else(|| {
        let cores = crate::backup::default_workers();
        let storage = repo.storage();
        if crate::storage::is_local(&storage.location()) || storage.inner().scheduler_stats().is_some() {
            cores
        } else {
            cores.max(8)
        }
    });
    let writer = BatchWriter { repo, index, threads, chown, counters: &opts.counters, cancel: &opts.cancel };
    let remote = repo.storage().inner().scheduler_stats().is_some();
    let mut batch_files = if remote { FIRST_REMOTE_BATCH_FILES } else { BATCH_FILES };

    let mut result = RestoreResult::default();
    let mut batch: Vec<FileTask> = Vec::new();
    let mut batch_bytes = 0u64;
    let mut dirs: Vec<(PathBuf, Node)> = Vec::new();
    let mut links: Vec<(PathBuf, (u64, u64))> = Vec::new();
    let mut first_link: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut found_any = !selection.is_partial();
    // A partial restore creates the folders above what it takes only as needed.
    let mut made: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
    // With --delete: every path the snapshot puts in the target (and their damaged copies),
    // and which of them are folders in the snapshot (only those are swept inside).
    let mut keep = extraneous::Keep::default();
    // A folder whose tree cannot be read: what the target holds below it is unknown to the
    // snapshot, so --delete must not touch anything.
    let mut tree_damaged = false;
    // Hard-link groups whose first path was left as it was (--overwrite): their other paths
    // are restored as files of their own, never linked to content that is not the snapshot's.
    let mut first_kept: std::collections::HashSet<(u64, u64)> = std::collections::HashSet::new();
    let keys = repo.keys();

    // Files are written by a thread of their own, one batch behind the walk: the next batch is
    // walked (trees read, folders created) while the current one is fetched and written, so
    // neither waits for the other between batches. From S3 a batch also starts fetching as
    // soon as every range of the one before has arrived, while that one's last ranges are
    // still being written, so the network does not idle at the boundary (locally a batch ends
    // before the next starts).
    let (batches, to_write) = std::sync::mpsc::sync_channel::<Vec<FileTask>>(1);
    let writer = &writer;
    let (walked, written) = std::thread::scope(|scope| {
        let writing = scope.spawn(move || -> Result<writer::BatchOutcome> {
            std::thread::scope(|overlapping| {
                let mut all = writer::BatchOutcome::default();
                let mut add = |running: std::thread::ScopedJoinHandle<'_, Result<writer::BatchOutcome>>| {
                    let out = running.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
                    all.damaged.extend(out.damaged);
                    all.warnings.extend(out.warnings);
                    Ok::<(), Error>(())
                };
                let mut previous = None;
                for batch in to_write {
                    let (fetched, all_fetched) = std::sync::mpsc::channel();
                    let running = overlapping.spawn(move || writer.run(batch, fetched));
                    // Returns when the batch has all its ranges, or has ended.
                    let _ = all_fetched.recv();
                    if let Some(before) = previous.replace(running) {
                        add(before)?;
                    }
                }
                if let Some(last) = previous {
                    add(last)?;
                }
                Ok(all)
            })
        });
        // A send fails only once the writing thread has stopped; its own error says why.
        let flush = move |batch: &mut Vec<FileTask>| -> Result<()> {
            batches.send(std::mem::take(batch)).map_err(|_| Error::Interrupted("restore cancelled".into()))
        };
        let walked = walk(repo, index, &root, &mut |item| {
            if opts.cancel.load(Ordering::Relaxed) {
                return Err(Error::Interrupted("restore cancelled".into()));
            }
            match item {
                WalkItem::Damaged { path, tree, error } => {
                    tree_damaged = true;
                    result.damaged.push(Damaged {
                        path: show(path),
                        error: format!("folder contents lost (tree {}): {error}", tree.short()),
                    });
                    Ok(false)
                }
                WalkItem::Entry { path, node } => {
                    let (take, enter) = selection.decide(path, &node.name);
                    if !take {
                        return Ok(enter && node.kind == NodeKind::Dir);
                    }
                    found_any = true;
                    let dest = opts.target.join(std::ffi::OsStr::from_bytes(&path[1..]));
                    if opts.delete {
                        if node.kind == NodeKind::File {
                            keep.paths.insert(writer::damaged_path(&dest));
                        }
                        if node.kind == NodeKind::Dir {
                            keep.folders.insert(dest.clone());
                        }
                        keep.paths.insert(dest.clone());
                    }
                    let link_key = (node.device, node.inode);
                    if !overwrite::should_write(opts.overwrite, &dest, node, keys) {
                        result.skipped += 1;
                        if node.kind == NodeKind::File
                            && node.links > 1
                            && !first_link.contains_key(&link_key)
                        {
                            first_kept.insert(link_key);
                            first_link.insert(link_key, dest);
                        }
                        return Ok(true);
                    }
                    if opts.dry_run {
                        match node.kind {
                            NodeKind::Dir => result.dirs += 1,
                            NodeKind::File => {
                                result.files += 1;
                                result.bytes += node.size;
                            }
                            _ => result.other += 1,
                        }
                        return Ok(true);
                    }
                    if selection.is_partial() {
                        if let Some(parent) = dest.parent() {
                            if !made.contains(parent) {
                                folders_without_links(&opts.target, parent)?;
                                made.insert(parent.to_path_buf());
                            }
                        }
                    }
                    match node.kind {
                        NodeKind::Dir => {
                            match std::fs::create_dir(&dest) {
                                Ok(()) => {}
                                Err(e)
                                    if e.kind() == std::io::ErrorKind::AlreadyExists
                                        && std::fs::symlink_metadata(&dest).is_ok_and(|m| m.is_dir()) => {}
                                // A symlink where the snapshot has a folder is always replaced, so
                                // nothing is ever written through a link out of the target; a
                                // file only when --overwrite allows replacing it (else it, and what
                                // the snapshot holds below it, are left out).
                                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                                    let is_link =
                                        std::fs::symlink_metadata(&dest).is_ok_and(|m| m.is_symlink());
                                    if !is_link
                                        && matches!(opts.overwrite, Overwrite::Never | Overwrite::IfNewer)
                                    {
                                        result.skipped += 1;
                                        return Ok(false);
                                    }
                                    std::fs::remove_file(&dest)
                                        .and_then(|()| std::fs::create_dir(&dest))
                                        .map_err(|e| {
                                            Error::io(
                                                format!("cannot replace '{}' with a folder", dest.display()),
                                                e,
                                            )
                                        })?;
                                }
                                Err(e) => {
                                    return Err(Error::io(
                                        format!("cannot create folder '{}'", dest.display()),
                                        e,
                                    ))
                                }
                            }
                            result.dirs += 1;
                            dirs.push((dest, node.clone()));
                        }
                        NodeKind::File => {
                            let key = link_key;
                            if node.links > 1 && !first_kept.contains(&key) {
                                if first_link.contains_key(&key) {
                                    links.push((dest, key));
                                    return Ok(false);
                                }
                                first_link.insert(key, dest.clone());
                            }
                            result.files += 1;
                            result.bytes += node.size;
                            batch_bytes += node.size;
                            batch.push(FileTask { path: dest, node: node.clone() });
                            if batch.len() >= batch_files || batch_bytes >= BATCH_BYTES {
                                flush(&mut batch)?;
                                batch_bytes = 0;
                                batch_files = (batch_files * 4).min(BATCH_FILES);
                            }
                        }
                        NodeKind::Socket => {
                            result.warnings.push(format!("'{}' is a socket: not recreated", show(path)));
                        }
                        _ => {
                            result.other += 1;
                            if let Err(e) = metadata::create_special(&dest, node) {
                                result
                                    .damaged
                                    .push(Damaged { path: show(path), error: format!("cannot create: {e}") });
                            } else {
                                result.warnings.extend(metadata::apply(&dest, node, chown));
                            }
                        }
                    }
                    Ok(true)
                }
            }
        })
        .and_then(|()| flush(&mut batch));
        drop(flush);
        (walked, writing.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    });
    let written = written?;
    walked?;
    result.damaged.extend(written.damaged.into_iter().map(|(path, error)| Damaged { path, error }));
    result.warnings.extend(written.warnings);
    if !found_any {
        return Err(Error::not_found(format!(
            "nothing in the snapshot matches --include {}; 'rempart ls SNAPSHOT' shows its paths",
            selection.given().iter().map(|i| format!("'{i}'")).collect::<Vec<_>>().join(", ")
        )));
    }
    let sweep = |dry_run: bool, result: &mut RestoreResult| {
        if !opts.delete {
            return;
        }
        if tree_damaged {
            result.warnings.push(
                "--delete removed nothing: folders of the snapshot could not be read, so what belongs in the target is not known".into(),
            );
            return;
        }
        let protected = [repo.storage().location(), opts.protect.display().to_string()];
        let protected: Vec<PathBuf> =
            protected.iter().filter(|p| !p.is_empty() && !p.contains("://")).map(PathBuf::from).collect();
        let swept = extraneous::sweep(&opts.target, &selection, &keep, &protected, dry_run);
        result.deleted = swept.removed.iter().map(|p| p.display().to_string()).collect();
        result.warnings.extend(swept.errors);
    };
    if opts.dry_run {
        sweep(true, &mut result);
        result.duration_secs = started.elapsed().as_secs_f64();
        return Ok(result);
    }
    let damaged_paths: std::collections::HashSet<String> =
        result.damaged.iter().map(|d| d.path.clone()).collect();
    for (dest, key) in links {
        let first = &first_link[&key];
        // A first path that could not be restored intact: its other paths keep what they
        // hold and are damaged too (never linked to old or partial content).
        if damaged_paths.contains(&first.display().to_string()) {
            result.damaged.push(Damaged {
                path: dest.display().to_string(),
                error: format!("hard link of '{}', which could not be restored intact", first.display()),
            });
            continue;
        }
        let same = {
            use std::os::unix::fs::MetadataExt;
            match (std::fs::symlink_metadata(first), std::fs::symlink_metadata(&dest)) {
                (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
                _ => false,
            }
        };
        if same {
            result.skipped += 1;
            continue;
        }
        // Linked under a temporary name, then renamed over: the path is never left empty.
        let temp = writer::partial_path(&dest);
        let _ = std::fs::remove_file(&temp);
        match std::fs::hard_link(first, &temp).and_then(|()| std::fs::rename(&temp, &dest)) {
            Ok(()) => result.files += 1,
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                result.damaged.push(Damaged {
                    path: dest.display().to_string(),
                    error: format!("cannot recreate hard link: {e}"),
                });
            }
        }
    }
    sweep(false, &mut result);
    for (dest, node) in dirs.iter().rev() {
        result.warnings.extend(metadata::apply(dest, node, chown));
    }
    result.duration_secs = started.elapsed().as_secs_f64();
    Ok(result)
}

/// Refuses `--delete` into the repository's folder or the state directory (or below them):
/// the sweep would remove them.
fn refuse_delete_into(repo: &Repository, opts: &RestoreOptions) -> Result<()> {
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let target = real(&opts.target);
    let location = repo.storage().location();
    let mut protected = vec![opts.protect.clone()];
    if !location.contains("://") {
        protected.push(PathBuf::from(&location));
    }
    for p in protected.iter().filter(|p| !p.as_os_str().is_empty()) {
        if target.starts_with(real(p)) {
            return Err(Error::invalid(format!(
                "restore --delete into '{}' refused: it is inside '{}' (the repository or the state directory), which the sweep would remove",
                opts.target.display(),
                p.display()
            )));
        }
    }
    Ok(())
}

/// Creates the folders from `target` down to `dir`, replacing a symlink on the way by a
/// folder, so nothing is ever written through a link out of the target.
fn folders_without_links(target: &Path, dir: &Path) -> Result<()> {
    let rel = dir.strip_prefix(target).unwrap_or(dir);
    let mut at = target.to_path_buf();
    std::fs::create_dir_all(&at).map_err(|e| Error::io(format!("cannot create '{}'", at.display()), e))?;
    for part in rel.components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => continue,
            Ok(m) if m.is_symlink() => std::fs::remove_file(&at)
                .map_err(|e| Error::io(format!("cannot replace the link '{}'", at.display()), e))?,
            _ => {}
        }
        match std::fs::create_dir(&at) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::invalid(format!(
                    "'{}' is a file where the snapshot has a folder; move it away or restore elsewhere",
                    at.display()
                )))
            }
            Err(e) => return Err(Error::io(format!("cannot create '{}'", at.display()), e)),
        }
    }
    Ok(())
}

/// Resolves the path inside a snapshot (`/a/b`) to its node, for `ls` and drills.
pub fn find_path(repo: &Repository, index: &Index, root: &Id, path: &str) -> Result<Option<Node>> {
    let mut tree = repo.load_tree(index, root)?;
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        let Some(node) = tree.find(part.as_bytes()).cloned() else {
            return Ok(None);
        };
        if i + 1 == parts.len() {
            return Ok(Some(node));
        }
        match node.subtree {
            Some(sub) => tree = repo.load_tree(index, &sub)?,
            None => return Ok(None),
        }
    }
    Ok(None)
}

/// The target path of a snapshot path inside `target`.
pub fn target_path(target: &Path, snapshot_path: &[u8]) -> PathBuf {
    target.join(std::ffi::OsStr::from_bytes(snapshot_path.strip_prefix(b"/").unwrap_or(snapshot_path)))
}
