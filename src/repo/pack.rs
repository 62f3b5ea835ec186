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

#[cfg(test)]
use crate::crypto::seal::BLOB_OVERHEAD;
use crate::crypto::seal::{SubkeyCipher, SALT_LEN};
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

    /// Appends `raw` to `out`, compressed when zstd shrinks it (written straight into `out`'s
    /// spare capacity: no scratch buffer); returns whether it was compressed.
    pub fn compress_append(&mut self, raw: &[u8], out: &mut Vec<u8>) -> bool {
        let start = out.len();
        out.reserve(zstd::zstd_safe::compress_bound(raw.len()));
        let mut cursor = std::io::Cursor::new(&mut *out);
        cursor.set_position(start as u64);
        match self.compressor.compress_to_buffer(raw, &mut cursor) {
            Ok(n) if n < raw.len() => true,
            _ => {
                out.truncate(start);
                out.extend_from_slice(raw);
                false
            }
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

/// A temporary file removed when dropped (unless something moved it away first).
#[derive(Debug)]
pub struct TempFile {
    pub path: std::path::PathBuf,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Where a finished pack's bytes are.
pub enum PackData {
    Memory(Bytes),
    /// Spilled to a temporary file (backups do this to keep memory flat).
    File(TempFile),
}

/// A finished pack, ready to be stored under its content address.
pub struct FinishedPack {
    pub id: Id,
    pub salt: [u8; SALT_LEN],
    pub size: u64,
    pub data: PackData,
    pub entries: Vec<PackEntry>,
}

impl FinishedPack {
    /// The bytes of an in-memory pack.
    ///
    /// # Panics
    /// On a spilled pack (callers that spill never ask).
    pub fn bytes(&self) -> &Bytes {
        match &self.data {
            PackData::Memory(b) => b,
            PackData::File(_) => panic!("pack was spilled to a file"),
        }
    }
}

enum Sink {
    Memory(Vec<u8>),
    File { file: std::fs::File, temp: TempFile, hasher: Box<blake3::Hasher>, len: usize, scratch: Vec<u8> },
}

/// Collects blobs into one pack, in memory or spilled to a temporary file as it grows.
pub struct PackBuilder {
    salt: [u8; SALT_LEN],
    cipher: SubkeyCipher,
    sink: Sink,
    entries: Vec<PackEntry>,
    /// The first write error of a spilled pack, reported by `finish`.
    error: Option<std::io::Error>,
}

fn new_salt() -> [u8; SALT_LEN] {
    let mut salt = [0u8; SALT_LEN];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut salt);
    salt
}

impl PackBuilder {
    /// A pack built in memory.
    pub fn new(keys: &Keys, capacity: usize) -> PackBuilder {
        let salt = new_salt();
        let mut buf = Vec::with_capacity(capacity);
        buf.extend_from_slice(PACK_MAGIC);
        buf.extend_from_slice(&salt);
        PackBuilder {
            salt,
            cipher: SubkeyCipher::new(keys, &salt),
            sink: Sink::Memory(buf),
            entries: Vec::new(),
            error: None,
        }
    }

    /// A pack written to a new temporary file in `dir` as blobs are added: memory holds one
    /// blob at a time, whatever the pack size.
    ///
    /// # Errors
    /// `Io` naming the folder when the file cannot be created.
    pub fn spilled(keys: &Keys, dir: &std::path::Path) -> Result<PackBuilder> {
        use std::io::Write;
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("cannot create staging folder '{}'", dir.display()), e))?;
        let salt = new_salt();
        let path = dir.join(format!(".pack-{:016x}.tmp", rand::random::<u64>()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(format!("cannot create staging file '{}'", path.display()), e))?;
        let temp = TempFile { path };
        let mut hasher = Box::new(blake3::Hasher::new());
        let mut prefix = PACK_MAGIC.to_vec();
        prefix.extend_from_slice(&salt);
        file.write_all(&prefix)
            .map_err(|e| Error::io(format!("cannot write '{}'", temp.path.display()), e))?;
        hasher.update(&prefix);
        let sink = Sink::File { file, temp, hasher, len: prefix.len(), scratch: Vec::new() };
        Ok(PackBuilder {
            salt,
            cipher: SubkeyCipher::new(keys, &salt),
            sink,
            entries: Vec::new(),
            error: None,
        })
    }

    /// Bytes written so far (without the header).
    pub fn len(&self) -> usize {
        match &self.sink {
            Sink::Memory(b) => b.len(),
            Sink::File { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Runs `fill` to append one envelope at the end of the pack (in memory, or in the
    /// scratch buffer that is then written to the file); returns its offset and length.
    fn append(
        sink: &mut Sink,
        error: &mut Option<std::io::Error>,
        fill: impl FnOnce(&mut Vec<u8>, usize),
    ) -> (usize, usize) {
        match sink {
            Sink::Memory(buf) => {
                let offset = buf.len();
                fill(buf, offset);
                (offset, buf.len() - offset)
            }
            Sink::File { file, hasher, len, scratch, .. } => {
                use std::io::Write;
                scratch.clear();
                fill(scratch, 0);
                let offset = *len;
                if error.is_none() {
                    if let Err(e) = file.write_all(scratch) {
                        *error = Some(e);
                    }
                }
                hasher.update(scratch);
                *len += scratch.len();
                (offset, scratch.len())
            }
        }
    }

    fn record(
        &mut self,
        blob_type: BlobType,
        id: Id,
        compressed: bool,
        (offset, length): (usize, usize),
        raw: usize,
    ) -> PackEntry {
        let entry = PackEntry {
            blob_type,
            compressed,
            id,
            offset: offset as u32,
            length: length as u32,
            raw_length: raw as u32,
        };
        self.entries.push(entry);
        entry
    }

    /// Compresses (when it helps) and encrypts `raw` straight into the pack.
    pub fn add_raw(
        &mut self,
        blob_type: BlobType,
        id: Id,
        raw: &[u8],
        encoder: &mut BlobEncoder,
    ) -> PackEntry {
        let cipher = &self.cipher;
        let mut compressed = false;
        let place = Self::append(&mut self.sink, &mut self.error, |out, start| {
            out.extend_from_slice(&[0u8; crate::crypto::seal::NONCE_LEN]);
            compressed = encoder.compress_append(raw, out);
            cipher.seal_tail(out, start, &aad(blob_type, &id));
        });
        self.record(blob_type, id, compressed, place, raw.len())
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
        let cipher = &self.cipher;
        let place = Self::append(&mut self.sink, &mut self.error, |out, _| {
            cipher.seal_append(out, stored, &aad(blob_type, &id))
        });
        self.record(blob_type, id, compressed, place, raw_length)
    }

    /// Appends the sealed header and names the pack.
    ///
    /// # Errors
    /// `Io` when a spilled pack could not be written.
    pub fn finish(mut self) -> Result<FinishedPack> {
        let mut header = Vec::with_capacity(self.entries.len() * ENTRY_LEN);
        for e in &self.entries {
            header.push(e.blob_type.byte());
            header.push(u8::from(e.compressed));
            header.extend_from_slice(&e.id.0);
            header.extend_from_slice(&e.length.to_le_bytes());
            header.extend_from_slice(&e.raw_length.to_le_bytes());
        }
        let cipher = &self.cipher;
        let (_, sealed_len) = Self::append(&mut self.sink, &mut self.error, |out, _| {
            cipher.seal_append(out, &header, HEADER_AAD)
        });
        let trailer = (sealed_len as u32).to_le_bytes();
        Self::append(&mut self.sink, &mut self.error, |out, _| out.extend_from_slice(&trailer));
        let entries = std::mem::take(&mut self.entries);
        match self.sink {
            Sink::Memory(buf) => {
                let bytes = Bytes::from(buf);
                Ok(FinishedPack {
                    id: Id::of_bytes(&bytes),
                    salt: self.salt,
                    size: bytes.len() as u64,
                    data: PackData::Memory(bytes),
                    entries,
                })
            }
            Sink::File { file, temp, hasher, len, .. } => {
                if let Some(e) = self.error {
                    return Err(Error::io(format!("cannot write staging file '{}'", temp.path.display()), e));
                }
                drop(file);
                Ok(FinishedPack {
                    id: Id(*hasher.finalize().as_bytes()),
                    salt: self.salt,
                    size: len as u64,
                    data: PackData::File(temp),
                    entries,
                })
            }
        }
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
#[cfg(test)]
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
    decode_header(&header, header_start, what)
}

/// Decodes the entries of a decrypted pack header that starts at `header_start`.
///
/// # Errors
/// `Corrupt` naming the pack when the entries are malformed or do not cover the blobs exactly.
pub fn decode_header(header: &[u8], header_start: u64, what: &str) -> Result<Vec<PackEntry>> {
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
        if offset + u64::from(length) > header_start {
            return Err(Error::corrupt(what, "header entries run past the blobs"));
        }
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
                let t = if i % 2 == 0 { BlobType::Data } else { BlobType::Tree };
                if i % 3 == 0 {
                    b.add_raw(t, id, raw, &mut enc);
                } else {
                    let (stored, compressed) = enc.compress(raw);
                    b.add(t, id, stored, compressed, raw.len());
                }
            }
            let p = b.finish().unwrap();
            let bytes = p.bytes().clone();
            prop_assert_eq!(p.id, Id::of_bytes(&bytes));
            let (salt, entries) = read_header(&keys, &bytes, "pack").unwrap();
            prop_assert_eq!(&entries, &p.entries);
            for (e, raw) in entries.iter().zip(&blobs) {
                let env = &bytes[e.offset as usize..(e.offset + e.length) as usize];
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
        let p = b.finish().unwrap();
        let mut bad = p.bytes().to_vec();
        bad[PACK_PREFIX + 14] ^= 0x10;
        let (salt, entries) = read_header(&keys, &bad, "pack").unwrap();
        let e = entries[0];
        let err =
            open_blob(&keys, &salt, &e, &bad[e.offset as usize..(e.offset + e.length) as usize]).unwrap_err();
        assert!(err.is_integrity());
        let mut bad_header = p.bytes().to_vec();
        let n = bad_header.len();
        bad_header[n - 10] ^= 1;
        assert!(read_header(&keys, &bad_header, "pack").unwrap_err().is_integrity());
        assert!(read_header(&keys, &p.bytes()[..p.bytes().len() - 3], "pack").unwrap_err().is_integrity());
    }

    #[test]
    fn spilled_packs_equal_in_memory_layout() {
        let keys = Keys::generate();
        let dir = tempfile::tempdir().unwrap();
        let mut enc = BlobEncoder::new(3);
        let mut b = PackBuilder::spilled(&keys, dir.path()).unwrap();
        let blobs: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 3000 + usize::from(i)]).collect();
        for raw in &blobs {
            b.add_raw(BlobType::Data, keys.blob_id(raw), raw, &mut enc);
        }
        let p = b.finish().unwrap();
        let PackData::File(temp) = &p.data else { panic!("spilled") };
        let bytes = std::fs::read(&temp.path).unwrap();
        assert_eq!(bytes.len() as u64, p.size);
        assert_eq!(Id::of_bytes(&bytes), p.id);
        let (salt, entries) = read_header(&keys, &bytes, "pack").unwrap();
        assert_eq!(entries, p.entries);
        for (e, raw) in entries.iter().zip(&blobs) {
            assert_eq!(
                &open_blob(&keys, &salt, e, &bytes[e.offset as usize..(e.offset + e.length) as usize])
                    .unwrap(),
                raw
            );
        }
        let path = temp.path.clone();
        drop(p);
        assert!(!path.exists(), "an unstored spilled pack removes its file");
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
