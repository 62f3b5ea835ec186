//! Looking into snapshots without restoring them: which paths match a pattern ([`find`]), what
//! changed between two snapshots ([`diff`]), how much they hold and what they cost in the
//! repository ([`stats`]), one file or folder streamed out ([`dump`]), and every snapshot as
//! a read-only file system ([`mount`]).
//!
//! All of them read trees and blobs through the index and verify what they read: a tree that
//! cannot be read is named (and the command exits 4), never skipped silently, and a damaged
//! blob stops a dump rather than being replaced by zeros.

pub mod diff;
pub mod dump;
pub mod find;
pub mod mount;
pub mod stats;
