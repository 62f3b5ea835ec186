//! A storage wrapper that injects failures at chosen points, for interruption tests.
//!
//! Two kinds of plan:
//!
//! - A [`Fault`] fires on the n-th put of one kind of object: `Fail` returns an error before
//!   anything is written (the process died before the upload), `Torn` writes the first half of
//!   the object under its final name and then fails (a crash on a store without atomic puts,
//!   the worst case rempart must survive).
//! - An [`OpFault`] fires on the n-th storage operation of any kind (put, get, ranged get,
//!   list, delete), counted from 1 in the order they are issued: `Io` fails that one operation
//!   (EIO), `NoSpace` fails it and every later write (a full disk stays full), `Kill` fails it
//!   and every later operation (the process is gone: nothing it does afterwards, not even
//!   removing its lock, reaches the storage). Running an operation once per index is how the
//!   test suite proves that a backup, a forget or a prune can die at *every* step.
//! - A [`Trigger`] acts just before the n-th put or delete of one kind, or just after its n-th
//!   listing: the process dies there, or something else runs first (a prune from another
//!   process between a backup's index and its snapshot; a backup of another host between a
//!   prune's listing of the index and of the snapshots), which makes races deterministic.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

/// How an operation-index fault fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpFaultMode {
    /// That one operation fails with an I/O error.
    Io,
    /// That operation, if a write, and every later write fail with "No space left on device".
    NoSpace,
    /// That operation and every later one fail: the process died.
    Kill,
}

/// Fails the `at`-th storage operation (1-based) as `mode` says.
#[derive(Clone, Copy, Debug)]
pub struct OpFault {
    pub at: usize,
    pub mode: OpFaultMode,
}

/// Which operation a [`Trigger`] waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TriggerOn {
    Put,
    Delete,
    /// Just *after* a listing returned (what it listed is what the caller works from).
    AfterList,
}

/// What a [`Trigger`] does when its operation comes.
#[derive(Clone)]
pub enum TriggerAction {
    /// The process dies just before that operation: it and every later one fail.
    Kill,
    /// Something else happens first (another process runs a prune, say); then the operation
    /// goes ahead. The function runs on a thread of its own, outside any async runtime.
    Run(Arc<dyn Fn() + Send + Sync>),
}

impl std::fmt::Debug for TriggerAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TriggerAction::Kill => "Kill",
            TriggerAction::Run(_) => "Run(..)",
        })
    }
}

/// Acts just before the `nth` put or delete (1-based) of an object of `kind`, or just after its
/// `nth` listing.
#[derive(Clone, Debug)]
pub struct Trigger {
    pub on: TriggerOn,
    pub kind: Kind,
    pub nth: usize,
    pub action: TriggerAction,
}

#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    pub faults: Vec<Fault>,
    pub op: Option<OpFault>,
    pub trigger: Option<Trigger>,
}

impl FaultPlan {
    /// A plan with only put faults.
    pub fn puts(faults: Vec<Fault>) -> FaultPlan {
        FaultPlan { faults, ..Default::default() }
    }

    /// A plan that fails the `at`-th operation.
    pub fn op(at: usize, mode: OpFaultMode) -> FaultPlan {
        FaultPlan { op: Some(OpFault { at, mode }), ..Default::default() }
    }

    /// A plan that acts just before one put or delete.
    pub fn trigger(on: TriggerOn, kind: Kind, nth: usize, action: TriggerAction) -> FaultPlan {
        FaultPlan { trigger: Some(Trigger { on, kind, nth, action }), ..Default::default() }
    }
}

#[derive(Debug)]
pub struct FaultyStorage {
    inner: Arc<dyn Storage>,
    plan: FaultPlan,
    puts: Mutex<HashMap<Kind, usize>>,
    fired: Mutex<Vec<Fault>>,
    ops: AtomicUsize,
    /// Set once an operation fault fired (every later write, or operation, fails).
    tripped: AtomicBool,
    /// Set once a [`TriggerAction::Kill`] fired: every operation fails.
    killed: AtomicBool,
    /// Puts and deletes per kind, for the trigger.
    trigger_counts: Mutex<HashMap<(TriggerOn, Kind), usize>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Write,
    Read,
}

impl FaultyStorage {
    pub fn new(inner: Arc<dyn Storage>, plan: FaultPlan) -> FaultyStorage {
        FaultyStorage {
            inner,
            plan,
            puts: Mutex::new(HashMap::new()),
            fired: Mutex::new(Vec::new()),
            ops: AtomicUsize::new(0),
            tripped: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            trigger_counts: Mutex::new(HashMap::new()),
        }
    }

    /// The put faults that fired so far.
    pub fn fired(&self) -> Vec<Fault> {
        self.fired.lock().clone()
    }

    /// How many operations were issued so far (a clean run's count bounds the fault indexes).
    pub fn operations(&self) -> usize {
        self.ops.load(Ordering::SeqCst)
    }

    /// True when the operation fault fired.
    pub fn tripped(&self) -> bool {
        self.tripped.load(Ordering::SeqCst)
    }

    /// True when a kill trigger fired.
    pub fn killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    /// Fires the trigger when this is its operation.
    fn trigger(&self, on: TriggerOn, kind: Kind) {
        let Some(t) = &self.plan.trigger else { return };
        if t.on != on || t.kind != kind {
            return;
        }
        let n = {
            let mut counts = self.trigger_counts.lock();
            let c = counts.entry((on, kind)).or_insert(0);
            *c += 1;
            *c
        };
        if n != t.nth {
            return;
        }
        match &t.action {
            TriggerAction::Kill => self.killed.store(true, Ordering::SeqCst),
            TriggerAction::Run(f) => {
                let f = f.clone();
                std::thread::spawn(move || f()).join().expect("trigger action panicked");
            }
        }
    }

    /// Counts one operation and fails it when the plan says so.
    fn before(&self, op: Op, kind: Kind, name: &str) -> Result<()> {
        let n = self.ops.fetch_add(1, Ordering::SeqCst) + 1;
        if self.killed() {
            return Err(Error::io(
                format!("killed before storage operation #{n} ({} {name})", kind.label()),
                std::io::Error::from_raw_os_error(nix::errno::Errno::EIO as i32),
            ));
        }
        let Some(f) = self.plan.op else { return Ok(()) };
        let fire = n == f.at;
        if fire {
            self.tripped.store(true, Ordering::SeqCst);
        }
        let tripped = self.tripped.load(Ordering::SeqCst);
        let (fails, errno) = match f.mode {
            OpFaultMode::Io => (fire, nix::errno::Errno::EIO),
            OpFaultMode::NoSpace => (tripped && op == Op::Write, nix::errno::Errno::ENOSPC),
            OpFaultMode::Kill => (tripped, nix::errno::Errno::EIO),
        };
        if !fails {
            return Ok(());
        }
        let what = if f.mode == OpFaultMode::Kill { "killed" } else { "injected fault" };
        Err(Error::io(
            format!("{what} at storage operation #{n} ({} {})", kind.label(), name),
            std::io::Error::from_raw_os_error(errno as i32),
        ))
    }
}

#[async_trait]
impl Storage for FaultyStorage {
    fn scheduler_stats(&self) -> Option<super::scheduler::SchedulerStats> {
        self.inner.scheduler_stats()
    }

    fn bucket_control(&self) -> Option<Arc<super::BucketControl>> {
        self.inner.bucket_control()
    }

    fn is_view_of_the_past(&self) -> bool {
        self.inner.is_view_of_the_past()
    }

    fn location(&self) -> String {
        self.inner.location()
    }

    async fn put(&self, kind: Kind, name: &str, data: Bytes) -> Result<()> {
        self.trigger(TriggerOn::Put, kind);
        self.before(Op::Write, kind, name)?;
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
        self.before(Op::Read, kind, name)?;
        self.inner.get(kind, name).await
    }

    async fn get_range(&self, kind: Kind, name: &str, range: Range<u64>) -> Result<Bytes> {
        self.before(Op::Read, kind, name)?;
        self.inner.get_range(kind, name, range).await
    }

    async fn list(&self, kind: Kind) -> Result<Vec<ObjectInfo>> {
        self.before(Op::Read, kind, "")?;
        let listed = self.inner.list(kind).await?;
        self.trigger(TriggerOn::AfterList, kind);
        Ok(listed)
    }

    async fn delete(&self, kind: Kind, name: &str) -> Result<()> {
        self.trigger(TriggerOn::Delete, kind);
        self.before(Op::Write, kind, name)?;
        self.inner.delete(kind, name).await
    }
}
