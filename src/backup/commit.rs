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

use std::collections::HashSet;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::index::{Index, IndexedPack};
use crate::repo::lock::LockGuard;
use crate::repo::snapshot::Snapshot;
use crate::repo::tree::Tree;
use crate::repo::Repository;

/// The blobs a backup's snapshot references that the index it loaded does not hold.
///
/// Kept as a list, sorted and deduplicated whenever it fills its allocation, rather than a
/// hash set: 32 bytes per blob instead of about 66 (a hash set's buckets), which matters for
/// the million new blobs of a first backup of many small files.
pub struct References {
    base: Arc<Index>,
    new: Vec<Id>,
    /// How many of the first entries of `new` are sorted and unique.
    settled: usize,
}

impl References {
    pub fn new(base: Arc<Index>) -> References {
        References { base, new: Vec::new(), settled: 0 }
    }

    /// Notes one referenced blob.
    pub fn note(&mut self, id: &Id) {
        if self.new.last() == Some(id) || self.base.contains(id) {
            return;
        }
        if self.new.len() == self.new.capacity() && self.new.len() > self.settled {
            self.settle();
        }
        self.new.push(*id);
    }

    /// Sorts and deduplicates the list, so repeated references take no room. When that frees
    /// less than half of it, the list grows, so the next sort comes only after as many new
    /// pushes as it holds (never a sort every few pushes).
    fn settle(&mut self) {
        self.new.sort_unstable();
        self.new.dedup();
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

    /// How many referenced blobs are not in the loaded index.
    #[cfg(test)]
    pub fn new_count(&mut self) -> usize {
        self.settle();
        self.new.len()
    }

    /// The referenced blobs that neither the loaded index nor `stored` holds, sorted.
    pub fn missing(&mut self, stored: &[IndexedPack]) -> Vec<Id> {
        self.settle();
        let have: HashSet<&Id> = stored.iter().flat_map(|p| p.blobs.iter().map(|b| &b.id)).collect();
        self.new.iter().filter(|id| !have.contains(id)).copied().collect()
    }
}

/// Writes `snapshot` after proving that every blob it references is stored.
///
/// `stored` are the packs this backup put and listed in durable index objects.
///
/// # Errors
/// `Failed` naming the first unstored blobs (no snapshot is written), or a lost lock; storage
/// errors from writing the snapshot.
pub fn commit(
    repo: &Repository,
    lock: &LockGuard,
    refs: &mut References,
    stored: &[IndexedPack],
    snapshot: &Snapshot,
) -> Result<Id> {
    let missing = refs.missing(stored);
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
    use crate::repo::index::IndexBuilder;
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

    #[test]
    fn only_blobs_missing_from_both_the_loaded_index_and_the_stored_packs_are_reported() {
        let (old, new, lost, tree) = (Id([1; 32]), Id([2; 32]), Id([3; 32]), Id([4; 32]));
        let mut b = IndexBuilder::default();
        b.add_file(
            Id([9; 32]),
            crate::repo::index::IndexFile { supersedes: vec![], packs: vec![pack(7, &[old])] },
        );
        let mut refs = References::new(Arc::new(b.finish()));
        let mut node = Node::new(b"f", NodeKind::File);
        node.content = vec![old, new, lost];
        refs.note_tree(&tree, &Tree { nodes: vec![node] });
        refs.note(&new);
        refs.note(&old);
        assert_eq!(refs.new_count(), 3, "new, lost and the tree itself, each once");
        assert_eq!(refs.missing(&[pack(8, &[new, tree])]), vec![lost]);
        assert!(refs.missing(&[pack(8, &[new, tree, lost])]).is_empty());
    }

    #[test]
    fn repeated_references_take_no_room_and_every_blob_is_checked() {
        let mut refs = References::new(Arc::new(IndexBuilder::default().finish()));
        let ids: Vec<Id> = (0..1000u32).map(|i| Id(*blake3::hash(&i.to_le_bytes()).as_bytes())).collect();
        for round in 0..50 {
            for id in ids.iter().skip(round % 3) {
                refs.note(id);
            }
        }
        assert!(refs.new.capacity() <= 4 * ids.len(), "capacity {}", refs.new.capacity());
        // The same few blobs referenced over and over never make the list sort on every push.
        let mut refs = References::new(Arc::new(IndexBuilder::default().finish()));
        for id in &ids {
            refs.note(id);
        }
        refs.settle();
        let (len, capacity) = (refs.new.len(), refs.new.capacity());
        assert!(capacity >= 2 * len, "room for as many pushes as it holds: {len} of {capacity}");
        assert_eq!(refs.new_count(), ids.len());
        let all_but_two = pack(1, &ids[2..]);
        assert_eq!(refs.missing(std::slice::from_ref(&all_but_two)), {
            let mut m = ids[..2].to_vec();
            m.sort();
            m
        });
    }
}
