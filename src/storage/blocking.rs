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

    pub fn delete(&self, kind: Kind, name: &str) -> Result<()> {
        self.handle.block_on(self.inner.delete(kind, name))
    }
}
