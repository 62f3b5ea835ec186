//! Key material and authenticated encryption.
//!
//! A repository has one random 64-byte master secret. Three 32-byte keys are derived from it
//! with BLAKE3's key derivation (distinct context strings): the data key (AES-256-GCM), the id
//! key (keyed BLAKE3 chunk ids) and the chunker key (the gear table of the content-defined
//! chunker). The master secret is stored only wrapped by passphrase-derived keys (see
//! [`kdf`] and `repo::keyfile`).
//!
//! Nonces: every encryption uses a subkey derived from the data key and a random 128-bit salt
//! (one salt per pack, one per standalone object), and a random 96-bit nonce under that subkey.
//! A subkey therefore encrypts at most the blobs of one pack, so random nonces stay far below
//! the birthday bound; docs/format.md gives the numbers.

pub mod kdf;
pub mod seal;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::id::Id;

/// The repository's secret keys. Dropping it wipes them from memory.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Keys {
    master: [u8; 64],
    data: [u8; 32],
    id: [u8; 32],
    chunker: [u8; 32],
}

impl Keys {
    /// A fresh random master secret, for `init`.
    pub fn generate() -> Keys {
        let mut master = [0u8; 64];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut master);
        Keys::from_master(master)
    }

    pub fn from_master(master: [u8; 64]) -> Keys {
        Keys {
            data: blake3::derive_key("rempart 2026-11 data encryption key", &master),
            id: blake3::derive_key("rempart 2026-11 blob id key", &master),
            chunker: blake3::derive_key("rempart 2026-11 chunker gear key", &master),
            master,
        }
    }

    pub fn master(&self) -> &[u8; 64] {
        &self.master
    }

    pub(crate) fn data_key(&self) -> &[u8; 32] {
        &self.data
    }

    pub(crate) fn chunker_key(&self) -> &[u8; 32] {
        &self.chunker
    }

    /// The id of a blob: keyed BLAKE3 of its plaintext, so ids reveal nothing without the key.
    pub fn blob_id(&self, plaintext: &[u8]) -> Id {
        Id(*blake3::keyed_hash(&self.id, plaintext).as_bytes())
    }

    /// A streaming hasher that gives the same value as [`Keys::blob_id`] over the whole input;
    /// used for the content hash of files larger than one chunk.
    pub fn content_hasher(&self) -> blake3::Hasher {
        blake3::Hasher::new_keyed(&self.id)
    }
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(<secret>)")
    }
}
