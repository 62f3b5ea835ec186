//! Repairs: rebuild the index from the packs, rewrite snapshots without what is lost, store
//! lost data again from a copy.
//!
//! Both take the exclusive lock, say what they change, and change nothing with `dry_run`.

pub mod heal;
pub mod index;
pub mod snapshots;

pub use index::repair_index;
pub use snapshots::repair_snapshots;
