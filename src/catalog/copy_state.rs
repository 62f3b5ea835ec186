//! Where each copy of a job stands, from the copy runs in the catalog: the newest snapshot the
//! copy held when last reached, and whether the last attempt reached it. The metrics and the
//! dashboard show these, so a copy that silently stopped following is seen (3-2-1 is only as
//! good as its oldest copy).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Catalog, RunRecord, Status, Step};
use crate::error::Result;
use crate::jobs::Job;

/// How far back the copy runs are read.
const RUNS_READ: u32 = 500;

/// One copy of a job.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CopyState {
    pub name: String,
    pub repository: String,
    /// When the last copy run that tried this copy ended, and whether it reached it.
    pub last_run: Option<DateTime<Utc>>,
    pub last_run_ok: Option<bool>,
    /// The newest snapshot of the job in the copy, as of the last run that reached it.
    pub newest_snapshot_time: Option<DateTime<Utc>>,
    /// When the last drill of the copy (`drill --copy`) ended, and whether it passed.
    pub last_drill: Option<DateTime<Utc>>,
    pub last_drill_passed: Option<bool>,
    /// Object Lock, as the last run that reached the copy found it: the date every live
    /// object was locked until at least (`None`: not locked).
    pub locked_until: Option<DateTime<Utc>>,
    /// When the last ransomware drill of the copy ended, and whether it passed.
    pub last_ransomware_drill: Option<DateTime<Utc>>,
    pub last_ransomware_drill_passed: Option<bool>,
}

/// The state of every copy of `job` (in the job's order).
///
/// # Errors
/// The catalog cannot be read.
pub fn copy_states(catalog: &Catalog, job: &Job) -> Result<Vec<CopyState>> {
    let mut runs = catalog.recent_runs(&job.name, Step::Copy, RUNS_READ)?;
    runs.extend(catalog.recent_runs(&job.name, Step::Drill, RUNS_READ)?);
    runs.extend(catalog.recent_runs(&job.name, Step::Ransomware, RUNS_READ)?);
    runs.sort_by_key(|r| std::cmp::Reverse(r.started));
    Ok(from_runs(runs.iter(), job))
}

/// [`copy_states`] from runs of the job (copy, drill and ransomware runs count), newest first.
pub fn from_runs<'a>(runs: impl Iterator<Item = &'a RunRecord> + Clone, job: &Job) -> Vec<CopyState> {
    let mut out = Vec::new();
    for target in &job.copies {
        let mut state = CopyState {
            name: target.name.clone(),
            repository: target.repository.clone(),
            ..Default::default()
        };
        for r in runs.clone().filter(|r| r.step == Step::Copy && r.outcome.status != Status::Running) {
            let mine =
                r.outcome.details.copy().and_then(|c| c.targets.iter().find(|t| t.name == target.name));
            if state.last_run_ok.is_none() {
                // A run that failed before reaching any copy (the source unreadable) failed
                // for every copy; one that ran without this copy (added since) says nothing.
                let ok = match (mine, r.outcome.details.copy()) {
                    (Some(t), _) => Some(t.error.is_none()),
                    (None, None) => Some(false),
                    (None, Some(_)) => None,
                };
                if ok.is_some() {
                    state.last_run_ok = ok;
                    state.last_run = r.ended.or(Some(r.started));
                }
            }
            if let Some(t) = mine.filter(|t| t.error.is_none()) {
                state.newest_snapshot_time = t.newest_snapshot_time;
                state.locked_until = t.locked_until;
                break;
            }
        }
        let last_of = |step: Step| {
            runs.clone().filter(|r| r.step == step && r.outcome.status != Status::Running).find_map(|r| {
                r.outcome
                    .details
                    .drill()
                    .filter(|d| d.copy.as_deref() == Some(target.name.as_str()))
                    .map(|_| r)
            })
        };
        if let Some(r) = last_of(Step::Drill) {
            state.last_drill = r.ended.or(Some(r.started));
            state.last_drill_passed = Some(r.outcome.status == Status::Success);
        }
        if let Some(r) = last_of(Step::Ransomware) {
            state.last_ransomware_drill = r.ended.or(Some(r.started));
            state.last_ransomware_drill_passed = Some(r.outcome.status == Status::Success);
        }
        out.push(state);
    }
    out
}
