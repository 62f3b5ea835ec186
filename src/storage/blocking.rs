//! A synchronous face of a [`Storage`], for the engine's worker threads.
//!
//! The CPU-heavy engine runs on plain threads (never on the async executor); it reaches the
//! async storage through a runtime handle. Calling these methods from inside an async task
//! would block an executor thread, so the daemon calls the engine through `spawn_blocking`.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use tokio::runtime::Handle;

use super::{Kind, ObjectInfo, Storage};
use crate::error::Result;

#[derive(Clone, Debug)]
pub struct BlockingStorage {
    inner: Arc<dyn Storage>,
    handle: Handle,
}

impl BlockingStorage {
    pub fn new(inner: Arc<dyn Storage>, handle: Handle) -> BlockingStorage {
        BlockingStorage { inner, handle }
    }

    pub fn inner(&self) -> &Arc<dyn Storage> {
        &self.inner
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    pub fn location(&self) -> String {
        self.inner.location()
    }

    pub fn put(&self, kind: Kind, name: &str, data: Bytes) -> Result<()> {
        self.handle.block_on(self.inner.put(kind, name, data))
    }

    pub fn get(&self, kind: Kind, name: &str) -> Result<Bytes> {
        self.handle.block_on(self.inner.get(kind, name))
    }

    pub fn get_range(&self, kind: Kind, name: &str, range: Range<u64>) -> Result<Bytes> {
        self.handle.block_on(self.inner.get_range(kind, name, range))
    }

    pub fn list(&self, kind: Kind) -> Result<Vec<ObjectInfo>> {
        self.handle.block_on(self.inner.list(kind))
    }

    /// Reads several objects at once, at most `depth` requests in flight (S3 bounds them
    /// further with its request scheduler): each answer with its name, in the order they come.
    pub fn get_each(&self, kind: Kind, names: Vec<String>, depth: usize) -> Vec<(String, Result<Bytes>)> {
        use futures::StreamExt;
        self.handle.block_on(
            futures::stream::iter(names)
                .map(|name| async move {
                    let got = self.inner.get(kind, &name).await;
                    (name, got)
                })
                .buffer_unordered(depth.max(1))
                .collect(),
        )
    }

    /// Reads an object on the runtime while the caller goes on (for example, the config while
    /// the passphrase is stretched); [`Prefetched::wait`] gives the answer.
    pub fn prefetch(&self, kind: Kind, name: &str) -> Prefetched {
        let (inner, name) = (self.inner.clone(), name.to_string());
        Prefetched {
            task: self.handle.spawn(async move { inner.get(kind, &name).await }),
            handle: self.handle.clone(),
        }
    }

    pub fn delete(&self, kind: Kind, name: &str) -> Result<()> {
        self.handle.block_on(self.inner.delete(kind, name))
    }
}

/// An object being read in the background ([`BlockingStorage::prefetch`]); dropping it stops
/// the read.
pub struct Prefetched {
    task: tokio::task::JoinHandle<Result<Bytes>>,
    handle: Handle,
}

impl Prefetched {
    /// The object, once read.
    ///
    /// # Errors
    /// The storage's error, or `Interrupted` if the runtime stopped the read.
    pub fn wait(mut self) -> Result<Bytes> {
        let task = &mut self.task;
        self.handle.block_on(task).unwrap_or_else(|e| {
            Err(crate::error::Error::Interrupted(format!("reading an object stopped: {e}")))
        })
    }
}

impl Drop for Prefetched {
    fn drop(&mut self) {
        self.task.abort();
    }
}
