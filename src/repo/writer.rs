//! A simple, single-threaded blob writer for maintenance commands (repair, prune repacking).
//!
//! Backups use the parallel pipeline in `backup/`; this writer serves commands that store few
//! blobs. It keeps the same write order: packs first (durable on return), then one index
//! object naming them, which the caller writes before anything that references the blobs.

use std::collections::HashSet;

use bytes::Bytes;

use crate::error::Result;
use crate::id::Id;
use crate::repo::index::{Index, IndexFile, IndexedPack};
use crate::repo::pack::{BlobEncoder, BlobType, PackBuilder};
use crate::repo::Repository;
use crate::storage::Kind;

pub struct BlobWriter<'a> {
    repo: &'a Repository,
    index: &'a Index,
    encoder: BlobEncoder,
    data_pack: Option<PackBuilder>,
    tree_pack: Option<PackBuilder>,
    written: HashSet<Id>,
    packs: Vec<IndexedPack>,
    /// Plaintext bytes of the blobs stored.
    pub bytes_added: u64,
}

impl<'a> BlobWriter<'a> {
    pub fn new(repo: &'a Repository, index: &'a Index) -> BlobWriter<'a> {
        BlobWriter {
            repo,
            index,
            encoder: BlobEncoder::new(repo.config().compression_level),
            data_pack: None,
            tree_pack: None,
            written: HashSet::new(),
            packs: Vec::new(),
            bytes_added: 0,
        }
    }

    /// True when this writer stored `id` (or holds it in an open pack).
    pub fn has(&self, id: &Id) -> bool {
        self.written.contains(id)
    }

    /// Stores `raw` unless the repository (or this writer) already has it; returns its id.
    pub fn add(&mut self, blob_type: BlobType, raw: &[u8]) -> Result<Id> {
        let id = self.repo.keys().blob_id(raw);
        self.add_with_id(blob_type, id, raw)?;
        Ok(id)
    }

    /// Stores a blob whose id the caller already knows (and verified).
    pub fn add_with_id(&mut self, blob_type: BlobType, id: Id, raw: &[u8]) -> Result<()> {
        if self.index.contains(&id) {
            return Ok(());
        }
        self.add_fresh(blob_type, id, raw)
    }

    /// Stores a blob even if the index has it (repacking moves blobs out of old packs).
    pub fn add_fresh(&mut self, blob_type: BlobType, id: Id, raw: &[u8]) -> Result<()> {
        if !self.written.insert(id) {
            return Ok(());
        }
        self.bytes_added += raw.len() as u64;
        let (stored, compressed) = self.encoder.compress(raw);
        let keys = self.repo.keys();
        let slot = match blob_type {
            BlobType::Data => &mut self.data_pack,
            BlobType::Tree => &mut self.tree_pack,
        };
        let pack = slot.get_or_insert_with(|| PackBuilder::new(keys, 1 << 20));
        pack.add(blob_type, id, stored, compressed, raw.len());
        if pack.len() >= self.repo.config().pack_size as usize {
            let full = slot.take().expect("just filled");
            self.store(full)?;
        }
        Ok(())
    }

    fn store(&mut self, pack: PackBuilder) -> Result<()> {
        let p = pack.finish()?;
        self.repo.storage().put(Kind::Pack, &p.id.to_hex(), Bytes::clone(p.bytes()))?;
        self.packs.push(IndexedPack { id: p.id, salt: p.salt, size: p.size, blobs: p.entries });
        Ok(())
    }

    /// Stores the open packs without writing an index object (the caller writes one).
    pub fn finish_without_index(mut self) -> Result<(Vec<IndexedPack>, ())> {
        self.flush_open()?;
        Ok((self.packs, ()))
    }

    fn flush_open(&mut self) -> Result<()> {
        for slot in [self.data_pack.take(), self.tree_pack.take()].into_iter().flatten() {
            if !slot.is_empty() {
                self.store(slot)?;
            }
        }
        Ok(())
    }

    /// Stores the open packs and writes one index object for everything written; returns the
    /// packs (for callers that keep an index in memory) and the index id, if any.
    pub fn finish(mut self, supersedes: Vec<Id>) -> Result<(Vec<IndexedPack>, Option<Id>)> {
        self.flush_open()?;
        if self.packs.is_empty() && supersedes.is_empty() {
            return Ok((self.packs, None));
        }
        let file = IndexFile { supersedes, packs: self.packs.clone() };
        let id = self.repo.save_index(&file)?;
        Ok((self.packs, Some(id)))
    }
}
