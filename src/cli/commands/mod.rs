//! One file per command.

pub mod backup;
pub mod check;
pub mod init;
pub mod key;
pub mod ls;
pub mod repair;
pub mod restore;
pub mod snapshots;
pub mod unlock;
