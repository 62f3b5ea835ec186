//! The walker: lists the source paths depth-first and feeds the workers and the tree builder.
//!
//! Unchanged files (same size, mtime, ctime and inode as in the parent snapshot, with all
//! their blobs indexed) are not read: their content list is copied from the parent's tree.
//! The walker runs ahead of the workers by at most the job channel's capacity, which bounds
//! memory whatever the size of the tree. Folders are read (listed and `lstat`ed) ahead of it
//! by the [`Lister`]'s threads; the walker itself keeps the one deterministic order.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crossbeam_channel::Sender;
use globset::{GlobSet, GlobSetBuilder};

use super::fsmeta::{node_from_metadata, node_with_xattrs_from, unchanged, EntryStat, NameCache};
use super::lister::Lister;
use super::shared::{Counters, Shared};
use super::trees::{PendingDir, PendingEntry};
use super::workers::Job;
use crate::error::{Error, Result};
use crate::repo::snapshot::EntryError;
use crate::repo::tree::{NodeKind, Tree};

/// Exclude patterns: a pattern with a `/` matches the whole absolute path, one without
/// matches the entry's name anywhere (`*.tmp`, `node_modules`).
#[derive(Clone)]
pub struct Excludes {
    by_path: GlobSet,
    by_name: GlobSet,
}

impl Excludes {
    /// # Errors
    /// `InvalidInput` quoting the pattern that is not a valid glob.
    pub fn new(patterns: &[String]) -> Result<Excludes> {
        let mut by_path = GlobSetBuilder::new();
        let mut by_name = GlobSetBuilder::new();
        for p in patterns {
            let glob = globset::GlobBuilder::new(p)
                .literal_separator(p.contains('/'))
                .build()
                .map_err(|e| Error::invalid(format!("error parsing exclude glob '{p}': {e}")))?;
            if p.contains('/') {
                by_path.add(glob);
            } else {
                by_name.add(glob);
            }
        }
        Ok(Excludes {
            by_path: by_path.build().map_err(|e| Error::invalid(format!("exclude patterns: {e}")))?,
            by_name: by_name.build().map_err(|e| Error::invalid(format!("exclude patterns: {e}")))?,
        })
    }

    /// True when there are no patterns (nothing is ever excluded).
    pub fn is_empty(&self) -> bool {
        self.by_path.is_empty() && self.by_name.is_empty()
    }

    pub fn matches(&self, path: &Path, name: &[u8]) -> bool {
        self.by_name.is_match(Path::new(std::ffi::OsStr::from_bytes(name))) || self.by_path.is_match(path)
    }
}

/// Makes `p` absolute and removes `.` and `..` lexically (symlinks are not resolved, so the
/// snapshot shows the paths the user gave).
pub fn absolute(p: &Path) -> Result<PathBuf> {
    let base = if p.is_absolute() {
        PathBuf::new()
    } else {
        std::env::current_dir().map_err(|e| Error::io("cannot read the current folder", e))?
    };
    let mut out = PathBuf::from("/");
    for c in base.join(p).components() {
        match c {
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
        }
    }
    Ok(out)
}

/// The source paths as a tree of names, so that the snapshot mirrors their absolute paths.
#[derive(Default, Debug)]
pub struct SourceTrie {
    children: BTreeMap<Vec<u8>, SourceTrie>,
    pub is_source: bool,
}

impl SourceTrie {
    pub fn build(paths: &[PathBuf]) -> SourceTrie {
        let mut root = SourceTrie::default();
        for p in paths {
            let mut node = &mut root;
            for c in p.components() {
                if let Component::Normal(n) = c {
                    if node.is_source {
                        break; // already covered by a shorter source path
                    }
                    node = node.children.entry(n.as_bytes().to_vec()).or_default();
                }
            }
            node.is_source = true;
            node.children.clear();
        }
        root
    }
}

pub struct Walker {
    pub shared: Arc<Shared>,
    pub jobs: Sender<Job>,
    pub trees: Sender<PendingDir>,
    pub names: NameCache,
    pub filters: super::filters::Filters,
    pub one_file_system: bool,
    pub errors: Vec<EntryError>,
    next_slot: usize,
    lister: Lister,
}

/// Threads that read folders ahead of the walker: enough to keep it fed, few enough not to
/// crowd the workers that read and pack file content.
fn lister_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 4)
}

impl Walker {
    pub fn new(
        shared: Arc<Shared>,
        jobs: Sender<Job>,
        trees: Sender<PendingDir>,
        filters: super::filters::Filters,
        one_file_system: bool,
    ) -> Walker {
        let lister = Lister::new(lister_threads(), filters.patterns.clone());
        Walker {
            shared,
            jobs,
            trees,
            names: NameCache::default(),
            filters,
            one_file_system,
            errors: Vec::new(),
            next_slot: 0,
            lister,
        }
    }

    fn slot(&mut self) -> usize {
        self.next_slot += 1;
        self.next_slot
    }

    fn parent_subtree(&self, parent: Option<&Tree>, name: &[u8]) -> Option<Tree> {
        let node = parent?.find(name)?;
        let id = node.subtree?;
        if node.kind != NodeKind::Dir {
            return None;
        }
        match self.shared.repo.load_tree(&self.shared.index, &id) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!("parent tree {id} unreadable, reading everything below it again: {e}");
                None
            }
        }
    }

    fn send_dir(&self, dir: PendingDir) -> Result<()> {
        self.trees.send(dir).map_err(|_| Error::failed("the tree builder stopped"))
    }

    /// Walks a virtual directory of the source trie; returns its slot.
    pub fn walk_virtual(&mut self, path: &Path, trie: &SourceTrie, parent: Option<&Tree>) -> Result<usize> {
        let slot = self.slot();
        let mut entries = Vec::new();
        for (name, child) in &trie.children {
            let child_path = path.join(std::ffi::OsStr::from_bytes(name));
            let meta = std::fs::symlink_metadata(&child_path)
                .map(|m| EntryStat::from(&m))
                .map_err(|e| Error::io(format!("cannot read source path '{}'", child_path.display()), e))?;
            if child.is_source {
                if let Some(e) = self.entry(&child_path, name, &meta, parent, meta.dev)? {
                    entries.push(e);
                }
            } else {
                let mut node = node_from_metadata(&child_path, name, &meta, &mut self.names)
                    .map_err(|e| Error::io(format!("cannot read '{}'", child_path.display()), e))?;
                node.kind = NodeKind::Dir;
                let sub = self.parent_subtree(parent, name);
                let child_slot = self.walk_virtual(&child_path, child, sub.as_ref())?;
                entries.push(PendingEntry::Dir { node, slot: child_slot });
            }
        }
        self.send_dir(PendingDir { slot, entries })?;
        Ok(slot)
    }

    /// Builds the pending entry of one path; `None` when it is skipped.
    fn entry(
        &mut self,
        path: &Path,
        name: &[u8],
        meta: &EntryStat,
        parent: Option<&Tree>,
        root_dev: u64,
    ) -> Result<Option<PendingEntry>> {
        if self.shared.aborted() {
            return Err(Error::Interrupted("backup cancelled".into()));
        }
        let previous = parent.and_then(|t| t.find(name));
        let mut node = match node_with_xattrs_from(path, name, meta, &mut self.names, previous) {
            Ok(n) => n,
            Err(e) => {
                self.skip(path, e.to_string());
                return Ok(None);
            }
        };
        let counters = &self.shared.counters;
        Ok(Some(match node.kind {
            NodeKind::Dir => {
                Counters::add(&counters.dirs, 1);
                if self.one_file_system && meta.dev != root_dev {
                    // A mount point: keep the folder itself, not what is mounted on it.
                    let slot = self.slot();
                    self.send_dir(PendingDir { slot, entries: vec![] })?;
                    PendingEntry::Dir { node, slot }
                } else {
                    let sub = self.parent_subtree(parent, name);
                    let slot = self.walk_dir(path, sub.as_ref(), root_dev)?;
                    PendingEntry::Dir { node, slot }
                }
            }
            NodeKind::File => {
                Counters::add(&counters.files_found, 1);
                Counters::add(&counters.bytes_found, meta.size);
                let old = parent.and_then(|t| t.find(name));
                if let Some(old) = old.filter(|o| unchanged(o, &node)) {
                    if old.content.iter().all(|id| self.shared.known(id)) {
                        node.content = old.content.clone();
                        node.content_hash = old.content_hash;
                        node.size = old.size;
                        Counters::add(&counters.files_unmodified, 1);
                        Counters::add(&counters.files_done, 1);
                        Counters::add(&counters.bytes_total, node.size);
                        Counters::add(&counters.bytes_unmodified, meta.size);
                        counters.report(super::shared::ChangeKind::Unchanged, path, node.size);
                        return Ok(Some(PendingEntry::Ready(node)));
                    }
                }
                let (tx, rx) = crossbeam_channel::bounded(1);
                self.jobs
                    .send(Job::File { path: path.to_path_buf(), reply: tx })
                    .map_err(|_| Error::failed("the workers stopped"))?;
                PendingEntry::File { node, path: path.to_path_buf(), reply: rx, changed: old.is_some() }
            }
            _ => {
                Counters::add(&counters.other_entries, 1);
                PendingEntry::Ready(node)
            }
        }))
    }

    fn skip(&mut self, path: &Path, error: String) {
        tracing::warn!("skipped '{}': {error}", path.display());
        self.errors.push(EntryError { path: path.display().to_string(), error });
    }

    /// Walks a real directory; returns its slot.
    pub fn walk_dir(&mut self, path: &Path, parent: Option<&Tree>, root_dev: u64) -> Result<usize> {
        let listing = self.lister.take(path);
        if let Some(why) = listing.error {
            self.skip(path, why);
        }
        let mut listed = listing.entries;
        if let Some(marker) = self.filters.marker_in(path) {
            // Kept with its marker alone, so a restore shows why it is empty.
            let marker = marker.name.clone();
            listed.retain(|(n, _)| *n == marker);
        }
        let mut kept = Vec::with_capacity(listed.len());
        for (name, meta) in listed {
            let child = path.join(std::ffi::OsStr::from_bytes(&name));
            if self.filters.patterns.matches(&child, &name) {
                continue;
            }
            let meta = match meta {
                Ok(m) => m,
                Err(e) => {
                    self.skip(&child, e.to_string());
                    continue;
                }
            };
            if meta.is_file() && self.filters.larger_than.is_some_and(|limit| meta.size > limit) {
                continue;
            }
            kept.push((name, child, meta));
        }
        // The subfolders this walk will enter, read ahead in the order it enters them.
        self.lister.prefetch(
            kept.iter()
                .filter(|(_, _, m)| m.is_dir() && !(self.one_file_system && m.dev != root_dev))
                .map(|(_, child, _)| child.clone())
                .collect(),
        );
        let mut entries = Vec::with_capacity(kept.len());
        for (name, child, meta) in kept {
            if let Some(e) = self.entry(&child, &name, &meta, parent, root_dev)? {
                entries.push(e);
            }
        }
        let slot = self.slot();
        self.send_dir(PendingDir { slot, entries })?;
        Ok(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_is_lexical() {
        assert_eq!(absolute(Path::new("/a/./b/../c")).unwrap(), PathBuf::from("/a/c"));
    }

    #[test]
    fn trie_drops_nested_sources() {
        let t = SourceTrie::build(&[PathBuf::from("/a/b"), PathBuf::from("/a/b/c"), PathBuf::from("/a/d")]);
        let a = &t.children[b"a".as_slice()];
        assert!(a.children[b"b".as_slice()].is_source);
        assert!(a.children[b"b".as_slice()].children.is_empty());
        assert!(a.children[b"d".as_slice()].is_source);
    }

    #[test]
    fn excludes_match_names_or_paths_and_quote_bad_globs() {
        let ex = Excludes::new(&["*.tmp".into(), "/srv/**/cache".into()]).unwrap();
        assert!(ex.matches(Path::new("/x/y.tmp"), b"y.tmp"));
        assert!(ex.matches(Path::new("/srv/a/b/cache"), b"cache"));
        assert!(!ex.matches(Path::new("/srv/a/b/keep"), b"keep"));
        let err = Excludes::new(&["a[".into()]).err().unwrap().to_string();
        assert!(err.contains("'a['"), "{err}");
    }
}
