//! Level 3's metadata check: every entry a drill restored is compared with its node (type,
//! size, mode, mtime, owner).
//!
//! Entries come in the walk's order, so neighbours share a folder: each is `statat`ed by name
//! relative to its open folder, the folder opened once for all its entries (an `lstat` by full
//! path walks the sandbox's dozen folders for every entry; on tmpfs that measured no faster or
//! slower). The folder is opened without following a link, so a restored folder replaced by a
//! link is reported, never looked through.

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};

use crate::repo::tree::{Node, NodeKind};
use crate::restore::target_path;

/// Entries whose metadata is compared at a time (their paths and nodes are held).
pub const METADATA_BATCH: usize = 20_000;

#[derive(Default)]
pub struct MetadataTotals {
    pub mismatches: Vec<String>,
    pub files: u64,
    pub bytes: u64,
}

impl MetadataTotals {
    /// Compares a batch of restored entries with their nodes on every core.
    pub fn compare(&mut self, target: &Path, batch: &[(Vec<u8>, Node)]) {
        let threads = crate::backup::default_workers().max(1);
        let per_thread = batch.len().div_ceil(threads).max(1);
        let parts: Vec<(Vec<String>, u64, u64)> = std::thread::scope(|s| {
            let handles: Vec<_> =
                batch.chunks(per_thread).map(|part| s.spawn(|| compare_metadata(target, part))).collect();
            handles.into_iter().map(|h| h.join().expect("a metadata check thread panicked")).collect()
        });
        for (m, f, b) in parts {
            self.mismatches.extend(m);
            self.files += f;
            self.bytes += b;
        }
    }
}

/// The folder whose entries are being compared, open.
struct OpenFolder<'a> {
    path: &'a [u8],
    fd: std::io::Result<OwnedFd>,
}

/// Compares each restored entry of `part` with its node: the mismatches, the files and their
/// bytes.
fn compare_metadata(target: &Path, part: &[(Vec<u8>, Node)]) -> (Vec<String>, u64, u64) {
    let (mut mismatches, mut files, mut bytes) = (Vec::new(), 0u64, 0u64);
    let mut folder: Option<OpenFolder<'_>> = None;
    for (path, node) in part {
        let split = path.iter().rposition(|&b| b == b'/').unwrap_or(0);
        let (parent, name) = (&path[..split], &path[split + 1..]);
        if folder.as_ref().is_none_or(|f| f.path != parent) {
            let fd = rustix::fs::openat(
                rustix::fs::CWD,
                target_path(target, parent),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::empty(),
            )
            .map_err(std::io::Error::from);
            folder = Some(OpenFolder { path: parent, fd });
        }
        let stat = match &folder.as_ref().expect("opened above").fd {
            Ok(fd) => rustix::fs::statat(fd, OsStr::from_bytes(name), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(std::io::Error::from),
            Err(e) => Err(std::io::Error::new(e.kind(), format!("its folder cannot be opened: {e}"))),
        };
        match stat {
            Ok(st) => {
                if let Some(why) = metadata_mismatch(node, &st) {
                    mismatches.push(format!("{}: {why}", String::from_utf8_lossy(path)));
                }
                if node.kind == NodeKind::File {
                    files += 1;
                    bytes += node.size;
                }
            }
            Err(_) if node.kind == NodeKind::Socket => {}
            Err(e) => mismatches.push(format!("{}: not restored ({e})", String::from_utf8_lossy(path))),
        }
    }
    (mismatches, files, bytes)
}

fn metadata_mismatch(node: &Node, st: &Stat) -> Option<String> {
    let ft = FileType::from_raw_mode(st.st_mode);
    let kind_ok = match node.kind {
        NodeKind::File => ft == FileType::RegularFile,
        NodeKind::Dir => ft == FileType::Directory,
        NodeKind::Symlink => ft == FileType::Symlink,
        _ => true,
    };
    if !kind_ok {
        return Some(format!("type differs (expected {:?})", node.kind));
    }
    if node.kind == NodeKind::File && st.st_size as u64 != node.size {
        return Some(format!("size {} instead of {}", st.st_size, node.size));
    }
    let mode = st.st_mode & 0o7777;
    if node.kind != NodeKind::Symlink && mode != node.mode {
        return Some(format!("mode {mode:o} instead of {:o}", node.mode));
    }
    if matches!(node.kind, NodeKind::File | NodeKind::Dir)
        && (st.st_mtime, st.st_mtime_nsec as u32) != (node.mtime.secs, node.mtime.nanos)
    {
        return Some("mtime differs".into());
    }
    if nix::unistd::geteuid().is_root() && (st.st_uid, st.st_gid) != (node.uid, node.gid) {
        return Some(format!("owner {}:{} instead of {}:{}", st.st_uid, st.st_gid, node.uid, node.gid));
    }
    None
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;
    use crate::repo::tree::Timestamp;

    /// The node a backup would record for `path` (below `target`) as it is now.
    fn node_of(target: &Path, path: &str) -> (Vec<u8>, Node) {
        let m = std::fs::symlink_metadata(target_path(target, path.as_bytes())).unwrap();
        let kind = if m.is_dir() {
            NodeKind::Dir
        } else if m.file_type().is_symlink() {
            NodeKind::Symlink
        } else {
            NodeKind::File
        };
        let mut node = Node::new(path.rsplit('/').next().unwrap().as_bytes(), kind);
        node.mode = m.mode() & 0o7777;
        node.size = if kind == NodeKind::File { m.size() } else { 0 };
        node.mtime = Timestamp { secs: m.mtime(), nanos: m.mtime_nsec() as u32 };
        (node.uid, node.gid) = (m.uid(), m.gid());
        (path.as_bytes().to_vec(), node)
    }

    fn compare(target: &Path, entries: &[(Vec<u8>, Node)]) -> Vec<String> {
        let mut totals = MetadataTotals::default();
        totals.compare(target, entries);
        totals.mismatches
    }

    #[test]
    fn restored_entries_match_their_nodes_and_every_difference_is_named() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path();
        std::fs::create_dir_all(target.join("a/b")).unwrap();
        for f in ["a/one", "a/b/two", "a/b/three", "top"] {
            std::fs::write(target.join(f), f.as_bytes()).unwrap();
        }
        std::os::unix::fs::symlink("one", target.join("a/link")).unwrap();
        let paths = ["/a", "/a/b", "/a/b/three", "/a/b/two", "/a/link", "/a/one", "/top"];
        let entries: Vec<_> = paths.iter().map(|p| node_of(target, p)).collect();
        assert_eq!(compare(target, &entries), Vec::<String>::new());
        let mut totals = MetadataTotals::default();
        totals.compare(target, &entries);
        assert_eq!((totals.files, totals.bytes), (4, 5 + 7 + 9 + 3));

        // Each kind of difference is found and named with its path.
        std::fs::set_permissions(target.join("a/one"), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(target.join("a/b/two"), b"longer now").unwrap();
        std::fs::remove_file(target.join("top")).unwrap();
        std::fs::create_dir(target.join("top")).unwrap();
        std::fs::remove_file(target.join("a/b/three")).unwrap();
        let found = compare(target, &entries);
        let named = |path: &str, what: &str| found.iter().any(|m| m.starts_with(path) && m.contains(what));
        assert!(named("/a/one", "mode 600"), "{found:?}");
        assert!(named("/a/b/two", "size 10 instead of 7"), "{found:?}");
        assert!(named("/top", "type differs"), "{found:?}");
        assert!(named("/a/b/three", "not restored"), "{found:?}");
        assert!(named("/a/b:", "mtime differs"), "removing three changed its folder: {found:?}");
        assert_eq!(found.len(), 5, "{found:?}");
    }

    #[test]
    fn a_folder_replaced_by_a_link_is_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("target");
        std::fs::create_dir_all(target.join("a")).unwrap();
        std::fs::write(target.join("a/file"), b"x").unwrap();
        let entries: Vec<_> = ["/a", "/a/file"].iter().map(|p| node_of(&target, p)).collect();
        assert_eq!(compare(&target, &entries), Vec::<String>::new());
        // The folder moves elsewhere and a link takes its place: its entries are not the
        // restore's, however alike they look.
        std::fs::rename(target.join("a"), t.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(t.path().join("elsewhere"), target.join("a")).unwrap();
        let found = compare(&target, &entries);
        assert!(found.iter().any(|m| m.starts_with("/a:") && m.contains("type differs")), "{found:?}");
        assert!(found.iter().any(|m| m.starts_with("/a/file") && m.contains("not restored")), "{found:?}");
    }
}
