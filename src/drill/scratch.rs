//! Isolated drill targets and their cleanup, also after a crash.
//!
//! Before a drill creates a sandbox folder or a scratch database it writes a marker
//! (`STATE/drills/<id>.json`) naming them; the guard removes them and the marker when the drill
//! ends, whatever the outcome. A drill killed mid-way leaves its marker: the next drill and the
//! next daemon start remove what it names, so nothing is left behind.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::sources::mysql::MyConn;
use crate::sources::postgres::PgConn;
use crate::sources::{DbAuth, DbKind, DbUrl};

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
        match std::fs::remove_dir_all(dir) {
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
    match url.kind {
        DbKind::Postgres => PgConn::new(&url, &auth)?.drop_database(&db.database),
        DbKind::Mysql => MyConn::new(&url, &auth)?.drop_database(&db.database),
        DbKind::Sqlite => Ok(()),
    }
}

fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("drills")
}

/// A drill's targets: cleaned when dropped.
pub struct Guard {
    marker_path: PathBuf,
    pub marker: Marker,
    /// What the cleanup did (filled by [`Guard::finish`]).
    pub cleanup: Option<(bool, Vec<String>)>,
}

impl Guard {
    pub fn new(state_dir: &Path, id: &str) -> Result<Guard> {
        crate::state::ensure(&dir(state_dir))?;
        let g = Guard {
            marker_path: dir(state_dir).join(format!("{id}.json")),
            marker: Marker { pid: std::process::id(), ..Default::default() },
            cleanup: None,
        };
        g.save()?;
        Ok(g)
    }

    /// Writes the marker (call before creating each target).
    pub fn save(&self) -> Result<()> {
        std::fs::write(&self.marker_path, serde_json::to_vec(&self.marker).expect("serializable")).map_err(
            |e| crate::Error::io(format!("cannot write drill marker '{}'", self.marker_path.display()), e),
        )
    }

    /// Removes the targets now and reports how it went.
    pub fn finish(&mut self) -> (bool, Vec<String>) {
        let r = clean(&self.marker);
        if r.0 {
            let _ = std::fs::remove_file(&self.marker_path);
        }
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

fn process_alive(pid: u32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
}

/// Cleans the targets of drills whose process is gone; returns what was done.
pub fn clean_leftovers(state_dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir(state_dir)) else { return out };
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let Ok(m) = std::fs::read(&p)
            .map_err(|_| ())
            .and_then(|b| serde_json::from_slice::<Marker>(&b).map_err(|_| ()))
        else {
            continue;
        };
        if m.pid != std::process::id() && process_alive(m.pid) {
            continue;
        }
        let (ok, said) = clean(&m);
        if ok {
            let _ = std::fs::remove_file(&p);
        }
        for s in said {
            tracing::info!("leftover of an interrupted drill: {s}");
            out.push(s);
        }
    }
    out
}
