//! Backing up databases: which dumps to take for a database URL, and in what order.
//!
//! PostgreSQL: one `pg_dump` per database plus the server's globals (roles, tablespaces),
//! after checking that pg_dump is at least as new as the server. MariaDB/MySQL: one dump per
//! database. SQLite: one consistent copy. The snapshot records the kind, the server version,
//! the databases and the size of each dump.

use std::io::Cursor;
use std::process::ChildStdout;
use std::sync::Arc;

use super::stream::{backup_streams, OpenedStream, StreamItem};
use super::{BackupOptions, BackupResult};
use crate::error::{Error, Result};
use crate::repo::snapshot::SourceInfo;
use crate::repo::Repository;
use crate::sources::mysql::MyConn;
use crate::sources::postgres::PgConn;
use crate::sources::process::{run_capture, DumpProcess};
use crate::sources::{private_tmp, sqlite, DbAuth, DbKind, DbUrl};

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
    let mut source = SourceInfo {
        kind: url.kind.name().into(),
        url: Some(url.display()),
        server_version: None,
        dumps: vec![],
    };
    let items = match url.kind {
        DbKind::Postgres => {
            let conn = Arc::new(PgConn::new(url, auth)?);
            let (version, major) = conn.server_version()?;
            conn.check_dump_version(major)?;
            source.server_version = Some(format!("PostgreSQL {version}"));
            let mut items =
                dump_items(&conn, url, conn.databases(url)?, "pgdump", "pg_dump-custom", PgConn::dump)?;
            // Globals are small: taken whole, retried without role passwords for a
            // non-superuser (who may not read them).
            let c = conn.clone();
            items.push(StreamItem {
                name: "globals.sql".into(),
                database: String::new(),
                format: "pg_dumpall-globals".into(),
                open: Box::new(move || {
                    let run = |extra: &[&str]| {
                        let mut cmd = c.command("pg_dumpall");
                        cmd.args(["--globals-only", "--no-password", "-l", "postgres"]).args(extra);
                        run_capture(cmd, "pg_dumpall")
                    };
                    let sql = match run(&[]) {
                        Ok(s) => s,
                        Err(e) if e.to_string().contains("permission denied") => {
                            run(&["--no-role-passwords"])?
                        }
                        Err(e) => return Err(e),
                    };
                    Ok(OpenedStream {
                        reader: Box::new(Cursor::new(sql.into_bytes())),
                        process: None,
                        keep_alive: None,
                    })
                }),
            });
            items
        }
        DbKind::Mysql => {
            let conn = Arc::new(MyConn::new(url, auth)?);
            source.server_version = Some(format!("MariaDB/MySQL {}", conn.server_version()?));
            dump_items(&conn, url, conn.databases(url)?, "sql", "mysql-sql", MyConn::dump)?
        }
        DbKind::Sqlite => {
            let path = url.path.clone().expect("sqlite URLs have a path");
            source.server_version = Some(format!("SQLite {}", rusqlite::version()));
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "database.db".into());
            vec![StreamItem {
                name,
                database: path.display().to_string(),
                format: "sqlite-db".into(),
                open: Box::new(move || {
                    let copy = sqlite::snapshot(&path, &private_tmp())?;
                    let file = std::fs::File::open(&copy.path)
                        .map_err(|e| Error::io(format!("cannot read the copy of '{}'", path.display()), e))?;
                    // The copy is unlinked now; the open file keeps its data until read.
                    drop(copy);
                    Ok(OpenedStream { reader: Box::new(file), process: None, keep_alive: None })
                }),
            }]
        }
    };
    backup_streams(repo, opts, items, source)
}

/// One streamed dump per database of `dbs`, started by `dump` when the backup reaches it; the
/// connection stays alive (its options file with it) until the dump is read.
fn dump_items<C: Send + Sync + 'static>(
    conn: &Arc<C>,
    url: &DbUrl,
    dbs: Vec<String>,
    extension: &str,
    format: &str,
    dump: fn(&C, &str) -> Result<(DumpProcess, ChildStdout)>,
) -> Result<Vec<StreamItem>> {
    if dbs.is_empty() {
        return Err(Error::invalid(format!(
            "'{}' names no database and the server lists none",
            url.display()
        )));
    }
    Ok(dbs
        .into_iter()
        .map(|db| {
            let c = conn.clone();
            let name = db.clone();
            StreamItem {
                name: format!("{db}.{extension}"),
                database: db,
                format: format.into(),
                open: Box::new(move || {
                    let (p, out) = dump(&c, &name)?;
                    Ok(OpenedStream {
                        reader: Box::new(out),
                        process: Some(p),
                        keep_alive: Some(Box::new(c)),
                    })
                }),
            }
        })
        .collect())
}
