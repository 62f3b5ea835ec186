//! The tree builder: turns finished directories into tree blobs, children before parents.
//!
//! The walker sends each directory once all its entries are listed (post-order), with file
//! entries still waiting on their workers. This thread waits for those replies in order,
//! fills in content ids, encodes the tree, and stores it as a tree blob in its own packs (tree
//! packs stay small and separate, which keeps them cheap to cache). A file whose read failed
//! is left out of its directory and listed in the summary's errors.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::Receiver;

use super::commit::References;
use super::shared::{ChangeKind, Counters, Shared};
use super::workers::{FileReply, WorkerState};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::pack::BlobType;
use crate::repo::snapshot::EntryError;
use crate::repo::tree::{Node, Tree};

pub enum PendingEntry {
    Ready(Node),
    File { node: Node, path: PathBuf, reply: Receiver<FileReply>, changed: bool },
    Dir { node: Node, slot: usize },
}

pub struct PendingDir {
    pub slot: usize,
    pub entries: Vec<PendingEntry>,
}

pub struct TreeOutcome {
    pub slots: HashMap<usize, Id>,
    pub errors: Vec<EntryError>,
    /// Every blob the trees reference that the loaded index does not hold.
    pub references: References,
}

pub fn run_tree_builder(
    mut state: WorkerState,
    shared: Arc<Shared>,
    dirs: Receiver<PendingDir>,
) -> Result<TreeOutcome> {
    let mut slots: HashMap<usize, Id> = HashMap::new();
    let mut errors = Vec::new();
    let mut references = References::new(shared.index.clone(), shared.stored.clone());
    let keys = shared.repo.keys().clone();
    for dir in dirs {
        let mut tree = Tree { nodes: Vec::with_capacity(dir.entries.len()) };
        for entry in dir.entries {
            match entry {
                PendingEntry::Ready(node) => tree.nodes.push(node),
                PendingEntry::Dir { mut node, slot } => {
                    let id = slots
                        .remove(&slot)
                        .ok_or_else(|| Error::failed("internal: directory finished before its children"))?;
                    node.subtree = Some(id);
                    tree.nodes.push(node);
                }
                PendingEntry::File { mut node, path, reply, changed } => match reply.recv() {
                    Ok(Ok(c)) => {
                        node.size = c.size;
                        node.content = c.content;
                        node.content_hash = Some(c.content_hash);
                        let counter =
                            if changed { &shared.counters.files_changed } else { &shared.counters.files_new };
                        Counters::add(counter, 1);
                        Counters::add(&shared.counters.bytes_total, c.size);
                        let kind = if changed { ChangeKind::Modified } else { ChangeKind::New };
                        shared.counters.report(kind, &path, c.size);
                        Counters::add(&shared.counters.files_done, 1);
                        tree.nodes.push(node);
                    }
                    Ok(Err(msg)) => {
                        if !shared.aborted() {
                            tracing::warn!("skipped '{}': {msg}", path.display());
                            errors.push(EntryError { path: path.display().to_string(), error: msg });
                        }
                        Counters::add(&shared.counters.files_done, 1);
                    }
                    Err(_) => return Err(Error::failed("internal: a worker stopped without answering")),
                },
            }
        }
        let bytes = tree.encode();
        let id = keys.blob_id(&bytes);
        references.note_tree(&id, &tree);
        if let Err(e) = state.store_blob(BlobType::Tree, id, &bytes) {
            shared.fail(e);
            return Err(Error::Interrupted("backup stopped by a repository error".into()));
        }
        slots.insert(dir.slot, id);
    }
    if let Err(e) = state.flush() {
        shared.fail(e);
        return Err(Error::Interrupted("backup stopped by a repository error".into()));
    }
    Ok(TreeOutcome { slots, errors, references })
}
