//! `forget`: removes the snapshots a retention policy does not keep.

use serde::Serialize;

use super::retention::{apply, group, Decision};
use crate::error::Result;
use crate::id::Id;
use crate::jobs::Retention;
use crate::repo::lock::{LockGuard, LockKind};
use crate::repo::Repository;
use crate::storage::Kind;

#[derive(Clone, Debug)]
pub struct ForgetOptions {
    pub policy: Retention,
    pub tz: chrono_tz::Tz,
    /// Only snapshots written by this job (a shared repository holds other jobs' too).
    pub job: Option<String>,
    pub dry_run: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct GroupDecisions {
    pub host: String,
    pub paths: Vec<String>,
    pub decisions: Vec<Decision>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ForgetReport {
    pub groups: Vec<GroupDecisions>,
    pub removed: Vec<Id>,
    pub kept: usize,
    pub dry_run: bool,
}

/// Applies the policy and (unless dry run) deletes the snapshots it does not keep.
///
/// # Errors
/// `InvalidInput` for an empty policy; `Locked` while a prune or check runs; storage errors.
pub fn forget(repo: &Repository, opts: &ForgetOptions) -> Result<ForgetReport> {
    let _lock = LockGuard::acquire(repo.storage(), repo.keys(), LockKind::Prune, "forget")?;
    let (snaps, _) = repo.list_snapshots()?;
    let snaps: Vec<_> = snaps
        .into_iter()
        .filter(|(_, s)| opts.job.as_ref().is_none_or(|j| s.job.as_ref() == Some(j)))
        .collect();
    let mut report = ForgetReport { dry_run: opts.dry_run, ..Default::default() };
    for ((host, paths), members) in group(snaps) {
        let decisions = apply(&opts.policy, &members, opts.tz)?;
        for d in &decisions {
            if d.keep {
                report.kept += 1;
            } else {
                report.removed.push(d.id);
            }
        }
        report.groups.push(GroupDecisions { host, paths, decisions });
    }
    if !opts.dry_run {
        for id in &report.removed {
            repo.storage().delete(Kind::Snapshot, &id.to_hex())?;
        }
    }
    Ok(report)
}
