//! Restoring a database snapshot into a target database: created when missing, refused when
//! it already holds tables (unless forced), loaded with the engine's own client.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::stream::VerifiedReader;
use crate::error::{Error, Result};
use crate::repo::snapshot::{DumpInfo, Snapshot};
use crate::repo::Repository;
use crate::sources::mysql::MyConn;
use crate::sources::postgres::PgConn;
use crate::sources::{sqlite, DbAuth, DbKind, DbUrl};

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
    let kind = match snap.source.kind.as_str() {
        "postgres" => DbKind::Postgres,
        "mysql" => DbKind::Mysql,
        "sqlite" => DbKind::Sqlite,
        other => {
            return Err(Error::invalid(format!(
                "this snapshot holds '{other}', not a database: restore it with --target DIR"
            )))
        }
    };
    if kind != opts.to.kind {
        return Err(Error::invalid(format!(
            "the snapshot holds a {} database, but the target '{}' is {}",
            kind.name(),
            opts.to.display(),
            opts.to.kind.name()
        )));
    }
    let dump = pick_dump(snap, opts.database.as_deref())?;
    let index = Arc::new(repo.load_index()?);
    let mut reader = open_dump(repo, &index, snap, dump)?;
    let target = match kind {
        DbKind::Postgres | DbKind::Mysql => opts.to.databases.first().cloned().ok_or_else(|| {
            Error::invalid(format!(
                "the target '{}' names no database: add /NAME to the URL",
                opts.to.display()
            ))
        })?,
        DbKind::Sqlite => opts.to.path.as_ref().expect("sqlite URL has a path").display().to_string(),
    };
    match kind {
        DbKind::Postgres => {
            let conn = PgConn::new(&opts.to, &opts.auth)?;
            if opts.globals {
                if let Some(g) = snap.source.dumps.iter().find(|d| d.format == "pg_dumpall-globals") {
                    conn.restore_globals(&mut open_dump(repo, &index, snap, g)?)?;
                }
            }
            conn.prepare_target(&target, opts.force)?;
            conn.restore(&target, &mut reader, opts.force, opts.globals)?;
        }
        DbKind::Mysql => {
            let conn = MyConn::new(&opts.to, &opts.auth)?;
            conn.prepare_target(&target, opts.force)?;
            conn.restore(&target, &mut reader)?;
        }
        DbKind::Sqlite => {
            let path = opts.to.path.clone().expect("sqlite URL has a path");
            let n = sqlite::table_count(&path)?;
            if n > 0 && !opts.force {
                return Err(Error::invalid(format!(
                    "target '{}' already holds {n} tables: choose a new file, or add --force to replace it",
                    path.display()
                )));
            }
            let dir =
                path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("cannot create '{}'", dir.display()), e))?;
            let tmp = crate::repo::pack::TempFile {
                path: dir.join(format!(".rempart-restore-{:08x}.db", rand::random::<u32>())),
            };
            let mut out = std::fs::File::create(&tmp.path)
                .map_err(|e| Error::io(format!("cannot create '{}'", tmp.path.display()), e))?;
            std::io::copy(&mut reader, &mut out).map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => Error::corrupt(format!("dump {}", dump.path), e),
                _ => Error::io(format!("cannot write '{}'", tmp.path.display()), e),
            })?;
            out.sync_all().map_err(|e| Error::io("cannot sync the restored database", e))?;
            let problems = sqlite::integrity_check(&tmp.path)?;
            if !problems.is_empty() {
                return Err(Error::corrupt(
                    format!("restored SQLite database '{}'", path.display()),
                    problems.join("; "),
                ));
            }
            std::fs::rename(&tmp.path, &path)
                .map_err(|e| Error::io(format!("cannot move into '{}'", path.display()), e))?;
            let _ = std::fs::remove_file(format!("{}-wal", path.display()));
            let _ = std::fs::remove_file(format!("{}-shm", path.display()));
        }
    }
    Ok(DbRestoreResult {
        source_database: dump.database.clone(),
        target,
        bytes: dump.size,
        duration_secs: started.elapsed().as_secs_f64(),
    })
}
