//! `rempart copy`: snapshots from one repository into another (3-2-1: a second copy,
//! off-site or immutable), re-encrypted with the destination's keys.
//!
//! Blob ids are keyed per repository (docs/format.md), so a blob's id in the destination is
//! the destination's keyed hash of its plaintext: every blob copied is read from the source
//! (decrypted and verified there), hashed again with the destination's key and stored under
//! that id. Trees are rewritten with the new ids (a file's content hash is recomputed from its
//! bytes). So the destination verifies what it receives by construction, and a copied
//! snapshot is indistinguishable from one backed up there, except for the chunk boundaries,
//! which stay the source's.
//!
//! Incremental: a map of source to destination ids (and file content hashes), kept in the
//! state directory per pair of repositories, lets a later copy skip every blob the destination
//! already holds without reading it. A map entry is written only after the index naming its
//! blob is durable in the destination, and is used only while the destination's index still
//! holds the blob, so a stale map costs a re-copy, never a dangling reference.
//!
//! The map also pairs each source snapshot with its copy: a snapshot the destination has
//! forgotten since (its own retention) is not copied again, while one deleted there without a
//! forget record (an attacker, a mistake) is, and one still there is walked again, so data
//! lost there since is stored again. The callers then copy the evidence
//! (`evidence::replicate`, a layer above).
//!
//! Write order, as for a backup: packs, then the index naming them, then the snapshot. A copy
//! killed at any point leaves no snapshot in the destination that points at missing data; the
//! next copy finds the blobs already stored (indexed, or adopted as a backup adopts orphan
//! packs) and goes on. The destination is locked as a backup locks it, so a prune there
//! cannot remove what the copy references.

use std::collections::HashSet;
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::copy_map::{IdMap, BLOB, CONTENT, SNAPSHOT};
use crate::repo::index::Index;
use crate::repo::lock::LockKind;
use crate::repo::pack::BlobType;
use crate::repo::snapshot::Snapshot;
use crate::repo::tree::NodeKind;
use crate::repo::writer::BlobWriter;
use crate::repo::Repository;

/// What one copy did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CopyReport {
    /// Source snapshot id → destination snapshot id, for the snapshots copied now.
    pub copied: Vec<(Id, Id)>,
    /// Source snapshots the destination already held.
    pub already: Vec<Id>,
    /// Blobs read from the source and stored in the destination.
    pub blobs_stored: u64,
    /// Plaintext bytes of those blobs.
    pub bytes_stored: u64,
    /// Blobs found in the destination through the id map, without reading them.
    pub blobs_skipped: u64,
    /// Source snapshots copied earlier and since forgotten in the destination (by its own
    /// retention, say): not copied again. One deleted there outside rempart is copied again.
    pub forgotten_there: Vec<Id>,
}

/// Copies one snapshot tree at a time into a destination.
struct Copier<'a> {
    src: &'a Repository,
    src_index: &'a Index,
    dst: &'a Repository,
    /// The destination's index (with its orphan packs adopted), as the copy started.
    dst_index: &'a Index,
    writer: BlobWriter<'a>,
    /// Blobs stored by this copy for the snapshots before this one (indexed since).
    stored: &'a HashSet<Id>,
    map: &'a mut IdMap,
    report: &'a mut CopyReport,
}

impl Copier<'_> {
    /// The destination id of a source blob the destination already holds, if the map knows it.
    fn known(&self, src: &Id) -> Option<Id> {
        self.map.blobs.get(src).copied().filter(|d| self.holds(d))
    }

    /// True when the destination holds `id`, or this copy stored it.
    fn holds(&self, id: &Id) -> bool {
        self.dst_index.contains(id) || self.stored.contains(id) || self.writer.has(id)
    }

    fn copy_blob(&mut self, blob_type: BlobType, src: &Id) -> Result<(Id, Option<Vec<u8>>)> {
        if let Some(d) = self.known(src) {
            self.report.blobs_skipped += 1;
            return Ok((d, None));
        }
        let raw = self.src.read_blob(self.src_index, src, blob_type)?;
        let dst = self.dst.keys().blob_id(&raw);
        if !self.holds(&dst) {
            self.writer.add_fresh(blob_type, dst, &raw)?;
            self.report.blobs_stored += 1;
            self.report.bytes_stored += raw.len() as u64;
        }
        self.map.add(BLOB, *src, dst);
        Ok((dst, Some(raw)))
    }

    /// Copies the tree `src` and everything below it; returns its destination id. The source
    /// tree is always read (trees are small): a destination tree found through the map proves
    /// nothing about the data below it, which a prune there may have removed.
    fn copy_tree(&mut self, src: &Id) -> Result<Id> {
        let mut tree = self.src.load_tree(self.src_index, src)?;
        for node in &mut tree.nodes {
            match node.kind {
                NodeKind::Dir => {
                    if let Some(sub) = node.subtree {
                        node.subtree = Some(self.copy_tree(&sub)?);
                    }
                }
                NodeKind::File => {
                    let hash_known = node.content_hash.and_then(|h| self.map.contents.get(&h).copied());
                    // A file of several chunks needs its bytes for the destination's content
                    // hash, unless an earlier copy computed it.
                    let mut hasher =
                        (node.content.len() > 1 && node.content_hash.is_some() && hash_known.is_none())
                            .then(|| self.dst.keys().content_hasher());
                    let mut content = Vec::with_capacity(node.content.len());
                    for id in &node.content {
                        let (dst, raw) = self.copy_blob(BlobType::Data, id)?;
                        if let Some(h) = &mut hasher {
                            let raw = match raw {
                                Some(r) => r,
                                None => self.src.read_blob(self.src_index, id, BlobType::Data)?,
                            };
                            h.update(&raw);
                        }
                        content.push(dst);
                    }
                    let new_hash = match (node.content_hash, hash_known, hasher) {
                        (None, _, _) => None,
                        (Some(_), Some(h), _) => Some(h),
                        (Some(_), None, Some(h)) => Some(Id(*h.finalize().as_bytes())),
                        // One chunk (or none): the content hash is the chunk's id.
                        (Some(_), None, None) => {
                            Some(content.first().copied().unwrap_or_else(|| self.dst.keys().blob_id(b"")))
                        }
                    };
                    if let (Some(old), Some(new)) = (node.content_hash, new_hash) {
                        self.map.add(CONTENT, old, new);
                    }
                    node.content = content;
                    node.content_hash = new_hash;
                }
                _ => {}
            }
        }
        let bytes = tree.encode();
        let dst = self.dst.keys().blob_id(&bytes);
        if !self.holds(&dst) {
            self.writer.add_fresh(BlobType::Tree, dst, &bytes)?;
            self.report.blobs_stored += 1;
            self.report.bytes_stored += bytes.len() as u64;
        }
        self.map.add(BLOB, *src, dst);
        Ok(dst)
    }
}

/// Copies `snapshots` (of `src`) into `dst`, oldest first; `state_dir` keeps the id map.
/// Snapshots copied before and forgotten in `dst` since are skipped unless `recopy_forgotten`
/// (the operator named them).
///
/// # Errors
/// Damaged source data (named; nothing of that snapshot is committed), storage errors, or the
/// destination locked by an exclusive operation.
pub fn copy(
    src: &Repository,
    dst: &Repository,
    snapshots: &[(Id, Snapshot)],
    state_dir: &Path,
    recopy_forgotten: bool,
) -> Result<CopyReport> {
    if src.id() == dst.id() {
        return Err(Error::invalid("the source and the destination are the same repository"));
    }
    let _read = src.lock(LockKind::Read, "copy")?;
    let write = dst.lock(LockKind::Backup, "copy")?;
    let src_index = src.load_index()?;
    let dst_index = crate::backup::adopt::dedup_index(dst)?;
    let mut map = IdMap::load(state_dir, &src.id(), &dst.id())?;
    let mut report = CopyReport::default();
    let mut stored = HashSet::new();
    let (existing, _) = dst.list_snapshots()?;
    let existing_ids: HashSet<Id> = existing.iter().map(|(id, _)| *id).collect();
    let forgotten = crate::repo::forgotten::load(dst)?;
    let mut ordered: Vec<&(Id, Snapshot)> = snapshots.iter().collect();
    ordered.sort_by_key(|(_, s)| s.time);
    for (src_id, snap) in ordered {
        // Copied before and forgotten in the destination since: nothing to do. Still there,
        // its trees are walked all the same (they are small): data lost there since is stored
        // again. Gone without a forget record, it is copied again.
        if let Some(d) = map.snapshots.get(src_id) {
            if forgotten.contains(d) && !existing_ids.contains(d) && !recopy_forgotten {
                report.forgotten_there.push(*src_id);
                continue;
            }
        }
        let mut copier = Copier {
            src,
            src_index: &src_index,
            dst,
            dst_index: &dst_index,
            writer: BlobWriter::new(dst, &dst_index),
            stored: &stored,
            map: &mut map,
            report: &mut report,
        };
        let root = copier.copy_tree(&snap.tree)?;
        let writer = copier.writer;
        // Packs, then their index: durable before the snapshot that references them.
        let (packs, _) = writer.finish(vec![])?;
        stored.extend(packs.iter().flat_map(|p| p.blobs.iter().map(|b| b.id)));
        map.save()?;
        let same = |s: &Snapshot| s.tree == root && s.time == snap.time && s.hostname == snap.hostname;
        if let Some((d, _)) = existing.iter().find(|(_, s)| same(s)) {
            report.already.push(*src_id);
            map.add(SNAPSHOT, *src_id, *d);
            map.save()?;
            continue;
        }
        let mut copied = snap.clone();
        copied.tree = root;
        copied.parent = None;
        write.ensure_held()?;
        let new_id = dst.save_snapshot(&copied)?;
        map.add(SNAPSHOT, *src_id, new_id);
        map.save()?;
        report.copied.push((*src_id, new_id));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::testing::{noise, TempRepo};

    #[test]
    fn a_copy_restores_identically_and_a_second_copy_reads_nothing_again() {
        let src = TempRepo::new();
        let dst = TempRepo::new();
        let files = src.source("data", &[("big.bin", noise(1, 3_000_000)), ("small.txt", b"hello".to_vec())]);
        let first = src.backup(&files);
        let (snaps, _) = src.repo.list_snapshots().unwrap();
        let state = src.dir.path().join("state");
        let r = copy(&src.repo, &dst.repo, &snaps, &state, false).unwrap();
        assert_eq!(r.copied.len(), 1);
        assert!(r.bytes_stored >= 3_000_000, "{r:?}");
        // The copy restores the same bytes, and its content hashes are the destination's.
        let (_, copied) = dst.repo.find_snapshot("latest").unwrap();
        let target = dst.dir.path().join("restored");
        let result =
            crate::restore::restore(&dst.repo, &copied, &crate::restore::RestoreOptions::new(target.clone()))
                .unwrap();
        assert!(result.damaged.is_empty(), "{:?}", result.damaged);
        let back = crate::restore::target_path(&target, files.join("big.bin").to_str().unwrap().as_bytes());
        assert_eq!(std::fs::read(back).unwrap(), noise(1, 3_000_000));
        // Again: nothing new is read or stored, and the snapshot is not duplicated.
        let again = copy(&src.repo, &dst.repo, &snaps, &state, false).unwrap();
        assert_eq!((again.copied.len(), again.already, again.blobs_stored), (0, vec![first], 0));
        assert!(
            std::fs::read(state.join("copy").join(format!(
                "{}-{}.map",
                src.repo.id().to_hex(),
                dst.repo.id().to_hex()
            )))
            .unwrap()
            .len()
                % 65
                == 0
        );
        // Forgotten in the destination (its own retention): not copied again. Deleted there
        // without a forget record: copied again.
        let (dst_id, _) = dst.repo.find_snapshot("latest").unwrap();
        crate::repo::forgotten::record(&dst.repo, "forget", &[dst_id]).unwrap();
        let after_forget = copy(&src.repo, &dst.repo, &snaps, &state, false).unwrap();
        assert_eq!((after_forget.copied.len(), after_forget.forgotten_there.clone()), (0, vec![first]));
        let dst2 = TempRepo::new();
        copy(&src.repo, &dst2.repo, &snaps, &state, false).unwrap();
        let (gone, _) = dst2.repo.find_snapshot("latest").unwrap();
        dst2.repo.storage().delete(crate::storage::Kind::Snapshot, &gone.to_hex()).unwrap();
        let repaired = copy(&src.repo, &dst2.repo, &snaps, &state, false).unwrap();
        assert_eq!(repaired.copied.len(), 1, "{repaired:?}");
        // Into itself: refused.
        assert!(copy(&src.repo, &src.repo, &snaps, &state, false).is_err());
    }
}
