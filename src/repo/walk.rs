//! Depth-first traversal of a snapshot's trees, shared by `ls`, restore and check.
//!
//! A subtree that cannot be read does not stop the walk: the visitor gets a `Damaged` item
//! naming its path, so callers can report it and go on with everything else.

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
    let mut path = Vec::new();
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

/// Displays raw path bytes (lossy for names that are not UTF-8).
pub fn show(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}
