//! `rempart mount`: a read-only FUSE view of the repository's snapshots ([`view`] lays it out,
//! [`fs`] answers the kernel).
//!
//! The mount holds a read lock for as long as it stands, so a prune's sweep never deletes a
//! pack it may still read; damaged data reads as EIO, never as zeros. It lasts until SIGINT or
//! SIGTERM, or until it is unmounted (`umount`, `fusermount3 -u`).

mod fs;
pub mod view;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::repo::lock::LockKind;
use crate::repo::Repository;

/// Mounts the snapshots of `repo` at `mountpoint` until `stop` is set or it is unmounted;
/// `ready` is called once the mount answers.
///
/// # Errors
/// `InvalidInput` for a mount point that is not an empty folder; `Failed` when the kernel
/// refuses the mount (no /dev/fuse, no fusermount3); the repository's errors.
pub fn mount(
    repo: &Repository,
    mountpoint: &Path,
    stop: &Arc<AtomicBool>,
    ready: impl FnOnce(usize),
) -> Result<()> {
    let empty = std::fs::read_dir(mountpoint)
        .map_err(|e| {
            Error::invalid(format!(
                "mount point '{}' cannot be used: {e}; expected an empty folder",
                mountpoint.display()
            ))
        })?
        .next()
        .is_none();
    if !empty {
        return Err(Error::invalid(format!(
            "mount point '{}' is not empty; expected an empty folder",
            mountpoint.display()
        )));
    }
    let _lock = repo.lock(LockKind::Read, "mount")?;
    // Snapshots before the index: a backup committed in between would otherwise look damaged.
    let (snapshots, damaged) = repo.list_snapshots()?;
    let index = Arc::new(repo.load_index()?);
    for e in &damaged {
        tracing::warn!("a snapshot cannot be read and is not shown: {e}");
    }
    let count = snapshots.len();
    let view = view::View::new(repo.clone(), index, snapshots);
    let options = [
        fuser::MountOption::RO,
        fuser::MountOption::NoDev,
        fuser::MountOption::NoSuid,
        fuser::MountOption::FSName(format!("rempart:{}", repo.storage().location())),
        fuser::MountOption::Subtype("rempart".into()),
    ];
    let session = fuser::spawn_mount2(fs::Fuse::new(view), mountpoint, &options).map_err(|e| {
        Error::failed(format!(
            "cannot mount at '{}': {e}; a mount needs /dev/fuse and, unless run as root, fusermount3 (Debian's fuse3)",
            mountpoint.display()
        ))
    })?;
    ready(count);
    while !stop.load(Ordering::Relaxed) && !session.guard.is_finished() {
        std::thread::sleep(Duration::from_millis(200));
    }
    if session.guard.is_finished() {
        // Unmounted from outside: there is nothing left to unmount (dropping the session
        // would try again, and log a failure).
        std::mem::forget(session);
    } else {
        // Dropping the session unmounts and ends its thread.
        drop(session);
    }
    Ok(())
}
