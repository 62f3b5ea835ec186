//! Snapshots: one backup of one source at one time.
//!
//! Stored sealed as JSON (readable for debugging once decrypted, and forward compatible:
//! unknown fields are ignored, new fields have defaults). A snapshot's name is the BLAKE3 hash
//! of its sealed bytes. It is written last, after the packs and index objects that hold every
//! blob it references are durable.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::Id;

/// One entry that could not be backed up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryError {
    pub path: String,
    pub error: String,
}

/// What a backup read and added.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    pub dirs: u64,
    /// Symlinks, FIFOs, devices and sockets.
    pub other_entries: u64,
    /// Bytes of file content read from the source (unchanged files are not read).
    pub bytes_read: u64,
    /// Total size of all files in the snapshot.
    pub bytes_total: u64,
    pub data_blobs_added: u64,
    pub tree_blobs_added: u64,
    /// Plaintext bytes of the new blobs.
    pub bytes_added: u64,
    /// Bytes written to the storage (packs, after compression and encryption).
    pub bytes_stored: u64,
    pub duration_secs: f64,
    pub errors: Vec<EntryError>,
}

/// One database dump inside a database snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpInfo {
    /// Database name ("" for a server-wide dump such as the globals).
    pub database: String,
    /// Path of the dump file inside the snapshot tree.
    pub path: String,
    /// `pg_dump-custom`, `pg_dumpall-globals`, `mysql-sql`, `sqlite-db`.
    pub format: String,
    pub size: u64,
}

/// What kind of source a snapshot holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// `files`, `postgres`, `mysql` or `sqlite`.
    pub kind: String,
    /// The source URL without credentials (databases only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dumps: Vec<DumpInfo>,
}

impl Default for SourceInfo {
    fn default() -> Self {
        SourceInfo { kind: "files".into(), url: None, server_version: None, dumps: Vec::new() }
    }
}

/// Set on snapshots written by `repair snapshots`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairNote {
    pub original: Id,
    pub time: chrono::DateTime<chrono::Utc>,
    /// Paths left out or truncated because their data could not be read.
    pub removed: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    pub time: chrono::DateTime<chrono::Utc>,
    pub hostname: String,
    pub username: String,
    /// The backed-up paths (absolute) or, for databases, the source URL without credentials.
    pub paths: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub tree: Id,
    #[serde(default)]
    pub parent: Option<Id>,
    #[serde(default)]
    pub source: SourceInfo,
    #[serde(default)]
    pub job: Option<String>,
    pub summary: Summary,
    pub program_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repaired: Option<RepairNote>,
}

impl Snapshot {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("serializable")
    }

    /// # Errors
    /// `Corrupt` naming `what` when the JSON does not decode.
    pub fn decode(bytes: &[u8], what: &str) -> Result<Snapshot> {
        serde_json::from_slice(bytes).map_err(|e| Error::corrupt(what, format!("not a snapshot: {e}")))
    }

    /// True when both snapshots cover the same set of paths (parent selection).
    pub fn same_paths(&self, paths: &[String]) -> bool {
        let mut a = self.paths.clone();
        let mut b = paths.to_vec();
        a.sort();
        b.sort();
        a == b
    }
}
