//! The Ed25519 signing key of the evidence ledger.

use std::path::{Path, PathBuf};

use base64::Engine;
use ed25519_dalek::pkcs8::EncodePublicKey;
use ed25519_dalek::SigningKey;

use crate::error::{Error, Result};

pub fn key_path(keys_dir: &Path) -> PathBuf {
    keys_dir.join("evidence.key")
}

/// Loads the signing key if it exists.
///
/// # Errors
/// `InvalidInput` naming the file when it is not a key.
pub fn load(keys_dir: &Path) -> Result<Option<SigningKey>> {
    let path = key_path(keys_dir);
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(None) };
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut bytes)
        .map_err(|_| Error::invalid(format!("evidence key '{}' is not 64 hex digits", path.display())))?;
    Ok(Some(SigningKey::from_bytes(&bytes)))
}

/// Loads the signing key, creating it (mode 0600) on first use.
///
/// # Errors
/// `Io` or `InvalidInput` naming the file.
pub fn load_or_create(keys_dir: &Path) -> Result<SigningKey> {
    let path = key_path(keys_dir);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes)
            .map_err(|_| Error::invalid(format!("evidence key '{}' is not 64 hex digits", path.display())))?;
        return Ok(SigningKey::from_bytes(&bytes));
    }
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(keys_dir)
        .map_err(|e| Error::io(format!("cannot create '{}'", keys_dir.display()), e))?;
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io(format!("cannot create evidence key '{}'", path.display()), e))?;
    writeln!(f, "{}", hex::encode(key.to_bytes()))
        .map_err(|e| Error::io("cannot write the evidence key", e))?;
    tracing::info!("created the evidence signing key '{}' (mode 0600)", path.display());
    Ok(key)
}

/// The public key as PEM (SubjectPublicKeyInfo), for `openssl pkeyutl -verify`.
pub fn public_pem(key: &SigningKey) -> String {
    key.verifying_key().to_public_key_pem(Default::default()).unwrap_or_default()
}

/// A short fingerprint of the public key: SHA-256 of its bytes, first 16 hex digits.
pub fn fingerprint(key: &ed25519_dalek::VerifyingKey) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(key.as_bytes())[..8])
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
