//! `restore --delete`: makes the target equal to the snapshot by removing what the snapshot
//! does not hold.
//!
//! Guard rails, since this is the one part of a restore that deletes:
//! - only what the restore's selection covers is looked at (with `--include /srv/app`, nothing
//!   outside `/srv/app` is touched; an excluded entry is left alone);
//! - symlinks are never followed, and the sweep stays on the target's file system (a mount
//!   below the target is left alone);
//! - it goes inside a path the snapshot holds only when the snapshot holds a folder there (a
//!   folder in place of a file the restore left alone is not emptied);
//! - the repository's folder and the state directory, and every folder above them, are never
//!   removed;
//! - a file whose restore failed keeps whatever was at its path (the restore never replaced
//!   it), and the caller skips the sweep entirely when a folder of the snapshot could not be
//!   read.

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::select::Selection;

/// What the snapshot puts in the target.
#[derive(Default)]
pub struct Keep {
    /// Every path of the snapshot in the target (and the damaged copies a restore may leave).
    pub paths: HashSet<PathBuf>,
    /// Those that are folders in the snapshot.
    pub folders: HashSet<PathBuf>,
}

/// What the sweep removed (or, in a dry run, would remove).
#[derive(Default)]
pub struct Swept {
    pub removed: Vec<PathBuf>,
    pub errors: Vec<String>,
}

struct Sweep<'a> {
    target: &'a Path,
    selection: &'a Selection,
    keep: &'a Keep,
    protected: &'a [PathBuf],
    device: u64,
    dry_run: bool,
    out: Swept,
}

/// Removes every entry below `target` that the selection covers and `keep` does not hold,
/// leaving `protected` paths and their parents alone.
pub fn sweep(
    target: &Path,
    selection: &Selection,
    keep: &Keep,
    protected: &[PathBuf],
    dry_run: bool,
) -> Swept {
    let Ok(meta) = std::fs::symlink_metadata(target) else {
        return Swept::default();
    };
    let protected: Vec<PathBuf> =
        protected.iter().map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())).collect();
    let target_real = std::fs::canonicalize(target).unwrap_or_else(|_| target.to_path_buf());
    let mut s = Sweep {
        target,
        selection,
        keep,
        protected: &protected,
        device: meta.dev(),
        dry_run,
        out: Swept::default(),
    };
    s.visit(target, &target_real);
    s.out
}

impl Sweep<'_> {
    /// `real` is `dir` with the target's own path resolved (protected paths are compared with it).
    fn visit(&mut self, dir: &Path, real: &Path) {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                self.out.errors.push(format!("cannot list '{}': {e}", dir.display()));
                return;
            }
        };
        let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let real_path = real.join(&name);
            let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
            if meta.dev() != self.device {
                continue; // another file system mounted below the target
            }
            let rel = path.strip_prefix(self.target).unwrap_or(&path);
            let mut snapshot_path = b"/".to_vec();
            snapshot_path.extend_from_slice(rel.as_os_str().as_bytes());
            let (take, enter) = self.selection.decide(&snapshot_path, name.as_bytes());
            let is_dir = meta.is_dir();
            // The repository or the state directory, or a folder above one of them.
            let guards = self.protected.iter().any(|p| p.starts_with(&real_path));
            let is_guarded = self.protected.contains(&real_path);
            if self.keep.paths.contains(&path) || !take || guards {
                let inside = is_dir
                    && enter
                    && !is_guarded
                    && (!self.keep.paths.contains(&path) || self.keep.folders.contains(&path) || guards);
                if inside {
                    self.visit(&path, &real_path);
                }
                continue;
            }
            let removed = if self.dry_run {
                Ok(())
            } else if is_dir {
                remove_tree(&path, self.device)
            } else {
                std::fs::remove_file(&path)
            };
            match removed {
                Ok(()) => self.out.removed.push(path),
                Err(e) => self.out.errors.push(format!("cannot remove '{}': {e}", path.display())),
            }
        }
    }
}

/// Removes a folder and what it holds, never crossing into another file system (a mount
/// inside it is left, and the folders above it stay: their removal fails as not empty).
fn remove_tree(dir: &Path, device: u64) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let path = e?.path();
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.dev() != device {
            continue;
        }
        if meta.is_dir() {
            remove_tree(&path, device)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    std::fs::remove_dir(dir)
}
