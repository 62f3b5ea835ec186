//! The copy step: the job's snapshots and evidence into each of its `[[copy]]` repositories.
//!
//! Every copy is tried, even after one fails, so one unreachable site does not leave the
//! others behind; transient failures are retried per copy (the job's `retries`, with the
//! step's backoff); the step fails when any copy failed, naming it, and records what each
//! did. A copy's repository is created with its passphrase file the first time; once the
//! passphrase file exists, a missing repository is an error (an unmounted disk must not get a
//! new, empty copy on the disk beneath it).

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
        // Retried per copy, so a site that is down for a while neither hides what the other
        // copies did nor makes them run twice.
        let mut attempt = 0usize;
        let (mut d, result) = loop {
            let mut d = CopyTargetDetails {
                name: target.name.clone(),
                repository: target.repository.clone(),
                ..Default::default()
            };
            let r = copy_to(ctx, job, &src, &mine, target, &mut d);
            match r {
                Err(e) if e.is_retryable() && attempt < job.retries as usize => {
                    let wait =
                        ctx.backoff.get(attempt).copied().unwrap_or(std::time::Duration::from_secs(600));
                    tracing::warn!("copy '{}': transient failure, retrying in {wait:?}: {e}", target.name);
                    attempt += 1;
                    if !super::sleep_or_cancel(ctx, wait) {
                        break (d, Err(Error::Interrupted("stopped while waiting to retry".into())));
                    }
                }
                r => break (d, r),
            }
        };
        match result {
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
    if let Some((_, e)) = failures.iter().find(|(_, e)| matches!(e, Error::Interrupted(_))) {
        return Err(Error::Interrupted(e.to_string()));
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

fn copy_to(
    ctx: &RunContext,
    job: &Job,
    src: &Repository,
    snapshots: &[(crate::id::Id, Snapshot)],
    target: &CopyTarget,
    d: &mut CopyTargetDetails,
) -> Result<()> {
    let access = target.access(job);
    let dst = match crate::jobs::access::open_existing(&access, &ctx.state_dir, &ctx.handle) {
        Ok(r) => r,
        // The first copy: the repository and its passphrase file are made together.
        Err(Error::NotFound(_)) if !target.password_file.exists() => {
            crate::jobs::access::open_or_create(&access, &ctx.state_dir, &ctx.handle)?
        }
        // Made before and gone: an unmounted disk, say. A new, empty copy (on the disk that
        // holds the mount point) would hide that.
        Err(Error::NotFound(_)) => {
            return Err(Error::not_found(format!(
                "copy '{}': there is no repository at '{}' although its passphrase file '{}' exists: is its disk mounted or its bucket reachable? (to start it anew: rempart -r {} --password-file {} init)",
                target.name,
                target.repository,
                target.password_file.display(),
                target.repository,
                target.password_file.display()
            )))
        }
        Err(e) => return Err(e),
    };
    d.repository_id = Some(dst.id().to_hex());
    // Before anything new dedups against the copy's packs: they must be locked for at least
    // immutable_for from now (storage::object_lock).
    let upkeep = ctx
        .handle
        .block_on(crate::storage::object_lock::keep_locked(dst.storage().inner().as_ref(), false))?;
    d.locks_extended = upkeep.extended as u64;
    d.locked_until = upkeep.locked_until;
    if let Some(control) = dst.storage().inner().bucket_control().filter(|c| c.policy.is_some()) {
        // A probe that cannot be answered is said, never a reason to stop the copy.
        let can = match ctx.handle.block_on(control.api.can_delete_versions(&control.prefix)) {
            Ok(can) => Some(can),
            Err(e) => {
                tracing::warn!(
                    "copy '{}': cannot tell whether this host's key may delete versions: {e}",
                    target.name
                );
                None
            }
        };
        if can == Some(true) {
            tracing::warn!(
                "copy '{}': this host's credentials may delete object versions of '{}': once a lock ends (or at once in GOVERNANCE mode with bypass) an attacker holding them can delete the copy; give the backup host a key without s3:DeleteObjectVersion (docs/copies.md)",
                target.name,
                target.repository
            );
        }
        d.credentials_can_delete_versions = can;
    }
    let report = crate::maintenance::copy::copy(src, &dst, snapshots, &ctx.state_dir, false)?;
    d.copied = report.copied.len() as u64;
    d.already = report.already.len() as u64;
    d.forgotten_there = report.forgotten_there.len() as u64;
    d.blobs_stored = report.blobs_stored;
    d.bytes_stored = report.bytes_stored;
    let evidence = crate::evidence::replicate::replicate(src, &dst)?;
    d.evidence_records_copied = evidence.records_copied;
    d.evidence_keys_copied = evidence.keys_copied;
    // The newest source snapshot this run found in the copy or put there: not whatever the
    // copy lists under the job's name, which its holder could plant (with a date to come).
    let confirmed: std::collections::HashSet<&crate::id::Id> =
        report.copied.iter().map(|(s, _)| s).chain(&report.already).collect();
    let newest = snapshots.iter().filter(|(id, _)| confirmed.contains(id)).max_by_key(|(_, s)| s.time);
    d.newest_snapshot = newest.map(|(id, _)| id.to_hex());
    d.newest_snapshot_time = newest.map(|(_, s)| s.time);
    Ok(())
}
