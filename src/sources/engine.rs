//! The database-engine abstraction: what rempart does with a database the same way for every
//! engine (PostgreSQL, MariaDB/MySQL, SQLite), so backups, restores, drills and cleanup name an
//! operation, not an engine.
//!
//! [`connect`] gives a [`DbEngine`] for a server (or a SQLite file). Its methods: describe the
//! server and plan the dumps of a URL (backup), load a dump into a target (restore), and what
//! a drill needs on a restored copy: its table inventory, its engine's own integrity checks, a
//! query, dropping a scratch database, and the inventory of a dump as backed up.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use super::dump::{DumpItem, DumpStream};
use super::inventory::Inventory;
use super::mysql::MyConn;
use super::postgres::PgConn;
use super::process::run_capture;
use super::{DbAuth, DbKind, DbUrl};
use crate::error::{Error, Result};

/// One database server (or SQLite file) and what rempart does with it.
pub trait DbEngine {
    /// The server's name and version for the snapshot; checks that the dump tool can dump it.
    ///
    /// # Errors
    /// The server cannot be reached, or the dump tool is older than the server.
    fn describe_server(&self) -> Result<String>;

    /// The dumps a backup of `url` takes, in order, each started when the backup reaches it.
    ///
    /// # Errors
    /// `InvalidInput` when the URL names no database and the server lists none.
    fn plan_dumps(&self, url: &DbUrl) -> Result<Vec<DumpItem>>;

    /// Loads a dump into `target` (created when missing; refused when it holds tables unless
    /// `force`). `owners` keeps PostgreSQL object owners and privileges.
    ///
    /// # Errors
    /// `InvalidInput` for a target that holds tables; `Failed` with the client's stderr.
    fn load(&self, target: &DbUrl, dump: &mut dyn Read, force: bool, owners: bool) -> Result<()>;

    /// Applies a server-wide script (PostgreSQL's roles and tablespaces) before a load.
    ///
    /// # Errors
    /// The client's error.
    fn load_globals(&self, _script: &mut dyn Read) -> Result<()> {
        Ok(())
    }

    /// The tables of database `db` (ignored for SQLite) with their row counts.
    ///
    /// # Errors
    /// The client's error, naming the database.
    fn inventory(&self, db: &str) -> Result<Inventory>;

    /// The engine's own integrity checks of `db`: (passed, what was checked or what failed).
    ///
    /// # Errors
    /// When the checks cannot run at all.
    fn engine_check(&self, db: &str) -> Result<(bool, String)>;

    /// Runs `sql` in `db`; the first column of the first row, as text.
    ///
    /// # Errors
    /// The client's error.
    fn query_first(&self, db: &str, sql: &str) -> Result<String>;

    /// Drops database `db` (a drill's scratch database).
    ///
    /// # Errors
    /// The client's error.
    fn drop_database(&self, db: &str) -> Result<()>;

    /// The inventory of a dump as backed up, read from its stream.
    ///
    /// # Errors
    /// When the stream or the tool reading it fails.
    fn dump_inventory(&self, dump: &mut dyn Read) -> Result<Inventory>;
}

/// The engine of `url`.
///
/// # Errors
/// `InvalidInput` when the password file cannot be read.
pub fn connect(url: &DbUrl, auth: &DbAuth) -> Result<Box<dyn DbEngine>> {
    Ok(match url.kind {
        DbKind::Postgres => Box::new(Postgres(Arc::new(PgConn::new(url, auth)?))),
        DbKind::Mysql => Box::new(Mysql(Arc::new(MyConn::new(url, auth)?))),
        DbKind::Sqlite => Box::new(Sqlite(
            url.path
                .clone()
                .ok_or_else(|| Error::invalid(format!("'{}' names no SQLite file", url.display())))?,
        )),
    })
}

struct Postgres(Arc<PgConn>);

/// One streamed dump per database of `dbs`, started by `dump` when the backup reaches it; the
/// connection stays alive (its options file with it) until the dump is read.
fn dump_items<C: Send + Sync + 'static>(
    conn: &Arc<C>,
    url: &DbUrl,
    dbs: Vec<String>,
    extension: &str,
    format: &str,
    dump: fn(&C, &str) -> Result<(super::process::DumpProcess, std::process::ChildStdout)>,
) -> Result<Vec<DumpItem>> {
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
            DumpItem {
                name: format!("{db}.{extension}"),
                database: db,
                format: format.into(),
                open: Box::new(move || {
                    let (p, out) = dump(&c, &name)?;
                    Ok(DumpStream { reader: Box::new(out), process: Some(p), keep_alive: Some(Box::new(c)) })
                }),
            }
        })
        .collect())
}

/// The database a server URL names (the target of a load).
fn target_db(url: &DbUrl) -> Result<String> {
    url.databases.first().cloned().ok_or_else(|| {
        Error::invalid(format!("the target '{}' names no database: add /NAME to the URL", url.display()))
    })
}

/// pg_amcheck, found on PATH or in PostgreSQL's versioned bin folders.
fn find_pg_amcheck() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join("pg_amcheck")).find(|p| p.exists()));
    on_path.or_else(|| {
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .map(|e| e.path().join("bin/pg_amcheck"))
            .filter(|p| p.exists())
            .collect();
        found.sort();
        found.pop()
    })
}

impl DbEngine for Postgres {
    fn describe_server(&self) -> Result<String> {
        let (version, major) = self.0.server_version()?;
        self.0.check_dump_version(major)?;
        Ok(format!("PostgreSQL {version}"))
    }

    fn plan_dumps(&self, url: &DbUrl) -> Result<Vec<DumpItem>> {
        let mut items =
            dump_items(&self.0, url, self.0.databases(url)?, "pgdump", "pg_dump-custom", PgConn::dump)?;
        // Globals are small: taken whole, retried without role passwords for a non-superuser
        // (who may not read them).
        let c = self.0.clone();
        items.push(DumpItem {
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
                    Err(e) if e.to_string().contains("permission denied") => run(&["--no-role-passwords"])?,
                    Err(e) => return Err(e),
                };
                Ok(DumpStream {
                    reader: Box::new(std::io::Cursor::new(sql.into_bytes())),
                    process: None,
                    keep_alive: None,
                })
            }),
        });
        Ok(items)
    }

    fn load(&self, target: &DbUrl, dump: &mut dyn Read, force: bool, owners: bool) -> Result<()> {
        let db = target_db(target)?;
        self.0.prepare_target(&db, force)?;
        self.0.restore(&db, dump, force, owners)
    }

    fn load_globals(&self, script: &mut dyn Read) -> Result<()> {
        self.0.restore_globals(script)
    }

    fn inventory(&self, db: &str) -> Result<Inventory> {
        let tables = self.0.query(
            db,
            "select schemaname || '.' || tablename, format('%I.%I', schemaname, tablename) from pg_tables where schemaname not in ('pg_catalog','information_schema') order by 1",
        )?;
        let mut inv = BTreeMap::new();
        for line in tables.lines().filter(|l| !l.is_empty()) {
            let (name, quoted) = line.split_once('|').unwrap_or((line, line));
            // `only`: a partitioned or inherited table's own rows, as its COPY in the dump holds
            // them (its partitions and children are tables of their own).
            let n = self.0.query(db, &format!("select count(*) from only {quoted}"))?;
            let rows = n.trim().parse::<u64>().map_err(|_| {
                Error::failed(format!("counting the rows of {name} gave '{}', not a number", n.trim()))
            })?;
            inv.insert(name.to_string(), rows);
        }
        Ok(inv)
    }

    fn engine_check(&self, db: &str) -> Result<(bool, String)> {
        match find_pg_amcheck() {
            Some(bin) => {
                let mut cmd = self.0.command_at(bin);
                cmd.args(["--no-password", "--install-missing", "--heapallindexed", "-d", db]);
                Ok(match run_capture(cmd, "pg_amcheck") {
                    Ok(_) => (true, "pg_amcheck --heapallindexed clean".into()),
                    Err(e) => (false, format!("pg_amcheck: {e}")),
                })
            }
            None => {
                Ok((true, "pg_amcheck is not installed: no engine check beyond reading every row".into()))
            }
        }
    }

    fn query_first(&self, db: &str, sql: &str) -> Result<String> {
        Ok(self.0.query(db, sql)?.lines().next().unwrap_or("").split('|').next().unwrap_or("").to_string())
    }

    fn drop_database(&self, db: &str) -> Result<()> {
        self.0.drop_database(db)
    }

    fn dump_inventory(&self, dump: &mut dyn Read) -> Result<Inventory> {
        // pg_restore turns the custom format into SQL; COPY blocks hold one row per line.
        let mut cmd = self.0.command("pg_restore");
        cmd.args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| Error::io("cannot start pg_restore", e))?;
        let mut stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let counter = std::thread::spawn(move || super::inventory::pg_sql(stdout));
        // Drained beside stdout: a full stderr pipe would stop pg_restore.
        let errors = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = std::io::Read::read_to_end(&mut stderr, &mut text);
            text
        });
        let fed = std::io::copy(dump, &mut stdin);
        drop(stdin);
        let inv = counter.join().map_err(|_| Error::failed("the dump inventory thread panicked"))?;
        let status = child.wait().map_err(|e| Error::io("cannot wait for pg_restore", e))?;
        let stderr = errors.join().unwrap_or_default();
        fed.map_err(|e| Error::io("cannot feed the dump to pg_restore", e))?;
        if !status.success() {
            return Err(Error::failed(format!(
                "pg_restore could not read the dump: {}",
                String::from_utf8_lossy(&stderr).trim()
            )));
        }
        inv
    }
}

struct Mysql(Arc<MyConn>);

impl DbEngine for Mysql {
    fn describe_server(&self) -> Result<String> {
        Ok(format!("MariaDB/MySQL {}", self.0.server_version()?))
    }

    fn plan_dumps(&self, url: &DbUrl) -> Result<Vec<DumpItem>> {
        dump_items(&self.0, url, self.0.databases(url)?, "sql", "mysql-sql", MyConn::dump)
    }

    fn load(&self, target: &DbUrl, dump: &mut dyn Read, force: bool, _owners: bool) -> Result<()> {
        let db = target_db(target)?;
        self.0.prepare_target(&db, force)?;
        self.0.restore(&db, dump)
    }

    fn inventory(&self, db: &str) -> Result<Inventory> {
        let tables: Vec<String> = self
            .0
            .query(
                None,
                &format!(
                    "select table_name from information_schema.tables where table_schema = '{}' and table_type = 'BASE TABLE'",
                    db.replace('\\', "\\\\").replace('\'', "''")
                ),
            )?
            .lines()
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        let mut inv = BTreeMap::new();
        for t in tables {
            let q = super::mysql::quote_ident(&t);
            let n = self.0.query(Some(db), &format!("select count(*) from {q}"))?;
            let rows = n.trim().parse::<u64>().map_err(|_| {
                Error::failed(format!("counting the rows of {t} gave '{}', not a number", n.trim()))
            })?;
            inv.insert(t, rows);
        }
        Ok(inv)
    }

    fn engine_check(&self, db: &str) -> Result<(bool, String)> {
        let tables = self.inventory(db)?;
        let mut bad = Vec::new();
        for t in tables.keys() {
            let out = self.0.query(Some(db), &format!("check table {}", super::mysql::quote_ident(t)))?;
            if !out.lines().any(|l| l.ends_with("\tOK")) {
                bad.push(format!("{t}: {}", out.trim()));
            }
        }
        Ok(if bad.is_empty() {
            (true, format!("CHECK TABLE OK for {} tables", tables.len()))
        } else {
            (false, bad.join("; "))
        })
    }

    fn query_first(&self, db: &str, sql: &str) -> Result<String> {
        Ok(self
            .0
            .query(Some(db), sql)?
            .lines()
            .next()
            .unwrap_or("")
            .split('\t')
            .next()
            .unwrap_or("")
            .to_string())
    }

    fn drop_database(&self, db: &str) -> Result<()> {
        self.0.drop_database(db)
    }

    fn dump_inventory(&self, dump: &mut dyn Read) -> Result<Inventory> {
        super::inventory::mysql_dump(dump)
    }
}

struct Sqlite(PathBuf);

impl Sqlite {
    fn open(&self) -> Result<rusqlite::Connection> {
        rusqlite::Connection::open_with_flags(&self.0, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| Error::failed(format!("cannot open SQLite database '{}': {e}", self.0.display())))
    }
}

/// The tables of a SQLite connection and their row counts.
fn sqlite_inventory(c: &rusqlite::Connection) -> Result<Inventory> {
    let tables: Vec<String> = c
        .prepare("select name from sqlite_master where type = 'table' and name not like 'sqlite_%'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| Error::failed(e.to_string()))?;
    let mut inv = BTreeMap::new();
    for t in tables {
        let n: i64 = c
            .query_row(&format!("select count(*) from \"{}\"", t.replace('"', "\"\"")), [], |r| r.get(0))
            .map_err(|e| Error::failed(format!("counting rows of '{t}': {e}")))?;
        inv.insert(t, n as u64);
    }
    Ok(inv)
}

impl DbEngine for Sqlite {
    fn describe_server(&self) -> Result<String> {
        Ok(format!("SQLite {}", rusqlite::version()))
    }

    fn plan_dumps(&self, _url: &DbUrl) -> Result<Vec<DumpItem>> {
        // One consistent copy, through SQLite's online backup API.
        let path = self.0.clone();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "database.db".into());
        Ok(vec![DumpItem {
            name,
            database: path.display().to_string(),
            format: "sqlite-db".into(),
            open: Box::new(move || {
                let copy = super::sqlite::snapshot(&path, &super::private_tmp())?;
                let file = std::fs::File::open(&copy.path)
                    .map_err(|e| Error::io(format!("cannot read the copy of '{}'", path.display()), e))?;
                // The copy is unlinked now; the open file keeps its data until read.
                drop(copy);
                Ok(DumpStream { reader: Box::new(file), process: None, keep_alive: None })
            }),
        }])
    }

    fn load(&self, target: &DbUrl, dump: &mut dyn Read, force: bool, _owners: bool) -> Result<()> {
        let path = target
            .path
            .clone()
            .ok_or_else(|| Error::invalid(format!("'{}' names no SQLite file", target.display())))?;
        let n = super::sqlite::table_count(&path)?;
        if n > 0 && !force {
            return Err(Error::invalid(format!(
                "target '{}' already holds {n} tables: choose a new file, or add --force to replace it",
                path.display()
            )));
        }
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("cannot create '{}'", dir.display()), e))?;
        let tmp = crate::repo::pack::TempFile {
            path: dir.join(format!(".rempart-restore-{:08x}.db", rand::random::<u32>())),
        };
        let mut out = std::fs::File::create(&tmp.path)
            .map_err(|e| Error::io(format!("cannot create '{}'", tmp.path.display()), e))?;
        std::io::copy(dump, &mut out).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => Error::corrupt("the SQLite dump", e),
            _ => Error::io(format!("cannot write '{}'", tmp.path.display()), e),
        })?;
        out.sync_all().map_err(|e| Error::io("cannot sync the restored database", e))?;
        let problems = super::sqlite::integrity_check(&tmp.path)?;
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
        Ok(())
    }

    fn inventory(&self, _db: &str) -> Result<Inventory> {
        sqlite_inventory(&self.open()?)
    }

    fn engine_check(&self, _db: &str) -> Result<(bool, String)> {
        let problems = super::sqlite::integrity_check(&self.0)?;
        Ok(if problems.is_empty() {
            (true, "PRAGMA integrity_check ok".into())
        } else {
            (false, problems.join("; "))
        })
    }

    fn query_first(&self, _db: &str, sql: &str) -> Result<String> {
        let c = rusqlite::Connection::open(&self.0).map_err(|e| Error::failed(e.to_string()))?;
        c.query_row(sql, [], |r| {
            let v: rusqlite::types::Value = r.get(0)?;
            Ok(match v {
                rusqlite::types::Value::Null => String::new(),
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Real(f) => f.to_string(),
                rusqlite::types::Value::Text(t) => t,
                rusqlite::types::Value::Blob(b) => hex::encode(b),
            })
        })
        .map_err(|e| Error::failed(format!("query '{sql}': {e}")))
    }

    fn drop_database(&self, _db: &str) -> Result<()> {
        // A scratch SQLite file lives in the drill's sandbox, removed with it.
        Ok(())
    }

    fn dump_inventory(&self, dump: &mut dyn Read) -> Result<Inventory> {
        // The dump is the database file itself: read it into a temporary file and count.
        let tmp = crate::repo::pack::TempFile {
            path: super::private_tmp().join(format!("rempart-inventory-{:016x}.db", rand::random::<u64>())),
        };
        let mut f = std::fs::File::create(&tmp.path)
            .map_err(|e| Error::io(format!("cannot create '{}'", tmp.path.display()), e))?;
        std::io::copy(dump, &mut f).map_err(|e| Error::io("cannot read the dump", e))?;
        drop(f);
        let c = rusqlite::Connection::open_with_flags(&tmp.path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| Error::failed(e.to_string()))?;
        sqlite_inventory(&c)
    }
}
