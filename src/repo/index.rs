//! The index: which pack holds each blob, at which offset and length.
//!
//! Stored as index objects (sealed, zstd-compressed postcard of [`IndexFile`]), each listing
//! some packs and their blobs. A backup writes one every few packs and one at its end, always
//! after the packs it lists are durable, so an interrupted backup leaves reusable packs behind.
//! `supersedes` lets a prune or `repair index` replace older index objects: a reader ignores
//! the superseded ones if they are still there.
//!
//! In memory the index is one sorted array of 48-byte entries with a 65,536-slot fan-out
//! table on the first two id bytes (the layout git's pack index uses): about 48 bytes per
//! chunk, against roughly 350 for restic's map. Backups, restores and drills only ask where a
//! blob is, so they turn it into its lookup form ([`Index::into_lookup`]): 34-byte entries
//! keyed by the first 20 bytes of the id (the fan-out stands for two of them), with the full
//! id kept for every blob whose 20-byte prefix another indexed blob shares, so two indexed
//! blobs are never taken for one. Commands that list every blob with its id (check, prune,
//! repair, stats) keep the full form.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::pack::{BlobType, PackEntry};
use crate::crypto::seal::SALT_LEN;
use crate::error::{Error, Result};
use crate::id::Id;

const INDEX_FORMAT: u8 = 1;

/// The most an index object may decode to (1 GiB: about 20 million blobs; `repair index`
/// writes at most 5,000 packs per object).
const MAX_INDEX_BYTES: u64 = 1 << 30;

/// One pack as an index object lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedPack {
    pub id: Id,
    pub salt: [u8; SALT_LEN],
    /// Size of the pack object in bytes.
    pub size: u64,
    pub blobs: Vec<PackEntry>,
}

/// The content of one index object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexFile {
    pub supersedes: Vec<Id>,
    pub packs: Vec<IndexedPack>,
}

impl IndexFile {
    pub fn encode(&self) -> Vec<u8> {
        let body = postcard::to_stdvec(self).expect("serializable");
        let mut out = vec![INDEX_FORMAT];
        out.extend_from_slice(&zstd::bulk::compress(&body, 3).expect("zstd"));
        out
    }

    /// # Errors
    /// `Corrupt` naming `what` when the bytes do not decode.
    pub fn decode(bytes: &[u8], what: &str) -> Result<IndexFile> {
        Self::decode_bounded(bytes, what, MAX_INDEX_BYTES)
    }

    /// [`IndexFile::decode`] with another bound on the decoded size: the fuzz target uses a
    /// small one, so an input that decompresses to a gigabyte does not take seconds per run.
    pub(crate) fn decode_bounded(bytes: &[u8], what: &str, max_bytes: u64) -> Result<IndexFile> {
        match bytes.first() {
            Some(&INDEX_FORMAT) => {}
            other => return Err(Error::corrupt(what, format!("unknown index format {other:?}"))),
        }
        // Bounded: a planted object must not make a reader allocate without limit.
        let mut body = Vec::new();
        let decoder = zstd::stream::read::Decoder::new(&bytes[1..])
            .map_err(|e| Error::corrupt(what, format!("zstd: {e}")))?;
        std::io::Read::read_to_end(&mut std::io::Read::take(decoder, max_bytes + 1), &mut body)
            .map_err(|e| Error::corrupt(what, format!("zstd: {e}")))?;
        if body.len() as u64 > max_bytes {
            return Err(Error::corrupt(what, format!("decodes to more than {max_bytes} bytes")));
        }
        postcard::from_bytes(&body).map_err(|e| Error::corrupt(what, format!("decoding: {e}")))
    }

    pub fn blob_count(&self) -> usize {
        self.packs.iter().map(|p| p.blobs.len()).sum()
    }
}

/// A pack as the in-memory index knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackRef {
    pub id: Id,
    pub salt: [u8; SALT_LEN],
    pub size: u64,
}

const TREE_BIT: u32 = 1 << 31;
const COMPRESSED_BIT: u32 = 1 << 30;
const PACK_MASK: u32 = COMPRESSED_BIT - 1;

/// 48 bytes: the id, the pack number with two flag bits, offset, length, raw length.
#[derive(Clone, Copy, Debug)]
struct Entry {
    id: Id,
    pack_and_flags: u32,
    offset: u32,
    length: u32,
    raw_length: u32,
}

impl Entry {
    fn to_pack_entry(self) -> PackEntry {
        PackEntry {
            blob_type: if self.pack_and_flags & TREE_BIT != 0 { BlobType::Tree } else { BlobType::Data },
            compressed: self.pack_and_flags & COMPRESSED_BIT != 0,
            id: self.id,
            offset: self.offset,
            length: self.length,
            raw_length: self.raw_length,
        }
    }
}

/// Bytes of the id a lookup entry keeps: the 18 after the two the fan-out slot stands for,
/// so a lookup key is the id's first 20 bytes (160 bits).
const KEY_TAIL: usize = 18;
const KEY_LEN: usize = KEY_TAIL + 2;

/// 34 bytes, no padding: the key's tail and the location fields of [`Entry`], little-endian.
#[derive(Clone, Copy, Debug)]
struct ShortEntry {
    key: [u8; KEY_TAIL],
    pack_and_flags: [u8; 4],
    offset: [u8; 4],
    length: [u8; 4],
    raw_length: [u8; 4],
}

impl ShortEntry {
    fn of(e: &Entry) -> ShortEntry {
        ShortEntry {
            key: e.id.0[2..KEY_LEN].try_into().expect("18 bytes"),
            pack_and_flags: e.pack_and_flags.to_le_bytes(),
            offset: e.offset.to_le_bytes(),
            length: e.length.to_le_bytes(),
            raw_length: e.raw_length.to_le_bytes(),
        }
    }

    /// The entry of `id`, whose key this is.
    fn entry_of(&self, id: Id) -> Entry {
        Entry {
            id,
            pack_and_flags: u32::from_le_bytes(self.pack_and_flags),
            offset: u32::from_le_bytes(self.offset),
            length: u32::from_le_bytes(self.length),
            raw_length: u32::from_le_bytes(self.raw_length),
        }
    }
}

/// Builds an [`Index`] one index object at a time, so a large repository never holds all of
/// its decoded index objects at once (memory stays near the final 48 bytes per chunk).
/// Objects may arrive in any order: what superseded objects alone list is dropped at the end.
#[derive(Default)]
pub struct IndexBuilder {
    index: Index,
    file_ids: Vec<Id>,
    superseded: HashSet<Id>,
    /// For each pack number, the index objects (by arrival number) that list it.
    pack_files: Vec<Vec<u32>>,
}

impl IndexBuilder {
    pub fn add_file(&mut self, id: Id, file: IndexFile) {
        let fno = self.file_ids.len() as u32;
        self.file_ids.push(id);
        self.superseded.extend(file.supersedes.iter().copied());
        for p in &file.packs {
            let n = self.index.add_pack(p) as usize;
            if self.pack_files.len() <= n {
                self.pack_files.resize(n + 1, Vec::new());
            }
            self.pack_files[n].push(fno);
        }
    }

    pub fn finish(self) -> Index {
        let live_file: Vec<bool> = self.file_ids.iter().map(|id| !self.superseded.contains(id)).collect();
        let live_pack: Vec<bool> =
            self.pack_files.iter().map(|files| files.iter().any(|&f| live_file[f as usize])).collect();
        let mut index = self.index;
        if live_pack.iter().any(|l| !l) {
            // Renumber the packs that some live index object still lists.
            let mut renumber = vec![u32::MAX; index.packs.len()];
            let mut packs = Vec::new();
            for (n, p) in index.packs.iter().enumerate() {
                if live_pack.get(n).copied().unwrap_or(false) {
                    renumber[n] = packs.len() as u32;
                    packs.push(*p);
                }
            }
            index.entries.retain(|e| renumber[(e.pack_and_flags & PACK_MASK) as usize] != u32::MAX);
            for e in &mut index.entries {
                let flags = e.pack_and_flags & !PACK_MASK;
                e.pack_and_flags = flags | renumber[(e.pack_and_flags & PACK_MASK) as usize];
            }
            index.pack_numbers = packs.iter().enumerate().map(|(n, p)| (p.id, n as u32)).collect();
            index.packs = packs;
        }
        index.files = self.file_ids.into_iter().filter(|id| !self.superseded.contains(id)).collect();
        index.finish();
        index
    }
}

/// Where one blob is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    pub pack: PackRef,
    pub entry: PackEntry,
}

/// The merged in-memory index of a repository.
#[derive(Default)]
pub struct Index {
    packs: Vec<PackRef>,
    pack_numbers: HashMap<Id, u32>,
    /// The full form's entries, sorted by id (empty in the lookup form).
    entries: Vec<Entry>,
    /// The lookup form's entries, sorted by key within each fan-out slot.
    short: Vec<ShortEntry>,
    /// The lookup form's blobs whose 20-byte prefix another blob shares, in full, sorted by id.
    /// Their prefix is in no short entry.
    collided: Vec<Entry>,
    lookup_only: bool,
    fanout: Vec<u32>,
    /// Ids of the index objects merged into this one (after dropping superseded ones).
    pub files: Vec<Id>,
}

impl Index {
    /// Merges index objects; entries of superseded objects are left out, and a blob stored in
    /// several packs is kept once.
    pub fn from_files(files: Vec<(Id, IndexFile)>) -> Index {
        let mut b = IndexBuilder::default();
        for (id, f) in files {
            b.add_file(id, f);
        }
        b.finish()
    }

    fn add_pack(&mut self, p: &IndexedPack) -> u32 {
        let n = *self.pack_numbers.entry(p.id).or_insert_with(|| {
            self.packs.push(PackRef { id: p.id, salt: p.salt, size: p.size });
            (self.packs.len() - 1) as u32
        });
        assert!(n <= PACK_MASK, "more than 2^30 packs");
        for b in &p.blobs {
            let mut flags = n;
            if b.blob_type == BlobType::Tree {
                flags |= TREE_BIT;
            }
            if b.compressed {
                flags |= COMPRESSED_BIT;
            }
            self.entries.push(Entry {
                id: b.id,
                pack_and_flags: flags,
                offset: b.offset,
                length: b.length,
                raw_length: b.raw_length,
            });
        }
        n
    }

    /// Adds packs after loading (a backup's own new packs), keeping the index searchable.
    pub fn extend(&mut self, packs: &[IndexedPack]) {
        assert!(!self.lookup_only, "the lookup form of the index cannot be extended");
        for p in packs {
            self.add_pack(p);
        }
        self.finish();
    }

    fn finish(&mut self) {
        // A blob in several packs is kept once, in the pack added first: index objects are
        // added before trash objects, so a live pack wins over a marked one (which an
        // interrupted sweep may already have deleted). An unstable sort alone would pick
        // either, at random.
        self.entries.sort_unstable_by_key(|e| (e.id, e.pack_and_flags & PACK_MASK));
        self.entries.dedup_by(|a, b| a.id == b.id);
        self.entries.shrink_to_fit();
        self.packs.shrink_to_fit();
        self.fanout = vec![0u32; 65537];
        for e in &self.entries {
            let slot = u16::from_be_bytes([e.id.0[0], e.id.0[1]]) as usize;
            self.fanout[slot + 1] += 1;
        }
        for i in 1..self.fanout.len() {
            self.fanout[i] += self.fanout[i - 1];
        }
    }

    /// The lookup form: the same answers to [`Index::lookup`], [`Index::contains`],
    /// [`Index::pack`] and [`Index::packs`] in 34 bytes per blob instead of 48. A blob whose
    /// 20-byte prefix another indexed blob shares keeps its full id, so two indexed blobs are
    /// never taken for one. [`Index::iter`], [`Index::to_packs`] and [`Index::extend`] need
    /// the full form and panic on this one.
    pub fn into_lookup(mut self) -> Index {
        if self.lookup_only {
            return self;
        }
        let entries = std::mem::take(&mut self.entries);
        let mut short = Vec::with_capacity(entries.len());
        let mut collided = Vec::new();
        let mut fanout = vec![0u32; 65537];
        let mut i = 0;
        while i < entries.len() {
            let prefix = &entries[i].id.0[..KEY_LEN];
            let mut j = i + 1;
            while j < entries.len() && entries[j].id.0[..KEY_LEN] == *prefix {
                j += 1;
            }
            if j - i == 1 {
                short.push(ShortEntry::of(&entries[i]));
                fanout[u16::from_be_bytes([prefix[0], prefix[1]]) as usize + 1] += 1;
            } else {
                collided.extend_from_slice(&entries[i..j]);
            }
            i = j;
        }
        drop(entries);
        for i in 1..fanout.len() {
            fanout[i] += fanout[i - 1];
        }
        short.shrink_to_fit();
        self.short = short;
        self.collided = collided;
        self.fanout = fanout;
        self.lookup_only = true;
        self
    }

    /// True for the lookup form ([`Index::into_lookup`]).
    pub fn is_lookup_only(&self) -> bool {
        self.lookup_only
    }

    fn find(&self, id: &Id) -> Option<Entry> {
        let slot = u16::from_be_bytes([id.0[0], id.0[1]]) as usize;
        if self.lookup_only {
            if let Ok(i) = self.collided.binary_search_by(|e| e.id.cmp(id)) {
                return Some(self.collided[i]);
            }
            if self.short.is_empty() {
                return None;
            }
            let (lo, hi) = (self.fanout[slot] as usize, self.fanout[slot + 1] as usize);
            let key = &id.0[2..KEY_LEN];
            let range = &self.short[lo..hi];
            return range
                .binary_search_by(|e| e.key.as_slice().cmp(key))
                .ok()
                .map(|i| range[i].entry_of(*id));
        }
        if self.entries.is_empty() {
            return None;
        }
        let (lo, hi) = (self.fanout[slot] as usize, self.fanout[slot + 1] as usize);
        let range = &self.entries[lo..hi];
        range.binary_search_by(|e| e.id.cmp(id)).ok().map(|i| range[i])
    }

    fn full_form(&self, what: &str) {
        assert!(!self.lookup_only, "{what} needs the full form of the index, not its lookup form");
    }

    pub fn contains(&self, id: &Id) -> bool {
        self.find(id).is_some()
    }

    pub fn lookup(&self, id: &Id) -> Option<BlobLocation> {
        self.find(id).map(|e| BlobLocation {
            pack: self.packs[(e.pack_and_flags & PACK_MASK) as usize],
            entry: e.to_pack_entry(),
        })
    }

    pub fn blob_count(&self) -> usize {
        self.entries.len() + self.short.len() + self.collided.len()
    }

    pub fn packs(&self) -> &[PackRef] {
        &self.packs
    }

    pub fn pack(&self, id: &Id) -> Option<PackRef> {
        self.pack_numbers.get(id).map(|&n| self.packs[n as usize])
    }

    /// Every blob with its location (in id order). Full form only.
    pub fn iter(&self) -> impl Iterator<Item = BlobLocation> + '_ {
        self.full_form("listing every blob");
        self.entries.iter().map(|e| BlobLocation {
            pack: self.packs[(e.pack_and_flags & PACK_MASK) as usize],
            entry: e.to_pack_entry(),
        })
    }

    /// The index as packs with their blobs (in offset order), leaving out `skip`. Full form
    /// only.
    pub fn to_packs(&self, skip: &HashSet<Id>) -> Vec<IndexedPack> {
        self.full_form("writing the index out");
        let mut packs: Vec<IndexedPack> = self
            .packs
            .iter()
            .map(|p| IndexedPack { id: p.id, salt: p.salt, size: p.size, blobs: Vec::new() })
            .collect();
        for e in &self.entries {
            packs[(e.pack_and_flags & PACK_MASK) as usize].blobs.push(e.to_pack_entry());
        }
        packs.retain(|p| !skip.contains(&p.id) && !p.blobs.is_empty());
        for p in &mut packs {
            p.blobs.sort_by_key(|b| b.offset);
        }
        packs
    }

    /// Bytes of memory the entry table and fan-out use, for the memory figure in docs.
    pub fn memory_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.short.capacity() * std::mem::size_of::<ShortEntry>()
            + self.collided.capacity() * std::mem::size_of::<Entry>()
            + self.fanout.capacity() * 4
            + self.packs.capacity() * std::mem::size_of::<PackRef>()
            + self.pack_numbers.capacity() * (32 + 4 + 8)
    }

    /// Size in bytes of one in-memory entry.
    pub const ENTRY_SIZE: usize = std::mem::size_of::<Entry>();
    /// Size in bytes of one entry of the lookup form.
    pub const LOOKUP_ENTRY_SIZE: usize = std::mem::size_of::<ShortEntry>();
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(id: Id, offset: u32, t: BlobType) -> PackEntry {
        PackEntry { blob_type: t, compressed: offset % 2 == 0, id, offset, length: 100, raw_length: 200 }
    }

    #[test]
    fn an_index_object_that_decompresses_past_the_bound_is_refused() {
        let mut bomb = vec![INDEX_FORMAT];
        bomb.extend(zstd::encode_all(&vec![0u8; 2 << 20][..], 19).unwrap());
        let err = IndexFile::decode_bounded(&bomb, "index x", 1 << 20).unwrap_err().to_string();
        assert!(err.contains("index x") && err.contains("more than 1048576 bytes"), "{err}");
    }

    #[test]
    fn entry_is_48_bytes() {
        assert_eq!(Index::ENTRY_SIZE, 48);
    }

    proptest! {
        #[test]
        fn encode_decode_and_lookup(n in 1usize..300) {
            let ids: Vec<Id> = (0..n).map(|i| Id::of_bytes(&i.to_le_bytes())).collect();
            let file = IndexFile {
                supersedes: vec![Id::of_bytes(b"old")],
                packs: vec![IndexedPack {
                    id: Id::of_bytes(b"p"),
                    salt: [3; SALT_LEN],
                    size: 12345,
                    blobs: ids.iter().enumerate().map(|(i, id)| entry(*id, i as u32, if i % 3 == 0 { BlobType::Tree } else { BlobType::Data })).collect(),
                }],
            };
            let back = IndexFile::decode(&file.encode(), "index").unwrap();
            prop_assert_eq!(&back, &file);
            let index = Index::from_files(vec![(Id::of_bytes(b"f"), back)]);
            for (i, id) in ids.iter().enumerate() {
                let loc = index.lookup(id).unwrap();
                prop_assert_eq!(loc.entry.offset, i as u32);
                prop_assert_eq!(loc.entry.blob_type == BlobType::Tree, i % 3 == 0);
                prop_assert_eq!(loc.pack.size, 12345);
            }
            prop_assert!(!index.contains(&Id::of_bytes(b"absent")));
        }
    }

    #[test]
    fn builder_drops_packs_only_superseded_objects_list() {
        let (a, b) = (Id::of_bytes(b"a"), Id::of_bytes(b"b"));
        let p1 = IndexedPack {
            id: Id::of_bytes(b"p1"),
            salt: [0; SALT_LEN],
            size: 1,
            blobs: vec![entry(a, 0, BlobType::Data)],
        };
        let p2 = IndexedPack {
            id: Id::of_bytes(b"p2"),
            salt: [0; SALT_LEN],
            size: 2,
            blobs: vec![entry(b, 0, BlobType::Tree)],
        };
        // The old object lists both packs; the new one supersedes it and keeps only p2.
        let old = IndexFile { supersedes: vec![], packs: vec![p1.clone(), p2.clone()] };
        let new = IndexFile { supersedes: vec![Id::of_bytes(b"old")], packs: vec![p2] };
        for order in [true, false] {
            let mut builder = IndexBuilder::default();
            if order {
                builder.add_file(Id::of_bytes(b"old"), old.clone());
                builder.add_file(Id::of_bytes(b"new"), new.clone());
            } else {
                builder.add_file(Id::of_bytes(b"new"), new.clone());
                builder.add_file(Id::of_bytes(b"old"), old.clone());
            }
            let index = builder.finish();
            assert!(!index.contains(&a), "p1 is listed only by the superseded object");
            assert_eq!(index.lookup(&b).unwrap().pack.size, 2);
            assert_eq!(index.packs().len(), 1);
            assert!(index.pack(&p1.id).is_none());
        }
    }

    #[test]
    fn a_blob_in_a_live_pack_and_a_marked_one_is_found_in_the_live_one() {
        // Many blobs, each in a live pack and again in a marked pack added after it (as
        // load_index adds trash objects after index objects): every lookup must give the live
        // pack, whatever order an unstable sort would leave equal ids in.
        let ids: Vec<Id> = (0..2000u32).map(|i| Id::of_bytes(&i.to_le_bytes())).collect();
        let pack = |name: &[u8], size| IndexedPack {
            id: Id::of_bytes(name),
            salt: [0; SALT_LEN],
            size,
            blobs: ids.iter().enumerate().map(|(i, id)| entry(*id, i as u32, BlobType::Data)).collect(),
        };
        let live = IndexFile { supersedes: vec![], packs: vec![pack(b"live", 1)] };
        let marked = IndexFile { supersedes: vec![], packs: vec![pack(b"marked", 2)] };
        let index = Index::from_files(vec![(Id::of_bytes(b"index"), live), (Id::of_bytes(b"trash"), marked)]);
        for id in &ids {
            assert_eq!(index.lookup(id).unwrap().pack.size, 1);
        }
    }

    #[test]
    fn superseded_files_are_ignored() {
        let a = Id::of_bytes(b"a");
        let old = IndexFile {
            supersedes: vec![],
            packs: vec![IndexedPack {
                id: Id::of_bytes(b"p1"),
                salt: [0; SALT_LEN],
                size: 1,
                blobs: vec![entry(a, 0, BlobType::Data)],
            }],
        };
        let new = IndexFile { supersedes: vec![Id::of_bytes(b"old")], packs: vec![] };
        let index = Index::from_files(vec![(Id::of_bytes(b"old"), old), (Id::of_bytes(b"new"), new)]);
        assert!(!index.contains(&a));
        assert_eq!(index.files, vec![Id::of_bytes(b"new")]);
    }

    fn with_prefix(prefix: &[u8], rest: u8) -> Id {
        let mut b = [rest; 32];
        b[..prefix.len()].copy_from_slice(prefix);
        Id(b)
    }

    fn one_pack(name: &[u8], ids: &[Id]) -> IndexFile {
        IndexFile {
            supersedes: vec![],
            packs: vec![IndexedPack {
                id: Id::of_bytes(name),
                salt: [0; SALT_LEN],
                size: 7,
                blobs: ids
                    .iter()
                    .enumerate()
                    .map(|(i, id)| entry(*id, i as u32 * 10, BlobType::Data))
                    .collect(),
            }],
        }
    }

    #[test]
    fn a_lookup_entry_is_34_bytes() {
        assert_eq!(Index::LOOKUP_ENTRY_SIZE, 34);
    }

    #[test]
    fn blobs_whose_ids_share_the_lookup_key_keep_their_full_ids() {
        // Three indexed ids with one 20-byte prefix, one more with a 19-byte common prefix, and
        // ids with that prefix that are not indexed: each is found at its own place or not at all.
        let prefix = [0xab; KEY_LEN];
        let (a, b, c) = (with_prefix(&prefix, 1), with_prefix(&prefix, 2), with_prefix(&prefix, 3));
        let near = with_prefix(&prefix[..KEY_LEN - 1], 4);
        let others: Vec<Id> = (0..500u32).map(|i| Id::of_bytes(&i.to_le_bytes())).collect();
        let mut ids = vec![a, b, c, near];
        ids.extend(&others);
        let index = Index::from_files(vec![(Id::of_bytes(b"f"), one_pack(b"p", &ids))]).into_lookup();
        assert!(index.is_lookup_only());
        assert_eq!(index.blob_count(), ids.len());
        for (i, id) in ids.iter().enumerate() {
            let loc = index.lookup(id).unwrap_or_else(|| panic!("blob {i} not found"));
            assert_eq!(loc.entry.offset, i as u32 * 10, "blob {i} found at another blob's place");
            assert_eq!(loc.entry.id, *id);
        }
        for absent in
            [with_prefix(&prefix, 9), with_prefix(&prefix[..KEY_LEN - 1], 9), Id::of_bytes(b"absent")]
        {
            assert!(!index.contains(&absent), "{absent:?}");
        }
    }

    #[test]
    fn a_blob_stored_twice_is_one_lookup_entry_in_the_first_pack() {
        let id = Id::of_bytes(b"twice");
        let index = Index::from_files(vec![
            (Id::of_bytes(b"f1"), one_pack(b"first", &[id])),
            (Id::of_bytes(b"f2"), one_pack(b"second", &[id])),
        ])
        .into_lookup();
        assert_eq!(index.blob_count(), 1);
        assert_eq!(index.lookup(&id).unwrap().pack.id, Id::of_bytes(b"first"));
    }

    #[test]
    #[should_panic(expected = "full form")]
    fn the_lookup_form_refuses_to_list_its_blobs() {
        let index = Index::from_files(vec![(Id::of_bytes(b"f"), one_pack(b"p", &[Id::of_bytes(b"x")]))])
            .into_lookup();
        let _ = index.iter().count();
    }

    proptest! {
        #[test]
        fn the_lookup_form_answers_as_the_full_form(n in 0usize..400, shared in 0usize..4) {
            // Random ids plus a few that share 20-byte prefixes with each other.
            let mut ids: Vec<Id> = (0..n).map(|i| Id::of_bytes(&(i as u64).to_le_bytes())).collect();
            for k in 0..shared {
                ids.push(with_prefix(&[k as u8; KEY_LEN], 1));
                ids.push(with_prefix(&[k as u8; KEY_LEN], 2));
            }
            let file = one_pack(b"p", &ids);
            let full = Index::from_files(vec![(Id::of_bytes(b"f"), file.clone())]);
            let lookup = Index::from_files(vec![(Id::of_bytes(b"f"), file)]).into_lookup();
            prop_assert_eq!(full.blob_count(), lookup.blob_count());
            let probes = ids.iter().copied().chain((0..50u64).map(|i| Id::of_bytes(&(i + 1_000_000).to_le_bytes())));
            for id in probes {
                prop_assert_eq!(full.lookup(&id), lookup.lookup(&id));
            }
        }
    }
}
