//! Which snapshots and paths a set of damaged blobs touches.

use std::collections::{HashMap, HashSet};

use super::Findings;
use crate::error::Result;
use crate::id::Id;
use crate::repo::tree::NodeKind;
use crate::repo::walk::show;
use crate::repo::Repository;

#[derive(Default, Debug)]
pub struct Affected {
    pub snapshots: HashSet<String>,
    pub paths: Vec<String>,
}

/// Walks every snapshot and maps each bad blob to the snapshots and paths that use it.
pub fn attribute(repo: &Repository, f: &Findings, bad: &HashSet<Id>) -> Result<HashMap<Id, Affected>> {
    let mut out: HashMap<Id, Affected> = HashMap::new();
    if bad.is_empty() {
        return Ok(out);
    }
    for (sid, snap) in &f.snapshots {
        let short = sid.short();
        let mut stack: Vec<(Id, Vec<u8>)> = vec![(snap.tree, Vec::new())];
        while let Some((tid, path)) = stack.pop() {
            if bad.contains(&tid) {
                let a = out.entry(tid).or_default();
                a.snapshots.insert(short.clone());
                a.paths.push(format!(
                    "{}/ (folder contents)",
                    if path.is_empty() { String::new() } else { show(&path) }
                ));
                continue;
            }
            let Ok(tree) = repo.load_tree(&f.index, &tid) else { continue };
            for node in &tree.nodes {
                let mut p = path.clone();
                p.push(b'/');
                p.extend_from_slice(&node.name);
                for id in &node.content {
                    if bad.contains(id) {
                        let a = out.entry(*id).or_default();
                        a.snapshots.insert(short.clone());
                        a.paths.push(show(&p));
                    }
                }
                if node.kind == NodeKind::Dir {
                    if let Some(sub) = node.subtree {
                        stack.push((sub, p));
                    }
                }
            }
        }
    }
    Ok(out)
}
