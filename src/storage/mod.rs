//! The storage contract: one narrow trait over object stores.
//!
//! Objects are addressed by [`Kind`] and name, never by raw paths. Guarantees every backend
//! gives (and `tests/storage_conformance.rs` checks on each):
//!
//! - **Atomic put**: a reader sees either no object or the whole object, never a part.
//! - **Durable on return**: when `put` returns, the object survives a crash of this host
//!   (local: the file and its folder are fsynced; S3: the server acknowledged the upload).
//!   Callers write an object only after everything it references has been put.
//! - **No overwrite is relied upon**: names are content addresses (BLAKE3 of the bytes) or
//!   random unique ids, so putting the same name twice writes the same bytes, and nothing
//!   depends on conditional requests (`If-None-Match`), which some S3 servers ignore.
//! - **Missing is distinct**: reading a missing object is `Error::NotFound`, never an I/O error.
//! - **Listing** returns every object of a kind whose put has returned (S3 and Garage list
//!   with read-after-write consistency); objects being written are not listed.
//!
//! Wrappers (fault injection in tests, bandwidth limits) implement the same trait.

mod blocking;
mod faulty;
mod layout;
mod local;
pub mod object_lock;
mod s3;
pub mod s3_api;
mod s3_as_of;
pub mod scheduler;
mod throttled;

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::Result;

pub use blocking::BlockingStorage;
pub use faulty::{
    Fault, FaultMode, FaultPlan, FaultyStorage, OpFault, OpFaultMode, Trigger, TriggerAction, TriggerOn,
};
pub use layout::Kind;
pub use object_lock::{BucketControl, LockPolicy};
pub use s3::S3Settings;
use s3_as_of::open_s3_as_of;
pub use throttled::throttle;

/// One stored object as a listing shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub name: String,
    pub size: u64,
}

/// The storage contract (see the module documentation for the guarantees).
#[async_trait]
pub trait Storage: Send + Sync + fmt::Debug {
    /// Where the repository lives, for messages: a path or `s3://bucket/prefix`.
    fn location(&self) -> String;

    /// Writes an object atomically and durably.
    async fn put(&self, kind: Kind, name: &str, data: Bytes) -> Result<()>;

    /// A folder where large objects can be staged as files before [`Storage::put_file`]: on
    /// the same file system as the store for local backends (so a put is a rename), `None`
    /// for remote ones (the caller stages in its own temporary folder).
    fn staging_dir(&self) -> Option<std::path::PathBuf> {
        None
    }

    /// Stores the content of the local file `path` as an object, with the same guarantees
    /// as [`Storage::put`]. Local backends move the file into place; remote ones upload it in
    /// parts, so memory does not grow with the object. The file may be gone afterwards.
    async fn put_file(&self, kind: Kind, name: &str, path: &std::path::Path) -> Result<()> {
        let data = tokio::fs::read(path).await.map_err(|e| {
            crate::error::Error::io(format!("cannot read staged file '{}'", path.display()), e)
        })?;
        self.put(kind, name, Bytes::from(data)).await
    }

    /// Reads a whole object; `Error::NotFound` when it does not exist.
    async fn get(&self, kind: Kind, name: &str) -> Result<Bytes>;

    /// Reads `range` of an object; a range past the end is an `Error::Corrupt` naming it.
    async fn get_range(&self, kind: Kind, name: &str, range: Range<u64>) -> Result<Bytes>;

    /// Lists every object of a kind.
    async fn list(&self, kind: Kind) -> Result<Vec<ObjectInfo>>;

    /// Deletes an object; deleting a missing object succeeds.
    async fn delete(&self, kind: Kind, name: &str) -> Result<()>;

    /// The Object Lock and versions side of an S3 repository ([`object_lock`]); `None` for
    /// every other backend. Wrappers pass it on.
    fn bucket_control(&self) -> Option<Arc<BucketControl>> {
        None
    }

    /// The request scheduler's figures ([`scheduler`]): how many requests may be in flight now
    /// (following the observed latency) and at most, what it has seen. `None` for local
    /// folders, where callers size their own thread pools. Wrappers pass it on.
    fn scheduler_stats(&self) -> Option<scheduler::SchedulerStats> {
        None
    }

    /// True for a repository read as of a past moment (`--as-of`): never written, so reading
    /// commands take no lock and say nothing about it.
    fn is_view_of_the_past(&self) -> bool {
        false
    }
}

/// Opens the storage a repository URL names: a local path, or `s3://bucket/prefix` with
/// settings from the environment.
///
/// # Errors
/// `InvalidInput` naming the URL when it cannot be used.
pub fn open_url(url: &str) -> Result<Arc<dyn Storage>> {
    if let Some(rest) = url.strip_prefix("s3://") {
        let settings = S3Settings::from_env(rest)?;
        Ok(Arc::new(s3::S3Storage::new(settings)?))
    } else if url.contains("://") {
        Err(crate::error::Error::invalid(format!(
            "repository '{url}': unsupported scheme; expected a local path or s3://BUCKET/PREFIX"
        )))
    } else {
        Ok(Arc::new(local::LocalStorage::new(std::path::Path::new(url))?))
    }
}

/// Opens the S3 repository `url` as it was at `at` (`--as-of`), with its settings from the
/// environment and `s3_env_file`: the one place a view of the past is opened.
///
/// # Errors
/// `InvalidInput` naming `url` when it is a local folder (it has no object versions).
pub fn open_url_as_of(
    url: &str,
    s3_env_file: Option<&std::path::Path>,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Arc<dyn Storage>> {
    let rest = url.strip_prefix("s3://").ok_or_else(|| {
        crate::error::Error::invalid(format!(
            "--as-of reads object versions of an S3 bucket; '{url}' is a local folder (restore it from a file-system snapshot instead)"
        ))
    })?;
    open_s3_as_of(S3Settings::from_env_and_file(rest, s3_env_file)?, at)
}

/// Opens an S3 bucket and prefix with explicit settings.
///
/// # Errors
/// `InvalidInput` when object_store rejects the settings.
pub fn open_s3(settings: S3Settings) -> Result<Arc<dyn Storage>> {
    Ok(Arc::new(s3::S3Storage::new(settings)?))
}

/// Opens a local folder as storage (tests and tools that wrap it).
///
/// # Errors
/// `Io` naming the folder.
pub fn open_local(path: &std::path::Path) -> Result<Arc<dyn Storage>> {
    Ok(Arc::new(local::LocalStorage::new(path)?))
}

/// True when `url` names a local repository folder.
pub fn is_local(url: &str) -> bool {
    !url.contains("://")
}
