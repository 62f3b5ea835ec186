//! A storage wrapper that injects failures at chosen points, for interruption tests.
//!
//! A [`Fault`] fires on the n-th put of one kind of object: `Fail` returns an error before
//! anything is written (the process died before the upload), `Torn` writes the first half of
//! the object under its final name and then fails (a crash on a store without atomic puts,
//! the worst case rempart must survive).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;

use super::{Kind, ObjectInfo, Storage};
use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultMode {
    Fail,
    Torn,
}

#[derive(Clone, Copy, Debug)]
pub struct Fault {
    pub kind: Kind,
    /// 1 for the first put of that kind.
    pub nth: usize,
    pub mode: FaultMode,
}

#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    pub faults: Vec<Fault>,
}

#[derive(Debug)]
pub struct FaultyStorage {
    inner: Arc<dyn Storage>,
    plan: FaultPlan,
    puts: Mutex<HashMap<Kind, usize>>,
    fired: Mutex<Vec<Fault>>,
}

impl FaultyStorage {
    pub fn new(inner: Arc<dyn Storage>, plan: FaultPlan) -> FaultyStorage {
        FaultyStorage { inner, plan, puts: Mutex::new(HashMap::new()), fired: Mutex::new(Vec::new()) }
    }

    /// The faults that fired so far.
    pub fn fired(&self) -> Vec<Fault> {
        self.fired.lock().clone()
    }
}

#[async_trait]
impl Storage for FaultyStorage {
    fn location(&self) -> String {
        self.inner.location()
    }

    async fn put(&self, kind: Kind, name: &str, data: Bytes) -> Result<()> {
        let n = {
            let mut puts = self.puts.lock();
            let c = puts.entry(kind).or_insert(0);
            *c += 1;
            *c
        };
        if let Some(f) = self.plan.faults.iter().find(|f| f.kind == kind && f.nth == n).copied() {
            self.fired.lock().push(f);
            if f.mode == FaultMode::Torn {
                self.inner.put(kind, name, data.slice(..data.len() / 2)).await?;
            }
            return Err(Error::Storage {
                op: "writing",
                object: kind.describe(name),
                detail: format!("injected fault ({:?} on put #{n} of this kind)", f.mode),
                retryable: false,
            });
        }
        self.inner.put(kind, name, data).await
    }

    fn staging_dir(&self) -> Option<std::path::PathBuf> {
        self.inner.staging_dir()
    }

    async fn put_file(&self, kind: Kind, name: &str, path: &std::path::Path) -> Result<()> {
        // Read it and go through `put`, so faults fire the same way for staged objects.
        let data = tokio::fs::read(path)
            .await
            .map_err(|e| Error::io(format!("cannot read '{}'", path.display()), e))?;
        self.put(kind, name, Bytes::from(data)).await
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Bytes> {
        self.inner.get(kind, name).await
    }

    async fn get_range(&self, kind: Kind, name: &str, range: Range<u64>) -> Result<Bytes> {
        self.inner.get_range(kind, name, range).await
    }

    async fn list(&self, kind: Kind) -> Result<Vec<ObjectInfo>> {
        self.inner.list(kind).await
    }

    async fn delete(&self, kind: Kind, name: &str) -> Result<()> {
        self.inner.delete(kind, name).await
    }
}
