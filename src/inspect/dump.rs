//! One file of a snapshot to a stream, or a folder as a tar archive.
//!
//! Every blob is verified as it is read (decrypted, its id re-hashed). A damaged blob stops the
//! stream with an integrity error: what was written so far is a prefix of the true content,
//! never a file with zeros where the damage was, and the command exits 4.

use std::io::{Read, Write};

use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::index::Index;
use crate::repo::pack::BlobType;
use crate::repo::tree::{Node, NodeKind};
use crate::repo::walk::{show, walk_under, WalkItem};
use crate::repo::Repository;

/// The entry at `path` (absolute inside the snapshot) of the tree `root`; `/` is the root
/// itself, returned as a folder node.
///
/// # Errors
/// `NotFound` naming the path; `Corrupt` when a folder on the way cannot be read.
pub fn locate(repo: &Repository, index: &Index, root: &Id, path: &str) -> Result<Node> {
    if path.split('/').all(str::is_empty) {
        let mut node = Node::new(b"", NodeKind::Dir);
        node.subtree = Some(*root);
        return Ok(node);
    }
    crate::restore::find_path(repo, index, root, path)?
        .ok_or_else(|| Error::not_found(format!("path '{path}' is not in the snapshot")))
}

/// Reads a file's content blob by blob, verified; remembers the first error.
struct Content<'a> {
    repo: &'a Repository,
    index: &'a Index,
    blobs: std::slice::Iter<'a, Id>,
    buf: Vec<u8>,
    pos: usize,
    /// Bytes handed out so far.
    served: u64,
    failed: Option<Error>,
}

impl<'a> Content<'a> {
    fn new(repo: &'a Repository, index: &'a Index, node: &'a Node) -> Content<'a> {
        Content { repo, index, blobs: node.content.iter(), buf: Vec::new(), pos: 0, served: 0, failed: None }
    }
}

impl Read for Content<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            let Some(id) = self.blobs.next() else { return Ok(0) };
            match self.repo.read_blob(self.index, id, BlobType::Data) {
                Ok(b) => {
                    self.buf = b;
                    self.pos = 0;
                }
                Err(e) => {
                    let text = e.to_string();
                    self.failed = Some(e);
                    return Err(std::io::Error::other(text));
                }
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        self.served += n as u64;
        Ok(n)
    }
}

/// Streams the content of `node` (a file) to `out`, verified; `what` names it in errors.
fn copy_content(
    repo: &Repository,
    index: &Index,
    node: &Node,
    what: &str,
    out: &mut dyn Write,
) -> Result<u64> {
    let mut content = Content::new(repo, index, node);
    let copied = std::io::copy(&mut content, out);
    if let Some(e) = content.failed.take() {
        return Err(e);
    }
    let n = copied.map_err(|e| Error::io("cannot write the dump", e))?;
    if n != node.size {
        return Err(Error::corrupt(
            what,
            format!("its content holds {n} bytes, the snapshot recorded {}", node.size),
        ));
    }
    Ok(n)
}

/// Writes the file `node` found at `path` to `out`.
///
/// # Errors
/// `InvalidInput` when it is not a file; `Corrupt` on damaged data; `Io` when `out` fails.
pub fn dump_file(
    repo: &Repository,
    index: &Index,
    node: &Node,
    path: &str,
    out: &mut dyn Write,
) -> Result<u64> {
    if node.kind != NodeKind::File {
        return Err(Error::invalid(format!(
            "'{path}' is a {:?}, not a file: dump a folder with --archive tar",
            node.kind
        )));
    }
    copy_content(repo, index, node, &format!("file '{path}'"), out)
}

fn header_for(node: &Node) -> Option<tar::Header> {
    let mut h = tar::Header::new_gnu();
    let kind = match node.kind {
        NodeKind::File => tar::EntryType::Regular,
        NodeKind::Dir => tar::EntryType::Directory,
        NodeKind::Symlink => tar::EntryType::Symlink,
        NodeKind::Fifo => tar::EntryType::Fifo,
        NodeKind::CharDevice => tar::EntryType::Char,
        NodeKind::BlockDevice => tar::EntryType::Block,
        NodeKind::Socket => return None,
    };
    h.set_entry_type(kind);
    h.set_mode(node.mode);
    h.set_uid(u64::from(node.uid));
    h.set_gid(u64::from(node.gid));
    let _ = h.set_username(&node.user);
    let _ = h.set_groupname(&node.group);
    h.set_mtime(u64::try_from(node.mtime.secs).unwrap_or(0));
    h.set_size(if node.kind == NodeKind::File { node.size } else { 0 });
    if matches!(node.kind, NodeKind::CharDevice | NodeKind::BlockDevice) {
        let (major, minor) = (nix::sys::stat::major(node.rdev), nix::sys::stat::minor(node.rdev));
        let _ = h.set_device_major(u32::try_from(major).unwrap_or(0));
        let _ = h.set_device_minor(u32::try_from(minor).unwrap_or(0));
    }
    Some(h)
}

/// Writes the folder `node` found at `path` as a tar archive to `out`: entries named relative
/// to the folder's parent (`dump SNAP /srv/app` gives `app/...`), with their modes, owners
/// and times. Sockets are left out, as tar cannot hold them.
///
/// # Errors
/// `Corrupt` on a damaged tree or blob (the archive stops there); `Io` when `out` fails.
pub fn dump_tar(
    repo: &Repository,
    index: &Index,
    node: &Node,
    path: &str,
    out: &mut dyn Write,
) -> Result<u64> {
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Complete);
    tar.follow_symlinks(false);
    let top: Vec<u8> = if node.name.is_empty() { b".".to_vec() } else { node.name.clone() };
    let mut entries = 0u64;
    let mut add = |tar: &mut tar::Builder<&mut dyn Write>, rel: &[u8], n: &Node| -> Result<()> {
        use std::os::unix::ffi::OsStrExt;
        let Some(mut h) = header_for(n) else { return Ok(()) };
        let name = std::path::Path::new(std::ffi::OsStr::from_bytes(rel));
        let what = format!("'{}' in the dump", show(rel));
        let io = |e| Error::io(format!("cannot write {what}"), e);
        match n.kind {
            NodeKind::Symlink => {
                let target = std::path::Path::new(std::ffi::OsStr::from_bytes(&n.link_target));
                tar.append_link(&mut h, name, target).map_err(io)?;
            }
            NodeKind::File => {
                let mut content = Content::new(repo, index, n);
                let mut limited = (&mut content).take(n.size);
                let written = tar.append_data(&mut h, name, &mut limited);
                if let Some(e) = content.failed.take() {
                    return Err(e);
                }
                written.map_err(io)?;
                // The header promised `size` bytes: the content must have exactly that many.
                let mut rest = [0u8; 1];
                let more = content.pos < content.buf.len() || content.read(&mut rest).map_err(io)? > 0;
                if more || content.served != n.size {
                    return Err(Error::corrupt(
                        &what,
                        format!("its content does not hold the {} bytes the snapshot recorded", n.size),
                    ));
                }
            }
            _ => tar.append_data(&mut h, name, std::io::empty()).map_err(io)?,
        }
        entries += 1;
        Ok(())
    };
    if node.kind != NodeKind::Dir {
        return Err(Error::invalid(format!("'{path}' is not a folder: dump a file without --archive")));
    }
    add(&mut tar, &top, node)?;
    let mut failure: Option<Error> = None;
    if let Some(sub) = node.subtree {
        let walked = walk_under(repo, index, &sub, &top, &mut |item| match item {
            WalkItem::Damaged { path, error, .. } => {
                Err(Error::corrupt(format!("folder '{}'", show(path)), error.to_string()))
            }
            WalkItem::Entry { path, node } => match add(&mut tar, path, node) {
                Ok(()) => Ok(true),
                Err(e) => {
                    failure = Some(e);
                    Err(Error::Failed("dump stopped".into()))
                }
            },
        });
        if let Err(e) = walked {
            return Err(failure.take().unwrap_or(e));
        }
    }
    tar.finish().map_err(|e| Error::io("cannot finish the tar archive", e))?;
    Ok(entries)
}
