//! `repair index`: rebuilds the index from the packs that exist.
//!
//! Every pack's header is read with ranged reads (prefix for the salt, tail for the sealed
//! header); packs whose header is unreadable are reported and left out. New index objects
//! supersede every old one (damaged ones included), and the old ones are then deleted.

use std::collections::HashSet;

use serde::Serialize;

use crate::error::Result;
use crate::id::Id;
use crate::repo::index::{IndexFile, IndexedPack};
use crate::repo::lock::{LockGuard, LockKind};
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
    /// Packs whose header cannot be read, with the reason.
    pub packs_unreadable: Vec<(String, String)>,
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

/// Rebuilds the index.
///
/// # Errors
/// `Locked` when another process uses the repository; storage errors.
pub fn repair_index(repo: &Repository, dry_run: bool) -> Result<RepairIndexReport> {
    let _lock = LockGuard::acquire(repo.storage(), repo.keys(), LockKind::Exclusive, "repair index")?;
    let mut report = RepairIndexReport { dry_run, ..Default::default() };
    let old_names: Vec<String> = repo.storage().list(Kind::Index)?.into_iter().map(|o| o.name).collect();
    // What the old index knew, as far as it can still be read.
    let mut previously: HashSet<Id> = HashSet::new();
    for (name, bytes) in repo.fetch_many(Kind::Index, old_names.clone()) {
        let plain = bytes.and_then(|b| crate::crypto::seal::open_object(repo.keys(), "index", &b, &name));
        if let Ok(f) = plain.and_then(|p| IndexFile::decode(&p, &name)) {
            previously.extend(f.packs.iter().map(|p| p.id));
        }
    }
    let mut packs: Vec<IndexedPack> = Vec::new();
    let mut present = HashSet::new();
    for obj in repo.storage().list(Kind::Pack)? {
        let Ok(id) = Id::from_hex(&obj.name) else { continue };
        present.insert(id);
        match repo.read_pack_header(&id, obj.size) {
            Ok(p) => {
                if !previously.contains(&id) {
                    report.packs_added.push(Kind::Pack.describe(&obj.name));
                }
                report.blobs_indexed += p.blobs.len();
                packs.push(p);
            }
            Err(e) => report.packs_unreadable.push((Kind::Pack.describe(&obj.name), e.to_string())),
        }
    }
    report.packs_dropped = previously
        .iter()
        .filter(|id| !present.contains(id))
        .map(|id| Kind::Pack.describe(&id.to_hex()))
        .collect();
    report.packs_indexed = packs.len();
    report.old_index_objects = old_names.iter().map(|n| Kind::Index.describe(n)).collect();
    if dry_run {
        return Ok(report);
    }
    let supersedes: Vec<Id> = old_names.iter().filter_map(|n| Id::from_hex(n).ok()).collect();
    for id in replace_index(repo, &supersedes, packs)? {
        report.new_index_objects.push(Kind::Index.describe(&id.to_hex()));
    }
    Ok(report)
}
