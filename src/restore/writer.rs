//! Writing a batch of files: packs are fetched once each, blobs decrypted and verified, and
//! written at their offsets in every file that needs them.
//!
//! Packs are processed in the order files first need them, by one thread per core. Byte ranges
//! of one pack that are close together are fetched in one request. From S3 the ranges are
//! fetched ahead of the writing threads, as many at once as the request scheduler allows
//! (`storage::scheduler`), so a round trip of tens of milliseconds is paid in parallel. When a
//! file's last chunk is written its content hash is checked against the hash recorded at
//! backup time, then its metadata is applied.
//!
//! A file is written under a temporary name beside its real one (`.NAME.rempart-partial`) and
//! takes its real name only once every chunk is written and its content hash verified. So a
//! kill, a full target disk or damaged data never leaves a truncated or wrong file under the
//! real name: a file that cannot be verified is kept as `NAME.rempart-damaged` (with the bytes
//! that could be restored, and without the backed-up modification time), and is named in the
//! restore's result.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::metadata;
use super::RestoreCounters;
use crate::crypto::seal::SubkeyCipher;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::index::{BlobLocation, Index, PackRef};
use crate::repo::pack::{open_blob_with, PackEntry};
use crate::repo::tree::Node;
use crate::repo::Repository;
use crate::storage::Kind;

/// Two needed ranges of a pack closer than this are fetched as one...
const COALESCE_GAP: u64 = 256 * 1024;
/// ...as long as the request stays below this size (memory: a bounded number of ranges).
const MAX_RANGE: u64 = 4 << 20;
const BLOCK: usize = 4096;
/// Fetched ranges not yet written, at most (remote storage fetches ahead): in KiB.
const AHEAD_KIB: usize = 32 << 10;

pub struct FileTask {
    pub path: PathBuf,
    pub node: Node,
}

struct FileState {
    task: FileTask,
    /// Where the file is written until it is verified.
    temp: PathBuf,
    remaining: AtomicUsize,
    damaged: Mutex<Option<String>>,
}

/// The longest file name Linux file systems take (NAME_MAX).
const NAME_MAX: usize = 255;

/// `prefix NAME suffix` beside `path`; when that is longer than a file name may be, `NAME` is
/// cut and a hash of the whole name keeps it distinct (`prefix NAM~1a2b3c4d5e6f7a8b suffix`).
fn sibling(path: &std::path::Path, prefix: &str, suffix: &str) -> PathBuf {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let name = path.file_name().unwrap_or_default().as_bytes();
    let mut out = prefix.as_bytes().to_vec();
    if prefix.len() + name.len() + suffix.len() <= NAME_MAX {
        out.extend_from_slice(name);
    } else {
        let hash = blake3::hash(name).to_hex();
        let keep = NAME_MAX - prefix.len() - suffix.len() - 17;
        out.extend_from_slice(&name[..keep.min(name.len())]);
        out.push(b'~');
        out.extend_from_slice(&hash.as_bytes()[..16]);
    }
    out.extend_from_slice(suffix.as_bytes());
    path.with_file_name(std::ffi::OsString::from_vec(out))
}

/// The temporary name a file is written under until it is verified.
pub fn partial_path(path: &std::path::Path) -> PathBuf {
    sibling(path, ".", ".rempart-partial")
}

/// The name a file that could not be verified is kept under.
pub fn damaged_path(path: &std::path::Path) -> PathBuf {
    sibling(path, "", ".rempart-damaged")
}

/// One blob of a pack and where it goes.
struct BlobUse {
    entry: PackEntry,
    targets: Vec<(u32, u64)>,
}

struct PackWork {
    pack: PackRef,
    blobs: Vec<BlobUse>,
}

/// One ranged read of a pack: its bytes and the blobs in it (indexes into `PackWork::blobs`).
struct PackRange {
    bytes: std::ops::Range<u64>,
    blobs: Vec<usize>,
}

/// A pack's needed blobs grouped into ranged reads: neighbours closer than `COALESCE_GAP`
/// share a read as long as it stays under `MAX_RANGE`.
fn ranges_of(work: &PackWork) -> Vec<PackRange> {
    let mut order: Vec<usize> = (0..work.blobs.len()).collect();
    order.sort_by_key(|&b| work.blobs[b].entry.offset);
    let end_of = |b: usize| u64::from(work.blobs[b].entry.offset) + u64::from(work.blobs[b].entry.length);
    let mut ranges: Vec<PackRange> = Vec::new();
    for b in order {
        let offset = u64::from(work.blobs[b].entry.offset);
        match ranges.last_mut() {
            Some(r) if offset <= r.bytes.end + COALESCE_GAP && end_of(b) - r.bytes.start <= MAX_RANGE => {
                r.bytes.end = r.bytes.end.max(end_of(b));
                r.blobs.push(b);
            }
            _ => ranges.push(PackRange { bytes: offset..end_of(b), blobs: vec![b] }),
        }
    }
    ranges
}

/// Outcome of a batch: paths of damaged files with the reason, and metadata warnings.
#[derive(Default)]
pub struct BatchOutcome {
    pub damaged: Vec<(String, String)>,
    pub warnings: Vec<String>,
}

/// Writes `size` bytes of `data` at `offset`, leaving all-zero aligned blocks as holes when
/// `sparse`.
fn write_at(file: &std::fs::File, offset: u64, data: &[u8], sparse: bool) -> std::io::Result<()> {
    if !sparse {
        return file.write_all_at(data, offset);
    }
    let mut pos = 0usize;
    while pos < data.len() {
        let abs = offset + pos as u64;
        let to_boundary = BLOCK - (abs % BLOCK as u64) as usize;
        let end = (pos + to_boundary).min(data.len());
        let block = &data[pos..end];
        if block.iter().any(|&b| b != 0) {
            // Extend the run over following non-zero blocks.
            let mut run_end = end;
            while run_end < data.len() {
                let next = (run_end + BLOCK).min(data.len());
                if data[run_end..next].iter().all(|&b| b == 0) {
                    break;
                }
                run_end = next;
            }
            file.write_all_at(&data[pos..run_end], abs)?;
            pos = run_end;
        } else {
            pos = end;
        }
    }
    Ok(())
}

pub struct BatchWriter<'a> {
    pub repo: &'a Repository,
    pub index: &'a Index,
    pub threads: usize,
    pub chown: bool,
    pub counters: &'a RestoreCounters,
    pub cancel: &'a AtomicBool,
}

impl BatchWriter<'_> {
    /// Restores the files of one batch. From remote storage `fetched` hears when every range
    /// of the batch has arrived, so the next batch can start fetching while this one's last
    /// ranges are written; it is dropped when the batch ends.
    ///
    /// # Errors
    /// Only errors that stop the whole restore (cancellation); damage is reported per file.
    pub fn run(&self, tasks: Vec<FileTask>, fetched: std::sync::mpsc::Sender<()>) -> Result<BatchOutcome> {
        let mut outcome = BatchOutcome::default();
        let files: Vec<FileState> = tasks
            .into_iter()
            .map(|t| FileState {
                remaining: AtomicUsize::new(t.node.content.len()),
                damaged: Mutex::new(None),
                temp: partial_path(&t.path),
                task: t,
            })
            .collect();

        // Plan: which pack holds each chunk, and where each chunk goes.
        let mut packs: Vec<PackWork> = Vec::new();
        let mut pack_slot: HashMap<Id, usize> = HashMap::new();
        let mut blob_slot: HashMap<Id, (usize, usize)> = HashMap::new();
        for (fi, f) in files.iter().enumerate() {
            // Files of one chunk are created when their chunk arrives (one open for
            // everything); larger ones are created now, at their final size.
            if f.task.node.content.len() != 1 {
                if let Err(e) = self.create(f) {
                    *f.damaged.lock() = Some(format!("cannot create: {e}"));
                    f.remaining.store(0, Ordering::Relaxed);
                    continue;
                }
            }
            let mut offset = 0u64;
            let mut missing = 0;
            for id in &f.task.node.content {
                let Some(BlobLocation { pack, entry }) = self.index.lookup(id) else {
                    f.damaged
                        .lock()
                        .get_or_insert_with(|| format!("data blob {id} is missing from the index"));
                    missing += 1;
                    continue;
                };
                let (p, b) = *blob_slot.entry(*id).or_insert_with(|| {
                    let p = *pack_slot.entry(pack.id).or_insert_with(|| {
                        packs.push(PackWork { pack, blobs: Vec::new() });
                        packs.len() - 1
                    });
                    packs[p].blobs.push(BlobUse { entry, targets: Vec::new() });
                    (p, packs[p].blobs.len() - 1)
                });
                packs[p].blobs[b].targets.push((fi as u32, offset));
                offset += u64::from(entry.raw_length);
            }
            if missing > 0 {
                f.remaining.fetch_sub(missing, Ordering::Relaxed);
            }
            if f.remaining.load(Ordering::Relaxed) == 0 {
                self.finish_file(f, &mut outcome.warnings);
            }
        }

        let warnings = Mutex::new(Vec::new());
        if let Some(scheduler) = self.repo.storage().inner().scheduler_stats() {
            self.write_fetching_ahead(&packs, &files, &warnings, scheduler.max, fetched);
        } else {
            self.write_pack_by_pack(&packs, &files, &warnings);
        }
        if self.cancel.load(Ordering::Relaxed) {
            return Err(Error::Interrupted("restore cancelled".into()));
        }
        // Whatever stopped the writing, a file whose chunks did not all arrive is damaged,
        // never left unnamed as a partial file.
        let mut left = warnings.into_inner();
        for f in files.iter().filter(|f| f.remaining.load(Ordering::Acquire) > 0) {
            f.damaged.lock().get_or_insert_with(|| "not restored: some of its data was never fetched".into());
            f.remaining.store(0, Ordering::Release);
            let file = std::fs::OpenOptions::new().write(true).open(&f.temp).ok();
            self.settle(f, file.as_ref(), &mut left);
        }
        outcome.warnings.append(&mut left);
        for f in &files {
            if let Some(why) = f.damaged.lock().take() {
                outcome.damaged.push((f.task.path.display().to_string(), why));
            }
        }
        Ok(outcome)
    }

    /// Local storage: each thread takes the next pack and reads its ranges itself (a read
    /// costs no round trip, so there is nothing to hide).
    fn write_pack_by_pack(&self, packs: &[PackWork], files: &[FileState], warnings: &Mutex<Vec<String>>) {
        let next = AtomicUsize::new(0);
        let threads = self.threads.clamp(1, packs.len().max(1));
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    if self.cancel.load(Ordering::Relaxed) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(work) = packs.get(i) else { return };
                    let mut local = Vec::new();
                    self.restore_pack(work, files, &mut local);
                    warnings.lock().append(&mut local);
                });
            }
        });
    }

    /// Remote storage: the ranges of every pack are fetched ahead of the writing threads, as
    /// many in flight as the request scheduler allows and at most `AHEAD_KIB` fetched and not
    /// yet written, so round trips overlap each other and the decoding instead of adding up.
    fn write_fetching_ahead(
        &self,
        packs: &[PackWork],
        files: &[FileState],
        warnings: &Mutex<Vec<String>>,
        most_in_flight: usize,
        all_arrived: std::sync::mpsc::Sender<()>,
    ) {
        use futures::StreamExt;
        let ranges: Vec<(usize, PackRange)> = packs
            .iter()
            .enumerate()
            .flat_map(|(p, w)| ranges_of(w).into_iter().map(move |r| (p, r)))
            .collect();
        let requests: Vec<(usize, String, std::ops::Range<u64>)> = ranges
            .iter()
            .enumerate()
            .map(|(i, (p, r))| (i, packs[*p].pack.id.to_hex(), r.bytes.clone()))
            .collect();
        let storage = self.repo.storage().inner().clone();
        let budget = std::sync::Arc::new(tokio::sync::Semaphore::new(AHEAD_KIB));
        let (tx, rx) = tokio::sync::mpsc::channel(self.threads.max(1) * 2);
        let handle = self.repo.storage().handle().clone();
        let fetcher = handle.spawn(async move {
            // Each request is a task of its own: it completes (and its latency is measured)
            // even while this loop waits for a writing thread to take the previous range.
            let mut fetched = futures::stream::iter(requests)
                .map(|(i, name, bytes)| {
                    let (storage, budget) = (storage.clone(), budget.clone());
                    tokio::spawn(async move {
                        let kib = (bytes.end - bytes.start).div_ceil(1024).clamp(1, AHEAD_KIB as u64) as u32;
                        let held = budget.acquire_many_owned(kib).await.expect("the budget is never closed");
                        let got = storage.get_range(Kind::Pack, &name, bytes).await;
                        (i, got, held)
                    })
                })
                .buffer_unordered(most_in_flight);
            while let Some(item) = fetched.next().await {
                let item = item.expect("a range request does not panic");
                if tx.send(item).await.is_err() {
                    return;
                }
            }
            let _ = all_arrived.send(());
        });
        let rx = Mutex::new(rx);
        std::thread::scope(|s| {
            for _ in 0..self.threads.clamp(1, ranges.len().max(1)) {
                s.spawn(|| loop {
                    if self.cancel.load(Ordering::Relaxed) {
                        return;
                    }
                    let Some((i, got, held)) = rx.lock().blocking_recv() else { return };
                    let (p, range) = &ranges[i];
                    let mut local = Vec::new();
                    self.write_range(&packs[*p], range, got, files, &mut local);
                    drop(held);
                    warnings.lock().append(&mut local);
                });
            }
        });
        drop(rx);
        if self.cancel.load(Ordering::Relaxed) {
            fetcher.abort();
            return;
        }
        // Otherwise the writing threads stopped because the fetching did: if it stopped early
        // (a panic, the runtime shutting down), `run` reports the files it left unfinished.
        if let Err(e) = handle.block_on(fetcher) {
            tracing::warn!("restore: fetching the pack ranges stopped early: {e}");
        }
    }

    fn create(&self, f: &FileState) -> std::io::Result<()> {
        metadata::create_file(&f.temp)?.set_len(f.task.node.size)
    }

    /// Writes a file of one chunk: create, write, metadata, close. The chunk was verified when
    /// it was decrypted, and a one-chunk file's content hash is that chunk's id.
    fn write_single(&self, f: &FileState, data: &[u8], warnings: &mut Vec<String>) -> std::io::Result<()> {
        let node = &f.task.node;
        let file = metadata::create_file(&f.temp)?;
        if node.sparse {
            file.set_len(node.size)?;
            write_at(&file, 0, data, true)?;
        } else {
            use std::io::Write;
            (&file).write_all(data)?;
        }
        if node.content_hash.is_some_and(|h| h != node.content[0]) {
            f.damaged
                .lock()
                .get_or_insert_with(|| "content hash does not match the hash recorded at backup".into());
        }
        self.settle(f, Some(&file), warnings);
        self.counters.files.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Gives a finished file its name: the real one with its metadata when it is intact,
    /// `NAME.rempart-damaged` (modification time left as now) when it is not.
    fn settle(&self, f: &FileState, file: Option<&std::fs::File>, warnings: &mut Vec<String>) {
        let mut damaged = f.damaged.lock();
        if damaged.is_none() {
            if let Some(file) = file {
                warnings.extend(metadata::apply_fd(file, &f.temp, &f.task.node, self.chown));
            }
            let moved = std::fs::rename(&f.temp, &f.task.path).or_else(|_| {
                // A folder or a symlink is in the way: remove it and try again.
                let _ = std::fs::remove_file(&f.task.path).or_else(|_| std::fs::remove_dir_all(&f.task.path));
                std::fs::rename(&f.temp, &f.task.path)
            });
            match moved {
                Ok(()) => return,
                Err(e) => *damaged = Some(format!("cannot move into place: {e}")),
            }
        }
        let why = damaged.as_mut().expect("set above");
        if f.temp.exists() {
            let kept = damaged_path(&f.task.path);
            match std::fs::rename(&f.temp, &kept) {
                Ok(()) => why.push_str(&format!(
                    "; what could be restored is kept as '{}'",
                    kept.file_name().unwrap_or_default().to_string_lossy()
                )),
                Err(_) => {
                    let _ = std::fs::remove_file(&f.temp);
                }
            }
        }
    }

    /// Restores one pack's blobs, fetching its ranges one after the other (local storage,
    /// where a read costs no round trip).
    fn restore_pack(&self, work: &PackWork, files: &[FileState], warnings: &mut Vec<String>) {
        let name = work.pack.id.to_hex();
        for range in ranges_of(work) {
            let fetched = self.repo.storage().get_range(Kind::Pack, &name, range.bytes.clone());
            self.write_range(work, &range, fetched, files, warnings);
        }
    }

    /// Restores the blobs of one fetched range of a pack into every file that needs them.
    fn write_range(
        &self,
        work: &PackWork,
        range: &PackRange,
        fetched: Result<bytes::Bytes>,
        files: &[FileState],
        warnings: &mut Vec<String>,
    ) {
        let name = work.pack.id.to_hex();
        let cipher = SubkeyCipher::new(self.repo.keys(), &work.pack.salt);
        let start = range.bytes.start;
        let fetched = fetched.map_err(|e| match e {
            Error::NotFound(_) => Error::corrupt(Kind::Pack.describe(&name), "missing"),
            e => e,
        });
        for &bi in &range.blobs {
            let blob = &work.blobs[bi];
            let result = fetched.as_ref().map_err(|e| e.to_string()).and_then(|bytes| {
                let off = (u64::from(blob.entry.offset) - start) as usize;
                open_blob_with(
                    self.repo.keys(),
                    &cipher,
                    &blob.entry,
                    &bytes[off..off + blob.entry.length as usize],
                )
                .map_err(|e| e.to_string())
            });
            for &(fi, offset) in &blob.targets {
                let f = &files[fi as usize];
                match &result {
                    Ok(data) if f.task.node.content.len() == 1 => {
                        match self.write_single(f, data, warnings) {
                            Ok(()) => {
                                self.counters.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                            }
                            Err(e) => {
                                f.damaged.lock().get_or_insert_with(|| format!("write failed: {e}"));
                                self.settle(f, None, warnings);
                            }
                        }
                        f.remaining.fetch_sub(1, Ordering::AcqRel);
                        continue;
                    }
                    Ok(data) => {
                        let written = std::fs::OpenOptions::new()
                            .write(true)
                            .open(&f.temp)
                            .and_then(|file| write_at(&file, offset, data, f.task.node.sparse));
                        if let Err(e) = written {
                            f.damaged.lock().get_or_insert_with(|| format!("write failed: {e}"));
                        } else {
                            self.counters.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                        }
                    }
                    Err(e) => {
                        f.damaged.lock().get_or_insert_with(|| e.clone());
                    }
                }
                if f.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                    self.finish_file(f, warnings);
                }
            }
        }
    }

    /// Verifies the content hash and applies metadata once a file is complete.
    fn finish_file(&self, f: &FileState, warnings: &mut Vec<String>) {
        if f.damaged.lock().is_none() {
            if let Err(e) = self.verify(f) {
                *f.damaged.lock() = Some(e);
            }
        }
        // A damaged one-chunk file was never created: only its damage is reported.
        let file = std::fs::OpenOptions::new().write(true).open(&f.temp).ok();
        self.settle(f, file.as_ref(), warnings);
        self.counters.files.fetch_add(1, Ordering::Relaxed);
    }

    fn verify(&self, f: &FileState) -> std::result::Result<(), String> {
        let node = &f.task.node;
        let Some(expected) = node.content_hash else {
            return Ok(());
        };
        let actual = if node.content.len() == 1 {
            // The chunk's id was verified when it was decrypted, and a one-chunk file's
            // content hash is its chunk id by construction.
            node.content[0]
        } else {
            let mut h = self.repo.keys().content_hasher();
            let file = std::fs::File::open(&f.temp).map_err(|e| format!("cannot re-read to verify: {e}"))?;
            h.update_reader(file).map_err(|e| format!("cannot re-read to verify: {e}"))?;
            Id(*h.finalize().as_bytes())
        };
        if actual != expected {
            return Err(format!(
                "content hash {} does not match the hash recorded at backup {}",
                actual.short(),
                expected.short()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{damaged_path, partial_path, NAME_MAX};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    #[test]
    fn temporary_and_damaged_names_fit_in_a_file_name() {
        assert_eq!(partial_path(Path::new("/t/a.txt")), Path::new("/t/.a.txt.rempart-partial"));
        assert_eq!(damaged_path(Path::new("/t/a.txt")), Path::new("/t/a.txt.rempart-damaged"));
        let long = format!("/t/{}", "n".repeat(255));
        let other = format!("/t/{}m", "n".repeat(254));
        for p in [partial_path(Path::new(&long)), damaged_path(Path::new(&long))] {
            let name = p.file_name().unwrap().as_bytes();
            assert!(name.len() <= NAME_MAX, "{} bytes", name.len());
            assert!(p.parent() == Some(Path::new("/t")));
        }
        assert_ne!(partial_path(Path::new(&long)), partial_path(Path::new(&other)));
    }
}
