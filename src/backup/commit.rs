//! Committing a backup: the one place where a backup becomes a snapshot.
//!
//! A snapshot must never reference a blob that is not stored. Rather than trusting every
//! path of the pipeline (workers, dedup against blobs another thread is still packing, the
//! unchanged-file shortcut, error handling), the blobs a snapshot references are counted as
//! its trees are encoded ([`References`]), and [`commit`] refuses to write the snapshot unless
//! every one of them is either in the index this backup loaded at its start or in a pack this
//! backup stored *and* indexed. Blobs of the loaded index that a concurrent prune marks meanwhile
//! stay legal: the prune's sweep waits for backups that started before its mark
//! (docs/format.md, "the two-phase prune"). No request is made: both sets are in memory.
//!
//! The check also covers the repository lock: a backup whose lock could not be refreshed for
//! longer than the stale limit may have been declared dead by a prune on another host, which
//! may then have swept what this backup dedups against; it aborts instead of committing.

use std::sync::Arc;

use parking_lot::Mutex;

use super::blob_set::BlobSet;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::index::Index;
use crate::repo::lock::LockGuard;
use crate::repo::snapshot::Snapshot;
use crate::repo::tree::Tree;
use crate::repo::Repository;

/// The blobs in packs this backup has stored *and* listed in a durable index object; the
/// uploader adds them as each index checkpoint is written, and nothing is ever removed.
pub type StoredBlobs = Arc<Mutex<BlobSet>>;

/// The blobs a backup's snapshot references that are not proven stored yet: neither in the
/// index it loaded nor in [`StoredBlobs`] when they were noted.
///
/// A blob found stored when noted is proven for good (the stored set only grows), so only the
/// references to blobs still in a pack being filled or uploaded are kept: a few packs' worth,
/// not one entry per new blob of the backup. They are kept as a list, sorted and deduplicated
/// whenever it fills its allocation (32 bytes per blob, against about 66 in a hash set).
pub struct References {
    base: Arc<Index>,
    stored: StoredBlobs,
    new: Vec<Id>,
    /// How many of the first entries of `new` are sorted and unique.
    settled: usize,
}

impl References {
    pub fn new(base: Arc<Index>, stored: StoredBlobs) -> References {
        References { base, stored, new: Vec::new(), settled: 0 }
    }

    /// Notes one referenced blob.
    pub fn note(&mut self, id: &Id) {
        if self.new.last() == Some(id) || self.base.contains(id) || self.stored.lock().contains(id) {
            return;
        }
        if self.new.len() == self.new.capacity() && self.new.len() > self.settled {
            self.settle();
        }
        self.new.push(*id);
    }

    /// Sorts and deduplicates the list and drops what is stored by now, so repeated references
    /// take no room. When that frees less than half of it, the list grows, so the next sort
    /// comes only after as many new pushes as it holds (never a sort every few pushes).
    fn settle(&mut self) {
        self.new.sort_unstable();
        self.new.dedup();
        {
            let stored = self.stored.lock();
            self.new.retain(|id| !stored.contains(id));
        }
        self.settled = self.new.len();
        if self.new.len() > self.new.capacity() / 2 {
            self.new.reserve(self.new.len());
        }
    }

    /// Notes a tree blob and everything its nodes reference (content and subtrees).
    pub fn note_tree(&mut self, tree_id: &Id, tree: &Tree) {
        self.note(tree_id);
        for node in &tree.nodes {
            for id in &node.content {
                self.note(id);
            }
            if let Some(sub) = &node.subtree {
                self.note(sub);
            }
        }
    }

    /// How many referenced blobs are not proven stored yet.
    #[cfg(test)]
    pub fn new_count(&mut self) -> usize {
        self.settle();
        self.new.len()
    }

    /// The referenced blobs that neither the loaded index nor the stored set holds, sorted.
    pub fn missing(&mut self) -> Vec<Id> {
        self.settle();
        self.new.clone()
    }
}

/// Writes `snapshot` after proving that every blob it references is stored: in the index the
/// backup loaded, or in a pack it stored and listed in a durable index object (`StoredBlobs`,
/// complete once the uploader has finished).
///
/// # Errors
/// `Failed` naming the first unstored blobs (no snapshot is written), or a lost lock; storage
/// errors from writing the snapshot.
pub fn commit(repo: &Repository, lock: &LockGuard, refs: &mut References, snapshot: &Snapshot) -> Result<Id> {
    let missing = refs.missing();
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().take(3).map(Id::short).collect();
        return Err(Error::failed(format!(
            "backup not committed: {} blob(s) it references were never stored in repository '{}' ({}{}); no snapshot was written, and the data stored so far is indexed for the next run",
            missing.len(),
            repo.storage().location(),
            shown.join(", "),
            if missing.len() > shown.len() { ", ..." } else { "" }
        )));
    }
    lock.ensure_held()?;
    repo.save_snapshot(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::index::{IndexBuilder, IndexedPack};
    use crate::repo::pack::{BlobType, PackEntry};
    use crate::repo::tree::{Node, NodeKind};

    fn entry(id: Id) -> PackEntry {
        PackEntry { blob_type: BlobType::Data, compressed: false, id, offset: 0, length: 1, raw_length: 1 }
    }

    fn pack(n: u8, ids: &[Id]) -> IndexedPack {
        IndexedPack {
            id: Id([n; 32]),
            salt: [0; 16],
            size: 1,
            blobs: ids.iter().map(|i| entry(*i)).collect(),
        }
    }

    fn store(stored: &StoredBlobs, ids: &[Id]) {
        for id in ids {
            stored.lock().insert(*id);
        }
    }

    #[test]
    fn only_blobs_missing_from_both_the_loaded_index_and_the_stored_packs_are_reported() {
        let (old, new, lost, tree) = (Id([1; 32]), Id([2; 32]), Id([3; 32]), Id([4; 32]));
        let mut b = IndexBuilder::default();
        b.add_file(
            Id([9; 32]),
            crate::repo::index::IndexFile { supersedes: vec![], packs: vec![pack(7, &[old])] },
        );
        let stored = StoredBlobs::default();
        let mut refs = References::new(Arc::new(b.finish()), stored.clone());
        let mut node = Node::new(b"f", NodeKind::File);
        node.content = vec![old, new, lost];
        refs.note_tree(&tree, &Tree { nodes: vec![node] });
        refs.note(&new);
        refs.note(&old);
        assert_eq!(refs.new_count(), 3, "new, lost and the tree itself, each once");
        // Stored after they were noted: proven at commit.
        store(&stored, &[new, tree]);
        assert_eq!(refs.missing(), vec![lost]);
        store(&stored, &[lost]);
        assert!(refs.missing().is_empty());
    }

    #[test]
    fn blobs_stored_when_noted_take_no_room() {
        let stored = StoredBlobs::default();
        let mut refs = References::new(Arc::new(IndexBuilder::default().finish()), stored.clone());
        let ids: Vec<Id> = (0..1000u32).map(|i| Id(*blake3::hash(&i.to_le_bytes()).as_bytes())).collect();
        store(&stored, &ids[..900]);
        for id in &ids {
            refs.note(id);
        }
        assert_eq!(refs.new.len(), 100, "only the blobs not stored yet are kept");
        assert_eq!(refs.missing(), {
            let mut m = ids[900..].to_vec();
            m.sort();
            m
        });
    }

    #[test]
    fn repeated_references_take_no_room_and_every_blob_is_checked() {
        let stored = StoredBlobs::default();
        let mut refs = References::new(Arc::new(IndexBuilder::default().finish()), stored.clone());
        let ids: Vec<Id> = (0..1000u32).map(|i| Id(*blake3::hash(&i.to_le_bytes()).as_bytes())).collect();
        for round in 0..50 {
            for id in ids.iter().skip(round % 3) {
                refs.note(id);
            }
        }
        assert!(refs.new.capacity() <= 4 * ids.len(), "capacity {}", refs.new.capacity());
        // The same few blobs referenced over and over never make the list sort on every push.
        let mut refs = References::new(Arc::new(IndexBuilder::default().finish()), stored.clone());
        for id in &ids {
            refs.note(id);
        }
        refs.settle();
        let (len, capacity) = (refs.new.len(), refs.new.capacity());
        assert!(capacity >= 2 * len, "room for as many pushes as it holds: {len} of {capacity}");
        assert_eq!(refs.new_count(), ids.len());
        store(&stored, &ids[2..]);
        assert_eq!(refs.missing(), {
            let mut m = ids[..2].to_vec();
            m.sort();
            m
        });
    }
}
