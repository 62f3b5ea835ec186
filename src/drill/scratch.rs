//! Isolated drill targets and their cleanup, also after a crash.
//!
//! Before a drill creates a sandbox folder or a scratch database it writes a marker
//! (`STATE/drills/<id>.json`) naming them; the guard removes them and the marker when the drill
//! ends, whatever the outcome. A drill killed mid-way leaves its marker: the next drill and the
//! next daemon start remove what it names, so nothing is left behind.
//!
//! Targets belong to their drill, not to a process: the guard holds an exclusive `flock` on
//! its marker for the drill's whole life, and a leftover is cleaned only when that lock can be
//! taken, which proves the drill that made it is gone. `flock` locks belong to an open file, so
//! two drills running at once in one daemon (same process id) never clean each other's targets,
//! and a killed process's locks are released by the kernel.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::sources::{DbAuth, DbUrl};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScratchDb {
    /// The server URL (no database, no password).
    pub server: String,
    pub password_file: Option<PathBuf>,
    pub database: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Marker {
    pub pid: u32,
    pub sandbox: Option<PathBuf>,
    pub databases: Vec<ScratchDb>,
}

/// Removes what a marker names; returns a sentence per item (for the evidence).
pub fn clean(marker: &Marker) -> (bool, Vec<String>) {
    let mut ok = true;
    let mut said = Vec::new();
    if let Some(dir) = &marker.sandbox {
        match super::removal::remove_folder(dir, crate::backup::default_workers()) {
            Ok(()) => said.push(format!("sandbox {} removed", dir.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                said.push(format!("sandbox {} was already gone", dir.display()))
            }
            Err(e) => {
                ok = false;
                said.push(format!("sandbox {} NOT removed: {e}", dir.display()));
            }
        }
    }
    for db in &marker.databases {
        let r = drop_database(db);
        match r {
            Ok(()) => said.push(format!("scratch database {} dropped on {}", db.database, db.server)),
            Err(e) => {
                ok = false;
                said.push(format!("scratch database {} NOT dropped on {}: {e}", db.database, db.server));
            }
        }
    }
    (ok, said)
}

fn drop_database(db: &ScratchDb) -> Result<()> {
    let url = DbUrl::parse(&db.server)?;
    let auth = DbAuth { password_file: db.password_file.clone() };
    crate::sources::engine::connect(&url, &auth)?.drop_database(&db.database)
}

fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("drills")
}

/// A drill's targets: cleaned when dropped.
pub struct Guard {
    marker_path: PathBuf,
    /// The marker file, locked for as long as the drill lives.
    lock: Option<nix::fcntl::Flock<std::fs::File>>,
    pub marker: Marker,
    /// What the cleanup did (filled by [`Guard::finish`]).
    pub cleanup: Option<(bool, Vec<String>)>,
}

impl Guard {
    /// # Errors
    /// `Io` naming the marker when it cannot be created or locked.
    pub fn new(state_dir: &Path, id: &str) -> Result<Guard> {
        crate::state::ensure(&dir(state_dir))?;
        let marker_path = dir(state_dir).join(format!("{id}.json"));
        // Made under another name, locked and written, then renamed into place: a cleaner
        // never sees a marker that is not yet locked by its drill.
        let new_path = dir(state_dir).join(format!("{id}.json.new"));
        let io = |what: &str, e| {
            crate::Error::io(format!("cannot {what} drill marker '{}'", marker_path.display()), e)
        };
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&new_path)
            .map_err(|e| io("create", e))?;
        let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|(_, e)| io("lock", std::io::Error::from_raw_os_error(e as i32)))?;
        let g = Guard {
            marker_path: marker_path.clone(),
            lock: Some(lock),
            marker: Marker { pid: std::process::id(), ..Default::default() },
            cleanup: None,
        };
        g.save()?;
        std::fs::rename(&new_path, &marker_path).map_err(|e| io("place", e))?;
        Ok(g)
    }

    /// Writes the marker (call before creating each target).
    pub fn save(&self) -> Result<()> {
        use std::io::{Seek, Write};
        let bytes = serde_json::to_vec(&self.marker).expect("serializable");
        let err =
            |e| crate::Error::io(format!("cannot write drill marker '{}'", self.marker_path.display()), e);
        let mut f: &std::fs::File = self.lock.as_deref().expect("held until finish");
        f.set_len(0).map_err(err)?;
        f.seek(std::io::SeekFrom::Start(0)).map_err(err)?;
        f.write_all(&bytes).and_then(|()| f.sync_all()).map_err(err)
    }

    /// Removes the targets now and reports how it went.
    pub fn finish(&mut self) -> (bool, Vec<String>) {
        let r = clean(&self.marker);
        if r.0 {
            let _ = std::fs::remove_file(&self.marker_path);
        }
        // Released only now: until here no one else may clean these targets.
        self.lock = None;
        self.cleanup = Some(r.clone());
        r
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.cleanup.is_none() {
            self.finish();
        }
    }
}

/// Cleans the targets of drills that are provably gone (their marker's lock is free); returns
/// what was done. Drills still running, in this process or another, are left alone.
pub fn clean_leftovers(state_dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir(state_dir)) else { return out };
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "new") {
            // A marker whose drill was killed before placing it: nothing was made yet.
            if let Ok(file) = std::fs::OpenOptions::new().write(true).open(&p) {
                if nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).is_ok() {
                    let _ = std::fs::remove_file(&p);
                }
            }
            continue;
        }
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let Ok(file) = std::fs::OpenOptions::new().read(true).write(true).open(&p) else { continue };
        let Ok(held) = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) else {
            continue; // its drill is running
        };
        let Ok(m) = std::fs::read(&p)
            .map_err(|_| ())
            .and_then(|b| serde_json::from_slice::<Marker>(&b).map_err(|_| ()))
        else {
            continue;
        };
        let (ok, said) = clean(&m);
        if ok {
            let _ = std::fs::remove_file(&p);
        }
        drop(held);
        for s in said {
            tracing::info!("leftover of an interrupted drill: {s}");
            out.push(s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_drill_is_never_cleaned_by_another_in_the_same_process() {
        let state = tempfile::tempdir().unwrap();
        let mut a = Guard::new(state.path(), "a").unwrap();
        let sandbox = state.path().join("sandbox-a");
        std::fs::create_dir_all(&sandbox).unwrap();
        a.marker.sandbox = Some(sandbox.clone());
        a.save().unwrap();
        // A second drill starting now, in this very process, cleans leftovers first.
        let said = clean_leftovers(state.path());
        assert!(said.is_empty(), "{said:?}");
        assert!(sandbox.exists(), "the running drill's sandbox was removed");
        // Once the first drill is gone without cleaning (a crash), its targets are leftovers.
        drop(a.lock.take());
        let mut crashed = a;
        crashed.cleanup = Some((true, vec![]));
        drop(crashed);
        let said = clean_leftovers(state.path());
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(!sandbox.exists());
    }
}
