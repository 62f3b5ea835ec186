//! AES-256-GCM envelopes: blobs inside packs and standalone sealed objects.
//!
//! Layouts (all integers little-endian):
//! - blob: `nonce(12) || ciphertext || tag(16)`, encrypted under the pack's subkey, with the
//!   blob's type and id as associated data, so a blob cannot be moved or relabelled unnoticed;
//! - sealed object: `"RSO1" || salt(16) || nonce(12) || ciphertext || tag(16)`, under the subkey
//!   of its own salt, with the object kind as associated data (an index cannot pass as a
//!   snapshot).
//!
//! A subkey is `BLAKE3-keyed(data key, "rempart subkey" || salt)`.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use rand::RngCore;

use super::Keys;
use crate::error::{Error, Result};

pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;
pub const SALT_LEN: usize = 16;
/// Bytes an encrypted blob adds to its plaintext.
pub const BLOB_OVERHEAD: usize = NONCE_LEN + TAG_LEN;
const OBJECT_MAGIC: &[u8; 4] = b"RSO1";
const OBJECT_HEADER: usize = 4 + SALT_LEN + NONCE_LEN;

/// An AES-256-GCM cipher under one salt's subkey.
pub struct SubkeyCipher {
    cipher: Aes256Gcm,
}

impl SubkeyCipher {
    pub fn new(keys: &Keys, salt: &[u8; SALT_LEN]) -> SubkeyCipher {
        let mut hasher = blake3::Hasher::new_keyed(keys.data_key());
        hasher.update(b"rempart subkey");
        hasher.update(salt);
        let subkey = zeroize::Zeroizing::new(*hasher.finalize().as_bytes());
        SubkeyCipher { cipher: Aes256Gcm::new_from_slice(subkey.as_ref()).expect("32-byte key") }
    }

    /// Encrypts in place what follows a reserved nonce slot: `out[start..start + 12]` is
    /// overwritten with a fresh nonce, `out[start + 12..]` is the plaintext, and the tag is
    /// appended. Saves copying a blob that was compressed straight into a pack.
    pub fn seal_tail(&self, out: &mut Vec<u8>, start: usize, aad: &[u8]) {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        out[start..start + NONCE_LEN].copy_from_slice(&nonce);
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), aad, &mut out[start + NONCE_LEN..])
            .expect("AES-GCM encryption of a buffer below 64 GiB cannot fail");
        out.extend_from_slice(&tag);
    }

    /// Appends `nonce || ciphertext || tag` of `plaintext` to `out`.
    pub fn seal_append(&self, out: &mut Vec<u8>, plaintext: &[u8], aad: &[u8]) {
        let mut nonce = [0u8; NONCE_LEN];
        // A ChaCha-based CSPRNG seeded from the OS: a system call per nonce would cost more
        // than encrypting a small blob.
        rand::thread_rng().fill_bytes(&mut nonce);
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), aad, &mut out[start..])
            .expect("AES-GCM encryption of a buffer below 64 GiB cannot fail");
        out.extend_from_slice(&tag);
    }

    /// Decrypts `nonce || ciphertext || tag` and returns the plaintext.
    ///
    /// # Errors
    /// `Corrupt` naming `what` when the envelope is too short or the tag does not verify.
    pub fn open(&self, sealed: &[u8], aad: &[u8], what: &str) -> Result<Vec<u8>> {
        if sealed.len() < BLOB_OVERHEAD {
            return Err(Error::corrupt(what, format!("{} bytes is shorter than an envelope", sealed.len())));
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
        let mut buf = ct.to_vec();
        self.cipher
            .decrypt_in_place_detached(Nonce::from_slice(nonce), aad, &mut buf, Tag::from_slice(tag))
            .map_err(|_| Error::corrupt(what, "authentication tag does not verify (damaged or tampered)"))?;
        Ok(buf)
    }
}

/// Encrypts a standalone object under a fresh salt.
pub fn seal_object(keys: &Keys, kind: &str, plaintext: &[u8]) -> Vec<u8> {
    let mut salt = [0u8; SALT_LEN];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let cipher = SubkeyCipher::new(keys, &salt);
    let mut out = Vec::with_capacity(OBJECT_HEADER + plaintext.len() + TAG_LEN);
    out.extend_from_slice(OBJECT_MAGIC);
    out.extend_from_slice(&salt);
    cipher.seal_append(&mut out, plaintext, kind.as_bytes());
    out
}

/// Decrypts a standalone object written by [`seal_object`].
///
/// # Errors
/// `Corrupt` naming `what` when the magic, length or tag is wrong.
pub fn open_object(keys: &Keys, kind: &str, bytes: &[u8], what: &str) -> Result<Vec<u8>> {
    if bytes.len() < OBJECT_HEADER + TAG_LEN || &bytes[..4] != OBJECT_MAGIC {
        return Err(Error::corrupt(what, "not a rempart sealed object (bad magic or too short)"));
    }
    let salt: [u8; SALT_LEN] = bytes[4..4 + SALT_LEN].try_into().expect("length checked");
    SubkeyCipher::new(keys, &salt).open(&bytes[4 + SALT_LEN..], kind.as_bytes(), what)
}

/// Wraps `secret` with a raw 32-byte key (used for key objects): `nonce || ct || tag`.
pub fn wrap_with_key(key: &[u8; 32], secret: &[u8], aad: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new_from_slice(key).expect("32-byte key");
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let mut buf = secret.to_vec();
    let tag =
        cipher.encrypt_in_place_detached(Nonce::from_slice(&nonce), aad, &mut buf).expect("small buffer");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    out.extend_from_slice(&tag);
    out
}

/// Unwraps what [`wrap_with_key`] wrote; `None` when the key is wrong or the data damaged.
pub fn unwrap_with_key(key: &[u8; 32], wrapped: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    if wrapped.len() < BLOB_OVERHEAD {
        return None;
    }
    let cipher = Aes256Gcm::new_from_slice(key).expect("32-byte key");
    let (nonce, rest) = wrapped.split_at(NONCE_LEN);
    let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
    let mut buf = ct.to_vec();
    cipher.decrypt_in_place_detached(Nonce::from_slice(nonce), aad, &mut buf, Tag::from_slice(tag)).ok()?;
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn object_round_trip(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let keys = Keys::generate();
            let sealed = seal_object(&keys, "index", &data);
            prop_assert_eq!(open_object(&keys, "index", &sealed, "x").unwrap(), data);
        }

        #[test]
        fn blob_round_trip_binds_aad(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let keys = Keys::generate();
            let c = SubkeyCipher::new(&keys, &[7; SALT_LEN]);
            let mut t = vec![5, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            t.extend_from_slice(&data);
            c.seal_tail(&mut t, 2, b"aad");
            prop_assert_eq!(c.open(&t[2..], b"aad", "blob").unwrap(), data.clone());
            let mut a = vec![1, 2, 3];
            c.seal_append(&mut a, &data, b"aad");
            prop_assert_eq!(c.open(&a[3..], b"aad", "blob").unwrap(), data.clone());
            prop_assert!(c.open(&a[3..], b"other", "blob").is_err());
        }
    }

    #[test]
    fn tampering_and_wrong_kind_are_integrity_errors() {
        let keys = Keys::generate();
        let mut sealed = seal_object(&keys, "snapshot", b"hello");
        assert!(open_object(&keys, "index", &sealed, "snapshots/ab").unwrap_err().is_integrity());
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        let err = open_object(&keys, "snapshot", &sealed, "snapshots/ab").unwrap_err();
        assert!(err.is_integrity());
        assert!(err.to_string().contains("snapshots/ab"), "{err}");
    }

    #[test]
    fn other_keys_cannot_open() {
        let sealed = seal_object(&Keys::generate(), "config", b"x");
        assert!(open_object(&Keys::generate(), "config", &sealed, "config").is_err());
    }
}
