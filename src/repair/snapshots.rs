//! `repair snapshots`: writes new snapshots that leave out what can no longer be read.
//!
//! Files with a damaged or missing chunk and folders whose tree cannot be read are removed
//! from copies of the affected snapshots; the copies are marked `repaired` with the list of
//! removed paths. With `forget`, the damaged originals are then deleted, so `check` passes.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::check::{check_structure, CheckOptions, CheckReport, ReadData};
use crate::error::Result;
use crate::id::Id;
use crate::repo::index::Index;
use crate::repo::lock::{LockGuard, LockKind};
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
/// # Errors
/// `Locked` when another process uses the repository; storage errors.
pub fn repair_snapshots(
    repo: &Repository,
    dry_run: bool,
    forget: bool,
    read_data: bool,
) -> Result<RepairSnapshotsReport> {
    let _lock = LockGuard::acquire(repo.storage(), repo.keys(), LockKind::Exclusive, "repair snapshots")?;
    let opts = CheckOptions {
        read_data: if read_data { ReadData::All } else { ReadData::None },
        ..Default::default()
    };
    let mut scratch = CheckReport::default();
    let mut findings = check_structure(repo, &opts, &mut scratch)?;
    if read_data {
        crate::check::data::read_data(repo, &findings.index, &opts, &mut findings.bad_blobs, &mut scratch)?;
    }
    let bad: HashSet<Id> = findings.bad_blobs.keys().copied().collect();
    let mut report = RepairSnapshotsReport { dry_run, ..Default::default() };
    if bad.is_empty() {
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
            if forget {
                repo.storage().delete(Kind::Snapshot, &sid.to_hex())?;
                entry.forgotten = true;
            }
        }
        report.snapshots.push(entry);
    }
    // Missing or truncated packs leave the index: nothing can use them any more.
    let broken: HashSet<Id> = findings
        .index
        .packs()
        .iter()
        .filter(|p| findings.stored_packs.get(&p.id) != Some(&p.size))
        .map(|p| p.id)
        .collect();
    report.packs_unindexed = broken.iter().map(|id| Kind::Pack.describe(&id.to_hex())).collect();
    if !dry_run && !broken.is_empty() {
        let mut packs = findings.index.to_packs(&broken);
        packs.extend(new_packs);
        let old: Vec<Id> =
            repo.storage().list(Kind::Index)?.iter().filter_map(|o| Id::from_hex(&o.name).ok()).collect();
        crate::repair::index::replace_index(repo, &old, packs)?;
    }
    Ok(report)
}
