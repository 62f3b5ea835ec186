//! How much snapshots hold and what they cost in the repository.
//!
//! - *restore size*: the bytes a restore writes (every file of every selected snapshot);
//! - *raw data*: the distinct blobs those snapshots use, before compression (what
//!   deduplication leaves);
//! - *stored*: the same blobs as packed (compressed and encrypted);
//! - the repository's packs and index, and what no selected snapshot uses.

use std::collections::HashSet;

use serde::Serialize;

use crate::error::Result;
use crate::id::Id;
use crate::repo::index::Index;
use crate::repo::snapshot::Snapshot;
use crate::repo::tree::NodeKind;
use crate::repo::walk::{walk, WalkItem};
use crate::repo::Repository;

#[derive(Clone, Debug, Default, Serialize)]
pub struct SnapshotStats {
    pub snapshot: String,
    pub time: String,
    pub files: u64,
    pub dirs: u64,
    pub restore_size: u64,
    /// Distinct blobs (trees and data) this snapshot uses, raw and stored.
    pub blobs: u64,
    pub raw_size: u64,
    pub stored_size: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    pub snapshots: u64,
    pub files: u64,
    pub restore_size: u64,
    /// Distinct blobs all selected snapshots use together.
    pub blobs: u64,
    pub raw_size: u64,
    pub stored_size: u64,
    /// restore size / raw data (how much deduplication saves; 1 when nothing repeats).
    pub dedup_ratio: f64,
    /// raw data / stored (how much compression saves, after the encryption overhead).
    pub compression_ratio: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RepositoryStats {
    pub packs: u64,
    pub pack_bytes: u64,
    pub blobs: u64,
    /// Indexed blobs no selected snapshot uses (with every snapshot selected: what a prune of
    /// forgotten snapshots would free), and their stored size.
    pub unused_blobs: u64,
    pub unused_stored_size: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    pub per_snapshot: Vec<SnapshotStats>,
    pub total: Totals,
    pub repository: RepositoryStats,
    /// Folders whose tree could not be read (snapshot, path: why).
    pub damaged: Vec<String>,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

/// Figures for `snapshots` in the repository indexed by `index`.
///
/// # Errors
/// Storage errors that stop everything; unreadable trees are listed in `damaged`.
pub fn stats(repo: &Repository, index: &Index, snapshots: &[(Id, Snapshot)]) -> Result<Stats> {
    let mut st = Stats::default();
    let mut all: HashSet<Id> = HashSet::new();
    let size_of = |ids: &HashSet<Id>| -> (u64, u64) {
        ids.iter().filter_map(|id| index.lookup(id)).fold((0, 0), |(raw, stored), l| {
            (raw + u64::from(l.entry.raw_length), stored + u64::from(l.entry.length))
        })
    };
    for (id, snap) in snapshots {
        let mut s = SnapshotStats {
            snapshot: id.to_hex(),
            time: snap.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ..Default::default()
        };
        let mut used: HashSet<Id> = HashSet::from([snap.tree]);
        walk(repo, index, &snap.tree, &mut |item| {
            match item {
                WalkItem::Damaged { path, error, .. } => st.damaged.push(format!(
                    "snapshot {}: {}: {error}",
                    id.short(),
                    crate::repo::walk::show(path)
                )),
                WalkItem::Entry { node, .. } => {
                    match node.kind {
                        NodeKind::File => {
                            s.files += 1;
                            s.restore_size += node.size;
                        }
                        NodeKind::Dir => s.dirs += 1,
                        _ => {}
                    }
                    used.extend(node.content.iter().copied());
                    used.extend(node.subtree);
                }
            }
            Ok(true)
        })?;
        (s.raw_size, s.stored_size) = size_of(&used);
        s.blobs = used.len() as u64;
        st.total.files += s.files;
        st.total.restore_size += s.restore_size;
        all.extend(used);
        st.per_snapshot.push(s);
    }
    let t = &mut st.total;
    t.snapshots = snapshots.len() as u64;
    t.blobs = all.len() as u64;
    (t.raw_size, t.stored_size) = size_of(&all);
    t.dedup_ratio = ratio(t.restore_size, t.raw_size);
    t.compression_ratio = ratio(t.raw_size, t.stored_size);
    let r = &mut st.repository;
    r.packs = index.packs().len() as u64;
    r.pack_bytes = index.packs().iter().map(|p| p.size).sum();
    for l in index.iter() {
        r.blobs += 1;
        if !all.contains(&l.entry.id) {
            r.unused_blobs += 1;
            r.unused_stored_size += u64::from(l.entry.length);
        }
    }
    Ok(st)
}
