//! SQLite: a consistent copy of a live database through the online backup API.
//!
//! The backup API restarts when another connection writes between its steps, so the whole
//! database is copied in one step (`step(-1)`), under a read transaction that sees one
//! committed state; WAL databases keep accepting writes meanwhile. The copy goes to a private
//! temporary file that the backup then reads.

use std::path::Path;
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};
use crate::repo::pack::TempFile;

fn sqlite_err(what: &str, path: &Path, e: rusqlite::Error) -> Error {
    Error::failed(format!("{what} '{}': {e}", path.display()))
}

/// Copies the database at `path` into a temporary file in `dir`.
///
/// # Errors
/// `Failed` naming the file when it cannot be opened or copied.
pub fn snapshot(path: &Path, dir: &Path) -> Result<TempFile> {
    if !path.is_file() {
        return Err(Error::invalid(format!("SQLite database '{}' does not exist", path.display())));
    }
    let src =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(|e| sqlite_err("cannot open SQLite database", path, e))?;
    src.busy_timeout(Duration::from_secs(30)).map_err(|e| sqlite_err("cannot configure", path, e))?;
    let temp = TempFile { path: dir.join(format!(".sqlite-copy-{:016x}.db", rand::random::<u64>())) };
    let mut dst = Connection::open(&temp.path).map_err(|e| sqlite_err("cannot create copy of", path, e))?;
    {
        let backup = Backup::new(&src, &mut dst).map_err(|e| sqlite_err("cannot start copying", path, e))?;
        let mut waited = Duration::ZERO;
        loop {
            match backup.step(-1).map_err(|e| sqlite_err("copy failed for", path, e))? {
                StepResult::Done => break,
                StepResult::More => continue,
                StepResult::Busy | StepResult::Locked => {
                    if waited > Duration::from_secs(60) {
                        return Err(Error::failed(format!(
                            "SQLite database '{}' stayed locked for 60 s",
                            path.display()
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                    waited += Duration::from_millis(50);
                }
                _ => continue,
            }
        }
    }
    dst.close().map_err(|(_, e)| sqlite_err("cannot finish copy of", path, e))?;
    Ok(temp)
}

/// Number of tables in an existing database file (0 when the file does not exist).
pub fn table_count(path: &Path) -> Result<u64> {
    if !path.exists() {
        return Ok(0);
    }
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| sqlite_err("cannot open", path, e))?;
    c.query_row("select count(*) from sqlite_master where type = 'table'", [], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
        .map_err(|e| sqlite_err("cannot read", path, e))
}

/// Runs `PRAGMA integrity_check`; returns the problems it lists (empty when "ok").
pub fn integrity_check(path: &Path) -> Result<Vec<String>> {
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| sqlite_err("cannot open", path, e))?;
    let mut stmt = c.prepare("pragma integrity_check").map_err(|e| sqlite_err("cannot check", path, e))?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(|e| sqlite_err("cannot check", path, e))?
        .filter_map(|r| r.ok())
        .collect();
    Ok(rows.into_iter().filter(|r| r != "ok").collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_of_a_wal_database_is_whole() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        let c = Connection::open(&db).unwrap();
        c.execute_batch(
            "pragma journal_mode=wal; create table t(x integer, y text); insert into t values (1, 'été');",
        )
        .unwrap();
        let copy = snapshot(&db, dir.path()).unwrap();
        assert!(integrity_check(&copy.path).unwrap().is_empty());
        let n: i64 = Connection::open(&copy.path)
            .unwrap()
            .query_row("select count(*) from t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(table_count(&copy.path).unwrap(), 1);
    }
}
