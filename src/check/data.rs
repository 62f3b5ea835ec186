//! `check --read-data`: reads packs whole and verifies everything in them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::{CheckOptions, CheckReport};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::index::{Index, PackRef};
use crate::repo::pack::{open_blob, read_header};
use crate::repo::Repository;
use crate::storage::Kind;

/// Verifies one pack: its name, its header against the index, and every blob.
fn verify_pack(
    repo: &Repository,
    pack: &PackRef,
    expected: &[crate::repo::pack::PackEntry],
) -> (u64, Vec<(Id, String)>) {
    let name = pack.id.to_hex();
    let bytes = match repo.storage().get(Kind::Pack, &name) {
        Ok(b) => b,
        Err(Error::NotFound(_)) => {
            return (0, expected.iter().map(|e| (e.id, "pack missing".to_string())).collect());
        }
        Err(e) => return (0, expected.iter().map(|b| (b.id, format!("cannot read: {e}"))).collect()),
    };
    let n = bytes.len() as u64;
    let what = Kind::Pack.describe(&name);
    if Id::of_bytes(&bytes) != pack.id {
        // Find out which blobs are still readable: damage is usually local.
        let mut bad = Vec::new();
        for e in expected {
            let end = (e.offset + e.length) as usize;
            let ok = end <= bytes.len()
                && open_blob(repo.keys(), &pack.salt, e, &bytes[e.offset as usize..end]).is_ok();
            if !ok {
                bad.push((
                    e.id,
                    "content does not hash to the pack's name; this blob does not decrypt or verify"
                        .to_string(),
                ));
            }
        }
        if bad.is_empty() {
            // Blobs are fine; the damage is in the header or padding.
            if let Err(e) = read_header(repo.keys(), &bytes, &what) {
                return (n, expected.iter().map(|b| (b.id, format!("header damaged: {e}"))).collect());
            }
        }
        return (n, bad);
    }
    let header = match read_header(repo.keys(), &bytes, &what) {
        Ok((_, h)) => h,
        Err(e) => return (n, expected.iter().map(|b| (b.id, e.to_string())).collect()),
    };
    let by_id: HashMap<Id, &crate::repo::pack::PackEntry> = header.iter().map(|e| (e.id, e)).collect();
    let mut bad = Vec::new();
    for e in expected {
        match by_id.get(&e.id) {
            Some(h) if h.offset == e.offset && h.length == e.length => {}
            _ => {
                bad.push((e.id, "the index entry does not match the pack header".to_string()));
                continue;
            }
        }
        let env = &bytes[e.offset as usize..(e.offset + e.length) as usize];
        if let Err(err) = open_blob(repo.keys(), &pack.salt, e, env) {
            bad.push((e.id, err.to_string()));
        }
    }
    (n, bad)
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
    let mut per_pack: HashMap<Id, (PackRef, Vec<crate::repo::pack::PackEntry>)> = HashMap::new();
    for loc in index.iter().filter(|l| chosen.contains(&l.pack.id)) {
        per_pack.entry(loc.pack.id).or_insert_with(|| (loc.pack, vec![])).1.push(loc.entry);
    }
    let work: Vec<_> = per_pack.into_values().collect();
    let next = AtomicUsize::new(0);
    let found: Mutex<Vec<(Id, String, String)>> = Mutex::new(Vec::new());
    let read = Mutex::new((0usize, 0u64));
    std::thread::scope(|s| {
        for _ in 0..opts.threads.max(1) {
            s.spawn(|| loop {
                if opts.cancel.load(Ordering::Relaxed) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((pack, entries)) = work.get(i) else { return };
                let (n, bad) = verify_pack(repo, pack, entries);
                {
                    let mut r = read.lock();
                    r.0 += 1;
                    r.1 += n;
                }
                let object = Kind::Pack.describe(&pack.id.to_hex());
                let mut f = found.lock();
                for (id, why) in bad {
                    f.push((id, object.clone(), why));
                }
            });
        }
    });
    if opts.cancel.load(Ordering::Relaxed) {
        return Err(Error::Interrupted("check cancelled".into()));
    }
    let (packs, bytes) = read.into_inner();
    report.stats.packs_read = packs;
    report.stats.bytes_read = bytes;
    for (id, object, why) in found.into_inner() {
        bad_blobs.entry(id).or_insert((object, why));
    }
    Ok(())
}
