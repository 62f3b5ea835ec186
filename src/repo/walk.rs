//! Traversals of snapshots' trees: [`walk`] visits entries with their paths (`ls`, restore,
//! check's attribution), and [`reachable`] collects every blob a set of snapshots uses (prune,
//! drills, check's structure pass), each tree read once however many snapshots share it.
//!
//! A subtree that cannot be read does not stop either: `walk` hands the visitor a `Damaged`
//! item naming its path, `reachable` lists the tree, and callers report it and go on.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::index::Index;
use crate::repo::tree::{Node, NodeKind};
use crate::repo::Repository;

pub enum WalkItem<'a> {
    /// An entry at `path` (absolute inside the snapshot, raw bytes).
    Entry { path: &'a [u8], node: &'a Node },
    /// The tree of the directory at `path` could not be read.
    Damaged { path: &'a [u8], tree: Id, error: &'a Error },
}

/// Walks the tree `root` in name order; the visitor returns whether to enter a directory.
///
/// # Errors
/// The first error the visitor returns.
pub fn walk(
    repo: &Repository,
    index: &Index,
    root: &Id,
    visit: &mut dyn FnMut(WalkItem<'_>) -> Result<bool>,
) -> Result<()> {
    walk_under(repo, index, root, b"", visit)
}

/// [`walk`] of a subtree found at `prefix`: the paths handed to the visitor start with it.
///
/// # Errors
/// The first error the visitor returns.
pub fn walk_under(
    repo: &Repository,
    index: &Index,
    root: &Id,
    prefix: &[u8],
    visit: &mut dyn FnMut(WalkItem<'_>) -> Result<bool>,
) -> Result<()> {
    let mut path = prefix.to_vec();
    walk_inner(repo, index, root, &mut path, visit)
}

fn walk_inner(
    repo: &Repository,
    index: &Index,
    tree_id: &Id,
    path: &mut Vec<u8>,
    visit: &mut dyn FnMut(WalkItem<'_>) -> Result<bool>,
) -> Result<()> {
    let tree = match repo.load_tree(index, tree_id) {
        Ok(t) => t,
        Err(e) => {
            let shown = if path.is_empty() { b"/".to_vec() } else { path.clone() };
            visit(WalkItem::Damaged { path: &shown, tree: *tree_id, error: &e })?;
            return Ok(());
        }
    };
    for node in &tree.nodes {
        let len = path.len();
        path.push(b'/');
        path.extend_from_slice(&node.name);
        let enter = visit(WalkItem::Entry { path, node })?;
        if enter && node.kind == NodeKind::Dir {
            if let Some(sub) = &node.subtree {
                walk_inner(repo, index, sub, path, visit)?;
            }
        }
        path.truncate(len);
    }
    Ok(())
}

/// Every blob some snapshots use.
#[derive(Default)]
pub struct Reachable {
    /// Trees read (and the ones that could not be, in `unreadable`).
    pub trees: HashSet<Id>,
    /// Data blobs the readable trees reference.
    pub data: HashSet<Id>,
    /// Trees that could not be read, with why.
    pub unreadable: Vec<(Id, Error)>,
}

impl Reachable {
    /// Trees and data blobs together.
    pub fn all(&self) -> HashSet<Id> {
        self.trees.union(&self.data).copied().collect()
    }
}

/// Collects every tree and data blob reachable from `roots`.
pub fn reachable(repo: &Repository, index: &Index, roots: impl IntoIterator<Item = Id>) -> Reachable {
    let mut r = Reachable::default();
    let mut stack: Vec<Id> = roots.into_iter().collect();
    while let Some(t) = stack.pop() {
        if !r.trees.insert(t) {
            continue;
        }
        match repo.load_tree(index, &t) {
            Ok(tree) => {
                for n in &tree.nodes {
                    r.data.extend(n.content.iter().copied());
                    if n.kind == NodeKind::Dir {
                        stack.extend(n.subtree);
                    }
                }
            }
            Err(e) => r.unreadable.push((t, e)),
        }
    }
    r
}

/// Displays raw path bytes (lossy for names that are not UTF-8).
pub fn show(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// Path bytes for a terminal, as `ls -b` shows them: control characters, backslashes and bytes
/// that are not UTF-8 are escaped (`\n`, `\t`, `\\`, `\xNN`), so a name can neither break
/// a line of output nor send escape sequences to the terminal.
pub fn show_escaped(path: &[u8]) -> String {
    let mut out = String::with_capacity(path.len());
    for chunk in path.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::show_escaped;

    #[test]
    fn names_cannot_break_lines_or_reach_the_terminal() {
        assert_eq!(show_escaped(b"/a/plain name.txt"), "/a/plain name.txt");
        assert_eq!(show_escaped(b"/x\ny\tz\\w"), "/x\\ny\\tz\\\\w");
        assert_eq!(show_escaped(b"/\x1b[31mred"), "/\\x1b[31mred");
        assert_eq!(show_escaped(b"/caf\xc3\xa9 \xff"), "/caf\u{e9} \\xff");
    }
}
