//! The per-user state directory: caches now, the catalog and evidence later.
//!
//! Chosen by `--state-dir`, then `REMPART_STATE_DIR`, then `$XDG_STATE_HOME/rempart`, then
//! `~/.local/state/rempart`. Created with mode 0700 on first use.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The default state directory when none is given.
pub fn default_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("REMPART_STATE_DIR").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_STATE_HOME").filter(|p| !p.is_empty()) {
        return PathBuf::from(p).join("rempart");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib"));
    home.join(".local/state/rempart")
}

/// Creates `dir` (mode 0700) when missing.
///
/// # Errors
/// `Io` naming the folder.
pub fn ensure(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            Error::io(
                format!("cannot create state directory '{}'", dir.display()),
                e,
            )
        })
}
