//! The local cache of a remote repository: index objects, snapshots and tree packs.
//!
//! These objects are read by every command and never change (their names are content
//! addresses), so a copy in the state directory spares a remote round trip each: a no-change
//! backup to S3 then transfers a few small requests. Every cached file is checked against its
//! name when read; a damaged or missing entry is fetched again from the repository, which
//! stays the truth. Entries whose objects are gone from the repository are dropped.

use std::collections::HashSet;
use std::path::PathBuf;

use bytes::Bytes;

use crate::id::Id;
use crate::storage::Kind;

#[derive(Debug)]
pub struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    pub fn new(dir: PathBuf) -> DiskCache {
        DiskCache { dir }
    }

    fn path(&self, kind: Kind, name: &str) -> PathBuf {
        self.dir.join(kind.label()).join(name)
    }

    /// The cached copy, if present and intact. A damaged copy is removed.
    pub fn load(&self, kind: Kind, name: &str) -> Option<Bytes> {
        let path = self.path(kind, name);
        let bytes = std::fs::read(&path).ok()?;
        if Id::of_bytes(&bytes).to_hex() != name {
            tracing::warn!(
                "cache entry '{}' is damaged: fetching it again from the repository",
                path.display()
            );
            let _ = std::fs::remove_file(&path);
            return None;
        }
        Some(Bytes::from(bytes))
    }

    /// Keeps a copy (best effort: a cache that cannot be written only costs speed).
    pub fn store(&self, kind: Kind, name: &str, bytes: &[u8]) {
        let path = self.path(kind, name);
        let dir = path.parent().expect("has a folder");
        let tmp = dir.join(format!(".{name}.tmp{}", rand::random::<u32>()));
        let ok = std::fs::create_dir_all(dir).is_ok()
            && std::fs::write(&tmp, bytes).is_ok()
            && std::fs::rename(&tmp, &path).is_ok();
        if !ok {
            let _ = std::fs::remove_file(&tmp);
            tracing::debug!("could not cache '{}'", path.display());
        }
    }

    /// Drops cached objects of `kind` that are not in `keep`.
    pub fn retain(&self, kind: Kind, keep: &HashSet<String>) {
        let Ok(rd) = std::fs::read_dir(self.dir.join(kind.label())) else { return };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_and_missing_entries_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let c = DiskCache::new(dir.path().to_path_buf());
        let data = b"sealed snapshot bytes";
        let name = Id::of_bytes(data).to_hex();
        assert!(c.load(Kind::Snapshot, &name).is_none());
        c.store(Kind::Snapshot, &name, data);
        assert_eq!(c.load(Kind::Snapshot, &name).unwrap().as_ref(), data);
        std::fs::write(dir.path().join("snapshot").join(&name), b"garbage").unwrap();
        assert!(c.load(Kind::Snapshot, &name).is_none(), "damaged entry is a miss");
        assert!(!dir.path().join("snapshot").join(&name).exists(), "and is removed");
        c.store(Kind::Snapshot, &name, data);
        c.retain(Kind::Snapshot, &HashSet::new());
        assert!(c.load(Kind::Snapshot, &name).is_none());
    }
}
