//! Repairs: rebuild the index from the packs, rewrite snapshots without what is lost.
//!
//! Both take the exclusive lock, say what they change, and change nothing with `dry_run`.

pub mod index;
pub mod snapshots;

pub use index::repair_index;
pub use snapshots::repair_snapshots;
