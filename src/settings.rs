//! The optional configuration file (`--config FILE` or `REMPART_CONFIG`).
//!
//! A host that runs the daemon from a service manager wants its folders and listen address in
//! one file under /etc rather than in flags of a unit file. The file only supplies defaults:
//! a flag or environment variable always wins over it, and it over the built-in default.
//! Relative paths resolve against the file's folder, as in job files.
//!
//! ```toml
//! jobs_dir = "jobs"
//! keys_dir = "keys"
//! state_dir = "/var/lib/rempart"
//! [daemon]
//! listen = "127.0.0.1:8420"
//! max_concurrent = 2
//! grace = "60s"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Result};

/// What the configuration file says; every field is optional.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Settings {
    pub jobs_dir: Option<PathBuf>,
    pub keys_dir: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub daemon: DaemonSettings,
    /// `[evidence] pinned_keys`: fingerprints of other installations' evidence keys whose
    /// records count for readiness here (this installation's own key always counts).
    pub pinned_keys: Vec<String>,
}

/// The `[daemon]` table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DaemonSettings {
    pub listen: Option<SocketAddr>,
    pub max_concurrent: Option<usize>,
    pub grace: Option<Duration>,
    /// File holding the bearer token of the HTTP pages (all but /healthz).
    pub token_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    jobs_dir: Option<String>,
    keys_dir: Option<String>,
    state_dir: Option<String>,
    #[serde(default)]
    daemon: RawDaemon,
    #[serde(default)]
    evidence: RawEvidence,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEvidence {
    #[serde(default)]
    pinned_keys: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    listen: Option<Spanned<String>>,
    max_concurrent: Option<Spanned<i64>>,
    grace: Option<Spanned<String>>,
    token_file: Option<String>,
}

/// Reads and checks a configuration file.
///
/// # Errors
/// `Invalid` naming the file, the line and the key, and what is expected.
pub fn load(file: &Path) -> Result<Settings> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Error::invalid(format!("configuration file '{}': cannot read it: {e}", file.display()))
    })?;
    parse(file, &text)
}

/// Parses and checks the text of configuration file `file`.
pub(crate) fn parse(file: &Path, text: &str) -> Result<Settings> {
    let line_of = |span: std::ops::Range<usize>| crate::util::line_at(text, span.start);
    let fail = |line: usize, key: &str, message: String| {
        Error::invalid(format!("{}:{line}: key '{key}': {message}", file.display()))
    };
    let raw: RawSettings = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, line_of);
        let message = e.message().to_string();
        let hint = if message.starts_with("unknown field") {
            " (keys: jobs_dir, keys_dir, state_dir, [daemon] listen, max_concurrent, grace, token_file, and [evidence] pinned_keys; see docs/cli.md)"
        } else {
            ""
        };
        Error::invalid(format!("{}:{line}: {message}{hint}", file.display()))
    })?;
    let dir = file.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    let path = |p: Option<String>| {
        p.map(|p| {
            let p = PathBuf::from(p);
            if p.is_absolute() {
                p
            } else {
                dir.join(p)
            }
        })
    };
    let listen = match raw.daemon.listen {
        None => None,
        Some(v) => Some(v.get_ref().parse::<SocketAddr>().map_err(|_| {
            fail(
                line_of(v.span()),
                "daemon.listen",
                format!("'{}' is not an address: expected IP:PORT, like 127.0.0.1:8420", v.get_ref()),
            )
        })?),
    };
    let max_concurrent = match raw.daemon.max_concurrent {
        None => None,
        Some(v) => match usize::try_from(*v.get_ref()) {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                return Err(fail(
                    line_of(v.span()),
                    "daemon.max_concurrent",
                    format!(
                        "{} runs at once is not possible: expected a whole number of at least 1",
                        v.get_ref()
                    ),
                ))
            }
        },
    };
    let grace = match raw.daemon.grace {
        None => None,
        Some(v) => Some(
            crate::jobs::duration::parse_duration(v.get_ref())
                .map_err(|e| fail(line_of(v.span()), "daemon.grace", e))?,
        ),
    };
    let mut pinned_keys = Vec::new();
    for k in raw.evidence.pinned_keys {
        let v = k.get_ref().trim().to_ascii_lowercase();
        if v.len() != 16 || !v.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(fail(
                line_of(k.span()),
                "evidence.pinned_keys",
                format!("'{}' is not a key fingerprint: expected the 16 hex digits 'rempart evidence verify' prints", k.get_ref()),
            ));
        }
        pinned_keys.push(v);
    }
    Ok(Settings {
        jobs_dir: path(raw.jobs_dir),
        keys_dir: path(raw.keys_dir),
        state_dir: path(raw.state_dir),
        daemon: DaemonSettings { listen, max_concurrent, grace, token_file: path(raw.daemon.token_file) },
        pinned_keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_at(text: &str) -> Result<Settings> {
        parse(Path::new("/etc/rempart/rempart.toml"), text)
    }

    #[test]
    fn relative_paths_resolve_against_the_file_folder() {
        let s = parse_at("jobs_dir = \"jobs\"\nstate_dir = \"/var/lib/rempart\"\n[daemon]\nlisten = \"0.0.0.0:9000\"\nmax_concurrent = 3\ngrace = \"2m\"\n")
            .unwrap();
        assert_eq!(s.jobs_dir, Some(PathBuf::from("/etc/rempart/jobs")));
        assert_eq!(s.state_dir, Some(PathBuf::from("/var/lib/rempart")));
        assert_eq!(s.keys_dir, None);
        assert_eq!(s.daemon.listen, Some("0.0.0.0:9000".parse().unwrap()));
        assert_eq!(s.daemon.max_concurrent, Some(3));
        assert_eq!(s.daemon.grace, Some(Duration::from_secs(120)));
    }

    #[test]
    fn an_empty_file_changes_nothing() {
        assert_eq!(parse_at("").unwrap(), Settings::default());
    }

    #[test]
    fn bad_values_name_the_line_and_key() {
        let e = parse_at("jobs_dir = \"j\"\n[daemon]\nlisten = \"localhost\"\n").unwrap_err().to_string();
        assert!(e.contains("rempart.toml:3: key 'daemon.listen'") && e.contains("IP:PORT"), "{e}");
        let e = parse_at("[daemon]\nmax_concurrent = 0\n").unwrap_err().to_string();
        assert!(e.contains(":2: key 'daemon.max_concurrent'") && e.contains("at least 1"), "{e}");
        let e = parse_at("[daemon]\n\ngrace = \"soon\"\n").unwrap_err().to_string();
        assert!(e.contains(":3: key 'daemon.grace'"), "{e}");
        let e = parse_at("jobs_dir = \"j\"\nlisten = \"127.0.0.1:1\"\n").unwrap_err().to_string();
        assert!(
            e.contains(":2:") && e.contains("unknown field `listen`") && e.contains("[daemon] listen"),
            "{e}"
        );
    }
}
