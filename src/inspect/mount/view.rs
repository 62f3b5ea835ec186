//! The read-only tree a mount shows, by inode number, independent of FUSE.
//!
//! ```text
//! /snapshots/ID/...            each snapshot's files (ID: the short id)
//! /snapshots/latest -> ID      the newest snapshot
//! /hosts/HOST/ID -> ../../snapshots/ID, /hosts/HOST/latest
//! /tags/TAG/ID -> ../../snapshots/ID,   /tags/TAG/latest
//! /latest -> snapshots/ID
//! ```
//!
//! Snapshot folders are read lazily: a tree is loaded (and verified) the first time the
//! kernel looks inside it. File contents are located blob by blob from the index; every blob
//! read is decrypted and its id re-hashed, so damage is an error (EIO), never zeros.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::index::Index;
use crate::repo::pack::BlobType;
use crate::repo::snapshot::Snapshot;
use crate::repo::tree::{Node, NodeKind};
use crate::repo::Repository;

/// What an inode is.
#[derive(Clone, Debug)]
pub enum Entry {
    /// A folder of the view itself (`/`, `/snapshots`, `/hosts/HOST`).
    Folder,
    /// A symbolic link of the view (`latest`, `hosts/HOST/ID`).
    Link(Vec<u8>),
    /// An entry of a snapshot (its root folder included).
    Backed(Box<Node>),
}

#[derive(Debug)]
pub struct Inode {
    pub entry: Entry,
    /// Children by name, once known (always for view folders; loaded for snapshot folders).
    children: Option<Vec<(Vec<u8>, u64)>>,
    /// Where each content blob of a file starts, once the file was read.
    layout: Option<Arc<Vec<(u64, Id)>>>,
}

/// Blobs kept decrypted for sequential reads (the kernel reads 128 KiB at a time; a chunk is
/// about 1 MiB).
const BLOB_CACHE: usize = 16;

pub struct View {
    repo: Repository,
    index: Arc<Index>,
    inodes: Vec<Inode>,
    /// When the view was made: the time of its own folders.
    pub made: chrono::DateTime<chrono::Utc>,
    cache: VecDeque<(Id, Arc<Vec<u8>>)>,
}

/// The inode number of the root.
pub const ROOT: u64 = 1;

impl View {
    /// The view of `snapshots` (any order).
    pub fn new(repo: Repository, index: Arc<Index>, mut snapshots: Vec<(Id, Snapshot)>) -> View {
        snapshots.sort_by_key(|(_, s)| s.time);
        let mut v =
            View { repo, index, inodes: Vec::new(), made: chrono::Utc::now(), cache: VecDeque::new() };
        let root = v.add(Entry::Folder);
        let snaps = v.add(Entry::Folder);
        let hosts = v.add(Entry::Folder);
        let tags = v.add(Entry::Folder);
        let mut root_children =
            vec![(b"hosts".to_vec(), hosts), (b"snapshots".to_vec(), snaps), (b"tags".to_vec(), tags)];
        let mut snap_children = Vec::new();
        let mut by_host: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut by_tag: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (id, s) in &snapshots {
            let mut node = Node::new(id.short().as_bytes(), NodeKind::Dir);
            node.subtree = Some(s.tree);
            node.mode = 0o555;
            node.mtime = crate::repo::tree::Timestamp {
                secs: s.time.timestamp(),
                nanos: s.time.timestamp_subsec_nanos(),
            };
            let ino = v.add(Entry::Backed(Box::new(node)));
            snap_children.push((id.short().into_bytes(), ino));
            by_host.entry(s.hostname.clone()).or_default().push(id.short());
            for t in &s.tags {
                by_tag.entry(t.clone()).or_default().push(id.short());
            }
        }
        if let Some((id, _)) = snapshots.last() {
            let l = v.add(Entry::Link(id.short().into_bytes()));
            snap_children.push((b"latest".to_vec(), l));
            let l = v.add(Entry::Link(format!("snapshots/{}", id.short()).into_bytes()));
            root_children.push((b"latest".to_vec(), l));
        }
        for (dir, groups) in [(hosts, by_host), (tags, by_tag)] {
            let mut kids = Vec::new();
            for (name, ids) in groups {
                let folder = v.add(Entry::Folder);
                let mut links = Vec::new();
                for id in &ids {
                    links.push((
                        id.clone().into_bytes(),
                        v.add(Entry::Link(format!("../../snapshots/{id}").into_bytes())),
                    ));
                }
                if let Some(newest) = ids.last() {
                    let l = v.add(Entry::Link(format!("../../snapshots/{newest}").into_bytes()));
                    links.push((b"latest".to_vec(), l));
                }
                v.set_children(folder, links);
                // A host or tag name with a '/' cannot be a file name: shown with '_'.
                kids.push((name.replace('/', "_").into_bytes(), folder));
            }
            v.set_children(dir, kids);
        }
        v.set_children(snaps, snap_children);
        v.set_children(root, root_children);
        v
    }

    fn add(&mut self, entry: Entry) -> u64 {
        self.inodes.push(Inode { entry, children: None, layout: None });
        self.inodes.len() as u64
    }

    fn set_children(&mut self, ino: u64, mut children: Vec<(Vec<u8>, u64)>) {
        children.sort();
        self.inodes[(ino - 1) as usize].children = Some(children);
    }

    pub fn get(&self, ino: u64) -> Option<&Inode> {
        ino.checked_sub(1).and_then(|i| self.inodes.get(i as usize))
    }

    /// The children of folder `ino` (its tree loaded and verified on first use).
    ///
    /// # Errors
    /// `NotFound` for an unknown inode, `InvalidInput` for one that is not a folder, the
    /// repository's errors for a tree that cannot be read.
    pub fn children(&mut self, ino: u64) -> Result<Vec<(Vec<u8>, u64)>> {
        let inode = self.get(ino).ok_or_else(|| Error::not_found(format!("inode {ino}")))?;
        if let Some(c) = &inode.children {
            return Ok(c.clone());
        }
        let subtree = match &inode.entry {
            Entry::Backed(node) if node.kind == NodeKind::Dir => node.subtree,
            _ => return Err(Error::invalid(format!("inode {ino} is not a folder"))),
        };
        let nodes = match subtree {
            Some(id) => self.repo.load_tree(&self.index, &id)?.nodes,
            None => Vec::new(),
        };
        let mut kids = Vec::with_capacity(nodes.len());
        for node in nodes {
            let name = node.name.clone();
            kids.push((name, self.add(Entry::Backed(Box::new(node)))));
        }
        self.set_children(ino, kids.clone());
        Ok(kids)
    }

    /// The child `name` of folder `parent`.
    ///
    /// # Errors
    /// As [`View::children`].
    pub fn lookup(&mut self, parent: u64, name: &[u8]) -> Result<Option<u64>> {
        let kids = self.children(parent)?;
        Ok(kids.binary_search_by(|(n, _)| n.as_slice().cmp(name)).ok().map(|i| kids[i].1))
    }

    /// Up to `size` bytes of file `ino` from `offset`, verified blob by blob.
    ///
    /// # Errors
    /// `Corrupt` when a blob the range needs is missing or damaged.
    pub fn read(&mut self, ino: u64, offset: u64, size: usize) -> Result<Vec<u8>> {
        let layout = self.layout(ino)?;
        let file_size = match self.get(ino).map(|i| &i.entry) {
            Some(Entry::Backed(n)) => n.size,
            _ => 0,
        };
        let end = file_size.min(offset.saturating_add(size as u64));
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        // The blob holding `offset`: the last that starts at or before it.
        let mut i = layout.partition_point(|(start, _)| *start <= offset).saturating_sub(1);
        let mut pos = offset;
        while pos < end && i < layout.len() {
            let (start, id) = layout[i];
            let data = self.blob(&id)?;
            let from = (pos - start) as usize;
            if from >= data.len() {
                break;
            }
            let take = (data.len() - from).min((end - pos) as usize);
            out.extend_from_slice(&data[from..from + take]);
            pos += take as u64;
            i += 1;
            // The next blob must start where this one ended: else the file's layout is
            // inconsistent and what follows would be read from the wrong place.
            if i < layout.len() && pos < end && layout[i].0 != start + data.len() as u64 {
                return Err(Error::corrupt(
                    format!("data blob {id}"),
                    "its length is not the one the index records",
                ));
            }
        }
        if pos < end {
            // Blobs end before the size the file was backed up with: never a short read that
            // looks like the end of the file.
            return Err(Error::corrupt(
                format!("inode {ino}"),
                format!("its blobs hold {pos} bytes of the {file_size} recorded"),
            ));
        }
        Ok(out)
    }

    fn layout(&mut self, ino: u64) -> Result<Arc<Vec<(u64, Id)>>> {
        let inode = self.get(ino).ok_or_else(|| Error::not_found(format!("inode {ino}")))?;
        if let Some(l) = &inode.layout {
            return Ok(l.clone());
        }
        let Entry::Backed(node) = &inode.entry else {
            return Err(Error::invalid(format!("inode {ino} is not a file")));
        };
        let mut at = 0u64;
        let mut layout = Vec::with_capacity(node.content.len());
        for id in &node.content {
            let loc = self.index.lookup(id).ok_or_else(|| {
                Error::corrupt(format!("data blob {id}"), "not in the index (missing data)")
            })?;
            layout.push((at, *id));
            at += u64::from(loc.entry.raw_length);
        }
        let layout = Arc::new(layout);
        self.inodes[(ino - 1) as usize].layout = Some(layout.clone());
        Ok(layout)
    }

    fn blob(&mut self, id: &Id) -> Result<Arc<Vec<u8>>> {
        if let Some((_, b)) = self.cache.iter().find(|(i, _)| i == id) {
            return Ok(b.clone());
        }
        let data = Arc::new(self.repo.read_blob(&self.index, id, BlobType::Data)?);
        if self.cache.len() == BLOB_CACHE {
            self.cache.pop_front();
        }
        self.cache.push_back((*id, data.clone()));
        Ok(data)
    }
}

/// Where a path of the view leads, for tests and messages: the inode of `path` (`/a/b`).
///
/// # Errors
/// As [`View::lookup`].
pub fn resolve(view: &mut View, path: &str) -> Result<Option<u64>> {
    let mut ino = ROOT;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        match view.lookup(ino, part.as_bytes())? {
            Some(i) => ino = i,
            None => return Ok(None),
        }
    }
    Ok(Some(ino))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::testing::{noise, TempRepo};

    #[test]
    fn the_view_lays_out_snapshots_hosts_tags_and_reads_any_range() {
        let t = TempRepo::new();
        let big = noise(1, 3_000_000);
        let src = t.source("src", &[("a/big.bin", big.clone()), ("b.txt", b"hello".to_vec())]);
        let first = t.backup(&src);
        let second = t.backup(&src);
        let (snaps, _) = t.repo.list_snapshots().unwrap();
        let index = Arc::new(t.repo.load_index().unwrap());
        let mut v = View::new(t.repo.clone(), index, snaps);
        let names = |v: &mut View, ino| -> Vec<String> {
            v.children(ino).unwrap().iter().map(|(n, _)| String::from_utf8_lossy(n).into_owned()).collect()
        };
        assert_eq!(names(&mut v, ROOT), ["hosts", "latest", "snapshots", "tags"]);
        let snaps_ino = resolve(&mut v, "/snapshots").unwrap().unwrap();
        let mut want = vec![first.short(), second.short(), "latest".into()];
        want.sort();
        assert_eq!(names(&mut v, snaps_ino), want);
        let latest = resolve(&mut v, "/latest").unwrap().unwrap();
        assert!(
            matches!(&v.get(latest).unwrap().entry, Entry::Link(t) if *t == format!("snapshots/{}", second.short()).into_bytes())
        );
        let host = crate::util::hostname();
        let link = resolve(&mut v, &format!("/hosts/{host}/{}", first.short())).unwrap().unwrap();
        assert!(matches!(&v.get(link).unwrap().entry, Entry::Link(t) if t.starts_with(b"../../snapshots/")));

        let path = format!("/snapshots/{}{}/a/big.bin", first.short(), src.display());
        let file = resolve(&mut v, &path).unwrap().expect("the file is in the view");
        // Any range, across chunk boundaries, reads what was backed up.
        for (off, len) in [(0usize, 4096usize), (1_000_000, 300_000), (2_999_000, 10_000), (3_000_000, 10)] {
            let got = v.read(file, off as u64, len).unwrap();
            let end = (off + len).min(big.len());
            assert_eq!(got, big[off.min(end)..end], "{off}+{len}");
        }
        assert!(resolve(&mut v, "/snapshots/nothing").unwrap().is_none());
    }
}
