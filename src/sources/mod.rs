//! Database sources: what to dump, with which tool, and how to load a dump back.
//!
//! A database is named by URL: `postgres://USER@HOST:PORT/DB`, `mysql://USER@HOST:PORT/DB`
//! (MariaDB too), `sqlite:///PATH`. The path may list several databases (`/app,billing`) or
//! none (`/`: every database of the server). A password is never part of the URL (process
//! arguments and logs would show it): it comes from a file the configuration names
//! ([`DbAuth`]) and reaches the tools through a 0600 options file, never their arguments.
//!
//! Dumps are streamed from the tool's stdout into the backup pipeline (no temporary copy);
//! SQLite is copied with the online backup API in one step into a temporary file first.

pub mod dump;
pub mod engine;
pub mod inventory;
pub mod mysql;
pub mod postgres;
pub mod process;
pub mod sqlite;

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbKind {
    Postgres,
    Mysql,
    Sqlite,
}

impl DbKind {
    /// The engine of a snapshot's source kind (`postgres`, `mysql`, `sqlite`); `None` for files.
    pub fn of_source(kind: &str) -> Option<DbKind> {
        [DbKind::Postgres, DbKind::Mysql, DbKind::Sqlite].into_iter().find(|k| k.name() == kind)
    }

    pub fn name(self) -> &'static str {
        match self {
            DbKind::Postgres => "postgres",
            DbKind::Mysql => "mysql",
            DbKind::Sqlite => "sqlite",
        }
    }
}

/// A parsed database URL (never holding a password).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbUrl {
    pub kind: DbKind,
    pub user: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    /// Databases named in the path; empty means every database of the server.
    pub databases: Vec<String>,
    /// The file of a SQLite database.
    pub path: Option<PathBuf>,
}

/// True when `text` looks like a database URL rather than a file path.
pub fn is_db_url(text: &str) -> bool {
    ["postgres://", "postgresql://", "mysql://", "mariadb://", "sqlite://"]
        .iter()
        .any(|p| text.starts_with(p))
}

impl DbUrl {
    /// Parses a database URL.
    ///
    /// # Errors
    /// `InvalidInput` naming the URL (with any password masked) and what is expected; a URL
    /// that carries a password is refused and the message says where the password goes.
    pub fn parse(text: &str) -> Result<DbUrl> {
        let parsed = url::Url::parse(text).map_err(|e| {
            Error::invalid(format!(
                "'{}' is not a database URL ({e}); expected postgres://USER@HOST:PORT/DB, mysql://USER@HOST:PORT/DB or sqlite:///PATH",
                redact(text)
            ))
        })?;
        if parsed.password().is_some() {
            return Err(Error::invalid(format!(
                "the database URL '{}' contains a password: process arguments, logs and snapshots would show it. \
                 Remove it from the URL and put it in a file (mode 0600) named by --db-password-file, \
                 REMPART_DB_PASSWORD_FILE or the job's password_file",
                redact(text)
            )));
        }
        let kind = match parsed.scheme() {
            "postgres" | "postgresql" => DbKind::Postgres,
            "mysql" | "mariadb" => DbKind::Mysql,
            "sqlite" => DbKind::Sqlite,
            other => {
                return Err(Error::invalid(format!(
                    "unknown database scheme '{other}' in '{}'",
                    redact(text)
                )))
            }
        };
        if kind == DbKind::Sqlite {
            let path = PathBuf::from(parsed.path());
            if !path.is_absolute() || parsed.path().len() < 2 {
                return Err(Error::invalid(format!("'{text}': expected sqlite:///ABSOLUTE/PATH/TO/FILE.db")));
            }
            return Ok(DbUrl {
                kind,
                user: None,
                host: None,
                port: None,
                databases: vec![],
                path: Some(path),
            });
        }
        let user = Some(parsed.username()).filter(|u| !u.is_empty()).map(percent_decode);
        let databases = parsed
            .path()
            .trim_start_matches('/')
            .split(',')
            .map(percent_decode)
            .filter(|d| !d.is_empty() && d != "*")
            .collect();
        Ok(DbUrl {
            kind,
            user,
            host: parsed.host_str().map(str::to_string),
            port: parsed.port(),
            databases,
            path: None,
        })
    }

    /// The URL as shown in snapshots and messages (no password is ever held).
    pub fn display(&self) -> String {
        match self.kind {
            DbKind::Sqlite => format!(
                "sqlite://{}",
                self.path.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
            ),
            _ => format!(
                "{}://{}{}{}/{}",
                self.kind.name(),
                self.user.as_ref().map(|u| format!("{u}@")).unwrap_or_default(),
                self.host.clone().unwrap_or_default(),
                self.port.map(|p| format!(":{p}")).unwrap_or_default(),
                self.databases.join(",")
            ),
        }
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Masks the password of a URL-like text for messages.
pub fn redact(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("****"));
            u.to_string()
        }
        _ => text.to_string(),
    }
}

/// Where a database password comes from.
#[derive(Clone, Debug, Default)]
pub struct DbAuth {
    pub password_file: Option<PathBuf>,
}

impl DbAuth {
    /// The password, if a file is configured.
    ///
    /// # Errors
    /// `InvalidInput` naming the file when it cannot be read.
    pub fn password(&self) -> Result<Option<Zeroizing<String>>> {
        let Some(f) = &self.password_file else { return Ok(None) };
        let text = Zeroizing::new(std::fs::read_to_string(f).map_err(|e| {
            Error::invalid(format!("database password file '{}' cannot be read: {e}", f.display()))
        })?);
        let line = text.lines().next().unwrap_or("").to_string();
        Ok(Some(Zeroizing::new(line)))
    }
}

/// A 0600 file holding credentials for a tool, removed when dropped.
pub struct SecretFile {
    path: PathBuf,
}

impl SecretFile {
    /// Writes `content` to a new private file in `dir`.
    ///
    /// # Errors
    /// `Io` naming the folder.
    pub fn create(dir: &Path, prefix: &str, content: &str) -> Result<SecretFile> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("cannot create '{}'", dir.display()), e))?;
        let path = dir.join(format!(".{prefix}-{:016x}", rand::random::<u64>()));
        let mut f =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(
                |e| Error::io(format!("cannot create credentials file in '{}'", dir.display()), e),
            )?;
        f.write_all(content.as_bytes()).map_err(|e| Error::io("cannot write credentials file", e))?;
        Ok(SecretFile { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The folder for credentials files and SQLite copies (private to this user).
pub fn private_tmp() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rempart-{}", nix::unistd::getuid()));
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700));
    dir
}

/// The program to run for `tool`: `REMPART_<TOOL>` when set (e.g. `REMPART_PG_DUMP`), else
/// `REMPART_PG_BIN/<tool>` for PostgreSQL tools when set, else the name on PATH.
pub fn tool_path(tool: &str) -> PathBuf {
    let var = format!("REMPART_{}", tool.to_ascii_uppercase().replace('-', "_"));
    if let Some(p) = std::env::var_os(&var).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if tool.starts_with("pg_") || tool == "psql" {
        if let Some(bin) = std::env::var_os("REMPART_PG_BIN").filter(|p| !p.is_empty()) {
            return PathBuf::from(bin).join(tool);
        }
    }
    PathBuf::from(tool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_passwords_are_refused_without_echo() {
        let u = DbUrl::parse("postgres://app@127.0.0.1:5432/shop,billing").unwrap();
        assert_eq!(u.kind, DbKind::Postgres);
        assert_eq!(u.user.as_deref(), Some("app"));
        assert_eq!(u.port, Some(5432));
        assert_eq!(u.databases, vec!["shop", "billing"]);
        assert_eq!(DbUrl::parse("mysql://root@localhost/").unwrap().databases, Vec::<String>::new());
        let s = DbUrl::parse("sqlite:///var/lib/app/app.db").unwrap();
        assert_eq!(s.path.unwrap(), PathBuf::from("/var/lib/app/app.db"));
        let err = DbUrl::parse("postgres://app:hunter2@db/shop").unwrap_err().to_string();
        assert!(err.contains("password") && err.contains("password-file"), "{err}");
        assert!(!err.contains("hunter2"), "the password must not be echoed: {err}");
        assert!(DbUrl::parse("sqlite://relative.db").is_err());
        assert!(is_db_url("mysql://x") && !is_db_url("/srv/data"));
    }
}
