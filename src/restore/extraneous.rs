//! `restore --delete`: makes the target equal to the snapshot by removing what the snapshot
//! does not hold.
//!
//! Guard rails, since this is the one part of a restore that deletes:
//! - only what the restore's selection covers is looked at (with `--include /srv/app`, nothing
//!   outside `/srv/app` is touched; an excluded entry is left alone);
//! - symlinks are never followed, and the sweep stays on the target's file system (a mount
//!   below the target is left alone); it walks by open folder handles (`openat` with
//!   `O_NOFOLLOW`, `unlinkat`), so a folder swapped for a symlink while it runs cannot lead it
//!   out of the target;
//! - it goes inside a path the snapshot holds only when the snapshot holds a folder there (a
//!   folder in place of a file the restore left alone is not emptied);
//! - the repository's folder and the state directory, everything in them and every folder
//!   above them, are never removed (and a target inside one of them is refused);
//! - a file whose restore failed keeps whatever was at its path (the restore never replaced
//!   it), and the caller skips the sweep entirely when a folder of the snapshot could not be
//!   read.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

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

/// Opens the folder `name` of `dir` without following a symlink.
fn open_dir(dir: &OwnedFd, name: &OsStr) -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// The names in an open folder, sorted, without `.` and `..`.
fn names(dir: &OwnedFd) -> std::io::Result<Vec<OsString>> {
    let mut d = rustix::fs::Dir::read_from(dir)?;
    let mut out = Vec::new();
    while let Some(e) = d.read() {
        let name = OsStr::from_bytes(e?.file_name().to_bytes()).to_os_string();
        if name != "." && name != ".." {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// Removes every entry below `target` that the selection covers and `keep` does not hold,
/// leaving the `protected` folders, what they hold, and the folders above them alone.
pub fn sweep(
    target: &Path,
    selection: &Selection,
    keep: &Keep,
    protected: &[PathBuf],
    dry_run: bool,
) -> Swept {
    let mut out = Swept::default();
    let protected: Vec<PathBuf> =
        protected.iter().map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())).collect();
    let target_real = std::fs::canonicalize(target).unwrap_or_else(|_| target.to_path_buf());
    if let Some(p) = protected.iter().find(|p| target_real.starts_with(p)) {
        out.errors.push(format!(
            "--delete refused: the target '{}' is inside '{}' (the repository or the state directory)",
            target.display(),
            p.display()
        ));
        return out;
    }
    // The target itself may be a symlink the user gave: followed once, here.
    let root =
        match rustix::fs::open(target, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            Err(e) => {
                out.errors.push(format!("cannot open '{}': {e}", target.display()));
                return out;
            }
        };
    let device = match rustix::fs::fstat(&root) {
        Ok(st) => st.st_dev,
        Err(e) => {
            out.errors.push(format!("cannot read '{}': {e}", target.display()));
            return out;
        }
    };
    let mut s = Sweep { target, selection, keep, protected: &protected, device, dry_run, out };
    s.visit(&root, target, &target_real);
    s.out
}

impl Sweep<'_> {
    /// `real` is `path` with the target's own path resolved (protected paths are compared with it).
    fn visit(&mut self, dir: &OwnedFd, path: &Path, real: &Path) {
        let entries = match names(dir) {
            Ok(n) => n,
            Err(e) => {
                self.out.errors.push(format!("cannot list '{}': {e}", path.display()));
                return;
            }
        };
        for name in entries {
            let child = path.join(&name);
            let real_child = real.join(&name);
            let Ok(st) = rustix::fs::statat(dir, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) else {
                continue;
            };
            if st.st_dev != self.device {
                continue; // another file system mounted below the target
            }
            let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
            let rel = child.strip_prefix(self.target).unwrap_or(&child);
            let mut snapshot_path = b"/".to_vec();
            snapshot_path.extend_from_slice(rel.as_os_str().as_bytes());
            let (take, enter) = self.selection.decide(&snapshot_path, name.as_bytes());
            // The repository or the state directory, what they hold, or a folder above them.
            let above = self.protected.iter().any(|p| p.starts_with(&real_child));
            let within = self.protected.iter().any(|p| real_child.starts_with(p));
            if within {
                continue;
            }
            if self.keep.paths.contains(&child) || !take || above {
                let inside = is_dir
                    && enter
                    && (!self.keep.paths.contains(&child) || self.keep.folders.contains(&child) || above);
                if inside {
                    match open_dir(dir, &name) {
                        Ok(fd) => self.visit(&fd, &child, &real_child),
                        Err(e) => self.out.errors.push(format!("cannot open '{}': {e}", child.display())),
                    }
                }
                continue;
            }
            let removed = if self.dry_run {
                Ok(())
            } else if is_dir {
                remove_tree(dir, &name, self.device)
            } else {
                rustix::fs::unlinkat(dir, name.as_os_str(), AtFlags::empty()).map_err(std::io::Error::from)
            };
            match removed {
                Ok(()) => self.out.removed.push(child),
                Err(e) => self.out.errors.push(format!("cannot remove '{}': {e}", child.display())),
            }
        }
    }
}

/// Removes the folder `name` of `parent` and what it holds, through open handles, never
/// crossing into another file system (a mount inside it is left, and the folders above it
/// stay: their removal fails as not empty).
fn remove_tree(parent: &OwnedFd, name: &OsStr, device: u64) -> std::io::Result<()> {
    let dir = open_dir(parent, name)?;
    if rustix::fs::fstat(&dir)?.st_dev != device {
        return Ok(());
    }
    for n in names(&dir)? {
        let st = rustix::fs::statat(&dir, n.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)?;
        if st.st_dev != device {
            continue;
        }
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            remove_tree(&dir, &n, device)?;
        } else {
            rustix::fs::unlinkat(&dir, n.as_os_str(), AtFlags::empty())?;
        }
    }
    Ok(rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR)?)
}
