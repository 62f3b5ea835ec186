//! Backing up databases: which dumps to take for a database URL, and in what order.
//!
//! PostgreSQL: one `pg_dump` per database plus the server's globals (roles, tablespaces),
//! after checking that pg_dump is at least as new as the server. MariaDB/MySQL: one dump per
//! database. SQLite: one consistent copy. The snapshot records the kind, the server version,
//! the databases and the size of each dump.

use super::stream::backup_streams;
use super::{BackupOptions, BackupResult};
use crate::error::Result;
use crate::repo::snapshot::SourceInfo;
use crate::repo::Repository;
use crate::sources::{DbAuth, DbUrl};

/// Backs up the database(s) `url` names.
///
/// # Errors
/// `InvalidInput` for a bad URL or password file; `Failed` when a server cannot be reached or
/// a dump tool fails (with its stderr). No snapshot is written then.
pub fn backup_database(
    repo: &Repository,
    url: &DbUrl,
    auth: &DbAuth,
    opts: &BackupOptions,
) -> Result<BackupResult> {
    let engine = crate::sources::engine::connect(url, auth)?;
    let source = SourceInfo {
        kind: url.kind.name().into(),
        url: Some(url.display()),
        server_version: Some(engine.describe_server()?),
        dumps: vec![],
    };
    let items = engine.plan_dumps(url)?;
    backup_streams(repo, opts, items, source)
}
