//! Packs: many encrypted blobs in one object, with an encrypted header at the end.
//!
//! Layout (little-endian):
//!
//! ```text
//! "RPK1" | salt (16) | blob 0 | blob 1 | ... | sealed header | header length (u32)
//! blob         = nonce (12) | AES-256-GCM(zstd or raw plaintext) | tag (16)
//! sealed header= nonce (12) | AES-256-GCM(entries) | tag (16)
//! entry        = type (u8) | flags (u8: bit 0 compressed) | id (32) | length (u32) | raw length (u32)
//! ```
//!
//! Blobs are encrypted under the subkey of the pack's salt, with `type || id` as associated
//! data; entries list the blobs in order, so offsets follow from the lengths. The pack's name is
//! the BLAKE3 hash of all its bytes. Only the total size of a pack and its blob count (from the
//! header length) are visible to whoever holds the storage.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::crypto::seal::{SubkeyCipher, BLOB_OVERHEAD, SALT_LEN};
use crate::crypto::Keys;
use crate::error::{Error, Result};
use crate::id::Id;

pub const PACK_MAGIC: &[u8; 4] = b"RPK1";
/// Bytes before the first blob.
pub const PACK_PREFIX: usize = 4 + SALT_LEN;
const ENTRY_LEN: usize = 1 + 1 + 32 + 4 + 4;
const HEADER_AAD: &[u8] = b"rempart pack header";

/// What a blob holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BlobType {
    Data,
    Tree,
}

impl BlobType {
    fn byte(self) -> u8 {
        match self {
            BlobType::Data => 0,
            BlobType::Tree => 1,
        }
    }
}

/// One blob as a pack header (and an index) records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackEntry {
    pub blob_type: BlobType,
    pub compressed: bool,
    pub id: Id,
    /// Offset of the blob's envelope inside the pack.
    pub offset: u32,
    /// Length of the envelope (nonce, ciphertext, tag).
    pub length: u32,
    /// Length of the plaintext.
    pub raw_length: u32,
}

fn aad(blob_type: BlobType, id: &Id) -> [u8; 33] {
    let mut a = [0u8; 33];
    a[0] = blob_type.byte();
    a[1..].copy_from_slice(&id.0);
    a
}

/// Reusable compression state of one worker.
pub struct BlobEncoder {
    compressor: zstd::bulk::Compressor<'static>,
    scratch: Vec<u8>,
}

impl BlobEncoder {
    pub fn new(level: i32) -> BlobEncoder {
        BlobEncoder {
            compressor: zstd::bulk::Compressor::new(level).expect("zstd level validated by config"),
            scratch: Vec::new(),
        }
    }

    /// Compresses `raw`; returns the bytes to store and whether they are compressed. A blob
    /// that zstd does not shrink is stored as is.
    pub fn compress<'a>(&'a mut self, raw: &'a [u8]) -> (&'a [u8], bool) {
        let bound = zstd::zstd_safe::compress_bound(raw.len());
        if self.scratch.capacity() < bound {
            self.scratch.reserve(bound - self.scratch.len());
        }
        self.scratch.clear();
        match self.compressor.compress_to_buffer(raw, &mut self.scratch) {
            Ok(n) if n < raw.len() => (&self.scratch[..n], true),
            _ => (raw, false),
        }
    }
}

/// A finished pack, ready to be stored under its content address.
pub struct FinishedPack {
    pub id: Id,
    pub salt: [u8; SALT_LEN],
    pub bytes: Bytes,
    pub entries: Vec<PackEntry>,
}

/// Collects blobs into one pack.
pub struct PackBuilder {
    salt: [u8; SALT_LEN],
    cipher: SubkeyCipher,
    buf: Vec<u8>,
    entries: Vec<PackEntry>,
}

impl PackBuilder {
    pub fn new(keys: &Keys, capacity: usize) -> PackBuilder {
        let mut salt = [0u8; SALT_LEN];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
        let mut buf = Vec::with_capacity(capacity);
        buf.extend_from_slice(PACK_MAGIC);
        buf.extend_from_slice(&salt);
        PackBuilder { salt, cipher: SubkeyCipher::new(keys, &salt), buf, entries: Vec::new() }
    }

    /// Bytes written so far (without the header).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn blob_count(&self) -> usize {
        self.entries.len()
    }

    /// Encrypts `stored` (already compressed when `compressed`) into the pack.
    pub fn add(
        &mut self,
        blob_type: BlobType,
        id: Id,
        stored: &[u8],
        compressed: bool,
        raw_length: usize,
    ) -> PackEntry {
        let offset = self.buf.len();
        self.cipher.seal_append(&mut self.buf, stored, &aad(blob_type, &id));
        let entry = PackEntry {
            blob_type,
            compressed,
            id,
            offset: offset as u32,
            length: (self.buf.len() - offset) as u32,
            raw_length: raw_length as u32,
        };
        self.entries.push(entry);
        entry
    }

    /// Appends the sealed header and names the pack.
    pub fn finish(mut self) -> FinishedPack {
        let mut header = Vec::with_capacity(self.entries.len() * ENTRY_LEN);
        for e in &self.entries {
            header.push(e.blob_type.byte());
            header.push(u8::from(e.compressed));
            header.extend_from_slice(&e.id.0);
            header.extend_from_slice(&e.length.to_le_bytes());
            header.extend_from_slice(&e.raw_length.to_le_bytes());
        }
        let before = self.buf.len();
        self.cipher.seal_append(&mut self.buf, &header, HEADER_AAD);
        let header_len = (self.buf.len() - before) as u32;
        self.buf.extend_from_slice(&header_len.to_le_bytes());
        let bytes = Bytes::from(self.buf);
        FinishedPack { id: Id::of_bytes(&bytes), salt: self.salt, bytes, entries: self.entries }
    }
}

/// The salt of a pack, from its first bytes.
///
/// # Errors
/// `Corrupt` naming the pack when the prefix is wrong.
pub fn parse_salt(prefix: &[u8], what: &str) -> Result<[u8; SALT_LEN]> {
    if prefix.len() < PACK_PREFIX || &prefix[..4] != PACK_MAGIC {
        return Err(Error::corrupt(what, "not a rempart pack (bad magic)"));
    }
    Ok(prefix[4..PACK_PREFIX].try_into().expect("length checked"))
}

/// Reads the header of a whole pack.
///
/// # Errors
/// `Corrupt` naming the pack when any part of the layout or the header tag is wrong.
pub fn read_header(keys: &Keys, pack: &[u8], what: &str) -> Result<([u8; SALT_LEN], Vec<PackEntry>)> {
    let salt = parse_salt(pack, what)?;
    if pack.len() < PACK_PREFIX + 4 + BLOB_OVERHEAD {
        return Err(Error::corrupt(what, format!("truncated: {} bytes", pack.len())));
    }
    let hl = u32::from_le_bytes(pack[pack.len() - 4..].try_into().expect("4 bytes")) as usize;
    if hl < BLOB_OVERHEAD || hl + 4 + PACK_PREFIX > pack.len() {
        return Err(Error::corrupt(
            what,
            format!("header length {hl} does not fit a {}-byte pack", pack.len()),
        ));
    }
    let header_start = pack.len() - 4 - hl;
    let entries = parse_header(keys, &salt, &pack[header_start..pack.len() - 4], header_start as u64, what)?;
    Ok((salt, entries))
}

/// Decrypts a sealed pack header that starts at `header_start` and lists the blobs before it.
///
/// # Errors
/// `Corrupt` naming the pack when the tag fails or the entries do not cover the blobs exactly.
pub fn parse_header(
    keys: &Keys,
    salt: &[u8; SALT_LEN],
    sealed: &[u8],
    header_start: u64,
    what: &str,
) -> Result<Vec<PackEntry>> {
    let cipher = SubkeyCipher::new(keys, salt);
    let header = cipher.open(sealed, HEADER_AAD, &format!("{what} header"))?;
    if header.len() % ENTRY_LEN != 0 {
        return Err(Error::corrupt(what, "header length is not a whole number of entries"));
    }
    let mut offset = PACK_PREFIX as u64;
    let mut entries = Vec::with_capacity(header.len() / ENTRY_LEN);
    for rec in header.chunks_exact(ENTRY_LEN) {
        let blob_type = match rec[0] {
            0 => BlobType::Data,
            1 => BlobType::Tree,
            t => return Err(Error::corrupt(what, format!("unknown blob type {t} in header"))),
        };
        let length = u32::from_le_bytes(rec[34..38].try_into().expect("4"));
        entries.push(PackEntry {
            blob_type,
            compressed: rec[1] & 1 == 1,
            id: Id(rec[2..34].try_into().expect("32")),
            offset: offset as u32,
            length,
            raw_length: u32::from_le_bytes(rec[38..42].try_into().expect("4")),
        });
        offset += u64::from(length);
    }
    if offset != header_start {
        return Err(Error::corrupt(what, "header entries do not cover the blobs exactly"));
    }
    Ok(entries)
}

/// Decrypts, decompresses and verifies one blob envelope.
///
/// # Errors
/// `Corrupt` naming the blob when the tag, the decompression, the length or the id is wrong.
pub fn open_blob(keys: &Keys, salt: &[u8; SALT_LEN], entry: &PackEntry, envelope: &[u8]) -> Result<Vec<u8>> {
    let cipher = SubkeyCipher::new(keys, salt);
    open_blob_with(keys, &cipher, entry, envelope)
}

/// [`open_blob`] with a cipher already derived for the pack's salt.
pub fn open_blob_with(
    keys: &Keys,
    cipher: &SubkeyCipher,
    entry: &PackEntry,
    envelope: &[u8],
) -> Result<Vec<u8>> {
    let what = || format!("{:?} blob {}", entry.blob_type, entry.id).to_lowercase();
    let stored = cipher.open(envelope, &aad(entry.blob_type, &entry.id), &what())?;
    let raw = if entry.compressed {
        // One decompression context per thread: creating one per blob costs more than
        // decompressing a small blob.
        thread_local! {
            static DCTX: std::cell::RefCell<zstd::bulk::Decompressor<'static>> =
                std::cell::RefCell::new(zstd::bulk::Decompressor::new().expect("zstd context"));
        }
        DCTX.with(|d| d.borrow_mut().decompress(&stored, entry.raw_length as usize))
            .map_err(|e| Error::corrupt(what(), format!("zstd: {e}")))?
    } else {
        stored
    };
    if raw.len() != entry.raw_length as usize {
        return Err(Error::corrupt(what(), format!("{} bytes, expected {}", raw.len(), entry.raw_length)));
    }
    if keys.blob_id(&raw) != entry.id {
        return Err(Error::corrupt(what(), "content does not hash to its id"));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn pack_round_trip(blobs in proptest::collection::vec(proptest::collection::vec(0u8..4, 0..3000), 1..20)) {
            let keys = Keys::generate();
            let mut enc = BlobEncoder::new(3);
            let mut b = PackBuilder::new(&keys, 1 << 16);
            for (i, raw) in blobs.iter().enumerate() {
                let id = keys.blob_id(raw);
                let (stored, compressed) = enc.compress(raw);
                let t = if i % 2 == 0 { BlobType::Data } else { BlobType::Tree };
                b.add(t, id, stored, compressed, raw.len());
            }
            let p = b.finish();
            prop_assert_eq!(p.id, Id::of_bytes(&p.bytes));
            let (salt, entries) = read_header(&keys, &p.bytes, "pack").unwrap();
            prop_assert_eq!(&entries, &p.entries);
            for (e, raw) in entries.iter().zip(&blobs) {
                let env = &p.bytes[e.offset as usize..(e.offset + e.length) as usize];
                prop_assert_eq!(&open_blob(&keys, &salt, e, env).unwrap(), raw);
            }
        }
    }

    #[test]
    fn flipped_bytes_are_found() {
        let keys = Keys::generate();
        let mut enc = BlobEncoder::new(3);
        let mut b = PackBuilder::new(&keys, 1 << 16);
        let raw = vec![7u8; 5000];
        let (s, c) = enc.compress(&raw);
        assert!(c, "a run of one byte compresses");
        b.add(BlobType::Data, keys.blob_id(&raw), s, c, raw.len());
        let p = b.finish();
        let mut bad = p.bytes.to_vec();
        bad[PACK_PREFIX + 14] ^= 0x10;
        let (salt, entries) = read_header(&keys, &bad, "pack").unwrap();
        let e = entries[0];
        let err =
            open_blob(&keys, &salt, &e, &bad[e.offset as usize..(e.offset + e.length) as usize]).unwrap_err();
        assert!(err.is_integrity());
        let mut bad_header = p.bytes.to_vec();
        let n = bad_header.len();
        bad_header[n - 10] ^= 1;
        assert!(read_header(&keys, &bad_header, "pack").unwrap_err().is_integrity());
        assert!(read_header(&keys, &p.bytes[..p.bytes.len() - 3], "pack").unwrap_err().is_integrity());
    }

    #[test]
    fn incompressible_blobs_are_stored_raw() {
        let mut enc = BlobEncoder::new(3);
        let mut raw = vec![0u8; 4096];
        blake3::Hasher::new().update(b"seed").finalize_xof().fill(&mut raw);
        let (_, compressed) = enc.compress(&raw);
        assert!(!compressed);
    }
}
