//! `repair snapshots`: writes new snapshots that leave out what can no longer be read.
//!
//! Files with a damaged or missing chunk and folders whose tree cannot be read are removed
//! from copies of the affected snapshots; the copies are marked `repaired` with the list of
//! removed paths. With `forget`, the damaged originals are then deleted, so `check` passes.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::check::{check_structure, CheckOptions, CheckReport};
use crate::error::Result;
use crate::id::Id;
use crate::repo::index::Index;
use crate::repo::lock::LockKind;
use crate::repo::pack::BlobType;
use crate::repo::snapshot::{RepairNote, Snapshot};
use crate::repo::tree::{NodeKind, Tree};
use crate::repo::walk::show;
use crate::repo::writer::BlobWriter;
use crate::repo::Repository;
use crate::storage::Kind;

#[derive(Clone, Debug, Serialize)]
pub struct RepairedSnapshot {
    /// Full ids, for the snapshot register.
    pub original_id: Id,
    pub repaired_id: Option<Id>,
    pub original: String,
    pub repaired: Option<String>,
    pub removed: Vec<String>,
    pub forgotten: bool,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RepairSnapshotsReport {
    pub snapshots: Vec<RepairedSnapshot>,
    /// Missing or truncated packs taken out of the index.
    pub packs_unindexed: Vec<String>,
    /// Snapshot objects that cannot be read at all (forgotten with `--forget`).
    pub unreadable_snapshots: Vec<String>,
    /// Damaged packs whose readable blobs were copied out (`--read-data`).
    pub packs_salvaged: Vec<String>,
    /// Damaged blobs dropped from the index (`--read-data`).
    pub blobs_dropped: Vec<String>,
    /// Forget records that could not be read, removed.
    pub forget_records_removed: Vec<String>,
    pub dry_run: bool,
}

/// Rewrites a tree without damaged entries; returns the new id and the removed paths.
fn rewrite(
    repo: &Repository,
    index: &Index,
    bad: &HashSet<Id>,
    writer: &mut Option<BlobWriter<'_>>,
    tree_id: Id,
    path: &[u8],
    memo: &mut HashMap<Id, (Id, Vec<String>)>,
) -> Result<(Id, Vec<String>)> {
    if let Some(done) = memo.get(&tree_id) {
        let prefix = show(path);
        return Ok((done.0, done.1.iter().map(|p| format!("{prefix}{p}")).collect()));
    }
    let mut tree = repo.load_tree(index, &tree_id)?;
    let mut removed_rel = Vec::new();
    let mut kept = Vec::with_capacity(tree.nodes.len());
    for mut node in std::mem::take(&mut tree.nodes) {
        let mut rel = b"/".to_vec();
        rel.extend_from_slice(&node.name);
        if node.content.iter().any(|id| bad.contains(id)) {
            removed_rel.push(show(&rel));
            continue;
        }
        if node.kind == NodeKind::Dir {
            if let Some(sub) = node.subtree {
                if bad.contains(&sub) {
                    removed_rel.push(format!("{}/", show(&rel)));
                    continue;
                }
                let (new_sub, removed) = rewrite(repo, index, bad, writer, sub, &rel, memo)?;
                node.subtree = Some(new_sub);
                removed_rel.extend(removed);
            }
        }
        kept.push(node);
    }
    let new_id = if removed_rel.is_empty() {
        tree_id
    } else {
        let mut t = Tree { nodes: kept };
        let bytes = t.encode();
        match writer {
            Some(w) => w.add(BlobType::Tree, &bytes)?,
            None => repo.keys().blob_id(&bytes),
        }
    };
    memo.insert(tree_id, (new_id, removed_rel.clone()));
    let prefix = show(path);
    Ok((new_id, removed_rel.into_iter().map(|p| format!("{prefix}{p}")).collect()))
}

/// Repairs every snapshot that references unreadable data.
///
/// With `read_data`, every pack is verified first and damaged ones are salvaged as
/// `repair index --read-data` does (damaged blobs leave the index, so the next backup stores
/// them again). Before anything is rewritten, every blob found bad is read once more through
/// the whole index (packs set aside by a prune included): a snapshot whose data is all
/// readable is never rewritten or forgotten. With `forget`, snapshot objects that cannot be
/// read at all are forgotten too.
///
/// # Errors
/// `Locked` when another process uses the repository; storage errors.
pub fn repair_snapshots(
    repo: &Repository,
    dry_run: bool,
    forget: bool,
    read_data: bool,
) -> Result<RepairSnapshotsReport> {
    let _lock = repo.lock(LockKind::Exclusive, "repair snapshots")?;
    let mut report = RepairSnapshotsReport { dry_run, ..Default::default() };
    let mut dropped = Vec::new();
    if read_data {
        let r = crate::repair::index::rebuild(repo, dry_run, true)?;
        report.packs_salvaged = r.packs_salvaged;
        report.blobs_dropped = r.blobs_dropped.iter().map(|(id, _, why)| format!("{id}: {why}")).collect();
        dropped = r.blobs_dropped;
    }
    let opts = CheckOptions::default();
    let mut scratch = CheckReport::default();
    let mut findings = check_structure(repo, &opts, &mut scratch)?;
    if dry_run {
        // Nothing was dropped from the index: what the data pass found is what would be.
        for (id, object, why) in dropped {
            if let Ok(id) = Id::from_hex(&id) {
                findings.bad_blobs.insert(id, (object, why));
            }
        }
    }
    reverify(repo, &mut findings.bad_blobs)?;
    // A damaged forget record says nothing any more: removed (what it forgot, if still stored,
    // is visible again and can be forgotten again).
    for (name, _) in crate::repo::forgotten::load(repo)?.damaged {
        if !dry_run {
            repo.storage().delete(Kind::Forgotten, &name)?;
        }
        report.forget_records_removed.push(Kind::Forgotten.describe(&name));
    }
    let bad: HashSet<Id> = findings.bad_blobs.keys().copied().collect();
    if forget {
        report.unreadable_snapshots = findings.damaged_snapshots.clone();
    }
    if bad.is_empty() && report.unreadable_snapshots.is_empty() {
        return Ok(report);
    }
    let index = &findings.index;
    let mut writer = (!dry_run).then(|| BlobWriter::new(repo, index));
    let mut memo = HashMap::new();
    let mut pending: Vec<(Id, Snapshot, Id, Vec<String>)> = Vec::new();
    for (sid, snap) in &findings.snapshots {
        let (root, removed) = if bad.contains(&snap.tree) {
            let mut empty = Tree::default();
            let bytes = empty.encode();
            let id = match &mut writer {
                Some(w) => w.add(BlobType::Tree, &bytes)?,
                None => repo.keys().blob_id(&bytes),
            };
            (id, vec!["/ (the whole snapshot)".to_string()])
        } else {
            rewrite(repo, index, &bad, &mut writer, snap.tree, b"", &mut memo)?
        };
        if removed.is_empty() {
            continue;
        }
        pending.push((*sid, snap.clone(), root, removed));
    }
    // Trees first (packs, then their index), then the snapshots that reference them.
    let new_packs = match writer {
        Some(w) => w.finish(vec![])?.0,
        None => vec![],
    };
    let mut forgotten = Vec::new();
    for (sid, snap, root, removed) in pending {
        let mut entry = RepairedSnapshot {
            original_id: sid,
            repaired_id: None,
            original: sid.short(),
            repaired: None,
            removed: removed.clone(),
            forgotten: false,
        };
        if !dry_run {
            let mut new = snap.clone();
            new.tree = root;
            new.repaired = Some(RepairNote { original: sid, time: chrono::Utc::now(), removed });
            let id = repo.save_snapshot(&new)?;
            entry.repaired = Some(id.short());
            entry.repaired_id = Some(id);
        }
        if forget {
            forgotten.push(sid);
            entry.forgotten = !dry_run;
        }
        report.snapshots.push(entry);
    }
    forgotten.extend(report.unreadable_snapshots.iter().filter_map(|n| Id::from_hex(n).ok()));
    if !dry_run && !forgotten.is_empty() {
        // The intent first (crash-safe), then the objects.
        crate::repo::forgotten::record(repo, "repair snapshots --forget", &forgotten)?;
        for id in &forgotten {
            repo.storage().delete(Kind::Snapshot, &id.to_hex())?;
        }
    }
    // Missing or truncated packs leave the index: nothing can use them any more. Packs a
    // prune set aside stay in their trash object.
    let broken: HashSet<Id> = findings
        .index
        .packs()
        .iter()
        .filter(|p| !findings.trashed.contains(&p.id) && findings.stored_packs.get(&p.id) != Some(&p.size))
        .map(|p| p.id)
        .collect();
    report.packs_unindexed = broken.iter().map(|id| Kind::Pack.describe(&id.to_hex())).collect();
    if !dry_run && !broken.is_empty() {
        let skip: HashSet<Id> = broken.union(&findings.trashed).copied().collect();
        let mut packs = findings.index.to_packs(&skip);
        packs.extend(new_packs);
        let old: Vec<Id> =
            repo.storage().list(Kind::Index)?.iter().filter_map(|o| Id::from_hex(&o.name).ok()).collect();
        crate::repair::index::replace_index(repo, &old, packs)?;
    }
    Ok(report)
}

/// Reads every blob found bad once more through a freshly loaded index (packs set aside by a
/// prune included) and forgets those that read fine: a transient error, or a prune that ran
/// between listing and reading, must never make repair drop data that is there.
fn reverify(repo: &Repository, bad: &mut HashMap<Id, (String, String)>) -> Result<()> {
    if bad.is_empty() {
        return Ok(());
    }
    let fresh = repo.load_index()?;
    bad.retain(|id, _| match fresh.lookup(id) {
        Some(loc) => repo.read_blob(&fresh, id, loc.entry.blob_type).is_err(),
        None => true,
    });
    Ok(())
}
