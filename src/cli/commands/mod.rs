//! One file per command.

pub mod backup;
pub mod catalog;
pub mod check;
pub mod copy;
pub mod daemon;
pub mod diff;
pub mod docs;
pub mod drill;
pub mod dump;
pub mod evidence;
pub mod find;
pub mod immutable;
pub mod init;
pub mod jobs;
pub mod key;
pub mod ls;
pub mod maintenance;
pub mod mount;
pub mod repair;
pub mod report;
pub mod restore;
pub mod run;
pub mod snapshots;
pub mod stats;
pub mod tag;
pub mod unlock;
