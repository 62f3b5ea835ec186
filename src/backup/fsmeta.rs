//! Reading an entry's metadata from the file system into a tree [`Node`].

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
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

/// What `lstat` says of an entry: from [`std::fs::symlink_metadata`] for a source path, or
/// from `fstatat` relative to an open folder when the lister reads a folder (which spares the
/// kernel a walk of the whole path for every entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryStat {
    /// `st_mode`: the file type bits and the permissions.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub blocks: u64,
    pub mtime: i64,
    pub mtime_nsec: u32,
    pub ctime: i64,
    pub ctime_nsec: u32,
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub rdev: u64,
}

impl From<&std::fs::Metadata> for EntryStat {
    fn from(m: &std::fs::Metadata) -> EntryStat {
        EntryStat {
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            size: m.size(),
            blocks: m.blocks(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec() as u32,
            ctime: m.ctime(),
            ctime_nsec: m.ctime_nsec() as u32,
            dev: m.dev(),
            ino: m.ino(),
            nlink: m.nlink(),
            rdev: m.rdev(),
        }
    }
}

impl From<&rustix::fs::Stat> for EntryStat {
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)] // field types differ by architecture
    fn from(s: &rustix::fs::Stat) -> EntryStat {
        EntryStat {
            mode: s.st_mode as u32,
            uid: s.st_uid as u32,
            gid: s.st_gid as u32,
            size: s.st_size as u64,
            blocks: s.st_blocks as u64,
            mtime: s.st_mtime as i64,
            mtime_nsec: s.st_mtime_nsec as u32,
            ctime: s.st_ctime as i64,
            ctime_nsec: s.st_ctime_nsec as u32,
            dev: s.st_dev as u64,
            ino: s.st_ino as u64,
            nlink: s.st_nlink as u64,
            rdev: s.st_rdev as u64,
        }
    }
}

impl EntryStat {
    fn format(&self) -> u32 {
        self.mode & libc_s_ifmt::MASK
    }

    pub fn is_dir(&self) -> bool {
        self.format() == libc_s_ifmt::DIR
    }

    pub fn is_file(&self) -> bool {
        self.format() == libc_s_ifmt::REG
    }
}

/// The `S_IFMT` bits of `st_mode` (the same on every Linux architecture).
mod libc_s_ifmt {
    pub const MASK: u32 = 0o170000;
    pub const SOCK: u32 = 0o140000;
    pub const LNK: u32 = 0o120000;
    pub const REG: u32 = 0o100000;
    pub const BLK: u32 = 0o060000;
    pub const DIR: u32 = 0o040000;
    pub const CHR: u32 = 0o020000;
    pub const FIFO: u32 = 0o010000;
}

/// The kind of an entry from its `lstat` metadata.
pub fn kind_of(meta: &EntryStat) -> NodeKind {
    match meta.format() {
        libc_s_ifmt::DIR => NodeKind::Dir,
        libc_s_ifmt::LNK => NodeKind::Symlink,
        libc_s_ifmt::FIFO => NodeKind::Fifo,
        libc_s_ifmt::CHR => NodeKind::CharDevice,
        libc_s_ifmt::BLK => NodeKind::BlockDevice,
        libc_s_ifmt::SOCK => NodeKind::Socket,
        _ => NodeKind::File,
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
    meta: &EntryStat,
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
    meta: &EntryStat,
    names: &mut NameCache,
    previous: Option<&Node>,
) -> std::io::Result<Node> {
    let kind = kind_of(meta);
    let mut node = Node::new(name, kind);
    node.mode = meta.mode & 0o7777;
    node.uid = meta.uid;
    node.gid = meta.gid;
    node.user = names.user(meta.uid);
    node.group = names.group(meta.gid);
    node.size = if kind == NodeKind::File { meta.size } else { 0 };
    node.mtime = Timestamp { secs: meta.mtime, nanos: meta.mtime_nsec };
    node.ctime = Timestamp { secs: meta.ctime, nanos: meta.ctime_nsec };
    node.device = meta.dev;
    node.inode = meta.ino;
    node.links = meta.nlink;
    if matches!(kind, NodeKind::CharDevice | NodeKind::BlockDevice) {
        node.rdev = meta.rdev;
    }
    if kind == NodeKind::Symlink {
        node.link_target = std::fs::read_link(path)?.as_os_str().as_bytes().to_vec();
    }
    if kind == NodeKind::File {
        node.sparse = meta.blocks * 512 < meta.size;
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
