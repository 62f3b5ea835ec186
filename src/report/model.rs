//! The figures of the PRA readiness report, computed from the catalog, the ledger and the jobs.
//!
//! Pure: the caller passes the runs, the ledger entries, the restore points of each job and the
//! clock, so tests build a report from a known history and check every figure. Definitions:
//!
//! - *current backup age*: now minus the start of the last successful backup;
//! - *worst gap*: the longest time without a successful backup in the period: between two
//!   successive successful backups, and from the last one to now; when the job already had a
//!   successful backup before the period, from the start of the period to the first one too
//!   (a job that did not exist yet has no gap);
//! - *backup success rate*: successful (or partial) backups over all finished backups of the
//!   period (interrupted ones count as failures);
//! - *drills kept to their interval*: no gap longer than the drill interval between passing
//!   drills in the period (counted as the number of overdue stretches).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::catalog::run::{DrillReport, Status, Step};
use crate::catalog::RunRecord;
use crate::evidence::readiness::{Cause, JobReadiness, State};
use crate::jobs::{Job, Source};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Failure {
    pub time: DateTime<Utc>,
    pub step: Step,
    pub error: String,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DrillPoint {
    pub time: DateTime<Utc>,
    pub level: u64,
    pub passed: bool,
    pub rto_target_secs: Option<u64>,
    pub rto_actual_secs: Option<f64>,
    pub rpo_target_secs: Option<u64>,
    /// Time since the last successful backup when the drill ran.
    pub rpo_achieved_secs: Option<u64>,
    pub target: String,
    /// Restored on another server than the source (a sandbox on the same host is isolated,
    /// not segregated).
    pub segregated: bool,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct BackupPoint {
    pub time: DateTime<Utc>,
    pub ok: bool,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct JobReport {
    pub job: String,
    /// The first run of the job rempart recorded: figures cannot cover time before it.
    pub monitoring_since: Option<DateTime<Utc>>,
    /// Seconds of the period that monitoring covers (from the later of the period start and
    /// `monitoring_since` to the end); every rate and count is over this part only.
    pub covered_secs: u64,
    pub readiness: State,
    /// `cause` in English (the HTML and Markdown renderers word it in their language).
    pub reason: String,
    pub cause: Cause,
    pub sources: Vec<String>,
    pub repository: String,
    pub rpo_target_secs: Option<u64>,
    pub last_backup: Option<DateTime<Utc>>,
    pub current_backup_age_secs: Option<u64>,
    pub worst_gap_secs: Option<u64>,
    pub rpo_met_now: Option<bool>,
    pub rpo_met_worst: Option<bool>,
    pub rto_target_secs: Option<u64>,
    pub rto_last_secs: Option<f64>,
    pub rto_worst_secs: Option<f64>,
    pub last_drill: Option<DrillPoint>,
    pub drill_interval_secs: u64,
    pub drills_overdue: u32,
    pub backups_total: u32,
    pub backups_ok: u32,
    pub backup_success_rate: Option<f64>,
    pub failures: Vec<Failure>,
    pub restore_points: u32,
    pub oldest_restore_point: Option<DateTime<Utc>>,
    pub newest_restore_point: Option<DateTime<Utc>>,
    pub last_check: Option<DateTime<Utc>>,
    pub last_check_ok: Option<bool>,
    pub files_verified: u64,
    pub bytes_verified: u64,
    pub rows_verified: u64,
    pub backups: Vec<BackupPoint>,
    pub drills: Vec<DrillPoint>,
    pub deficiencies: Vec<String>,
    /// The job's copies (`[[copy]]`): the 3-2-1 line.
    pub copies: Vec<crate::catalog::copy_state::CopyState>,
    /// `[objectives] copies`.
    pub copies_required: u32,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct EvidenceSummary {
    /// `Some(true)` only when every record was verified and compared; `None` when some could
    /// not be compared (a repository unreachable).
    pub verified: Option<bool>,
    pub findings: Vec<String>,
    pub records: usize,
    /// Records compared with their repository's copies.
    pub records_compared: usize,
    pub chain_heads: Vec<(String, String)>,
    pub key_fingerprint: String,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    pub schema_version: u32,
    pub generated: DateTime<Utc>,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub host: String,
    pub rempart_version: String,
    pub jobs: Vec<JobReport>,
    pub evidence: EvidenceSummary,
}

fn secs(d: chrono::Duration) -> u64 {
    d.num_seconds().max(0) as u64
}

fn drill_point(r: &RunRecord) -> DrillPoint {
    let default = DrillReport::default();
    let d = r.outcome.details.drill().unwrap_or(&default);
    DrillPoint {
        time: r.ended.unwrap_or(r.started),
        level: u64::from(d.level_reached),
        passed: r.outcome.status == Status::Success,
        rto_target_secs: d.rto_target_secs,
        rto_actual_secs: d.rto_actual_ms.map(|ms| ms as f64 / 1000.0),
        rpo_target_secs: d.rpo_target_secs,
        rpo_achieved_secs: d.since_last_backup_secs,
        target: d.target.clone(),
        segregated: d.segregated,
    }
}

/// Builds the report of `jobs` over `[now - since, now]`.
pub fn build(
    jobs: &[Job],
    runs: &[RunRecord],
    ready: &HashMap<String, JobReadiness>,
    restore_points: &HashMap<String, Vec<DateTime<Utc>>>,
    evidence: EvidenceSummary,
    now: DateTime<Utc>,
    since: Duration,
) -> Report {
    let start = now - chrono::Duration::from_std(since).unwrap_or_default();
    let mut out = Vec::new();
    for job in jobs {
        let mine: Vec<&RunRecord> =
            runs.iter().filter(|r| r.job == job.name && r.outcome.status != Status::Running).collect();
        let monitoring_since = mine.iter().map(|r| r.started).min();
        let covered_secs = monitoring_since.map_or(0, |m| secs(now - m.max(start)));
        let backups: Vec<&RunRecord> = mine.iter().copied().filter(|r| r.step == Step::Backup).collect();
        let in_period: Vec<&RunRecord> =
            backups.iter().copied().filter(|r| r.started >= start && r.started <= now).collect();
        let ok_times: Vec<DateTime<Utc>> = {
            let mut v: Vec<_> = in_period.iter().filter(|r| r.succeeded()).map(|r| r.started).collect();
            v.sort();
            v
        };
        let last_backup = backups.iter().filter(|r| r.succeeded()).map(|r| r.started).max();
        let had_before = backups.iter().any(|r| r.succeeded() && r.started < start);
        let mut worst: Option<u64> = None;
        if !ok_times.is_empty() {
            let mut prev = if had_before { start } else { ok_times[0] };
            for t in ok_times.iter().chain(std::iter::once(&now)) {
                let gap = secs(*t - prev);
                worst = Some(worst.map_or(gap, |w| w.max(gap)));
                prev = *t;
            }
        }
        let rpo = job.rpo.map(|d| d.as_secs());
        let age = last_backup.map(|t| secs(now - t));
        let drills: Vec<DrillPoint> = {
            let mut v: Vec<_> = mine
                .iter()
                .filter(|r| r.step == Step::Drill && r.started >= start)
                .map(|r| drill_point(r))
                .collect();
            v.sort_by_key(|d| d.time);
            v
        };
        let rtos: Vec<f64> = drills.iter().filter_map(|d| d.rto_actual_secs).collect();
        let interval = job.drill.interval.as_secs();
        let mut overdue = 0;
        // Drills are due from the start of the period, or from the first backup of a newer job.
        let first_backup = backups.iter().filter(|r| r.succeeded()).map(|r| r.started).min();
        let drilled_before = mine.iter().any(|r| r.step == Step::Drill && r.started < start && r.succeeded());
        let mut prev = if drilled_before { start } else { first_backup.map_or(now, |f| f.max(start)) };
        for d in drills.iter().filter(|d| d.passed) {
            if secs(d.time - prev) > interval {
                overdue += 1;
            }
            prev = d.time;
        }
        if secs(now - prev) > interval {
            overdue += 1;
        }
        let checks: Vec<&RunRecord> = mine.iter().copied().filter(|r| r.step == Step::Check).collect();
        let last_check = checks.iter().max_by_key(|r| r.started);
        let last_drill_run = mine.iter().filter(|r| r.step == Step::Drill).max_by_key(|r| r.started);
        let failures: Vec<Failure> = mine
            .iter()
            .filter(|r| r.started >= start && !r.succeeded())
            .map(|r| Failure {
                time: r.started,
                step: r.step,
                error: r.outcome.error.clone().unwrap_or_else(|| r.outcome.status.to_string()),
            })
            .collect();
        let mut points = restore_points.get(&job.name).cloned().unwrap_or_default();
        points.sort();
        let ready = ready.get(&job.name).cloned().unwrap_or_else(|| JobReadiness {
            job: job.name.clone(),
            state: State::NotVerified,
            reason: Cause::RepositoryUnreachable { error: "not audited".into() }.english(),
            cause: Cause::RepositoryUnreachable { error: "not audited".into() },
            last_drill: None,
        });
        let backups_ok = in_period.iter().filter(|r| r.succeeded()).count() as u32;
        let mut jr = JobReport {
            job: job.name.clone(),
            monitoring_since,
            covered_secs,
            readiness: ready.state,
            reason: ready.reason,
            cause: ready.cause,
            sources: job
                .sources
                .iter()
                .flat_map(|s| match s {
                    Source::Paths(p) => p.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                    Source::Database(u) => vec![u.clone()],
                })
                .collect(),
            repository: job.repository.clone(),
            rpo_target_secs: rpo,
            last_backup,
            current_backup_age_secs: age,
            worst_gap_secs: worst,
            rpo_met_now: rpo.zip(age).map(|(r, a)| a <= r),
            rpo_met_worst: rpo.zip(worst).map(|(r, w)| w <= r),
            rto_target_secs: job.rto.map(|d| d.as_secs()),
            rto_last_secs: drills.iter().rev().find_map(|d| d.rto_actual_secs),
            rto_worst_secs: rtos
                .iter()
                .cloned()
                .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x)))),
            last_drill: last_drill_run.map(|r| drill_point(r)),
            drill_interval_secs: interval,
            drills_overdue: overdue,
            backups_total: in_period.len() as u32,
            backups_ok,
            backup_success_rate: (!in_period.is_empty())
                .then(|| f64::from(backups_ok) / in_period.len() as f64),
            failures,
            restore_points: points.len() as u32,
            oldest_restore_point: points.first().copied(),
            newest_restore_point: points.last().copied(),
            last_check: last_check.map(|r| r.started),
            last_check_ok: last_check.map(|r| r.succeeded()),
            files_verified: last_drill_run
                .and_then(|r| r.outcome.details.drill())
                .map_or(0, |d| d.files_verified),
            bytes_verified: last_drill_run
                .and_then(|r| r.outcome.details.drill())
                .map_or(0, |d| d.bytes_verified),
            rows_verified: last_drill_run
                .and_then(|r| r.outcome.details.drill())
                .map_or(0, |d| d.rows_verified),
            backups: in_period.iter().map(|r| BackupPoint { time: r.started, ok: r.succeeded() }).collect(),
            drills,
            deficiencies: vec![],
            copies: crate::catalog::copy_state::from_runs(mine.iter().rev().copied(), job),
            copies_required: job.required_copies,
        };
        jr.deficiencies = deficiencies(&jr);
        out.push(jr);
    }
    Report {
        schema_version: SCHEMA_VERSION,
        generated: now,
        period_start: start,
        period_end: now,
        host: crate::util::hostname(),
        rempart_version: env!("CARGO_PKG_VERSION").into(),
        jobs: out,
        evidence,
    }
}

/// Deficiency codes with their parameters; the renderers word them per language.
fn deficiencies(j: &JobReport) -> Vec<String> {
    let mut d = Vec::new();
    if j.last_backup.is_none() {
        d.push("no-backup".into());
    } else if j.rpo_met_now == Some(false) {
        d.push("rpo-now".into());
    }
    if j.rpo_met_worst == Some(false) && j.rpo_met_now != Some(false) {
        d.push("rpo-gap".into());
    }
    if !j.failures.iter().filter(|f| f.step == Step::Backup).collect::<Vec<_>>().is_empty() {
        d.push("backup-failures".into());
    }
    match (&j.last_drill, j.readiness) {
        (None, _) => d.push("never-drilled".into()),
        (Some(l), _) if !l.passed => d.push("drill-failed".into()),
        (_, State::NeedsVerified)
            if !matches!(j.cause, Cause::CopiesMissing { .. } | Cause::ImmutabilityUnproven { .. }) =>
        {
            d.push("drill-due".into())
        }
        _ => {}
    }
    if let (Some(t), Some(w)) = (j.rto_target_secs, j.rto_worst_secs) {
        if w > t as f64 {
            d.push("rto-exceeded".into());
        }
    }
    match j.last_check_ok {
        None => d.push("never-checked".into()),
        Some(false) => d.push("check-failed".into()),
        _ => {}
    }
    if j.last_drill.as_ref().is_some_and(|l| !l.segregated) {
        d.push("not-segregated".into());
    }
    if matches!(j.cause, Cause::CopiesMissing { .. }) {
        d.push("copies-missing".into());
    }
    if matches!(j.cause, Cause::ImmutabilityUnproven { .. }) {
        d.push("immutability-unproven".into());
    }
    d
}
