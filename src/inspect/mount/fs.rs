//! The FUSE side of a mount: answers the kernel's requests from a [`View`].
//!
//! Everything is read-only and never changes while mounted, so attributes and entries are
//! cached by the kernel for an hour. Errors map to errno: an unknown name is ENOENT, a damaged
//! or missing blob or tree is EIO (and logged with what was damaged).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{FileAttr, FileType, ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry, Request};

use super::view::{Entry, View};
use crate::repo::tree::{Node, NodeKind};

const TTL: Duration = Duration::from_secs(3600);
const EIO: i32 = 5;
const ENOENT: i32 = 2;
const EINVAL: i32 = 22;

pub struct Fuse {
    view: View,
}

impl Fuse {
    pub fn new(view: View) -> Fuse {
        Fuse { view }
    }

    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let inode = self.view.get(ino)?;
        let made = to_time(self.view.made.timestamp(), self.view.made.timestamp_subsec_nanos());
        let base = FileAttr {
            ino,
            size: 0,
            blocks: 0,
            atime: made,
            mtime: made,
            ctime: made,
            crtime: made,
            kind: FileType::Directory,
            perm: 0o555,
            nlink: 2,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        };
        Some(match &inode.entry {
            Entry::Folder => base,
            Entry::Link(target) => {
                FileAttr { kind: FileType::Symlink, perm: 0o777, nlink: 1, size: target.len() as u64, ..base }
            }
            Entry::Backed(node) => backed_attr(ino, node, base),
        })
    }
}

fn to_time(secs: i64, nanos: u32) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nanos)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

fn backed_attr(ino: u64, node: &Node, base: FileAttr) -> FileAttr {
    let kind = match node.kind {
        NodeKind::Dir => FileType::Directory,
        NodeKind::File => FileType::RegularFile,
        NodeKind::Symlink => FileType::Symlink,
        NodeKind::Fifo => FileType::NamedPipe,
        NodeKind::CharDevice => FileType::CharDevice,
        NodeKind::BlockDevice => FileType::BlockDevice,
        NodeKind::Socket => FileType::Socket,
    };
    let mtime = to_time(node.mtime.secs, node.mtime.nanos);
    let size = match node.kind {
        NodeKind::Symlink => node.link_target.len() as u64,
        NodeKind::Dir => 0,
        _ => node.size,
    };
    FileAttr {
        ino,
        size,
        blocks: size.div_ceil(512),
        atime: mtime,
        mtime,
        ctime: to_time(node.ctime.secs, node.ctime.nanos),
        kind,
        perm: (node.mode & 0o7777) as u16,
        nlink: if node.kind == NodeKind::Dir {
            2
        } else {
            u32::try_from(node.links.max(1)).unwrap_or(u32::MAX)
        },
        uid: node.uid,
        gid: node.gid,
        rdev: u32::try_from(node.rdev).unwrap_or(0),
        ..base
    }
}

impl fuser::Filesystem for Fuse {
    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        match self.view.lookup(parent, name.as_bytes()) {
            Ok(Some(ino)) => match self.attr(ino) {
                Some(a) => reply.entry(&TTL, &a, 0),
                None => reply.error(ENOENT),
            },
            Ok(None) => reply.error(ENOENT),
            Err(e) => {
                tracing::warn!("mount: cannot read a folder: {e}");
                reply.error(EIO);
            }
        }
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        match self.attr(ino) {
            Some(a) => reply.attr(&TTL, &a),
            None => reply.error(ENOENT),
        }
    }

    fn readlink(&mut self, _req: &Request<'_>, ino: u64, reply: ReplyData) {
        match self.view.get(ino).map(|i| &i.entry) {
            Some(Entry::Link(target)) => reply.data(target),
            Some(Entry::Backed(node)) if node.kind == NodeKind::Symlink => reply.data(&node.link_target),
            Some(_) => reply.error(EINVAL),
            None => reply.error(ENOENT),
        }
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        let Ok(offset) = u64::try_from(offset) else {
            reply.error(EINVAL);
            return;
        };
        match self.view.read(ino, offset, size as usize) {
            Ok(data) => reply.data(&data),
            Err(e) => {
                tracing::warn!("mount: read of inode {ino} at {offset} failed: {e}");
                reply.error(EIO);
            }
        }
    }

    fn readdir(&mut self, _req: &Request<'_>, ino: u64, _fh: u64, offset: i64, mut reply: ReplyDirectory) {
        let children = match self.view.children(ino) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("mount: cannot list a folder: {e}");
                reply.error(EIO);
                return;
            }
        };
        let dots = [(b".".to_vec(), ino), (b"..".to_vec(), ino)];
        let all = dots.iter().chain(children.iter());
        for (i, (name, child)) in all.enumerate().skip(usize::try_from(offset).unwrap_or(0)) {
            let kind = self.attr(*child).map_or(FileType::RegularFile, |a| a.kind);
            if reply.add(*child, (i + 1) as i64, kind, OsStr::from_bytes(name)) {
                break;
            }
        }
        reply.ok();
    }
}
