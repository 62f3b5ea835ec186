//! What changed between two snapshots, path by path.
//!
//! The two trees are walked side by side in name order; a subtree whose id is the same in both
//! is identical (trees are content-addressed) and is not read at all, so a diff costs what
//! changed, not what the snapshots hold.

use serde::Serialize;

use crate::error::Result;
use crate::id::Id;
use crate::repo::index::Index;
use crate::repo::tree::{Node, NodeKind, Tree};
use crate::repo::walk::{walk_under, WalkItem};
use crate::repo::Repository;

/// How one path differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Change {
    /// Only in the second snapshot.
    #[serde(rename = "+")]
    Added,
    /// Only in the first.
    #[serde(rename = "-")]
    Removed,
    /// Content (or a symlink's target) changed.
    #[serde(rename = "M")]
    Modified,
    /// Same content; mode, owner, times or extended attributes changed.
    #[serde(rename = "U")]
    Metadata,
    /// A different kind of entry (a file became a folder...).
    #[serde(rename = "T")]
    TypeChanged,
}

impl Change {
    pub fn symbol(self) -> char {
        match self {
            Change::Added => '+',
            Change::Removed => '-',
            Change::Modified => 'M',
            Change::Metadata => 'U',
            Change::TypeChanged => 'T',
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct DiffEntry {
    /// Raw path bytes (shown escaped or lossy by the caller).
    #[serde(skip)]
    pub raw_path: Vec<u8>,
    pub path: String,
    pub change: Change,
    /// What changed, for `U`: `mode`, `owner`, `mtime`, `xattrs`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub what: Vec<&'static str>,
    pub size_before: Option<u64>,
    pub size_after: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct DiffStats {
    pub added: u64,
    pub removed: u64,
    pub modified: u64,
    pub metadata: u64,
    pub type_changed: u64,
    /// File bytes only in the second snapshot's new or modified files.
    pub bytes_added: u64,
    /// File bytes of removed files and of the old versions of modified ones.
    pub bytes_removed: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Diff {
    pub changes: Vec<DiffEntry>,
    pub stats: DiffStats,
    /// Folders whose tree could not be read in either snapshot (path: why).
    pub damaged: Vec<String>,
}

/// The differences from the tree `before` to the tree `after`.
///
/// # Errors
/// Only storage errors that stop everything; unreadable trees are listed in `damaged`.
pub fn diff(repo: &Repository, index: &Index, before: &Id, after: &Id) -> Result<Diff> {
    let mut d = Diff::default();
    let mut path = Vec::new();
    compare(repo, index, Some(*before), Some(*after), &mut path, &mut d)?;
    Ok(d)
}

fn load(repo: &Repository, index: &Index, id: Option<Id>, path: &[u8], d: &mut Diff) -> Tree {
    let Some(id) = id else { return Tree::default() };
    match repo.load_tree(index, &id) {
        Ok(t) => t,
        Err(e) => {
            let shown = if path.is_empty() { "/".into() } else { crate::repo::walk::show(path) };
            d.damaged.push(format!("{shown}: {e}"));
            Tree::default()
        }
    }
}

fn compare(
    repo: &Repository,
    index: &Index,
    before: Option<Id>,
    after: Option<Id>,
    path: &mut Vec<u8>,
    d: &mut Diff,
) -> Result<()> {
    if before == after {
        return Ok(());
    }
    let old = load(repo, index, before, path, d);
    let new = load(repo, index, after, path, d);
    let (mut i, mut j) = (0, 0);
    while i < old.nodes.len() || j < new.nodes.len() {
        let order = match (old.nodes.get(i), new.nodes.get(j)) {
            (Some(a), Some(b)) => a.name.cmp(&b.name),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        let len = path.len();
        path.push(b'/');
        match order {
            std::cmp::Ordering::Less => {
                path.extend_from_slice(&old.nodes[i].name);
                whole(repo, index, &old.nodes[i], path, Change::Removed, d)?;
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                path.extend_from_slice(&new.nodes[j].name);
                whole(repo, index, &new.nodes[j], path, Change::Added, d)?;
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                path.extend_from_slice(&old.nodes[i].name);
                both(repo, index, &old.nodes[i], &new.nodes[j], path, d)?;
                i += 1;
                j += 1;
            }
        }
        path.truncate(len);
    }
    Ok(())
}

fn file_size(n: &Node) -> Option<u64> {
    (n.kind == NodeKind::File).then_some(n.size)
}

fn push(
    d: &mut Diff,
    path: &[u8],
    change: Change,
    what: Vec<&'static str>,
    a: Option<&Node>,
    b: Option<&Node>,
) {
    let (before, after) = (a.and_then(file_size), b.and_then(file_size));
    let s = &mut d.stats;
    match change {
        Change::Added => s.added += 1,
        Change::Removed => s.removed += 1,
        Change::Modified => s.modified += 1,
        Change::Metadata => s.metadata += 1,
        Change::TypeChanged => s.type_changed += 1,
    }
    if change != Change::Metadata {
        s.bytes_added += after.unwrap_or(0);
        s.bytes_removed += before.unwrap_or(0);
    }
    d.changes.push(DiffEntry {
        raw_path: path.to_vec(),
        path: crate::repo::walk::show(path),
        change,
        what,
        size_before: before,
        size_after: after,
    });
}

/// An entry only on one side, with everything below it.
fn whole(
    repo: &Repository,
    index: &Index,
    node: &Node,
    path: &[u8],
    change: Change,
    d: &mut Diff,
) -> Result<()> {
    let side =
        |n: &Node| if change == Change::Added { (None, Some(n.clone())) } else { (Some(n.clone()), None) };
    let (a, b) = side(node);
    push(d, path, change, vec![], a.as_ref(), b.as_ref());
    if let (NodeKind::Dir, Some(sub)) = (node.kind, node.subtree) {
        let mut entries = Vec::new();
        let mut damaged = Vec::new();
        walk_under(repo, index, &sub, path, &mut |item| {
            match item {
                WalkItem::Entry { path, node } => entries.push((path.to_vec(), node.clone())),
                WalkItem::Damaged { path, error, .. } => {
                    damaged.push(format!("{}: {error}", crate::repo::walk::show(path)));
                }
            }
            Ok(true)
        })?;
        for (p, n) in entries {
            let (a, b) = side(&n);
            push(d, &p, change, vec![], a.as_ref(), b.as_ref());
        }
        d.damaged.extend(damaged);
    }
    Ok(())
}

/// An entry on both sides.
fn both(
    repo: &Repository,
    index: &Index,
    a: &Node,
    b: &Node,
    path: &mut Vec<u8>,
    d: &mut Diff,
) -> Result<()> {
    if a.kind != b.kind {
        push(d, path, Change::TypeChanged, vec![], Some(a), Some(b));
        // What was below a folder that is gone, or is below the new one, changed too.
        if a.kind == NodeKind::Dir {
            compare(repo, index, a.subtree, None, path, d)?;
        }
        if b.kind == NodeKind::Dir {
            compare(repo, index, None, b.subtree, path, d)?;
        }
        return Ok(());
    }
    let content_changed = match a.kind {
        NodeKind::File => a.content != b.content || a.size != b.size,
        NodeKind::Symlink => a.link_target != b.link_target,
        NodeKind::CharDevice | NodeKind::BlockDevice => a.rdev != b.rdev,
        _ => false,
    };
    let mut what = Vec::new();
    if a.mode != b.mode {
        what.push("mode");
    }
    if (a.uid, a.gid, &a.user, &a.group) != (b.uid, b.gid, &b.user, &b.group) {
        what.push("owner");
    }
    if a.mtime != b.mtime && a.kind != NodeKind::Dir {
        what.push("mtime");
    }
    if a.xattrs != b.xattrs {
        what.push("xattrs");
    }
    if content_changed {
        push(d, path, Change::Modified, what, Some(a), Some(b));
    } else if !what.is_empty() {
        push(d, path, Change::Metadata, what, Some(a), Some(b));
    }
    if a.kind == NodeKind::Dir {
        compare(repo, index, a.subtree, b.subtree, path, d)?;
    }
    Ok(())
}
