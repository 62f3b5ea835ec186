//! Passphrase key derivation (Argon2id).
//!
//! Every command that opens a repository pays this once per key object it tries, so the cost
//! is chosen deliberately: 64 MiB of memory, 2 passes, 1 lane. On the 2-core reference machine
//! that takes about the time docs/format.md records (measured by `cargo bench`-free
//! `rempart key bench`-like test in tests); OWASP's minimum for Argon2id is 19 MiB and 2 passes
//! (or 46 MiB and 1 pass), so this sits above it while staying well under restic's scrypt
//! calibration of about half a second. Parameters live in each key object, so they can be
//! raised later without a format change.

use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Argon2id cost parameters, stored in clear in each key object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    pub algorithm: String,
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    #[serde(with = "crate::serde_b64")]
    pub salt: Vec<u8>,
}

/// Default cost: 64 MiB, 2 passes, 1 lane.
pub const DEFAULT_MEMORY_KIB: u32 = 64 * 1024;
pub const DEFAULT_ITERATIONS: u32 = 2;
pub const DEFAULT_PARALLELISM: u32 = 1;

/// Bounds on parameters read from a key object. A planted key object in a repository must not
/// make every open exhaust memory or hang: above 4 GiB, 64 passes or 64 lanes, or with a salt
/// outside 8..=64 bytes, the key object is refused before any work is done.
pub const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
pub const MAX_ITERATIONS: u32 = 64;
pub const MAX_PARALLELISM: u32 = 64;

impl KdfParams {
    /// Fresh parameters with a random 16-byte salt. `REMPART_KDF_MEMORY_KIB` lowers the memory
    /// cost for tests only; values below OWASP's 19 MiB are accepted so that test suites that
    /// create hundreds of repositories stay fast.
    pub fn new_random() -> KdfParams {
        let mut salt = vec![0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
        let memory_kib = std::env::var("REMPART_KDF_MEMORY_KIB")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_MEMORY_KIB);
        KdfParams {
            algorithm: "argon2id".into(),
            memory_kib,
            iterations: DEFAULT_ITERATIONS,
            parallelism: DEFAULT_PARALLELISM,
            salt,
        }
    }

    /// Derives the 32-byte wrapping key from a passphrase.
    ///
    /// # Errors
    /// `InvalidInput` when the stored parameters are not Argon2id or are out of range.
    pub fn derive(&self, passphrase: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        if self.algorithm != "argon2id" {
            return Err(Error::invalid(format!(
                "key object uses KDF '{}', expected 'argon2id'",
                self.algorithm
            )));
        }
        if self.memory_kib > MAX_MEMORY_KIB
            || self.iterations > MAX_ITERATIONS
            || self.parallelism > MAX_PARALLELISM
            || !(8..=64).contains(&self.salt.len())
        {
            return Err(Error::corrupt(
                "key object",
                format!(
                    "Argon2id parameters out of bounds ({} KiB, {} passes, {} lanes, {}-byte salt; at most {} KiB, {} passes, {} lanes, 8 to 64 bytes of salt): refused without deriving",
                    self.memory_kib,
                    self.iterations,
                    self.parallelism,
                    self.salt.len(),
                    MAX_MEMORY_KIB,
                    MAX_ITERATIONS,
                    MAX_PARALLELISM
                ),
            ));
        }
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|e| Error::invalid(format!("key object has bad Argon2id parameters: {e}")))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(passphrase, &self.salt, out.as_mut())
            .map_err(|e| Error::invalid(format!("Argon2id failed: {e}")))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planted_parameters_are_refused_before_any_work() {
        let mut p = KdfParams::new_random();
        p.memory_kib = u32::MAX;
        let started = std::time::Instant::now();
        let e = p.derive(b"x").unwrap_err();
        assert!(e.to_string().contains("out of bounds"), "{e}");
        p.memory_kib = 1024;
        p.iterations = u32::MAX;
        assert!(p.derive(b"x").is_err());
        p.iterations = 1;
        p.salt = vec![];
        assert!(p.derive(b"x").is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
