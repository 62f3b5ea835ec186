//! MariaDB and MySQL: `mariadb-dump --single-transaction` with routines, triggers and events
//! (or `mysqldump`), restored with the `mariadb` (or `mysql`) client.
//!
//! Credentials go in a 0600 options file passed as `--defaults-extra-file`, never as
//! arguments. The dump names no database (no `CREATE DATABASE` or `USE`), so it loads into
//! whatever database the restore targets.

use std::io::Read;
use std::path::PathBuf;
use std::process::{ChildStdout, Command};

use super::process::{run_capture, run_with_input, DumpProcess};
use super::{private_tmp, tool_path, DbAuth, DbUrl, SecretFile};
use crate::error::{Error, Result};

const SYSTEM_DATABASES: [&str; 4] = ["information_schema", "performance_schema", "mysql", "sys"];

pub struct MyConn {
    options: SecretFile,
}

fn pick(primary: &str, fallback: &str) -> (PathBuf, String) {
    let p = tool_path(primary);
    let on_path = |p: &PathBuf| {
        p.is_absolute() && p.exists()
            || std::env::var_os("PATH")
                .map(|path| std::env::split_paths(&path).any(|d| d.join(p).exists()))
                .unwrap_or(false)
    };
    if on_path(&p) {
        (p, primary.to_string())
    } else {
        (tool_path(fallback), fallback.to_string())
    }
}

/// Quotes an identifier with backticks.
pub fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

impl MyConn {
    /// # Errors
    /// `InvalidInput` when the password file cannot be read; `Io` for the options file.
    pub fn new(url: &DbUrl, auth: &DbAuth) -> Result<MyConn> {
        let mut opts = String::from("[client]\n");
        if let Some(u) = &url.user {
            opts.push_str(&format!("user={u}\n"));
        }
        if let Some(h) = &url.host {
            opts.push_str(&format!("host={h}\nprotocol=TCP\n"));
        }
        if let Some(p) = url.port {
            opts.push_str(&format!("port={p}\n"));
        }
        if let Some(pw) = auth.password()? {
            opts.push_str(&format!("password=\"{}\"\n", pw.replace('\\', "\\\\").replace('"', "\\\"")));
        }
        let options = SecretFile::create(&private_tmp(), "my-cnf", &opts)?;
        zeroize::Zeroize::zeroize(&mut opts);
        Ok(MyConn { options })
    }

    fn command(&self, primary: &str, fallback: &str) -> (Command, String) {
        let (path, name) = pick(primary, fallback);
        let mut c = Command::new(path);
        // Must be the first argument.
        c.arg(format!("--defaults-extra-file={}", self.options.path().display()));
        (c, name)
    }

    /// Runs one statement and returns the tab-separated rows.
    pub fn query(&self, db: Option<&str>, sql: &str) -> Result<String> {
        let (mut c, name) = self.command("mariadb", "mysql");
        c.args(["--batch", "--skip-column-names", "-e", sql]);
        if let Some(db) = db {
            c.arg(db);
        }
        run_capture(c, &name)
    }

    pub fn server_version(&self) -> Result<String> {
        Ok(self.query(None, "select version()")?.trim().to_string())
    }

    pub fn databases(&self, url: &DbUrl) -> Result<Vec<String>> {
        if !url.databases.is_empty() {
            return Ok(url.databases.clone());
        }
        Ok(self
            .query(None, "show databases")?
            .lines()
            .map(str::to_string)
            .filter(|d| !d.is_empty() && !SYSTEM_DATABASES.contains(&d.as_str()))
            .collect())
    }

    /// Starts a consistent dump of one database.
    pub fn dump(&self, db: &str) -> Result<(DumpProcess, ChildStdout)> {
        let (mut c, name) = self.command("mariadb-dump", "mysqldump");
        c.args([
            "--single-transaction",
            "--routines",
            "--triggers",
            "--events",
            "--hex-blob",
            "--no-tablespaces",
            "--default-character-set=utf8mb4",
            db,
        ]);
        DumpProcess::spawn(c, &name)
    }

    pub fn table_count(&self, db: &str) -> Result<u64> {
        let out = self.query(
            None,
            &format!(
                "select count(*) from information_schema.tables where table_schema = '{}'",
                db.replace('\'', "''")
            ),
        )?;
        out.trim().parse().map_err(|_| Error::failed(format!("unexpected table count '{out}'")))
    }

    /// Creates `db` when missing; refuses one that holds tables unless `force`, which
    /// recreates it empty.
    pub fn prepare_target(&self, db: &str, force: bool) -> Result<()> {
        let n = self.table_count(db)?;
        if n > 0 && !force {
            return Err(Error::invalid(format!(
                "target database '{db}' already holds {n} tables: restore into a new database, or add --force to replace it"
            )));
        }
        if n > 0 {
            self.query(None, &format!("drop database {}", quote_ident(db)))?;
        }
        self.query(
            None,
            &format!("create database if not exists {} character set utf8mb4", quote_ident(db)),
        )?;
        Ok(())
    }

    /// Loads an SQL dump into `db`.
    pub fn restore(&self, db: &str, dump: &mut dyn Read) -> Result<()> {
        let (mut c, name) = self.command("mariadb", "mysql");
        c.args(["--default-character-set=utf8mb4", db]);
        run_with_input(c, &name, dump)
    }

    pub fn drop_database(&self, db: &str) -> Result<()> {
        self.query(None, &format!("drop database if exists {}", quote_ident(db))).map(|_| ())
    }
}
