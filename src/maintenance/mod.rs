//! Keeping a repository within its retention policy: `forget` removes snapshots, `prune`
//! frees the space they used with the two-phase protocol of docs/format.md, `copy` keeps a
//! second repository with the same snapshots.

pub mod copy;
pub mod forget;
pub mod prune;
pub mod retention;
pub mod tag;
