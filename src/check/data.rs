//! `check --read-data`: reads packs (streamed in windows) and verifies everything in them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::{CheckOptions, CheckReport};
use crate::crypto::seal::SubkeyCipher;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::index::{Index, PackRef};
use crate::repo::pack::{open_blob_with, parse_header, PackEntry};
use crate::repo::Repository;
use crate::storage::Kind;

/// Packs are read in windows of this size, so memory per reader stays small.
const WINDOW: u64 = 4 << 20;

/// What reading one pack found.
struct PackVerdict {
    bytes_read: u64,
    /// Blobs that do not decrypt or verify, with the reason.
    bad: Vec<(Id, String)>,
    /// Damage outside the blobs (header, prefix): the data is readable, the pack is not whole.
    pack_problem: Option<String>,
}

/// Verifies one pack as a stream: every blob, the header against the index, and the hash of
/// all its bytes against its name.
fn verify_pack(repo: &Repository, pack: &PackRef, expected: &[PackEntry]) -> PackVerdict {
    let name = pack.id.to_hex();
    let what = Kind::Pack.describe(&name);
    let mut sorted: Vec<&PackEntry> = expected.iter().collect();
    sorted.sort_by_key(|e| e.offset);
    let cipher = SubkeyCipher::new(repo.keys(), &pack.salt);
    let mut hasher = blake3::Hasher::new();
    let mut buf: Vec<u8> = Vec::new();
    let (mut buf_start, mut fetched) = (0u64, 0u64);
    let mut verdict = PackVerdict { bytes_read: 0, bad: Vec::new(), pack_problem: None };
    let mut fetch_to = |target: u64, buf: &mut Vec<u8>, fetched: &mut u64, read: &mut u64| -> Result<()> {
        while *fetched < target {
            let end = pack.size.min(target.max(*fetched + WINDOW));
            let bytes = repo.storage().get_range(Kind::Pack, &name, *fetched..end)?;
            hasher.update(&bytes);
            buf.extend_from_slice(&bytes);
            *read += bytes.len() as u64;
            *fetched = end;
        }
        Ok(())
    };
    for (i, e) in sorted.iter().enumerate() {
        let end = u64::from(e.offset) + u64::from(e.length);
        if let Err(err) = fetch_to(end, &mut buf, &mut fetched, &mut verdict.bytes_read) {
            let why = match err {
                Error::NotFound(_) => "pack missing".to_string(),
                other => format!("cannot read: {other}"),
            };
            verdict.bad.extend(sorted[i..].iter().map(|e| (e.id, why.clone())));
            return verdict;
        }
        let local = (u64::from(e.offset) - buf_start) as usize;
        if let Err(err) = open_blob_with(repo.keys(), &cipher, e, &buf[local..local + e.length as usize]) {
            verdict.bad.push((e.id, err.to_string()));
        }
        // Drop what is verified, but only in large steps (not a memmove per small blob).
        let done = (end - buf_start) as usize;
        if done >= WINDOW as usize {
            buf.drain(..done);
            buf_start = end;
        }
    }
    // The rest is the sealed header and its length.
    if let Err(err) = fetch_to(pack.size, &mut buf, &mut fetched, &mut verdict.bytes_read) {
        verdict.pack_problem = Some(format!("header unreadable: {err}"));
        return verdict;
    }
    let header_ok = (|| {
        if buf.len() < 4 {
            return Err("no header".to_string());
        }
        let hl = u32::from_le_bytes(buf[buf.len() - 4..].try_into().expect("4 bytes")) as usize;
        if hl + 4 > buf.len() {
            return Err(format!("header length {hl} does not fit"));
        }
        let sealed = &buf[buf.len() - 4 - hl..buf.len() - 4];
        let header = parse_header(repo.keys(), &pack.salt, sealed, pack.size - 4 - hl as u64, &what)
            .map_err(|e| e.to_string())?;
        let by_id: HashMap<Id, &PackEntry> = header.iter().map(|e| (e.id, e)).collect();
        for e in expected {
            match by_id.get(&e.id) {
                Some(h) if h.offset == e.offset && h.length == e.length => {}
                _ => {
                    return Err(format!(
                        "the index entry of blob {} does not match the pack header",
                        e.id.short()
                    ))
                }
            }
        }
        Ok(())
    })();
    if let Err(why) = header_ok {
        verdict.pack_problem = Some(format!("header damaged ({why}); the index still locates the blobs"));
    } else if Id(*hasher.finalize().as_bytes()) != pack.id && verdict.bad.is_empty() {
        verdict.pack_problem =
            Some("content does not hash to the pack's name (damage outside the blobs)".into());
    }
    verdict
}

/// What reading a set of packs found.
#[derive(Default)]
pub struct DataVerdict {
    pub packs_read: usize,
    pub bytes_read: u64,
    /// Damaged blobs: (blob, pack described, reason).
    pub bad: Vec<(Id, String, String)>,
    /// Damage outside the blobs: (pack described, reason).
    pub pack_problems: Vec<(String, String)>,
}

/// Verifies the given entries of each pack, on `threads` threads.
///
/// # Errors
/// `Interrupted` when `cancel` is set.
pub fn verify_groups(
    repo: &Repository,
    work: &[(PackRef, Vec<PackEntry>)],
    threads: usize,
    cancel: &std::sync::atomic::AtomicBool,
) -> Result<DataVerdict> {
    verify_groups_counted(repo, work, threads, cancel, None)
}

/// [`verify_groups`], counting what is done in `progress`.
fn verify_groups_counted(
    repo: &Repository,
    work: &[(PackRef, Vec<PackEntry>)],
    threads: usize,
    cancel: &std::sync::atomic::AtomicBool,
    progress: Option<&super::DataProgress>,
) -> Result<DataVerdict> {
    if let Some(p) = progress {
        p.packs_total.store(work.len() as u64, Ordering::Relaxed);
        p.bytes_total.store(work.iter().map(|(pack, _)| pack.size).sum(), Ordering::Relaxed);
    }
    let next = AtomicUsize::new(0);
    let out = Mutex::new(DataVerdict::default());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                if cancel.load(Ordering::Relaxed) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((pack, entries)) = work.get(i) else { return };
                let v = verify_pack(repo, pack, entries);
                if let Some(p) = progress {
                    p.packs_read.fetch_add(1, Ordering::Relaxed);
                    p.bytes_read.fetch_add(pack.size, Ordering::Relaxed);
                }
                let object = Kind::Pack.describe(&pack.id.to_hex());
                let mut o = out.lock();
                o.packs_read += 1;
                o.bytes_read += v.bytes_read;
                if let Some(p) = v.pack_problem {
                    o.pack_problems.push((object.clone(), p));
                }
                for (id, why) in v.bad {
                    o.bad.push((id, object.clone(), why));
                }
            });
        }
    });
    if cancel.load(Ordering::Relaxed) {
        return Err(Error::Interrupted("data verification cancelled".into()));
    }
    Ok(out.into_inner())
}

/// Verifies the blobs `ids` (a snapshot's, for a drill), reading only the packs holding them;
/// counts what is read in `progress`.
pub fn verify_blobs(
    repo: &Repository,
    index: &Index,
    ids: &std::collections::HashSet<Id>,
    threads: usize,
    cancel: &std::sync::atomic::AtomicBool,
    progress: Option<&super::DataProgress>,
) -> Result<DataVerdict> {
    let mut per_pack: HashMap<Id, (PackRef, Vec<PackEntry>)> = HashMap::new();
    for id in ids {
        if let Some(loc) = index.lookup(id) {
            per_pack.entry(loc.pack.id).or_insert_with(|| (loc.pack, vec![])).1.push(loc.entry);
        }
    }
    let work: Vec<_> = per_pack.into_values().collect();
    verify_groups_counted(repo, &work, threads, cancel, progress)
}

/// Reads the selected packs; adds every unreadable blob to `bad_blobs`.
pub fn read_data(
    repo: &Repository,
    index: &Index,
    opts: &CheckOptions,
    bad_blobs: &mut HashMap<Id, (String, String)>,
    report: &mut CheckReport,
) -> Result<()> {
    // Choose the packs first (a percentage samples whole packs), then group their entries.
    let chosen: std::collections::HashSet<Id> =
        index.packs().iter().map(|p| p.id).filter(|id| opts.read_data.includes(id)).collect();
    let mut per_pack: HashMap<Id, (PackRef, Vec<PackEntry>)> = HashMap::new();
    for loc in index.iter().filter(|l| chosen.contains(&l.pack.id)) {
        per_pack.entry(loc.pack.id).or_insert_with(|| (loc.pack, vec![])).1.push(loc.entry);
    }
    let work: Vec<_> = per_pack.into_values().collect();
    let v = verify_groups_counted(repo, &work, opts.threads, &opts.cancel, Some(&opts.progress))?;
    report.stats.packs_read = v.packs_read;
    report.stats.bytes_read = v.bytes_read;
    for (object, detail) in v.pack_problems {
        report.problems.push(super::Problem {
            object,
            detail,
            snapshots: vec![],
            paths: vec![],
            more_paths: 0,
            action:
                "run 'rempart repair index' only if the index is lost: it could not read this pack's header"
                    .into(),
        });
    }
    for (id, object, why) in v.bad {
        bad_blobs.entry(id).or_insert((object, why));
    }
    Ok(())
}
