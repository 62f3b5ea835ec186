//! `repair heal --from OTHER`: damaged or missing data blobs of a repository are stored again
//! from another repository holding the same files (a copy made by `rempart copy` or a job's
//! `[[copy]]`, in either direction), so a damaged pack no longer means lost snapshots when a
//! copy exists.
//!
//! Blob ids are keyed per repository, so a blob is looked for in the other repository by where
//! it sits, not by its id: through the copy id maps of the state directory when they exist, and
//! otherwise by walking each snapshot beside its copy in the other repository (same time, host
//! and paths; a copy keeps the source's chunk boundaries, so the n-th chunk of a file is the
//! n-th chunk of its copy). Every candidate is read from the other repository (decrypted and
//! verified there) and accepted only when its id, recomputed with this repository's key, is
//! the missing id: a wrong pairing costs a read, never wrong data.
//!
//! Under the exclusive lock: the index is rebuilt first (packs that are gone leave it; with
//! `read_data` damaged packs are salvaged and their damaged blobs leave it), then every data
//! blob the snapshots use that the index lacks is looked for, and the blobs found are stored in
//! new packs and indexed. Trees are not healed this way (a tree's bytes differ between
//! repositories); `repair snapshots` handles snapshots whose trees are lost.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::index::Index;
use crate::repo::lock::LockKind;
use crate::repo::pack::BlobType;
use crate::repo::snapshot::Snapshot;
use crate::repo::tree::NodeKind;
use crate::repo::writer::BlobWriter;
use crate::repo::Repository;

/// What a heal did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HealReport {
    pub dry_run: bool,
    /// The index rebuild that came first (not in a dry run).
    pub index: Option<super::index::RepairIndexReport>,
    /// Data blobs the snapshots use that the index lacked.
    pub missing: u64,
    /// Of those, stored again from the other repository (would be, in a dry run).
    pub healed: u64,
    pub healed_bytes: u64,
    /// Missing blobs the other repository does not hold (or holds only damaged).
    pub not_found: Vec<Id>,
    /// Trees the snapshots use that cannot be read (not healed here).
    pub unreadable_trees: Vec<Id>,
}

/// Stores again, from `other`, the data blobs of `repo` that are missing or (with `read_data`)
/// damaged; `state_dir` holds the copy id maps.
///
/// # Errors
/// The same repository twice, a lock held, storage errors.
pub fn heal(
    repo: &Repository,
    other: &Repository,
    state_dir: &Path,
    read_data: bool,
    dry_run: bool,
) -> Result<HealReport> {
    if repo.id() == other.id() {
        return Err(Error::invalid("--from names the repository being repaired: give its copy"));
    }
    let _lock = repo.lock(if dry_run { LockKind::Read } else { LockKind::Exclusive }, "repair heal")?;
    let _read = other.lock(LockKind::Read, "repair heal")?;
    let mut report = HealReport { dry_run, ..Default::default() };
    if !dry_run {
        report.index = Some(super::index::rebuild(repo, false, read_data)?);
    }
    let index = repo.load_index()?;
    let (snapshots, _) = repo.list_snapshots()?;
    let reach = crate::repo::walk::reachable(repo, &index, snapshots.iter().map(|(_, s)| s.tree));
    report.unreadable_trees = reach.unreadable.iter().map(|(t, _)| *t).collect();
    let missing: HashSet<Id> = reach.data.iter().filter(|id| !index.contains(id)).copied().collect();
    report.missing = missing.len() as u64;
    if missing.is_empty() {
        return Ok(report);
    }
    let other_index = other.load_index()?;
    let candidates = candidates(repo, &index, &snapshots, other, &other_index, state_dir, &missing)?;
    let mut writer = BlobWriter::new(repo, &index);
    let mut ordered: Vec<&Id> = missing.iter().collect();
    ordered.sort();
    for id in ordered {
        let mut found = None;
        for d in candidates.get(id).into_iter().flatten() {
            match other.read_blob(&other_index, d, BlobType::Data) {
                Ok(raw) if repo.keys().blob_id(&raw) == *id => {
                    found = Some(raw);
                    break;
                }
                Ok(_) => {}
                // Damaged or gone there too: another candidate may do.
                Err(e) if e.is_integrity() || matches!(e, Error::NotFound(_)) => {}
                // Anything else (the other repository unreachable for a while) stops the heal:
                // "not found" would send the operator to remove files the copy holds.
                Err(e) => return Err(e),
            }
        }
        match found {
            Some(raw) => {
                if !dry_run {
                    writer.add_fresh(BlobType::Data, *id, &raw)?;
                }
                report.healed += 1;
                report.healed_bytes += raw.len() as u64;
            }
            None => report.not_found.push(*id),
        }
    }
    if !dry_run {
        writer.finish(vec![])?;
    }
    Ok(report)
}

/// For each missing blob, the ids in `other` that may hold it.
fn candidates(
    repo: &Repository,
    index: &Index,
    snapshots: &[(Id, Snapshot)],
    other: &Repository,
    other_index: &Index,
    state_dir: &Path,
    missing: &HashSet<Id>,
) -> Result<HashMap<Id, Vec<Id>>> {
    let mut out: HashMap<Id, Vec<Id>> = HashMap::new();
    let mut add = |mine: Id, theirs: Id| {
        let v = out.entry(mine).or_default();
        if !v.contains(&theirs) {
            v.push(theirs);
        }
    };
    use crate::repo::copy_map::IdMap;
    for (mine, theirs) in IdMap::load(state_dir, &repo.id(), &other.id())?.blob_pairs() {
        if missing.contains(&mine) {
            add(mine, theirs);
        }
    }
    for (theirs, mine) in IdMap::load(state_dir, &other.id(), &repo.id())?.blob_pairs() {
        if missing.contains(&mine) {
            add(mine, theirs);
        }
    }
    let (other_snapshots, _) = other.list_snapshots()?;
    let mut seen = HashSet::new();
    for (_, s) in snapshots {
        let twin = other_snapshots
            .iter()
            .find(|(_, o)| o.time == s.time && o.hostname == s.hostname && o.paths == s.paths);
        if let Some((_, o)) = twin {
            let mut pair =
                Pairing { repo, index, other, other_index, missing, seen: &mut seen, add: &mut add };
            pair.trees(s.tree, o.tree);
        }
    }
    Ok(out)
}

/// Walks a tree beside its copy, pairing the chunks of files found at the same path.
struct Pairing<'a, F: FnMut(Id, Id)> {
    repo: &'a Repository,
    index: &'a Index,
    other: &'a Repository,
    other_index: &'a Index,
    missing: &'a HashSet<Id>,
    seen: &'a mut HashSet<(Id, Id)>,
    add: &'a mut F,
}

impl<F: FnMut(Id, Id)> Pairing<'_, F> {
    fn trees(&mut self, mine: Id, theirs: Id) {
        if !self.seen.insert((mine, theirs)) {
            return;
        }
        let (Ok(a), Ok(b)) =
            (self.repo.load_tree(self.index, &mine), self.other.load_tree(self.other_index, &theirs))
        else {
            return;
        };
        let by_name: HashMap<&[u8], &crate::repo::tree::Node> =
            b.nodes.iter().map(|n| (n.name.as_slice(), n)).collect();
        for n in &a.nodes {
            let Some(m) = by_name.get(n.name.as_slice()) else { continue };
            match (n.kind, m.kind) {
                (NodeKind::Dir, NodeKind::Dir) => {
                    if let (Some(x), Some(y)) = (n.subtree, m.subtree) {
                        self.trees(x, y);
                    }
                }
                (NodeKind::File, NodeKind::File)
                    if n.size == m.size && n.content.len() == m.content.len() =>
                {
                    for (x, y) in n.content.iter().zip(&m.content) {
                        if self.missing.contains(x) {
                            (self.add)(*x, *y);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}
