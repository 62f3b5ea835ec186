//! rempart: encrypted, compressed, deduplicated backups that prove they can be restored.
//!
//! # Layout
//!
//! - [`storage`]: the narrow storage trait and its backends (local folder, S3), built on
//!   object_store; one conformance suite checks both.
//! - [`crypto`]: key derivation (Argon2id), the master key and AES-256-GCM envelopes.
//! - [`repo`]: the repository format: config, key objects, chunker, packs, index, trees,
//!   snapshots, locks, and the [`repo::Repository`] that reads and writes them.
//! - [`backup`]: the parallel backup pipeline (walker, workers, tree builder, uploader).
//! - [`restore`]: batched, pack-ordered restore with per-file verification.
//! - [`cli`]: argument parsing, progress display and exit codes for the thin binary.
//!
//! The engine (storage, repo, backup, restore) knows nothing of jobs, schedules or databases.
//! docs/format.md describes the repository format, docs/cli.md the commands and exit codes.

pub mod backup;
pub mod catalog;
pub mod check;
pub mod cli;
pub mod crypto;
pub mod daemon;
pub mod drill;
pub mod error;
pub mod evidence;
#[doc(hidden)]
pub mod fuzzing;
pub mod id;
pub mod jobs;
pub mod maintenance;
pub mod repair;
pub mod repo;
pub mod report;
pub mod restore;
pub mod runner;
mod serde_b64;
pub mod settings;
pub mod sources;
pub mod state;
pub mod storage;
pub mod util;

pub use error::{Error, ExitStatus, Result};
pub use id::Id;
