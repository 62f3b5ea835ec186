//! The steps themselves: backup, check, prune (forget + prune), drill (copy: `copy_step`).

use super::{RunContext, StepOutcome};
use crate::backup::{backup, BackupOptions};
use crate::catalog::run::{
    BackupDetails, BackupSnapshot, CheckDetails, ForgetFigures, PruneDetails, RunOutcome, Status, StepDetails,
};
use crate::check::{check, CheckOptions, ReadData};
use crate::drill::{DrillOptions, DrillReport};
use crate::error::Result;
use crate::jobs::{Job, Source, Step};
use crate::maintenance::forget::{forget, ForgetOptions, ForgetWhat};
use crate::maintenance::prune::{prune, PruneOptions};
use crate::sources::{DbAuth, DbUrl};
use crate::state::SnapshotRegister;

/// Runs `step` of `job`; `drill` carries the options of a drill started by hand.
pub fn execute(ctx: &RunContext, job: &Job, step: Step, drill: Option<&DrillOptions>) -> Result<StepOutcome> {
    match step {
        Step::Backup => run_backup(ctx, job),
        Step::Check => run_check(ctx, job),
        Step::Prune => run_prune(ctx, job),
        Step::Drill => run_drill(ctx, job, drill),
        Step::Copy => super::copy_step::run_copy(ctx, job),
        Step::Ransomware => run_drill(
            ctx,
            job,
            Some(drill.cloned().unwrap_or_else(|| DrillOptions {
                snapshot: "latest".into(),
                level: None,
                cold: true,
                recovery_file: None,
                password_file: None,
                // The job's only S3 copy (validated for schedule.ransomware); with several,
                // the drill says to name one.
                copy: crate::drill::ransomware::target(job, None).ok().map(|c| c.name.clone()),
                ransomware: true,
                as_of: None,
            }))
            .as_ref(),
        ),
    }
}

fn run_backup(ctx: &RunContext, job: &Job) -> Result<StepOutcome> {
    let repo = crate::jobs::access::open_job_repository(job, &ctx.state_dir, &ctx.handle)?;
    let register = SnapshotRegister::open(&ctx.state_dir, &repo.id());
    let mut out = RunOutcome { status: Status::Success, ..Default::default() };
    let mut snapshots = Vec::new();
    let mut errors = Vec::new();
    let (mut files, mut read, mut added) = (0u64, 0u64, 0u64);
    for source in &job.sources {
        let mut opts = BackupOptions::new(vec![]);
        opts.excludes = job.exclude.clone();
        opts.exclude_caches = job.exclude_caches;
        opts.exclude_if_present = job.exclude_if_present.clone();
        opts.exclude_larger_than = job.exclude_larger_than;
        opts.tags = job.tags.clone();
        opts.hostname = job.host.clone();
        opts.one_file_system = job.one_file_system;
        opts.job = Some(job.name.clone());
        opts.cancel = ctx.cancel.clone();
        opts.staging_dir = Some(ctx.state_dir.join("staging"));
        let result = match source {
            Source::Paths(paths) => {
                opts.paths = paths.clone();
                backup(&repo, &opts)?
            }
            Source::Database(url) => {
                let auth = DbAuth { password_file: job.db_password_file.clone() };
                crate::backup::database::backup_database(&repo, &DbUrl::parse(url)?, &auth, &opts)?
            }
        };
        register.added(&result.snapshot_id)?;
        let s = &result.snapshot.summary;
        files += s.files_new + s.files_changed + s.files_unmodified;
        read += s.bytes_read;
        added += s.bytes_added;
        errors.extend(s.errors.iter().map(|e| format!("{}: {}", e.path, e.error)));
        snapshots.push(BackupSnapshot {
            id: result.snapshot_id.to_hex(),
            source: result.snapshot.source.clone(),
            summary: s.clone(),
        });
        out.snapshot = Some(result.snapshot_id.to_hex());
        out.snapshot_time = Some(result.snapshot.time);
    }
    if !errors.is_empty() {
        out.status = Status::Partial;
        out.error = Some(format!("{} entries could not be read: {}", errors.len(), errors.join("; ")));
    }
    out.files = Some(files);
    out.bytes_read = Some(read);
    out.bytes_added = Some(added);
    let count = repo.list_snapshots()?.0.iter().filter(|(_, s)| s.job.as_deref() == Some(&job.name)).count();
    out.details = StepDetails::Backup(BackupDetails { snapshots, snapshot_count: Some(count as u64) });
    Ok(StepOutcome { repository: Some(repo), outcome: out })
}

/// `rotate/M` reads bucket N of M, one more than the last scheduled check read.
fn read_data_for(ctx: &RunContext, job: &Job) -> Result<(ReadData, Option<u32>)> {
    let Some(spec) = job.check_read_data.as_deref() else { return Ok((ReadData::None, None)) };
    if spec == "all" {
        return Ok((ReadData::All, None));
    }
    if let Some(m) = spec.strip_prefix("rotate/") {
        let m: u32 = m
            .parse()
            .map_err(|_| crate::Error::invalid(format!("check_read_data '{spec}': expected rotate/M")))?;
        let last = ctx
            .catalog()?
            .last_success(&job.name, crate::catalog::Step::Check)?
            .and_then(|r| r.outcome.details.check().and_then(|c| c.read_data_bucket))
            .unwrap_or(0);
        let n = last % m.max(1) + 1;
        return Ok((ReadData::Subset { n, m }, Some(n)));
    }
    Ok((ReadData::parse_subset(spec)?, None))
}

fn run_check(ctx: &RunContext, job: &Job) -> Result<StepOutcome> {
    let repo = crate::jobs::access::open_existing_job_repository(job, &ctx.state_dir, &ctx.handle)?;
    let (read_data, bucket) = read_data_for(ctx, job)?;
    let opts = CheckOptions {
        read_data,
        known_snapshots: SnapshotRegister::open(&ctx.state_dir, &repo.id()).known(),
        cancel: ctx.cancel.clone(),
        ..Default::default()
    };
    let report = check(&repo, &opts)?;
    let ok = report.problems.is_empty();
    let outcome = RunOutcome {
        status: if ok { Status::Success } else { Status::Failed },
        error: (!ok).then(|| {
            format!(
                "integrity damage: {}",
                report
                    .problems
                    .iter()
                    .map(|p| format!("{}: {}", p.object, p.detail))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        }),
        details: StepDetails::Check(CheckDetails { report, read_data_bucket: bucket }),
        ..Default::default()
    };
    Ok(StepOutcome { repository: Some(repo), outcome })
}

fn run_prune(ctx: &RunContext, job: &Job) -> Result<StepOutcome> {
    let repo = crate::jobs::access::open_existing_job_repository(job, &ctx.state_dir, &ctx.handle)?;
    let mut details = PruneDetails::default();
    if !job.retention.is_empty() {
        let tz = crate::jobs::schedule::parse_tz(&job.timezone).map_err(crate::Error::invalid)?;
        let f = forget(
            &repo,
            &ForgetOptions {
                what: ForgetWhat::Policy { policy: job.retention.clone(), tz },
                job: Some(job.name.clone()),
                select: Default::default(),
                dry_run: false,
            },
        )?;
        let register = SnapshotRegister::open(&ctx.state_dir, &repo.id());
        for id in &f.removed {
            register.removed(id)?;
        }
        details.forget = Some(ForgetFigures { removed: f.removed, kept: f.kept });
    }
    let p = prune(&repo, &PruneOptions::default())?;
    details.prune = p;
    let outcome =
        RunOutcome { status: Status::Success, details: StepDetails::Prune(details), ..Default::default() };
    Ok(StepOutcome { repository: Some(repo), outcome })
}

/// The drill step: the options given by hand, else the job's.
fn run_drill(ctx: &RunContext, job: &Job, given: Option<&DrillOptions>) -> Result<StepOutcome> {
    let last = ctx
        .catalog()
        .ok()
        .and_then(|c| c.last_success(&job.name, crate::catalog::Step::Backup).ok().flatten())
        .map(|r| r.started);
    let opts = given.cloned().unwrap_or(DrillOptions {
        snapshot: job.drill.snapshot.clone(),
        level: None,
        cold: false,
        recovery_file: None,
        password_file: None,
        copy: None,
        ransomware: false,
        as_of: None,
    });
    match (crate::drill::run_drill(ctx, job, &opts, last), &opts.copy) {
        (Ok((report, repo)), _) => Ok(outcome(report, Some(repo))),
        // A drill of a copy that could not even start (the copy unreachable, empty, unreadable)
        // is still a failed drill of that copy: recorded as one, never as a drill of the job.
        (Err(e), Some(copy)) if !e.is_retryable() && !matches!(e, crate::Error::Interrupted(_)) => {
            let report = DrillReport {
                drill_id: crate::id::Id::random().to_hex()[..12].to_string(),
                copy: Some(copy.clone()),
                level_required: job.drill.level,
                failure: Some(e.to_string()),
                ..Default::default()
            };
            let repo = crate::drill::copy_target(job, copy).ok().and_then(|t| {
                crate::jobs::access::open_existing(&t.access(job), &ctx.state_dir, &ctx.handle).ok()
            });
            let mut o = outcome(report, repo);
            o.outcome.snapshot = None;
            Ok(o)
        }
        (Err(e), _) => Err(e),
    }
}

/// A drill report as a run outcome.
fn outcome(report: DrillReport, repository: Option<crate::repo::Repository>) -> StepOutcome {
    let outcome = RunOutcome {
        status: if report.passed { Status::Success } else { Status::Failed },
        snapshot: Some(report.snapshot.clone()),
        snapshot_time: report.snapshot_time,
        files: Some(report.files_verified),
        bytes_read: Some(report.bytes_verified),
        bytes_added: None,
        error: report.failure.clone(),
        details: StepDetails::Drill(report),
    };
    StepOutcome { repository, outcome }
}
