//! What a restore does with an entry that already exists in the target (`--overwrite`).
//!
//! The decision is taken before any data is fetched, so a file that is kept costs no download.
//! `if-changed` compares content with the hash recorded at backup (a size match alone proves
//! nothing), so what a restore leaves in place is as verified as what it writes. Whatever the
//! policy, a file that cannot be restored intact never replaces the one in place (see
//! `writer`: it is kept as `NAME.rempart-damaged`).

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::crypto::Keys;
use crate::id::Id;
use crate::repo::tree::{Node, NodeKind};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overwrite {
    /// Replace what is there (the default).
    #[default]
    Always,
    /// Replace only what differs from the snapshot (content, or a symlink's target).
    IfChanged,
    /// Replace only what is older than the snapshot's copy.
    IfNewer,
    /// Never replace anything; restore only what is missing.
    Never,
}

/// Whether to write `node` at `dest`, given what is there now.
pub fn should_write(policy: Overwrite, dest: &Path, node: &Node, keys: &Keys) -> bool {
    if policy == Overwrite::Always || node.kind == NodeKind::Dir {
        return true;
    }
    let Ok(there) = std::fs::symlink_metadata(dest) else {
        return true;
    };
    match policy {
        Overwrite::Always => true,
        Overwrite::Never => false,
        Overwrite::IfNewer => {
            let theirs = (there.mtime(), there.mtime_nsec());
            (node.mtime.secs, i64::from(node.mtime.nanos)) > theirs
        }
        Overwrite::IfChanged => !same_content(dest, &there, node, keys),
    }
}

/// True when what is at `dest` holds what `node` describes.
fn same_content(dest: &Path, there: &std::fs::Metadata, node: &Node, keys: &Keys) -> bool {
    match node.kind {
        NodeKind::Symlink => {
            there.file_type().is_symlink()
                && std::fs::read_link(dest)
                    .is_ok_and(|t| t.as_os_str().as_bytes() == node.link_target.as_slice())
        }
        NodeKind::File => {
            let Some(expected) = node.content_hash else {
                return false;
            };
            if !there.file_type().is_file() || there.len() != node.size {
                return false;
            }
            let mut h = keys.content_hasher();
            match std::fs::File::open(dest).and_then(|f| h.update_reader(f).map(|_| ())) {
                Ok(()) => Id(*h.finalize().as_bytes()) == expected,
                Err(_) => false,
            }
        }
        // A FIFO or a device: the same kind is the same thing.
        _ => {
            let ft = there.file_type();
            use std::os::unix::fs::FileTypeExt;
            match node.kind {
                NodeKind::Fifo => ft.is_fifo(),
                NodeKind::CharDevice => ft.is_char_device() && there.rdev() == node.rdev,
                NodeKind::BlockDevice => ft.is_block_device() && there.rdev() == node.rdev,
                _ => false,
            }
        }
    }
}
