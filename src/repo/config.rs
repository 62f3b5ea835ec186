//! The repository configuration object: format version, chunker, compression and pack size.
//!
//! Stored sealed under the name `config`. It is written once by `init` and never changed, so
//! every client that opens the repository chunks and packs the same way (and dedups).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::Id;

/// The repository format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    /// Always `fastcdc-v2020` (with a keyed gear table).
    pub algorithm: String,
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
    /// FastCDC normalization level (0-3).
    pub normalization: u32,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams {
            algorithm: "fastcdc-v2020".into(),
            min_size: 512 * 1024,
            avg_size: 1024 * 1024,
            max_size: 8 * 1024 * 1024,
            normalization: 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub version: u32,
    pub repository_id: Id,
    pub created: chrono::DateTime<chrono::Utc>,
    pub chunker: ChunkerParams,
    /// zstd level used for new blobs (1-22); a blob zstd does not shrink is stored as is.
    pub compression_level: i32,
    /// Target size of a pack object in bytes.
    pub pack_size: u32,
}

impl Config {
    pub fn new(compression_level: i32, pack_size: u32) -> Result<Config> {
        if !(1..=22).contains(&compression_level) {
            return Err(Error::invalid(format!(
                "compression level {compression_level} is out of range: expected 1 to 22"
            )));
        }
        if !(1 << 20..=1 << 30).contains(&pack_size) {
            return Err(Error::invalid(format!(
                "pack size {pack_size} is out of range: expected 1 MiB to 1 GiB"
            )));
        }
        Ok(Config {
            version: FORMAT_VERSION,
            repository_id: Id::random(),
            created: chrono::Utc::now(),
            chunker: ChunkerParams::default(),
            compression_level,
            pack_size,
        })
    }

    /// Checks that this build can use a config read from a repository.
    ///
    /// # Errors
    /// `InvalidInput` when the version or chunker is unknown to this build.
    pub fn validate(&self) -> Result<()> {
        if self.version != FORMAT_VERSION {
            return Err(Error::invalid(format!(
                "repository format version {} is not supported by this rempart (which reads version {FORMAT_VERSION})",
                self.version
            )));
        }
        if self.chunker.algorithm != "fastcdc-v2020" {
            return Err(Error::invalid(format!("unknown chunker '{}'", self.chunker.algorithm)));
        }
        Ok(())
    }
}
