//! PostgreSQL: consistent dumps with `pg_dump -Fc --compress=0`, globals with `pg_dumpall
//! --globals-only`, restores with `pg_restore`.
//!
//! Custom format keeps `pg_restore`'s flexibility; without its own compression the dump
//! dedups between backups and rempart's zstd compresses it. The connection goes through the
//! usual libpq variables (PGHOST, PGPORT, PGUSER) and, when a password is configured, a 0600
//! PGPASSFILE: nothing secret is ever an argument.

use std::io::Read;
use std::process::{ChildStdout, Command};

use zeroize::Zeroizing;

use super::process::{run_capture, run_with_input, DumpProcess};
use super::{private_tmp, tool_path, DbAuth, DbUrl, SecretFile};
use crate::error::{Error, Result};

pub struct PgConn {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    passfile: Option<SecretFile>,
}

fn escape_passfile(s: &str) -> String {
    s.replace('\\', "\\\\").replace(':', "\\:")
}

/// Quotes an SQL identifier.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn major_of(version_num: &str) -> Option<u32> {
    version_num.trim().parse::<u32>().ok().map(|n| if n >= 100_000 { n / 10_000 } else { n / 100 })
}

impl PgConn {
    /// # Errors
    /// `InvalidInput` when the password file cannot be read.
    pub fn new(url: &DbUrl, auth: &DbAuth) -> Result<PgConn> {
        let passfile = match auth.password()? {
            Some(pw) => {
                let line = Zeroizing::new(format!("*:*:*:*:{}\n", escape_passfile(&pw)));
                Some(SecretFile::create(&private_tmp(), "pgpass", &line)?)
            }
            None => None,
        };
        Ok(PgConn { host: url.host.clone(), port: url.port, user: url.user.clone(), passfile })
    }

    /// A command for a PostgreSQL client tool with the connection in its environment.
    pub fn command(&self, tool: &str) -> Command {
        self.command_at(tool_path(tool))
    }

    /// Like [`PgConn::command`] for a program at a given path.
    pub fn command_at(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("PGCONNECT_TIMEOUT", "15").env("PGAPPNAME", "rempart").env_remove("PGPASSWORD");
        if let Some(h) = &self.host {
            c.env("PGHOST", h);
        }
        if let Some(p) = self.port {
            c.env("PGPORT", p.to_string());
        }
        if let Some(u) = &self.user {
            c.env("PGUSER", u);
        }
        if let Some(f) = &self.passfile {
            c.env("PGPASSFILE", f.path());
        }
        c
    }

    /// Runs one query in `db` and returns its unaligned output.
    pub fn query(&self, db: &str, sql: &str) -> Result<String> {
        let mut c = self.command("psql");
        c.args(["-X", "-A", "-t", "-q", "--no-password", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql]);
        run_capture(c, "psql")
    }

    /// The server's version string and major version.
    pub fn server_version(&self) -> Result<(String, u32)> {
        let out = self.query(
            "postgres",
            "select current_setting('server_version'), current_setting('server_version_num')",
        )?;
        let (v, num) = out
            .trim()
            .split_once('|')
            .ok_or_else(|| Error::failed(format!("unexpected psql output '{out}'")))?;
        let major =
            major_of(num).ok_or_else(|| Error::failed(format!("unexpected server version '{num}'")))?;
        Ok((v.to_string(), major))
    }

    /// Checks that pg_dump's major version is at least the server's.
    ///
    /// # Errors
    /// `Failed` saying which versions met and what to install.
    pub fn check_dump_version(&self, server_major: u32) -> Result<String> {
        let mut c = self.command("pg_dump");
        c.arg("--version");
        let out = run_capture(c, "pg_dump")?;
        let dump_major = out
            .split_whitespace()
            .find_map(|w| w.split('.').next().and_then(|m| m.parse::<u32>().ok()))
            .ok_or_else(|| Error::failed(format!("cannot read pg_dump's version from '{}'", out.trim())))?;
        if dump_major < server_major {
            return Err(Error::failed(format!(
                "pg_dump {dump_major} is older than the PostgreSQL {server_major} server: it cannot dump it reliably. \
                 Install postgresql-client-{server_major} and point REMPART_PG_BIN at its bin folder"
            )));
        }
        Ok(out.trim().to_string())
    }

    /// The databases to dump: those the URL names, or every database that accepts connections.
    pub fn databases(&self, url: &DbUrl) -> Result<Vec<String>> {
        if !url.databases.is_empty() {
            return Ok(url.databases.clone());
        }
        let out = self.query(
            "postgres",
            "select datname from pg_database where datallowconn and not datistemplate order by 1",
        )?;
        Ok(out.lines().map(str::to_string).filter(|d| !d.is_empty()).collect())
    }

    /// Starts `pg_dump` of one database in custom format without compression.
    pub fn dump(&self, db: &str) -> Result<(DumpProcess, ChildStdout)> {
        let mut c = self.command("pg_dump");
        c.args(["--format=custom", "--compress=0", "--no-password", "--dbname", db]);
        DumpProcess::spawn(c, "pg_dump")
    }

    pub fn exists(&self, db: &str) -> Result<bool> {
        let out = self.query(
            "postgres",
            &format!("select 1 from pg_database where datname = '{}'", db.replace('\'', "''")),
        )?;
        Ok(out.trim() == "1")
    }

    /// Number of user tables in `db`.
    pub fn table_count(&self, db: &str) -> Result<u64> {
        let out = self.query(
            db,
            "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace \
             where c.relkind in ('r','p') and n.nspname not in ('pg_catalog','information_schema') and n.nspname not like 'pg_toast%'",
        )?;
        out.trim().parse().map_err(|_| Error::failed(format!("unexpected table count '{out}'")))
    }

    /// Creates `db` when missing; refuses a database that holds tables unless `force`.
    pub fn prepare_target(&self, db: &str, force: bool) -> Result<()> {
        if !self.exists(db)? {
            self.query("postgres", &format!("create database {}", quote_ident(db)))?;
            return Ok(());
        }
        let n = self.table_count(db)?;
        if n > 0 && !force {
            return Err(Error::invalid(format!(
                "target database '{db}' already holds {n} tables: restore into a new database, or add --force to replace its objects"
            )));
        }
        Ok(())
    }

    /// Loads a custom-format dump read from `dump` into `db`.
    pub fn restore(&self, db: &str, dump: &mut dyn Read, force: bool, owners: bool) -> Result<()> {
        let mut c = self.command("pg_restore");
        c.args(["--no-password", "--exit-on-error", "--dbname", db]);
        if force {
            c.args(["--clean", "--if-exists"]);
        }
        if !owners {
            c.args(["--no-owner", "--no-privileges"]);
        }
        run_with_input(c, "pg_restore", dump)
    }

    /// Applies a `pg_dumpall --globals-only` script (existing roles are reported, not fatal).
    pub fn restore_globals(&self, script: &mut dyn Read) -> Result<()> {
        let mut c = self.command("psql");
        c.args(["-X", "-q", "--no-password", "-v", "ON_ERROR_STOP=0", "-d", "postgres", "-f", "-"]);
        run_with_input(c, "psql", script)
    }

    /// Drops a database (drill scratch databases).
    pub fn drop_database(&self, db: &str) -> Result<()> {
        self.query("postgres", &format!("drop database if exists {} with (force)", quote_ident(db)))
            .map(|_| ())
    }
}
