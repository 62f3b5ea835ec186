//! The id map of a copy between two repositories (`rempart copy`, `[[copy]]`), kept in the
//! state directory (`copy/SOURCE-DESTINATION.map`): source id → destination id for blobs, file
//! content hashes and snapshots, since ids are keyed per repository (docs/format.md, "Copies
//! between repositories"). Copies use it to skip what the destination holds; `repair heal`
//! uses it to find a lost blob in the other repository.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::id::Id;

/// Source id → destination id, for blobs (data and trees), file content hashes and snapshots.
#[derive(Default)]
pub struct IdMap {
    pub blobs: HashMap<Id, Id>,
    pub contents: HashMap<Id, Id>,
    pub snapshots: HashMap<Id, Id>,
    /// Entries not yet saved.
    fresh: Vec<(u8, Id, Id)>,
    path: PathBuf,
}

/// Entry tags.
pub const BLOB: u8 = 0;
pub const CONTENT: u8 = 1;
pub const SNAPSHOT: u8 = 2;

impl IdMap {
    /// The map of the pair `source` → `destination`, kept in `state_dir/copy/`.
    ///
    /// # Errors
    /// An unreadable map file (a truncated last entry, from a kill, is dropped).
    pub fn load(state_dir: &Path, source: &Id, destination: &Id) -> Result<IdMap> {
        let path = state_dir.join("copy").join(format!("{}-{}.map", source.to_hex(), destination.to_hex()));
        let mut map = IdMap { path, ..Default::default() };
        let bytes = match std::fs::read(&map.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(map),
            Err(e) => return Err(Error::io(format!("cannot read the copy map '{}'", map.path.display()), e)),
        };
        if bytes.len() % 65 != 0 {
            // A torn last entry (a kill mid-append): cut, so later appends stay aligned.
            let whole = (bytes.len() - bytes.len() % 65) as u64;
            std::fs::OpenOptions::new()
                .write(true)
                .open(&map.path)
                .and_then(|f| f.set_len(whole))
                .map_err(|e| Error::io(format!("cannot repair the copy map '{}'", map.path.display()), e))?;
        }
        for entry in bytes.chunks_exact(65) {
            let (src, dst) =
                (Id(entry[1..33].try_into().expect("32")), Id(entry[33..65].try_into().expect("32")));
            match entry[0] {
                BLOB => map.blobs.insert(src, dst),
                CONTENT => map.contents.insert(src, dst),
                SNAPSHOT => map.snapshots.insert(src, dst),
                _ => None,
            };
        }
        Ok(map)
    }

    /// Every (source, destination) pair of blob ids.
    pub fn blob_pairs(&self) -> impl Iterator<Item = (Id, Id)> + '_ {
        self.blobs.iter().map(|(s, d)| (*s, *d))
    }

    /// Notes a pair (saved by [`IdMap::save`]).
    pub fn add(&mut self, kind: u8, src: Id, dst: Id) {
        let m = match kind {
            BLOB => &mut self.blobs,
            CONTENT => &mut self.contents,
            _ => &mut self.snapshots,
        };
        if m.insert(src, dst) != Some(dst) {
            self.fresh.push((kind, src, dst));
        }
    }

    /// Appends the new entries (call once the destination's index names their blobs).
    ///
    /// # Errors
    /// The map file cannot be written.
    pub fn save(&mut self) -> Result<()> {
        if self.fresh.is_empty() {
            return Ok(());
        }
        let io = |e| Error::io(format!("cannot write the copy map '{}'", self.path.display()), e);
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut buf = Vec::with_capacity(self.fresh.len() * 65);
        for (kind, src, dst) in self.fresh.drain(..) {
            buf.push(kind);
            buf.extend_from_slice(&src.0);
            buf.extend_from_slice(&dst.0);
        }
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path).map_err(io)?;
        f.write_all(&buf).and_then(|()| f.sync_all()).map_err(io)
    }
}
