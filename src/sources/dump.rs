//! One dump a database backup takes: its name in the snapshot, and how to start it.
//!
//! An engine plans the dumps of a database URL ([`super::engine::DbEngine::plan_dumps`]); the
//! backup opens each when it reaches it and streams it into the chunker. The producing tool's
//! exit status is checked after its output ends.

use std::io::Read;

use super::process::DumpProcess;
use crate::error::Result;

/// An opened stream: the bytes, and the process producing them (checked at the end).
pub struct DumpStream {
    pub reader: Box<dyn Read + Send>,
    pub process: Option<DumpProcess>,
    /// Kept alive until the process ends (a connection whose credentials file the tool reads).
    pub keep_alive: Option<Box<dyn std::any::Any + Send + Sync>>,
}

/// One stream to store as a file of the snapshot.
pub struct DumpItem {
    /// The file name inside the snapshot (`shop.pgdump`, `globals.sql`, `app.db`).
    pub name: String,
    pub database: String,
    /// `pg_dump-custom`, `pg_dumpall-globals`, `mysql-sql`, `sqlite-db`.
    pub format: String,
    pub open: Box<dyn FnOnce() -> Result<DumpStream> + Send>,
}
