//! Backing up byte streams (database dumps) as files of a snapshot.
//!
//! The stream is read and cut into chunks on the calling thread; chunks go to the worker pool
//! to be compressed, encrypted and packed, so a dump is compressed on every core while it is
//! being produced. Memory is bounded by the job queue, not by the dump's size. The producing
//! tool's exit status is checked after its output ends: any failure aborts the backup before a
//! snapshot exists.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::Receiver;

use super::shared::{Counters, Shared};
use super::uploader::Uploader;
use super::workers::{Job, WorkerState};
use super::{default_workers, BackupOptions, BackupResult};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::chunker::ChunkStream;
use crate::repo::lock::LockKind;
use crate::repo::pack::BlobType;
use crate::repo::snapshot::{DumpInfo, Snapshot, SourceInfo};
use crate::repo::tree::{Node, NodeKind, Timestamp, Tree};
use crate::repo::Repository;

pub use crate::sources::dump::DumpItem as StreamItem;

/// Backs up stdin as one file named `name` (`rempart backup --stdin`): a snapshot of kind
/// `stdin` whose one file restores as `/NAME`.
///
/// # Errors
/// `InvalidInput` for a name that is not a plain file name; read and storage errors (no
/// snapshot then).
pub fn backup_stdin(repo: &Repository, opts: &BackupOptions, name: &str) -> Result<BackupResult> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." || name.contains('\0') {
        return Err(Error::invalid(format!(
            "--stdin-filename '{name}': expected a plain file name (no '/'), like db.sql"
        )));
    }
    let item = StreamItem {
        name: name.to_string(),
        database: String::new(),
        format: "stdin".into(),
        open: Box::new(|| {
            Ok(crate::sources::dump::DumpStream {
                reader: Box::new(std::io::stdin()),
                process: None,
                keep_alive: None,
            })
        }),
    };
    let source = SourceInfo { kind: "stdin".into(), ..Default::default() };
    let mut opts = opts.clone();
    opts.paths = vec![std::path::PathBuf::from(format!("/{name}"))];
    backup_streams(repo, &opts, vec![item], source)
}

/// Stores `items` and writes a snapshot with `source` (its `dumps` are filled in here).
///
/// # Errors
/// The first failure of a stream, its producing tool, or the storage; no snapshot is written
/// then, and the data already stored stays indexed for the next run.
pub fn backup_streams(
    repo: &Repository,
    opts: &BackupOptions,
    items: Vec<StreamItem>,
    mut source: SourceInfo,
) -> Result<BackupResult> {
    let started = Instant::now();
    let time = opts.time.unwrap_or_else(chrono::Utc::now);
    let lock = repo.lock(LockKind::Backup, "backup")?;
    let index = super::adopt::dedup_index(repo)?.into_lookup();
    let shared =
        Arc::new(Shared::new(repo.clone(), Arc::new(index), opts.counters.clone(), opts.cancel.clone()));
    let uploader = Uploader::start(
        repo,
        opts.counters.clone(),
        super::upload_concurrency(repo, opts),
        shared.stored.clone(),
    );
    let staging = super::staging_dir(repo, opts);
    let n_workers = opts.workers.unwrap_or_else(default_workers).max(1);
    let (job_tx, job_rx) = crossbeam_channel::bounded(n_workers * 2);
    let workers =
        super::workers::spawn_workers(&shared, &uploader.sink(), &staging, n_workers, &job_rx, "dump-worker");
    drop(job_rx);

    let keys = repo.keys().clone();
    let mut buf = Vec::new();
    let mut nodes = Vec::new();
    let mut failure: Option<Error> = None;
    for item in items {
        let result = (|| -> Result<Node> {
            let opened = (item.open)()?;
            let mut content = Vec::new();
            let mut replies: Vec<Receiver<Result<()>>> = Vec::new();
            let mut hasher = keys.content_hasher();
            let size = ChunkStream::new(&shared.chunker, &mut buf).for_each::<_, Error>(
                opened.reader,
                |chunk, _| {
                    if shared.aborted() {
                        return Err(Error::Interrupted("backup cancelled".into()));
                    }
                    let id = keys.blob_id(chunk);
                    hasher.update(chunk);
                    content.push(id);
                    Counters::add(&shared.counters.bytes_read, chunk.len() as u64);
                    let (tx, rx) = crossbeam_channel::bounded(1);
                    job_tx
                        .send(Job::Chunk { data: chunk.to_vec(), id, reply: tx })
                        .map_err(|_| Error::failed("the workers stopped"))?;
                    replies.push(rx);
                    Ok(())
                },
            )?;
            // The tool's verdict first: a truncated dump must never become a snapshot.
            if let Some(p) = opened.process {
                p.finish()?;
            }
            drop(opened.keep_alive);
            for r in replies {
                r.recv().map_err(|_| Error::failed("a worker stopped without answering"))??;
            }
            let mut node = Node::new(item.name.as_bytes(), NodeKind::File);
            node.mode = 0o600;
            node.size = size;
            node.mtime = Timestamp { secs: time.timestamp(), nanos: time.timestamp_subsec_nanos() };
            node.ctime = node.mtime;
            node.content = content;
            node.content_hash = Some(Id(*hasher.finalize().as_bytes()));
            node.user = crate::util::username();
            Ok(node)
        })();
        match result {
            Ok(node) => {
                source.dumps.push(DumpInfo {
                    database: item.database,
                    path: format!("/{}", item.name),
                    format: item.format,
                    size: node.size,
                });
                Counters::add(&shared.counters.files_new, 1);
                Counters::add(&shared.counters.bytes_total, node.size);
                nodes.push(node);
            }
            Err(e) => {
                shared.abort.store(true, Ordering::Relaxed);
                failure = Some(e);
                break;
            }
        }
    }
    drop(job_tx);
    let worker_error = super::workers::join_workers(workers);
    // The root tree, stored through its own packer.
    let mut references = super::commit::References::new(shared.index.clone(), shared.stored.clone());
    let root = if failure.is_none() && worker_error.is_none() {
        let mut tree_state = WorkerState::new(shared.clone(), uploader.sink(), Some(staging.clone()));
        let mut tree = Tree { nodes };
        let bytes = tree.encode();
        let id = keys.blob_id(&bytes);
        references.note_tree(&id, &tree);
        let stored = tree_state.store_blob(BlobType::Tree, id, &bytes).and_then(|_| tree_state.flush());
        drop(tree_state);
        Some(stored.map(|_| id))
    } else {
        None
    };
    let upload_error = uploader.finish(repo.storage().handle());
    if let Some(e) = upload_error.or_else(|| shared.take_fatal()) {
        return Err(super::stored_so_far(e));
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if let Some(e) = worker_error {
        return Err(e);
    }
    let root = root
        .expect("built when nothing failed")
        .map_err(|e| super::stored_so_far(super::shared::repository_error(&repo.storage().location(), e)))?;
    let summary = opts.counters.summary(started.elapsed().as_secs_f64(), vec![]);
    let snapshot = Snapshot {
        version: 1,
        time,
        hostname: opts.hostname.clone().unwrap_or_else(crate::util::hostname),
        username: crate::util::username(),
        // A database's URL; stdin's `/NAME`.
        paths: match &source.url {
            Some(u) => vec![u.clone()],
            None => opts.paths.iter().map(|p| p.display().to_string()).collect(),
        },
        tags: opts.tags.clone(),
        tree: root,
        parent: None,
        source,
        job: opts.job.clone(),
        summary,
        program_version: env!("CARGO_PKG_VERSION").to_string(),
        repaired: None,
    };
    let snapshot_id = super::commit::commit(repo, &lock, &mut references, &snapshot)?;
    Ok(BackupResult { snapshot_id, snapshot })
}
