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
