//! Trees: one directory's entries, encoded deterministically so unchanged directories dedup.
//!
//! A tree blob is a format byte followed by the postcard encoding of its nodes, sorted by
//! name bytes. Names and symlink targets are raw bytes, so names that are not UTF-8 round-trip
//! exactly. Access times are not kept: they change on every read and would defeat the dedup
//! of unchanged directories (restore sets atime to mtime).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::Id;

const TREE_FORMAT: u8 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    File,
    Dir,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
}

impl NodeKind {
    /// The `ls -l` type letter.
    pub fn letter(self) -> char {
        match self {
            NodeKind::File => '-',
            NodeKind::Dir => 'd',
            NodeKind::Symlink => 'l',
            NodeKind::Fifo => 'p',
            NodeKind::CharDevice => 'c',
            NodeKind::BlockDevice => 'b',
            NodeKind::Socket => 's',
        }
    }
}

/// Seconds and nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

impl Timestamp {
    pub fn to_datetime(self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(self.secs, self.nanos).unwrap_or_default()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xattr {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

/// One directory entry with its metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub name: Vec<u8>,
    pub kind: NodeKind,
    /// Permission bits including setuid, setgid and sticky (`mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// User and group names at backup time ("" when the id had no name).
    pub user: String,
    pub group: String,
    pub size: u64,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    pub device: u64,
    pub inode: u64,
    pub links: u64,
    /// Device number of character and block devices.
    pub rdev: u64,
    /// Symlink target bytes.
    pub link_target: Vec<u8>,
    /// Data blobs of a file's content, in order.
    pub content: Vec<Id>,
    /// Keyed BLAKE3 of the whole content as read at backup time.
    pub content_hash: Option<Id>,
    /// The tree of a directory.
    pub subtree: Option<Id>,
    /// The file had holes (fewer allocated blocks than its size); restore keeps zeros as holes.
    pub sparse: bool,
    pub xattrs: Vec<Xattr>,
}

impl Node {
    /// An entry with empty metadata, for tests and synthetic parent directories.
    pub fn new(name: &[u8], kind: NodeKind) -> Node {
        Node {
            name: name.to_vec(),
            kind,
            mode: if kind == NodeKind::Dir { 0o755 } else { 0o644 },
            uid: 0,
            gid: 0,
            user: String::new(),
            group: String::new(),
            size: 0,
            mtime: Timestamp::default(),
            ctime: Timestamp::default(),
            device: 0,
            inode: 0,
            links: 1,
            rdev: 0,
            link_target: Vec::new(),
            content: Vec::new(),
            content_hash: None,
            subtree: None,
            sparse: false,
            xattrs: Vec::new(),
        }
    }

    /// The name for display (lossy for non-UTF-8 bytes).
    pub fn display_name(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// A directory's entries sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    /// Sorts the nodes by name (the canonical order) and encodes them.
    pub fn encode(&mut self) -> Vec<u8> {
        self.nodes.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out = vec![TREE_FORMAT];
        out.extend_from_slice(&postcard::to_stdvec(&self.nodes).expect("serializable"));
        out
    }

    /// # Errors
    /// `Corrupt` naming `what` when the bytes are not a tree.
    pub fn decode(bytes: &[u8], what: &str) -> Result<Tree> {
        match bytes.first() {
            Some(&TREE_FORMAT) => {}
            other => return Err(Error::corrupt(what, format!("unknown tree format {other:?}"))),
        }
        let nodes: Vec<Node> = postcard::from_bytes(&bytes[1..])
            .map_err(|e| Error::corrupt(what, format!("decoding tree: {e}")))?;
        Ok(Tree { nodes })
    }

    /// The node with this name (nodes are sorted by name).
    pub fn find(&self, name: &[u8]) -> Option<&Node> {
        self.nodes.binary_search_by(|n| n.name.as_slice().cmp(name)).ok().map(|i| &self.nodes[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_node() -> impl Strategy<Value = Node> {
        (
            proptest::collection::vec(any::<u8>(), 1..20),
            0usize..7,
            any::<u32>(),
            any::<u64>(),
            any::<(i64, u32)>(),
            proptest::collection::vec(any::<[u8; 32]>(), 0..4),
            proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 1..8), proptest::collection::vec(any::<u8>(), 0..8)),
                0..3,
            ),
        )
            .prop_map(|(name, k, mode, size, (s, n), content, xattrs)| {
                let kinds = [
                    NodeKind::File,
                    NodeKind::Dir,
                    NodeKind::Symlink,
                    NodeKind::Fifo,
                    NodeKind::CharDevice,
                    NodeKind::BlockDevice,
                    NodeKind::Socket,
                ];
                let mut node = Node::new(&name, kinds[k]);
                node.mode = mode & 0o7777;
                node.size = size;
                node.mtime = Timestamp { secs: s, nanos: n % 1_000_000_000 };
                node.content = content.into_iter().map(Id).collect();
                node.link_target = name.clone();
                node.xattrs = xattrs.into_iter().map(|(name, value)| Xattr { name, value }).collect();
                node.user = "root".into();
                node
            })
    }

    proptest! {
        #[test]
        fn tree_round_trip_is_deterministic(mut nodes in proptest::collection::vec(arb_node(), 0..20)) {
            nodes.sort_by(|a, b| a.name.cmp(&b.name));
            nodes.dedup_by(|a, b| a.name == b.name);
            let mut t = Tree { nodes: nodes.clone() };
            let bytes = t.encode();
            let mut reversed = Tree { nodes: nodes.into_iter().rev().collect() };
            prop_assert_eq!(&reversed.encode(), &bytes, "order of insertion does not matter");
            let back = Tree::decode(&bytes, "tree").unwrap();
            prop_assert_eq!(&back, &t);
            for n in &back.nodes {
                prop_assert_eq!(back.find(&n.name), Some(n));
            }
        }
    }

    #[test]
    fn garbage_is_an_integrity_error() {
        assert!(Tree::decode(&[1, 200, 200, 200], "tree x").unwrap_err().is_integrity());
        assert!(Tree::decode(&[9], "tree x").unwrap_err().is_integrity());
    }
}
