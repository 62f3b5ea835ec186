//! Restoring a database snapshot into a target database: created when missing, refused when
//! it already holds tables (unless forced), loaded with the engine's own client.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::stream::VerifiedReader;
use crate::error::{Error, Result};
use crate::repo::snapshot::{DumpInfo, Snapshot};
use crate::repo::Repository;
use crate::sources::{DbAuth, DbKind, DbUrl};

#[derive(Clone, Debug)]
pub struct DbRestoreOptions {
    pub to: DbUrl,
    pub auth: DbAuth,
    /// Restore over a database that already holds tables.
    pub force: bool,
    /// Which dump of the snapshot (by source database name) when it holds several.
    pub database: Option<String>,
    /// PostgreSQL: apply the roles and tablespaces first, and keep object owners.
    pub globals: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct DbRestoreResult {
    pub source_database: String,
    pub target: String,
    pub bytes: u64,
    pub duration_secs: f64,
}

/// The dump of `snap` to restore.
///
/// # Errors
/// `InvalidInput` listing the databases when the choice is ambiguous or unknown.
pub fn pick_dump<'a>(snap: &'a Snapshot, database: Option<&str>) -> Result<&'a DumpInfo> {
    let dumps: Vec<&DumpInfo> =
        snap.source.dumps.iter().filter(|d| d.format != "pg_dumpall-globals").collect();
    let names = || dumps.iter().map(|d| format!("'{}'", d.database)).collect::<Vec<_>>().join(", ");
    match database {
        Some(db) => dumps.iter().find(|d| d.database == db).copied().ok_or_else(|| {
            Error::invalid(format!("the snapshot holds no dump of database '{db}'; it holds {}", names()))
        }),
        None if dumps.len() == 1 => Ok(dumps[0]),
        None => Err(Error::invalid(format!(
            "the snapshot holds {} databases ({}): choose one with --database NAME",
            dumps.len(),
            names()
        ))),
    }
}

fn open_dump(
    repo: &Repository,
    index: &Arc<crate::repo::index::Index>,
    snap: &Snapshot,
    dump: &DumpInfo,
) -> Result<VerifiedReader> {
    let node = super::find_path(repo, index, &snap.tree, &dump.path)?
        .ok_or_else(|| Error::corrupt(format!("snapshot tree, {}", dump.path), "the dump file is missing"))?;
    Ok(VerifiedReader::new(repo, index.clone(), &node))
}

/// Restores the dump of a database snapshot into `opts.to`.
///
/// # Errors
/// `InvalidInput` for a kind mismatch or a target that holds tables; `Failed` with the
/// client's stderr when loading fails; `Corrupt` when the dump cannot be read intact.
pub fn restore_database(
    repo: &Repository,
    snap: &Snapshot,
    opts: &DbRestoreOptions,
) -> Result<DbRestoreResult> {
    let started = Instant::now();
    let kind = DbKind::of_source(&snap.source.kind).ok_or_else(|| {
        Error::invalid(format!(
            "this snapshot holds '{}', not a database: restore it with --target DIR",
            snap.source.kind
        ))
    })?;
    if kind != opts.to.kind {
        return Err(Error::invalid(format!(
            "the snapshot holds a {} database, but the target '{}' is {}",
            kind.name(),
            opts.to.display(),
            opts.to.kind.name()
        )));
    }
    let dump = pick_dump(snap, opts.database.as_deref())?;
    let index = Arc::new(repo.load_index()?.into_lookup());
    let mut reader = open_dump(repo, &index, snap, dump)?;
    let target = match kind {
        DbKind::Postgres | DbKind::Mysql => opts.to.databases.first().cloned().unwrap_or_default(),
        DbKind::Sqlite => opts.to.path.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
    };
    let engine = crate::sources::engine::connect(&opts.to, &opts.auth)?;
    if opts.globals {
        if let Some(g) = snap.source.dumps.iter().find(|d| d.format == "pg_dumpall-globals") {
            engine.load_globals(&mut open_dump(repo, &index, snap, g)?)?;
        }
    }
    engine.load(&opts.to, &mut reader, opts.force, opts.globals)?;
    Ok(DbRestoreResult {
        source_database: dump.database.clone(),
        target,
        bytes: dump.size,
        duration_secs: started.elapsed().as_secs_f64(),
    })
}
