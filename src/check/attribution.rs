//! Which snapshots and paths a set of damaged blobs touches.

use std::collections::{HashMap, HashSet};

use super::Findings;
use crate::error::Result;
use crate::id::Id;
use crate::repo::walk::{show, walk, WalkItem};
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
        if bad.contains(&snap.tree) {
            let a = out.entry(snap.tree).or_default();
            a.snapshots.insert(short.clone());
            a.paths.push("/ (folder contents)".into());
            continue;
        }
        walk(repo, &f.index, &snap.tree, &mut |item| {
            match item {
                WalkItem::Damaged { path, tree, .. } if bad.contains(&tree) => {
                    let a = out.entry(tree).or_default();
                    a.snapshots.insert(short.clone());
                    a.paths.push(format!(
                        "{}/ (folder contents)",
                        if path == b"/" { String::new() } else { show(path) }
                    ));
                }
                WalkItem::Damaged { .. } => {}
                WalkItem::Entry { path, node } => {
                    for id in node.content.iter().filter(|id| bad.contains(id)) {
                        let a = out.entry(*id).or_default();
                        a.snapshots.insert(short.clone());
                        a.paths.push(show(path));
                    }
                }
            }
            Ok(true)
        })?;
    }
    Ok(out)
}
