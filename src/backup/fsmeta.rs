//! Reading an entry's metadata from the file system into a tree [`Node`].

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::repo::tree::{Node, NodeKind, Timestamp, Xattr};

/// Caches uid and gid to name lookups for one backup.
#[derive(Default)]
pub struct NameCache {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl NameCache {
    pub fn user(&mut self, uid: u32) -> String {
        self.users
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|u| u.name)
                    .unwrap_or_default()
            })
            .clone()
    }

    pub fn group(&mut self, gid: u32) -> String {
        self.groups
            .entry(gid)
            .or_insert_with(|| {
                nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
                    .ok()
                    .flatten()
                    .map(|g| g.name)
                    .unwrap_or_default()
            })
            .clone()
    }
}

/// The kind of an entry from its `lstat` metadata.
pub fn kind_of(meta: &std::fs::Metadata) -> NodeKind {
    let ft = meta.file_type();
    if ft.is_dir() {
        NodeKind::Dir
    } else if ft.is_symlink() {
        NodeKind::Symlink
    } else if ft.is_fifo() {
        NodeKind::Fifo
    } else if ft.is_char_device() {
        NodeKind::CharDevice
    } else if ft.is_block_device() {
        NodeKind::BlockDevice
    } else if ft.is_socket() {
        NodeKind::Socket
    } else {
        NodeKind::File
    }
}

/// Builds the node of `path` (whose `lstat` is `meta`), with xattrs and, for symlinks, the
/// target. Content and subtree are filled in later by the backup.
///
/// # Errors
/// The I/O error of reading a symlink target.
pub fn node_from_metadata(
    path: &Path,
    name: &[u8],
    meta: &std::fs::Metadata,
    names: &mut NameCache,
) -> std::io::Result<Node> {
    node_with_xattrs_from(path, name, meta, names, None)
}

/// Like [`node_from_metadata`], but takes the xattrs from `previous` (the same entry in the
/// parent snapshot) when its inode and ctime are unchanged: changing an xattr changes the
/// ctime, so the list need not be read again (one syscall saved per unchanged entry).
pub fn node_with_xattrs_from(
    path: &Path,
    name: &[u8],
    meta: &std::fs::Metadata,
    names: &mut NameCache,
    previous: Option<&Node>,
) -> std::io::Result<Node> {
    let kind = kind_of(meta);
    let mut node = Node::new(name, kind);
    node.mode = meta.mode() & 0o7777;
    node.uid = meta.uid();
    node.gid = meta.gid();
    node.user = names.user(meta.uid());
    node.group = names.group(meta.gid());
    node.size = if kind == NodeKind::File { meta.size() } else { 0 };
    node.mtime = Timestamp { secs: meta.mtime(), nanos: meta.mtime_nsec() as u32 };
    node.ctime = Timestamp { secs: meta.ctime(), nanos: meta.ctime_nsec() as u32 };
    node.device = meta.dev();
    node.inode = meta.ino();
    node.links = meta.nlink();
    if matches!(kind, NodeKind::CharDevice | NodeKind::BlockDevice) {
        node.rdev = meta.rdev();
    }
    if kind == NodeKind::Symlink {
        node.link_target = std::fs::read_link(path)?.as_os_str().as_bytes().to_vec();
    }
    if kind == NodeKind::File {
        node.sparse = meta.blocks() * 512 < meta.size();
    }
    node.xattrs = match previous {
        Some(old) if old.kind == kind && old.inode == node.inode && old.ctime == node.ctime => {
            old.xattrs.clone()
        }
        _ => read_xattrs(path),
    };
    Ok(node)
}

/// Extended attributes of `path` (not following symlinks); none where unsupported.
pub fn read_xattrs(path: &Path) -> Vec<Xattr> {
    let Ok(names) = xattr::list(path) else {
        return Vec::new();
    };
    let mut out: Vec<Xattr> = names
        .filter_map(|n| {
            let value = xattr::get(path, &n).ok().flatten()?;
            Some(Xattr { name: n.as_bytes().to_vec(), value })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// True when a file's recorded metadata says it has not changed since the parent snapshot.
pub fn unchanged(old: &Node, new: &Node) -> bool {
    old.kind == NodeKind::File
        && new.kind == NodeKind::File
        && old.size == new.size
        && old.mtime == new.mtime
        && old.ctime == new.ctime
        && old.inode == new.inode
        && old.content_hash.is_some()
}
