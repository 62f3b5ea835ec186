//! One file per command.

pub mod backup;
pub mod init;
pub mod key;
pub mod ls;
pub mod restore;
pub mod snapshots;
pub mod unlock;
