//! A repository in a temporary folder for unit tests of the layers above the engine (prune,
//! drills, the runner): real storage, real packs, no server.

use std::path::{Path, PathBuf};

use super::{backup, BackupOptions};
use crate::id::Id;
use crate::repo::{InitOptions, Repository};
use crate::storage::BlockingStorage;

pub struct TempRepo {
    pub dir: tempfile::TempDir,
    pub repo: Repository,
    /// Kept alive for the repository's storage handle.
    _runtime: tokio::runtime::Runtime,
}

impl TempRepo {
    /// A new repository at `DIR/repo` with 1 MiB packs (the smallest: a few files span several packs).
    pub fn new() -> TempRepo {
        let dir = tempfile::tempdir().unwrap();
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let path = dir.path().join("repo");
        let storage = || {
            BlockingStorage::new(
                crate::storage::open_url(path.to_str().unwrap()).unwrap(),
                runtime.handle().clone(),
            )
        };
        std::fs::create_dir_all(&path).unwrap();
        let opts = InitOptions { pack_size: 1 << 20, ..Default::default() };
        Repository::init(storage(), b"test passphrase", &opts).unwrap();
        let repo = Repository::open(storage(), b"test passphrase").unwrap();
        TempRepo { dir, repo, _runtime: runtime }
    }

    /// A folder `DIR/NAME` holding `files` (relative path, contents).
    pub fn source(&self, name: &str, files: &[(&str, Vec<u8>)]) -> PathBuf {
        let root = self.dir.path().join(name);
        for (rel, data) in files {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        }
        root
    }

    /// Backs up `path` and returns the snapshot id.
    pub fn backup(&self, path: &Path) -> Id {
        let mut opts = BackupOptions::new(vec![path.to_path_buf()]);
        opts.workers = Some(1);
        backup(&self.repo, &opts).unwrap().snapshot_id
    }
}

/// `len` bytes that neither compress nor deduplicate with another `seed`.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
