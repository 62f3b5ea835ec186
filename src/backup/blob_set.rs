//! A compact set of blob ids, for the two sets a backup holds for every new blob: the blobs
//! it has taken to store (the dedup between its own threads, `Shared`) and the blobs stored
//! in packs it has indexed (the proof at commit, `commit::References`).
//!
//! A first backup of a million small files takes a million new blobs. A hash set of 32-byte
//! ids costs about 66 bytes per id (buckets at most 7/8 full, doubling) and half as much again
//! while it grows. Here the ids live in one sorted list (32 bytes per id), found through a
//! table of where each 16-bit prefix starts (a few probes within one or two cache lines), and
//! the newest ids in a small hash set that is merged into the list, in place, when it holds
//! `MERGE_AT` ids or an eighth of the list, whichever is more (so merging costs at most nine
//! moves per id however large the list grows). Ids are compared whole: nothing is shortened,
//! so two different blobs are never taken for one.

use std::collections::HashSet;

use crate::id::Id;

/// Ids held in the hash set before they are merged into the sorted list (at least).
const MERGE_AT: usize = 1 << 16;
/// Prefixes of the lookup table (the first two bytes of an id).
const PREFIXES: usize = 1 << 16;

#[derive(Default)]
pub struct BlobSet {
    sorted: Vec<Id>,
    /// `starts[p]..starts[p + 1]` is where ids of prefix `p` are in `sorted` (empty until the
    /// first merge).
    starts: Vec<u32>,
    recent: HashSet<Id>,
}

fn prefix(id: &Id) -> usize {
    usize::from(u16::from_be_bytes([id.0[0], id.0[1]]))
}

impl BlobSet {
    /// Adds `id`; false when it was already there.
    pub fn insert(&mut self, id: Id) -> bool {
        if self.in_sorted(&id) || !self.recent.insert(id) {
            return false;
        }
        if self.recent.len() >= MERGE_AT.max(self.sorted.len() / 8) {
            self.merge();
        }
        true
    }

    pub fn contains(&self, id: &Id) -> bool {
        self.recent.contains(id) || self.in_sorted(id)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.sorted.len() + self.recent.len()
    }

    fn in_sorted(&self, id: &Id) -> bool {
        if self.starts.is_empty() {
            return false;
        }
        let p = prefix(id);
        let (from, to) = (self.starts[p] as usize, self.starts[p + 1] as usize);
        self.sorted[from..to].binary_search(id).is_ok()
    }

    /// Moves the hash set's ids into the sorted list: merged from the back, in place, so the
    /// list never exists twice.
    fn merge(&mut self) {
        let mut add: Vec<Id> = self.recent.drain().collect();
        add.sort_unstable();
        let (n, m) = (self.sorted.len(), add.len());
        self.sorted.reserve_exact(m);
        self.sorted.resize(n + m, Id::default());
        let (mut i, mut j) = (n, m);
        for k in (0..n + m).rev() {
            if j == 0 {
                break;
            }
            if i > 0 && self.sorted[i - 1] > add[j - 1] {
                self.sorted[k] = self.sorted[i - 1];
                i -= 1;
            } else {
                self.sorted[k] = add[j - 1];
                j -= 1;
            }
        }
        self.starts.clear();
        self.starts.resize(PREFIXES + 1, 0);
        for id in &self.sorted {
            self.starts[prefix(id) + 1] += 1;
        }
        for p in 0..PREFIXES {
            self.starts[p + 1] += self.starts[p];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(i: u32) -> Id {
        Id(*blake3::hash(&i.to_le_bytes()).as_bytes())
    }

    #[test]
    fn every_id_is_found_once_across_merges() {
        let mut p = BlobSet::default();
        let n = 3 * MERGE_AT as u32 + 17;
        for i in 0..n {
            assert!(p.insert(id(i)), "{i} is new");
        }
        assert_eq!(p.len(), n as usize);
        assert!(p.sorted.len() >= 3 * MERGE_AT, "merged into the list");
        assert!(p.sorted.windows(2).all(|w| w[0] < w[1]), "sorted without duplicates");
        for i in (0..n).step_by(97) {
            assert!(p.contains(&id(i)));
            assert!(!p.insert(id(i)), "{i} is already there");
        }
        for i in n..n + 1000 {
            assert!(!p.contains(&id(i)));
        }
        assert_eq!(p.len(), n as usize);
    }

    #[test]
    fn ids_differing_only_past_the_prefix_are_distinct() {
        let mut p = BlobSet::default();
        let base = Id([7; 32]);
        for last in 0..=255u8 {
            let mut x = base;
            x.0[31] = last;
            assert!(p.insert(x));
        }
        p.merge();
        let mut other = base;
        other.0[30] = 8;
        assert!(!p.contains(&other));
        assert!(p.insert(other));
        assert_eq!(p.len(), 257);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn answers_like_a_hash_set(ops in proptest::collection::vec((0u16..400, any::<bool>()), 0..3000), merges in proptest::collection::vec(0usize..3000, 0..6)) {
            let mut p = BlobSet::default();
            let mut model = HashSet::new();
            // Small ids (first bytes shared) stress the prefix table's edges.
            let make = |k: u16| { let mut x = Id::default(); x.0[1] = (k % 3) as u8; x.0[31] = (k >> 8) as u8; x.0[30] = k as u8; x };
            for (step, (k, add)) in ops.iter().enumerate() {
                if merges.contains(&step) { p.merge(); }
                let x = make(*k);
                if *add { prop_assert_eq!(p.insert(x), model.insert(x)); } else { prop_assert_eq!(p.contains(&x), model.contains(&x)); }
            }
            prop_assert_eq!(p.len(), model.len());
        }
    }
}
