//! `repair index`: rebuilds the index from the packs that exist, and with `--read-data`
//! heals damaged packs.
//!
//! Every pack's header is read with ranged reads (prefix for the salt, tail for the sealed
//! header); a pack whose header is damaged keeps the entries the old index had for it. Packs
//! that a prune set aside (listed by a trash object) stay in the trash. New index objects
//! supersede every old one (damaged ones included), and the old ones are then deleted.
//!
//! With `read_data`, every pack is read whole and every blob verified. A pack with a damaged
//! blob, or damaged outside its blobs, is *salvaged*: its readable blobs are copied into new
//! packs, the damaged blobs leave the index, and the pack itself is deleted once the new index
//! is durable. The next backup of the same source then stores those chunks again (the
//! repository heals), and `check --read-data` passes once no snapshot needs what was lost
//! (`repair snapshots --forget` drops those files). docs/cli.md has the whole recipe.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;

use serde::Serialize;

use crate::check::data::verify_groups;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::index::{IndexFile, IndexedPack, PackRef};
use crate::repo::lock::LockKind;
use crate::repo::pack::open_blob;
use crate::repo::writer::BlobWriter;
use crate::repo::Repository;
use crate::storage::Kind;

const PACKS_PER_INDEX: usize = 5_000;

#[derive(Clone, Debug, Default, Serialize)]
pub struct RepairIndexReport {
    pub packs_indexed: usize,
    pub blobs_indexed: usize,
    /// Packs that were stored but not indexed before.
    pub packs_added: Vec<String>,
    /// Packs the old index listed that no longer exist.
    pub packs_dropped: Vec<String>,
    /// Packs whose header cannot be read and that the old index did not know, with the reason.
    pub packs_unreadable: Vec<(String, String)>,
    /// Packs with damage (`read_data`): their readable blobs were copied, the pack deleted.
    pub packs_salvaged: Vec<String>,
    /// Blobs copied out of damaged packs.
    pub blobs_salvaged: usize,
    /// Damaged blobs dropped from the index, with the pack and the reason.
    pub blobs_dropped: Vec<(String, String, String)>,
    pub packs_read: usize,
    pub old_index_objects: Vec<String>,
    pub new_index_objects: Vec<String>,
    pub dry_run: bool,
}

/// Replaces every index object with consolidated ones that list `packs`; the old objects
/// are superseded, then deleted. The caller holds the exclusive or prune lock.
pub fn replace_index(repo: &Repository, old: &[Id], packs: Vec<IndexedPack>) -> Result<Vec<Id>> {
    let chunks: Vec<Vec<IndexedPack>> = packs.chunks(PACKS_PER_INDEX).map(<[_]>::to_vec).collect();
    let chunks = if chunks.is_empty() { vec![vec![]] } else { chunks };
    let mut new = Vec::new();
    for chunk in chunks {
        new.push(repo.save_index(&IndexFile { supersedes: old.to_vec(), packs: chunk })?);
    }
    for id in old {
        repo.storage().delete(Kind::Index, &id.to_hex())?;
    }
    Ok(new)
}

/// What the old index objects said about each pack, as far as they can still be read.
fn previous_entries(repo: &Repository, names: &[String]) -> HashMap<Id, IndexedPack> {
    let mut out = HashMap::new();
    for (name, bytes) in repo.fetch_many(Kind::Index, names.to_vec()) {
        let plain = bytes.and_then(|b| crate::crypto::seal::open_object(repo.keys(), "index", &b, &name));
        if let Ok(f) = plain.and_then(|p| IndexFile::decode(&p, &name)) {
            out.extend(f.packs.into_iter().map(|p| (p.id, p)));
        }
    }
    out
}

/// Rebuilds the index; with `read_data`, also verifies every pack and salvages damaged ones.
///
/// # Errors
/// `Locked` when another process uses the repository; storage errors.
pub fn repair_index(repo: &Repository, dry_run: bool, read_data: bool) -> Result<RepairIndexReport> {
    let _lock = repo.lock(LockKind::Exclusive, "repair index")?;
    rebuild(repo, dry_run, read_data)
}

/// [`repair_index`] for a caller that holds the exclusive lock.
pub(crate) fn rebuild(repo: &Repository, dry_run: bool, read_data: bool) -> Result<RepairIndexReport> {
    let mut report = RepairIndexReport { dry_run, ..Default::default() };
    let old_names: Vec<String> = repo.storage().list(Kind::Index)?.into_iter().map(|o| o.name).collect();
    let previously = previous_entries(repo, &old_names);
    let trashed: HashSet<Id> = match crate::repo::trash::read_trash(repo) {
        Ok((t, _)) => t.iter().flat_map(|(_, t)| t.packs.iter().map(|p| p.id)).collect(),
        Err(e) => return Err(e),
    };
    let mut packs: Vec<IndexedPack> = Vec::new();
    let mut present = HashSet::new();
    for obj in repo.storage().list(Kind::Pack)? {
        let Ok(id) = Id::from_hex(&obj.name) else { continue };
        present.insert(id);
        if trashed.contains(&id) {
            continue; // readable through its trash object; the next prune decides
        }
        match repo.read_pack_header(&id, obj.size) {
            Ok(p) => {
                if !previously.contains_key(&id) {
                    report.packs_added.push(Kind::Pack.describe(&obj.name));
                }
                packs.push(p);
            }
            Err(e) => match previously.get(&id) {
                // The header is damaged but the old index still locates the blobs.
                Some(p) if p.size == obj.size => packs.push(p.clone()),
                _ => report.packs_unreadable.push((Kind::Pack.describe(&obj.name), e.to_string())),
            },
        }
    }
    report.packs_dropped = previously
        .keys()
        .filter(|id| !present.contains(id))
        .map(|id| Kind::Pack.describe(&id.to_hex()))
        .collect();
    report.old_index_objects = old_names.iter().map(|n| Kind::Index.describe(n)).collect();

    let mut damaged_packs: Vec<IndexedPack> = Vec::new();
    if read_data {
        let work: Vec<(PackRef, Vec<_>)> = packs
            .iter()
            .map(|p| (PackRef { id: p.id, salt: p.salt, size: p.size }, p.blobs.clone()))
            .collect();
        let threads = crate::backup::default_workers();
        let v = verify_groups(repo, &work, threads, &AtomicBool::new(false))?;
        report.packs_read = v.packs_read;
        let mut bad_by_pack: HashMap<String, HashSet<Id>> = HashMap::new();
        for (id, object, why) in &v.bad {
            bad_by_pack.entry(object.clone()).or_default().insert(*id);
            report.blobs_dropped.push((id.to_hex(), object.clone(), why.clone()));
        }
        for (object, _) in &v.pack_problems {
            bad_by_pack.entry(object.clone()).or_default();
        }
        packs.retain(|p| {
            let damaged = bad_by_pack.contains_key(&Kind::Pack.describe(&p.id.to_hex()));
            if damaged {
                damaged_packs.push(p.clone());
            }
            !damaged
        });
        let bad: HashSet<Id> = v.bad.iter().map(|(id, _, _)| *id).collect();
        let (salvaged, n) = salvage(repo, &damaged_packs, &bad, &packs, dry_run)?;
        report.blobs_salvaged = n;
        report.packs_salvaged = damaged_packs.iter().map(|p| Kind::Pack.describe(&p.id.to_hex())).collect();
        packs.extend(salvaged);
    }
    report.packs_indexed = packs.len();
    report.blobs_indexed = packs.iter().map(|p| p.blobs.len()).sum();
    if dry_run {
        return Ok(report);
    }
    let supersedes: Vec<Id> = old_names.iter().filter_map(|n| Id::from_hex(n).ok()).collect();
    for id in replace_index(repo, &supersedes, packs)? {
        report.new_index_objects.push(Kind::Index.describe(&id.to_hex()));
    }
    // The damaged packs go only now: their readable blobs are in durable, indexed packs, and a
    // damaged pack left behind would be adopted again, damaged blob included.
    for p in &damaged_packs {
        repo.storage().delete(Kind::Pack, &p.id.to_hex())?;
    }
    Ok(report)
}

/// Copies the readable blobs of `damaged` packs into new packs (not yet indexed); returns them
/// and how many blobs were copied. Blobs that `keep` already holds elsewhere are not copied.
fn salvage(
    repo: &Repository,
    damaged: &[IndexedPack],
    bad: &HashSet<Id>,
    keep: &[IndexedPack],
    dry_run: bool,
) -> Result<(Vec<IndexedPack>, usize)> {
    let elsewhere: HashSet<Id> = keep.iter().flat_map(|p| p.blobs.iter().map(|b| b.id)).collect();
    let empty = crate::repo::index::Index::default();
    let mut writer = BlobWriter::new(repo, &empty);
    let mut copied = 0;
    for p in damaged {
        let name = p.id.to_hex();
        for e in p.blobs.iter().filter(|e| !bad.contains(&e.id) && !elsewhere.contains(&e.id)) {
            let range = u64::from(e.offset)..u64::from(e.offset) + u64::from(e.length);
            let raw = repo
                .storage()
                .get_range(Kind::Pack, &name, range)
                .and_then(|env| open_blob(repo.keys(), &p.salt, e, &env));
            match raw {
                Ok(raw) => {
                    copied += 1;
                    if !dry_run {
                        writer.add_fresh(e.blob_type, e.id, &raw)?;
                    }
                }
                // Verified a moment ago, unreadable now: the storage is failing; stop.
                Err(err) => {
                    return Err(Error::failed(format!(
                        "cannot salvage blob {} of {}: {err}; the index was not changed",
                        e.id.short(),
                        Kind::Pack.describe(&name)
                    )))
                }
            }
        }
    }
    if dry_run {
        return Ok((vec![], copied));
    }
    let (packs, ()) = writer.finish_without_index()?;
    Ok((packs, copied))
}
