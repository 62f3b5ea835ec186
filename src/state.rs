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
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/lib"));
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
        .map_err(|e| Error::io(format!("cannot create state directory '{}'", dir.display()), e))
}

/// The state folder of one repository: `STATE/repositories/<repository id>`.
pub fn repo_dir(state_dir: &Path, repository_id: &crate::id::Id) -> PathBuf {
    state_dir.join("repositories").join(repository_id.to_hex())
}

/// Snapshots this host saw written (and forgot), so `check` can tell a snapshot deleted behind
/// rempart's back from one removed by `forget`. An append-only file of `+id` and `-id` lines.
pub struct SnapshotRegister {
    path: PathBuf,
}

impl SnapshotRegister {
    pub fn open(state_dir: &Path, repository_id: &crate::id::Id) -> SnapshotRegister {
        SnapshotRegister { path: repo_dir(state_dir, repository_id).join("snapshots.log") }
    }

    fn append(&self, line: &str) -> Result<()> {
        use std::io::Write;
        let dir = self.path.parent().expect("has a folder");
        ensure(dir)?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| Error::io(format!("cannot write '{}'", self.path.display()), e))?;
        writeln!(f, "{line}").map_err(|e| Error::io(format!("cannot write '{}'", self.path.display()), e))
    }

    /// Records a snapshot written or seen.
    pub fn added(&self, id: &crate::id::Id) -> Result<()> {
        self.append(&format!("+{}", id.to_hex()))
    }

    /// Records a snapshot removed on purpose (forget, repair).
    pub fn removed(&self, id: &crate::id::Id) -> Result<()> {
        self.append(&format!("-{}", id.to_hex()))
    }

    /// Snapshots recorded as written and not removed since.
    pub fn known(&self) -> std::collections::HashSet<crate::id::Id> {
        let mut set = std::collections::HashSet::new();
        let Ok(text) = std::fs::read_to_string(&self.path) else { return set };
        for line in text.lines() {
            let (sign, hex) = line.split_at(line.len().min(1));
            if let Ok(id) = crate::id::Id::from_hex(hex) {
                if sign == "+" {
                    set.insert(id);
                } else {
                    set.remove(&id);
                }
            }
        }
        set
    }
}

/// An exclusive lock on a file of the state directory, held by this process until dropped:
/// one daemon per state directory, one run of a job's step at a time across processes. The
/// kernel releases it when the process dies, so a crash never leaves it behind.
pub struct ProcessLock {
    _file: nix::fcntl::Flock<std::fs::File>,
}

impl ProcessLock {
    /// Takes the lock at `path` for `what` (a sentence: "the daemon", "job 'x' step backup").
    ///
    /// # Errors
    /// `Locked` naming the process that holds it; `Io` naming the file.
    pub fn acquire(path: &Path, what: &str) -> Result<ProcessLock> {
        use std::io::{Read, Seek, Write};
        if let Some(dir) = path.parent() {
            ensure(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io(format!("cannot open lock file '{}'", path.display()), e))?;
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(mut held) => {
                let pid = std::process::id().to_string();
                let _ = held.set_len(0).and_then(|()| held.seek(std::io::SeekFrom::Start(0)).map(|_| ()));
                let _ = held.write_all(pid.as_bytes());
                Ok(ProcessLock { _file: held })
            }
            Err((f, _)) => {
                file = f;
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                Err(Error::Locked(format!(
                    "{what} is already running (pid {}, lock file '{}'); wait for it to finish",
                    pid.trim(),
                    path.display()
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_lock_is_exclusive_and_names_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("daemon.lock");
        let held = ProcessLock::acquire(&p, "the daemon").unwrap();
        let e = ProcessLock::acquire(&p, "the daemon").err().unwrap();
        assert!(matches!(e, Error::Locked(_)));
        assert!(e.to_string().contains(&format!("pid {}", std::process::id())), "{e}");
        drop(held);
        ProcessLock::acquire(&p, "the daemon").unwrap();
    }
}
