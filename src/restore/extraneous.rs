//! `restore --delete`: makes the target equal to the snapshot by removing what the snapshot
//! does not hold.
//!
//! Only what the restore's selection covers is looked at (with `--include /srv/app`, nothing
//! outside `/srv/app` is touched; an excluded entry is left alone), symlinks are never
//! followed, and a file whose restore failed keeps whatever was at its path: removing the
//! good old copy because the new one was damaged would lose data.

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::select::Selection;

/// What the sweep removed (or, in a dry run, would remove).
#[derive(Default)]
pub struct Swept {
    pub removed: Vec<PathBuf>,
    pub errors: Vec<String>,
}

/// Removes every entry below `target` that the selection covers and `keep` does not hold.
pub fn sweep(target: &Path, selection: &Selection, keep: &HashSet<PathBuf>, dry_run: bool) -> Swept {
    let mut swept = Swept::default();
    visit(target, target, selection, keep, dry_run, &mut swept);
    swept
}

fn visit(
    target: &Path,
    dir: &Path,
    selection: &Selection,
    keep: &HashSet<PathBuf>,
    dry_run: bool,
    out: &mut Swept,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            out.errors.push(format!("cannot list '{}': {e}", dir.display()));
            return;
        }
    };
    let mut names: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    names.sort();
    for path in names {
        let rel = path.strip_prefix(target).unwrap_or(&path);
        let mut snapshot_path = b"/".to_vec();
        snapshot_path.extend_from_slice(rel.as_os_str().as_bytes());
        let name = path.file_name().map(|n| n.as_bytes().to_vec()).unwrap_or_default();
        let (take, enter) = selection.decide(&snapshot_path, &name);
        let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        if keep.contains(&path) {
            if is_dir && enter {
                visit(target, &path, selection, keep, dry_run, out);
            }
            continue;
        }
        if !take {
            if is_dir && enter {
                visit(target, &path, selection, keep, dry_run, out);
            }
            continue;
        }
        let removed = if dry_run {
            Ok(())
        } else if is_dir {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match removed {
            Ok(()) => out.removed.push(path),
            Err(e) => out.errors.push(format!("cannot remove '{}': {e}", path.display())),
        }
    }
}
