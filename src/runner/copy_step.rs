//! The copy step: the job's snapshots and evidence into each of its `[[copy]]` repositories.
//!
//! Every copy is tried, even after one fails, so one unreachable site does not leave the
//! others behind; the step fails when any copy failed, naming it. A copy's repository is
//! created (with its passphrase file) the first time, as a backup creates the job's own.

use super::{RunContext, StepOutcome};
use crate::catalog::run::{CopyDetails, CopyTargetDetails, RunOutcome, Status, StepDetails};
use crate::error::{Error, Result};
use crate::jobs::copies::CopyTarget;
use crate::jobs::Job;
use crate::repo::snapshot::Snapshot;
use crate::repo::Repository;

pub fn run_copy(ctx: &RunContext, job: &Job) -> Result<StepOutcome> {
    if job.copies.is_empty() {
        return Err(Error::invalid(format!(
            "job '{}' has no [[copy]] section: nothing to copy to (docs/jobs.md, \"Copies\")",
            job.name
        )));
    }
    let src = crate::jobs::access::open_existing_job_repository(job, &ctx.state_dir, &ctx.handle)?;
    let (all, damaged) = src.list_snapshots()?;
    let mine: Vec<(crate::id::Id, Snapshot)> =
        all.into_iter().filter(|(_, s)| s.job.as_deref() == Some(job.name.as_str())).collect();
    let mut details =
        CopyDetails { targets: Vec::new(), damaged_sources: damaged.iter().map(|e| e.to_string()).collect() };
    let mut failures: Vec<(String, Error)> = Vec::new();
    for target in &job.copies {
        let mut d = CopyTargetDetails {
            name: target.name.clone(),
            repository: target.repository.clone(),
            ..Default::default()
        };
        match copy_to(ctx, job, &src, &mine, target, &mut d) {
            Ok(()) => tracing::info!(
                "copy '{}': {} snapshots copied, {} already there ({} bytes stored)",
                target.name,
                d.copied,
                d.already,
                d.bytes_stored
            ),
            Err(e) => {
                tracing::warn!("copy '{}' to '{}' failed: {e}", target.name, target.repository);
                d.error = Some(e.to_string());
                failures.push((target.name.clone(), e));
            }
        }
        details.targets.push(d);
    }
    // A transient failure (a site unreachable for a while) is retried like any step; copies
    // that succeeded meanwhile find everything already there.
    if let Some(pos) = failures.iter().position(|(_, e)| e.is_retryable()) {
        let (name, e) = failures.swap_remove(pos);
        return Err(wrap(&name, e));
    }
    let mut errors: Vec<String> = failures.iter().map(|(n, e)| format!("copy '{n}': {e}")).collect();
    if !details.damaged_sources.is_empty() {
        errors.push(format!(
            "{} snapshots of the job cannot be read and were not copied: {}",
            details.damaged_sources.len(),
            details.damaged_sources.join("; ")
        ));
    }
    let newest = mine.iter().max_by_key(|(_, s)| s.time);
    let outcome = RunOutcome {
        status: if errors.is_empty() { Status::Success } else { Status::Failed },
        error: (!errors.is_empty()).then(|| errors.join("; ")),
        snapshot: newest.map(|(id, _)| id.to_hex()),
        snapshot_time: newest.map(|(_, s)| s.time),
        bytes_added: Some(details.targets.iter().map(|t| t.bytes_stored).sum()),
        details: StepDetails::Copy(details),
        ..Default::default()
    };
    Ok(StepOutcome { repository: Some(src), outcome })
}

/// The error of copy `name`, naming it (kept retryable).
fn wrap(name: &str, e: Error) -> Error {
    match e {
        Error::Storage { op, object, detail, retryable } => {
            Error::Storage { op, object, detail: format!("{detail} (copy '{name}')"), retryable }
        }
        Error::Locked(m) => Error::Locked(format!("copy '{name}': {m}")),
        e => e,
    }
}

fn copy_to(
    ctx: &RunContext,
    job: &Job,
    src: &Repository,
    snapshots: &[(crate::id::Id, Snapshot)],
    target: &CopyTarget,
    d: &mut CopyTargetDetails,
) -> Result<()> {
    let dst = crate::jobs::access::open_or_create(&target.access(job), &ctx.state_dir, &ctx.handle)?;
    d.repository_id = Some(dst.id().to_hex());
    let report = crate::maintenance::copy::copy(src, &dst, snapshots, &ctx.state_dir, false)?;
    d.copied = report.copied.len() as u64;
    d.already = report.already.len() as u64;
    d.forgotten_there = report.forgotten_there.len() as u64;
    d.blobs_stored = report.blobs_stored;
    d.bytes_stored = report.bytes_stored;
    d.evidence_records_copied = report.evidence.records_copied;
    d.evidence_keys_copied = report.evidence.keys_copied;
    let (there, _) = dst.list_snapshots()?;
    let newest =
        there.iter().filter(|(_, s)| s.job.as_deref() == Some(job.name.as_str())).max_by_key(|(_, s)| s.time);
    d.newest_snapshot = newest.map(|(id, _)| id.to_hex());
    d.newest_snapshot_time = newest.map(|(_, s)| s.time);
    Ok(())
}
