//! rempart: encrypted, compressed, deduplicated backups that prove they can be restored.
//!
//! # Layout
//!
//! Modules are layers: each uses only the ones below it (and never in a cycle), which
//! `tests/layers.rs` enforces. From the bottom:
//!
//! - **Base** — [`error`] (the small public error set and exit codes), [`id`] (256-bit ids),
//!   `util` (host and user names, sizes), `state` (the state directory, the snapshot register,
//!   process locks).
//! - **Storage and crypto** — [`storage`]: one narrow trait over object stores (local folder,
//!   S3) with its guarantees, a conformance suite, and a fault-injecting wrapper; `crypto`:
//!   Argon2id key derivation, the master key and AES-256-GCM envelopes.
//! - **Repository format and sources** — [`repo`]: config, keys, chunker, packs, index, trees,
//!   snapshots, locks, trash, forget records, and the [`repo::Repository`] that reads and
//!   writes them; `sources`: the database engines (dump, load, inventory, checks) behind one
//!   trait, and the SQLite, PostgreSQL and MariaDB clients.
//! - **Engine** — [`mod@backup`] (the parallel pipeline and the commit check), [`mod@restore`]
//!   (pack-ordered, verified, files renamed into place only when whole), [`mod@check`] (structure
//!   and data, with damage attribution), [`inspect`] (find, diff, stats and dump: looking into
//!   snapshots without restoring them).
//! - **Jobs and maintenance** — [`jobs`] (job files, schedules, durations, and `jobs::access`:
//!   the context a step runs in and opening a job's repository), [`maintenance`] (retention,
//!   forget, two-phase prune, tags), `repair` (index rebuild and salvage, snapshot repair),
//!   [`catalog`] (the SQLite index of runs, with typed run records), `settings` (the
//!   configuration file).
//! - **Proof** — `drill` (restore drills at four levels, their isolated targets), [`evidence`]
//!   (the signed, hash-chained ledger, its one verification, readiness, the auditor's export).
//! - **Orchestration** — `runner` (one step of a job: hooks, retries, catalog, evidence,
//!   notifications).
//! - **Reports** — [`report`] (the PRA readiness report: model, HTML, Markdown, JSON, charts).
//! - **Service** — `daemon` (scheduler, HTTP dashboard, metrics).
//! - **Interface** — [`cli`] (arguments, commands, exit codes) for the thin binary.
//!
//! `fuzzing` holds the fuzz targets' entry points (behind the `fuzzing` feature, and in unit
//! tests, which replay the saved corpora). docs/format.md describes the
//! repository format, docs/cli.md the commands, docs/evidence.md the proof.
//!
//! The public modules are the API the binary, the test suite, the examples and the fuzz
//! targets use; the others are `pub(crate)`.

pub mod backup;
pub mod catalog;
pub mod check;
pub mod cli;
pub(crate) mod crypto;
pub(crate) mod daemon;
pub(crate) mod drill;
pub mod duration;
pub mod error;
pub mod evidence;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod id;
pub mod inspect;
pub mod jobs;
pub mod maintenance;
pub(crate) mod repair;
pub mod repo;
pub mod report;
pub mod restore;
pub(crate) mod runner;
mod serde_b64;
pub(crate) mod settings;
pub(crate) mod sources;
pub(crate) mod state;
pub mod storage;
pub(crate) mod util;

pub use backup::{backup, BackupOptions, BackupResult};
pub use check::{check, CheckOptions, CheckReport, ReadData};
pub use error::{Error, ExitStatus, Result};
pub use id::Id;
pub use repo::{InitOptions, Repository};
pub use restore::{restore, RestoreOptions, RestoreResult};
