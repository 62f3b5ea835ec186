//! The uploader: stores finished packs concurrently and writes index checkpoints.
//!
//! Runs as one task on the async runtime. Packs arrive through a bounded channel (so workers
//! wait when storage is the bottleneck, and memory stays flat); at most `concurrency` puts run
//! at once. After every `CHECKPOINT_PACKS` packs, or `CHECKPOINT_SECS` seconds, and at the end,
//! it writes an index object listing the packs whose put has returned: an index never names a
//! pack that is not durable, and an interrupted backup leaves indexed packs the next run reuses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::commit::StoredBlobs;
use super::shared::Counters;
use crate::crypto::seal::seal_object;
use crate::crypto::Keys;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::cache::DiskCache;
use crate::repo::index::{IndexFile, IndexedPack};
use crate::repo::pack::BlobType;
use crate::repo::pack::{FinishedPack, PackData};
use crate::repo::Repository;
use crate::storage::{Kind, Storage};

const CHECKPOINT_PACKS: usize = 16;
const CHECKPOINT_SECS: u64 = 60;

pub struct Uploader {
    tx: mpsc::Sender<FinishedPack>,
    task: tokio::task::JoinHandle<Option<Error>>,
}

/// The sending side, cloned into every worker.
#[derive(Clone)]
pub struct PackSink {
    tx: mpsc::Sender<FinishedPack>,
}

impl PackSink {
    /// Hands a finished pack to the uploader, waiting while it is busy.
    ///
    /// # Errors
    /// `Failed` when the uploader stopped (after a storage error, which it reports itself).
    pub fn send(&self, pack: FinishedPack) -> Result<()> {
        self.tx.blocking_send(pack).map_err(|_| Error::failed("the uploader stopped after a storage error"))
    }
}

impl Uploader {
    pub fn start(
        repo: &Repository,
        counters: Arc<Counters>,
        concurrency: usize,
        stored: StoredBlobs,
    ) -> Uploader {
        let (tx, rx) = mpsc::channel(1);
        let target = Target {
            storage: repo.storage().inner().clone(),
            keys: repo.keys().clone(),
            cache: repo.disk_cache().cloned(),
        };
        let task = repo.storage().handle().spawn(run(target, counters, rx, concurrency.max(1), stored));
        Uploader { tx, task }
    }

    pub fn sink(&self) -> PackSink {
        PackSink { tx: self.tx.clone() }
    }

    /// Waits for every queued pack and writes the final index object.
    ///
    /// # Errors
    /// The first storage error; packs stored before it are still indexed.
    pub fn finish(self, handle: &tokio::runtime::Handle) -> Option<Error> {
        drop(self.tx);
        match handle.block_on(self.task) {
            Ok(r) => r,
            Err(e) => Some(Error::failed(format!("uploader task failed: {e}"))),
        }
    }
}

/// Where packs and index objects go.
#[derive(Clone)]
struct Target {
    storage: Arc<dyn Storage>,
    keys: Keys,
    /// The local cache of a remote repository: tree packs and index objects are kept there
    /// as they are written, so the next backup does not download them.
    cache: Option<Arc<DiskCache>>,
}

async fn put_pack(t: Target, pack: FinishedPack) -> Result<IndexedPack> {
    let name = pack.id.to_hex();
    let is_tree_pack = pack.entries.iter().all(|e| e.blob_type == BlobType::Tree);
    if let (Some(cache), true) = (&t.cache, is_tree_pack) {
        let bytes = match &pack.data {
            PackData::Memory(b) => Some(b.to_vec()),
            PackData::File(temp) => tokio::fs::read(&temp.path).await.ok(),
        };
        if let Some(b) = bytes {
            let (cache, name) = (cache.clone(), name.clone());
            let _ = tokio::task::spawn_blocking(move || cache.store(Kind::Pack, &name, &b)).await;
        }
    }
    match pack.data {
        PackData::Memory(bytes) => t.storage.put(Kind::Pack, &name, bytes).await?,
        // The temporary file is removed when `temp` drops, if the store did not move it.
        PackData::File(temp) => t.storage.put_file(Kind::Pack, &name, &temp.path).await?,
    }
    Ok(IndexedPack { id: pack.id, salt: pack.salt, size: pack.size, blobs: pack.entries })
}

async fn write_index(t: &Target, packs: &[IndexedPack]) -> Result<Id> {
    let file = IndexFile { supersedes: vec![], packs: packs.to_vec() };
    let sealed = seal_object(&t.keys, "index", &file.encode());
    let id = Id::of_bytes(&sealed);
    t.storage.put(Kind::Index, &id.to_hex(), Bytes::from(sealed.clone())).await?;
    if let Some(cache) = t.cache.clone() {
        let _ = tokio::task::spawn_blocking(move || cache.store(Kind::Index, &id.to_hex(), &sealed)).await;
    }
    Ok(id)
}

async fn run(
    target: Target,
    counters: Arc<Counters>,
    mut rx: mpsc::Receiver<FinishedPack>,
    concurrency: usize,
    stored: StoredBlobs,
) -> Option<Error> {
    // Once an index object lists them, the packs' blobs are proven stored: their ids go to
    // the compact set and the entries are dropped (48 bytes per blob, a million blobs for a
    // million small files).
    let indexed = |packs: &mut Vec<IndexedPack>| {
        let mut set = stored.lock();
        for p in packs.drain(..) {
            for b in &p.blobs {
                set.insert(b.id);
            }
        }
    };
    let mut unindexed: Vec<IndexedPack> = Vec::new();
    let mut inflight: JoinSet<Result<IndexedPack>> = JoinSet::new();
    let mut error: Option<Error> = None;
    let mut last_checkpoint = Instant::now();
    let mut open = true;
    loop {
        tokio::select! {
            maybe = rx.recv(), if open && error.is_none() && inflight.len() < concurrency => match maybe {
                Some(pack) => {
                    inflight.spawn(put_pack(target.clone(), pack));
                }
                None => open = false,
            },
            Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                match done {
                    Ok(Ok(p)) => {
                        Counters::add(&counters.bytes_stored, p.size);
                        Counters::add(&counters.packs_written, 1);
                        unindexed.push(p);
                    }
                    Ok(Err(e)) => { error.get_or_insert(e); }
                    Err(e) => { error.get_or_insert(Error::failed(format!("upload task failed: {e}"))); }
                }
                let due = unindexed.len() >= CHECKPOINT_PACKS
                    || (!unindexed.is_empty() && last_checkpoint.elapsed() > Duration::from_secs(CHECKPOINT_SECS));
                if due && error.is_none() {
                    match write_index(&target, &unindexed).await {
                        Ok(_) => {
                            indexed(&mut unindexed);
                            last_checkpoint = Instant::now();
                        }
                        Err(e) => { error.get_or_insert(e); }
                    }
                }
            },
            else => break,
        }
        if error.is_some() && open {
            // Stop taking packs: workers see the closed channel and stop too.
            rx.close();
            open = false;
        }
        if !open && inflight.is_empty() {
            break;
        }
    }
    if !unindexed.is_empty() {
        match write_index(&target, &unindexed).await {
            Ok(_) => indexed(&mut unindexed),
            Err(e) => {
                error.get_or_insert(e);
            }
        }
    }
    error
}
