//! Keeping a repository within its retention policy: `forget` removes snapshots, `prune`
//! frees the space they used with the two-phase protocol of docs/format.md.

pub mod forget;
pub mod prune;
pub mod retention;
pub mod tag;
