//! The worker pool: reads files, cuts chunks, hashes, compresses and encrypts them into packs.
//!
//! One thread per core, never on the async executor. Each worker owns its read buffer, zstd
//! context and pack builder, so a small file costs one read into an existing buffer and no
//! allocation of a chunker window. Jobs arrive through a bounded channel; each reply goes back
//! on the job's own channel, so the tree builder can wait for files in directory order.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use super::shared::{Counters, Shared};
use super::uploader::PackSink;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::chunker::ChunkStream;
use crate::repo::pack::{BlobEncoder, BlobType, PackBuilder};

/// The content of one file as stored.
#[derive(Debug, Clone)]
pub struct FileContent {
    pub content: Vec<Id>,
    pub content_hash: Id,
    /// Bytes actually read (the size recorded in the snapshot).
    pub size: u64,
}

pub type FileReply = std::result::Result<FileContent, String>;

pub enum Job {
    /// Read and store a file.
    File { path: PathBuf, reply: Sender<FileReply> },
    /// Store one chunk of a stream (database dump); replies with nothing but errors.
    Chunk { data: Vec<u8>, id: Id, reply: Sender<Result<()>> },
}

/// Per-worker state that survives between jobs.
pub struct WorkerState {
    shared: Arc<Shared>,
    sink: PackSink,
    buf: Vec<u8>,
    encoder: BlobEncoder,
    pack: Option<PackBuilder>,
    pack_size: usize,
    /// Where packs are spilled while they fill (`None`: in memory).
    staging: Option<PathBuf>,
}

impl WorkerState {
    pub fn new(shared: Arc<Shared>, sink: PackSink, staging: Option<PathBuf>) -> WorkerState {
        let level = shared.repo.config().compression_level;
        let pack_size = shared.repo.config().pack_size as usize;
        WorkerState {
            shared,
            sink,
            buf: Vec::new(),
            encoder: BlobEncoder::new(level),
            pack: None,
            pack_size,
            staging,
        }
    }

    /// Stores one blob if no one has stored it yet.
    pub fn store_blob(&mut self, blob_type: BlobType, id: Id, raw: &[u8]) -> Result<()> {
        if !self.shared.reserve(&id) {
            return Ok(());
        }
        let counters = &self.shared.counters;
        match blob_type {
            BlobType::Data => Counters::add(&counters.data_blobs_added, 1),
            BlobType::Tree => Counters::add(&counters.tree_blobs_added, 1),
        }
        Counters::add(&counters.bytes_added, raw.len() as u64);
        if self.pack.is_none() {
            let keys = self.shared.repo.keys();
            self.pack = Some(match &self.staging {
                Some(dir) => PackBuilder::spilled(keys, dir)?,
                // Room for a full pack plus one maximal chunk, so appending never reallocates.
                None => PackBuilder::new(keys, self.pack_size + (9 << 20)),
            });
        }
        let pack = self.pack.as_mut().expect("just created");
        pack.add_raw(blob_type, id, raw, &mut self.encoder);
        if pack.len() >= self.pack_size {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends the pack being filled to the uploader.
    pub fn flush(&mut self) -> Result<()> {
        if let Some(p) = self.pack.take() {
            if !p.is_empty() {
                self.sink.send(p.finish()?)?;
            }
        }
        Ok(())
    }

    fn open_source(path: &PathBuf) -> std::io::Result<File> {
        // O_NOATIME keeps backups from touching access times; only the owner (or root) may
        // use it, so fall back to a plain open.
        match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_NOATIME.bits())
            .open(path)
        {
            Ok(f) => Ok(f),
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EPERM as i32) => File::open(path),
            Err(e) => Err(e),
        }
    }

    /// Reads a file and stores its chunks. An error of the source (the file cannot be opened
    /// or read) is the reply; an error of the repository side stops the whole backup through
    /// [`Shared::fail`] and is never reported as a skipped file.
    pub fn backup_file(&mut self, path: &PathBuf) -> FileReply {
        let file = Self::open_source(path).map_err(|e| e.to_string())?;
        self.backup_stream(file, true).map_err(|e| match e {
            Error::Io { source, .. } => source.to_string(),
            other => other.to_string(),
        })
    }

    fn backup_stream<R: Read>(&mut self, reader: R, regular_file: bool) -> Result<FileContent> {
        let shared = self.shared.clone();
        let keys = shared.repo.keys();
        let mut content = Vec::new();
        let mut hasher: Option<blake3::Hasher> = None;
        let mut buf = std::mem::take(&mut self.buf);
        let mut stream = ChunkStream::new(&shared.chunker, &mut buf);
        if regular_file {
            stream = stream.regular_file();
        }
        let result = stream.for_each::<_, Error>(reader, |chunk, whole| {
            if shared.aborted() {
                return Err(Error::Interrupted("backup stopped".into()));
            }
            let id = keys.blob_id(chunk);
            if !whole {
                hasher.get_or_insert_with(|| keys.content_hasher()).update(chunk);
            }
            content.push(id);
            Counters::add(&shared.counters.bytes_read, chunk.len() as u64);
            self.store_blob(BlobType::Data, id, chunk).map_err(|e| stop(&shared, e))
        });
        self.buf = buf;
        let size = result?;
        let content_hash = match (hasher, content.first()) {
            (Some(h), _) => Id(*h.finalize().as_bytes()),
            (None, Some(only)) => *only,
            (None, None) => keys.blob_id(&[]),
        };
        Ok(FileContent { content, content_hash, size })
    }
}

/// Starts `n` workers named `NAME-i` on `jobs`, each with its own packer writing through
/// `sink` (`staging` holds their pack files while they fill).
pub fn spawn_workers(
    shared: &Arc<Shared>,
    sink: &PackSink,
    staging: &std::path::Path,
    n: usize,
    jobs: &Receiver<Job>,
    name: &str,
) -> Vec<std::thread::JoinHandle<Result<()>>> {
    (0..n)
        .map(|i| {
            let state = WorkerState::new(shared.clone(), sink.clone(), Some(staging.to_path_buf()));
            let rx = jobs.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || run_worker(state, rx))
                .expect("spawn worker")
        })
        .collect()
}

/// Waits for every worker; returns the first error any of them had.
pub fn join_workers(workers: Vec<std::thread::JoinHandle<Result<()>>>) -> Option<Error> {
    let mut first = None;
    for w in workers {
        let e = match w.join() {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(_) => Error::failed("a backup worker panicked"),
        };
        first.get_or_insert(e);
    }
    first
}

/// Runs one worker until the job channel closes; flushes its last pack.
pub fn run_worker(mut state: WorkerState, jobs: Receiver<Job>) -> Result<()> {
    let shared = state.shared.clone();
    for job in jobs {
        match job {
            Job::File { path, reply } => {
                let r = if shared.aborted() {
                    Err("backup stopped".to_string())
                } else {
                    state.backup_file(&path)
                };
                let _ = reply.send(r);
            }
            Job::Chunk { data, id, reply } => {
                let r = if shared.aborted() {
                    Err(Error::Interrupted("backup stopped".into()))
                } else {
                    state.store_blob(BlobType::Data, id, &data).map_err(|e| stop(&shared, e))
                };
                let _ = reply.send(r);
            }
        }
    }
    state.flush().map_err(|e| stop(&shared, e))
}

/// Hands a repository error to the backup ([`Shared::fail`]) and returns what the caller
/// reports instead: the backup stopped.
fn stop(shared: &Shared, e: Error) -> Error {
    shared.fail(e);
    Error::Interrupted("backup stopped by a repository error".into())
}
