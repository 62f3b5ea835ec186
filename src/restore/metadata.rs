//! Applying recorded metadata on restore, and creating special files.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sys::stat::{Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};

use crate::repo::tree::{Node, NodeKind};

/// Whether ownership can be restored (only root may give files away).
pub fn can_chown() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Creates a symlink, FIFO or device node for `node` at `path`; sockets are not recreated.
///
/// # Errors
/// The I/O error of the creation.
pub fn create_special(path: &Path, node: &Node) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    match node.kind {
        NodeKind::Symlink => std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&node.link_target), path),
        NodeKind::Fifo => {
            nix::unistd::mkfifo(path, Mode::from_bits_truncate(node.mode)).map_err(std::io::Error::from)
        }
        NodeKind::CharDevice | NodeKind::BlockDevice => {
            let kind = if node.kind == NodeKind::CharDevice { SFlag::S_IFCHR } else { SFlag::S_IFBLK };
            nix::sys::stat::mknod(path, kind, Mode::from_bits_truncate(node.mode), node.rdev)
                .map_err(std::io::Error::from)
        }
        NodeKind::Socket | NodeKind::File | NodeKind::Dir => Ok(()),
    }
}

/// Like [`apply`] through an open file (fewer path lookups: the fast path of restore).
pub fn apply_fd(file: &std::fs::File, path: &Path, node: &Node, chown: bool) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    use xattr::FileExt;
    let mut warnings = Vec::new();
    if chown {
        if let Err(e) = std::os::unix::fs::fchown(file, Some(node.uid), Some(node.gid)) {
            warnings.push(format!("cannot set owner {}:{} on '{}': {e}", node.uid, node.gid, path.display()));
        }
    }
    for x in &node.xattrs {
        if let Err(e) = file.set_xattr(std::ffi::OsStr::from_bytes(&x.name), &x.value) {
            warnings.push(format!(
                "cannot set xattr '{}' on '{}': {e}",
                String::from_utf8_lossy(&x.name),
                path.display()
            ));
        }
    }
    if let Err(e) = file.set_permissions(std::fs::Permissions::from_mode(node.mode)) {
        warnings.push(format!("cannot set mode {:o} on '{}': {e}", node.mode, path.display()));
    }
    let mtime = std::time::UNIX_EPOCH
        .checked_add(std::time::Duration::new(node.mtime.secs.max(0) as u64, node.mtime.nanos))
        .unwrap_or(std::time::UNIX_EPOCH);
    let times = std::fs::FileTimes::new().set_accessed(mtime).set_modified(mtime);
    if node.mtime.secs < 0 {
        // Before 1970: SystemTime cannot say it portably; use the path-based call.
        let t = TimeSpec::new(node.mtime.secs, i64::from(node.mtime.nanos));
        if let Err(e) =
            nix::sys::stat::utimensat(None, path, &t, &t, nix::sys::stat::UtimensatFlags::NoFollowSymlink)
        {
            warnings.push(format!("cannot set times on '{}': {e}", path.display()));
        }
    } else if let Err(e) = file.set_times(times) {
        warnings.push(format!("cannot set times on '{}': {e}", path.display()));
    }
    warnings
}

/// Opens a regular file for restoring, replacing whatever is at `path` (never following a
/// symlink planted there).
///
/// # Errors
/// The I/O error of the open.
pub fn create_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let open = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(path)
    };
    match open() {
        Ok(f) => Ok(f),
        Err(_) => {
            // A symlink, a folder or a read-only file is in the way: remove it and retry.
            let _ = std::fs::remove_file(path).or_else(|_| std::fs::remove_dir_all(path));
            open()
        }
    }
}

/// Sets owner, mode, xattrs and times of `path` from `node`. Failures are returned as
/// warnings: the content is restored either way.
pub fn apply(path: &Path, node: &Node, chown: bool) -> Vec<String> {
    let mut warnings = Vec::new();
    if chown {
        if let Err(e) = nix::unistd::fchownat(
            None,
            path,
            Some(Uid::from_raw(node.uid)),
            Some(Gid::from_raw(node.gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            warnings.push(format!("cannot set owner {}:{} on '{}': {e}", node.uid, node.gid, path.display()));
        }
    }
    for x in &node.xattrs {
        if let Err(e) = xattr::set(path, std::ffi::OsStr::from_bytes(&x.name), &x.value) {
            warnings.push(format!(
                "cannot set xattr '{}' on '{}': {e}",
                String::from_utf8_lossy(&x.name),
                path.display()
            ));
        }
    }
    if node.kind != NodeKind::Symlink {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(node.mode)) {
            warnings.push(format!("cannot set mode {:o} on '{}': {e}", node.mode, path.display()));
        }
    }
    let mtime = TimeSpec::new(node.mtime.secs, i64::from(node.mtime.nanos));
    if let Err(e) =
        nix::sys::stat::utimensat(None, path, &mtime, &mtime, nix::sys::stat::UtimensatFlags::NoFollowSymlink)
    {
        warnings.push(format!("cannot set times on '{}': {e}", path.display()));
    }
    warnings
}
