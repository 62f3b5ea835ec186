//! A recorded run, typed: its step, its status and the facts its step produced.
//!
//! The runner builds these, the catalog stores them (the step's facts as JSON in the `details`
//! column), and the evidence record, the report, the metrics and the CLI read them back as the
//! same types: renaming a field is a compile error, never a blank in signed evidence. Rows
//! written by earlier versions decode too: every field has a default.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::check::CheckReport;
use crate::id::Id;
pub use crate::jobs::Step;
use crate::maintenance::prune::PruneReport;
use crate::repo::snapshot::{SourceInfo, Summary};

/// What a step did: the part of a run record that the step itself fills in (the runner adds
/// who, when and where).
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunOutcome {
    pub status: Status,
    /// The last snapshot the step wrote or used.
    pub snapshot: Option<String>,
    pub snapshot_time: Option<DateTime<Utc>>,
    pub files: Option<u64>,
    pub bytes_read: Option<u64>,
    pub bytes_added: Option<u64>,
    pub error: Option<String>,
    /// What the step produced: check problems, a drill report, prune figures...
    pub details: StepDetails,
}

/// How a run ended (or that it is still running).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Running,
    Success,
    /// Done, but some entries could not be read.
    Partial,
    Failed,
    Interrupted,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Success => "success",
            Status::Partial => "partial",
            Status::Failed => "failed",
            Status::Interrupted => "interrupted",
        }
    }

    /// Parses a stored status (an unknown one reads as failed).
    pub fn parse(s: &str) -> Status {
        match s {
            "running" => Status::Running,
            "success" => Status::Success,
            "partial" => Status::Partial,
            "interrupted" => Status::Interrupted,
            _ => Status::Failed,
        }
    }

    /// Success or partial: the step did its job.
    pub fn succeeded(self) -> bool {
        matches!(self, Status::Success | Status::Partial)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One check of a drill.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CheckResult {
    pub level: u8,
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// What a drill found.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct DrillReport {
    pub drill_id: String,
    /// The copy (`[[copy]]` name) drilled instead of the job's repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy: Option<String>,
    pub snapshot: String,
    pub snapshot_time: Option<DateTime<Utc>>,
    pub source_kind: String,
    pub level_required: u8,
    pub level_reached: u8,
    pub passed: bool,
    pub checks: Vec<CheckResult>,
    pub files_verified: u64,
    pub bytes_verified: u64,
    pub rows_verified: u64,
    pub rto_target_secs: Option<u64>,
    /// Restore start to validated, in milliseconds.
    pub rto_actual_ms: Option<u64>,
    pub rto_met: Option<bool>,
    pub rpo_target_secs: Option<u64>,
    pub snapshot_age_secs: Option<u64>,
    pub since_last_backup_secs: Option<u64>,
    pub rpo_met: Option<bool>,
    /// Where the restore went (the sandbox folder, `sqlite://FILE`, or the scratch database's
    /// URL), and whether that is on another server than the source.
    pub target: String,
    pub segregated: bool,
    pub cleanup: Vec<String>,
    pub cleanup_ok: bool,
    pub cold: bool,
    /// A cold drill of the repository as it was at this moment (`--as-of`).
    pub as_of: Option<DateTime<Utc>>,
    pub failure: Option<String>,
    /// A ransomware drill (`drill --ransomware`): what the simulated attacker could and could
    /// not do.
    pub ransomware: Option<Box<RansomwareOutcome>>,
}

/// What a ransomware drill's attacker, holding the backup host's credentials, could and could
/// not do to a canary repository on a copy's bucket, and what the copy's locks cover.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RansomwareOutcome {
    /// The canary repository (beside the copy, on the same bucket).
    pub canary: String,
    /// The moment before the attack the canary was restored as of.
    pub moment: Option<DateTime<Utc>>,
    /// The bucket as the drill found it.
    pub bucket_versioning: String,
    pub bucket_object_lock: bool,
    /// Canary objects attacked.
    pub objects: u64,
    pub overwritten: u64,
    pub overwrite_refused: u64,
    pub deleted: u64,
    pub delete_refused: u64,
    pub versions_deleted: u64,
    pub version_delete_refused: u64,
    pub retention_shortened: u64,
    pub retention_shorten_refused: u64,
    /// The canary restored exactly as of `moment` after the attack.
    pub restored_as_of: bool,
    /// The real copy (not attacked): its live objects, those locked beyond now + RPO, and the
    /// earliest lock end among them.
    pub copy_objects: u64,
    pub copy_objects_locked_beyond_rpo: u64,
    pub copy_earliest_lock_end: Option<DateTime<Utc>>,
}

impl DrillReport {
    /// Records one check; returns whether it passed.
    pub fn check(
        &mut self,
        level: u8,
        name: impl Into<String>,
        passed: bool,
        detail: impl Into<String>,
    ) -> bool {
        self.checks.push(CheckResult { level, name: name.into(), passed, detail: detail.into() });
        passed
    }

    /// Records why the drill failed (the first reason wins).
    pub fn fail(&mut self, why: String) {
        if self.failure.is_none() {
            self.failure = Some(why);
        }
    }
}

/// One snapshot a backup step wrote.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct BackupSnapshot {
    pub id: String,
    pub source: SourceInfo,
    pub summary: Summary,
}

/// What a backup step did.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct BackupDetails {
    pub snapshots: Vec<BackupSnapshot>,
    /// Snapshots of the job in its repository after the backup.
    pub snapshot_count: Option<u64>,
}

/// What a check step found.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckDetails {
    pub report: CheckReport,
    /// The bucket of `check_read_data = "rotate/M"` this check read.
    pub read_data_bucket: Option<u32>,
}

/// What forget did in a prune step.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ForgetFigures {
    pub removed: Vec<Id>,
    pub kept: usize,
}

/// What a prune step did.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PruneDetails {
    pub forget: Option<ForgetFigures>,
    pub prune: PruneReport,
}

/// What a copy step did in one `[[copy]]` repository.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CopyTargetDetails {
    pub name: String,
    pub repository: String,
    /// The copy's repository id (its drills' evidence chain is keyed by it).
    pub repository_id: Option<String>,
    /// Snapshots copied now, already there, and forgotten there since an earlier copy.
    pub copied: u64,
    pub already: u64,
    pub forgotten_there: u64,
    pub blobs_stored: u64,
    pub bytes_stored: u64,
    pub evidence_records_copied: u64,
    pub evidence_keys_copied: u64,
    /// The newest snapshot of the job (its source id and time) the step found in the copy or
    /// copied there.
    pub newest_snapshot: Option<String>,
    pub newest_snapshot_time: Option<chrono::DateTime<chrono::Utc>>,
    /// On an Object Lock copy: objects whose retention this step extended, and the date every
    /// live object of the copy is locked until at least.
    pub locks_extended: u64,
    pub locked_until: Option<chrono::DateTime<chrono::Utc>>,
    /// On an Object Lock copy: whether the host's credentials may delete object versions
    /// (probed; they should not: docs/copies.md, "Credentials").
    pub credentials_can_delete_versions: Option<bool>,
    /// Why this copy failed (the others still ran).
    pub error: Option<String>,
}

/// What a copy step did.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CopyDetails {
    pub targets: Vec<CopyTargetDetails>,
    /// Snapshots of the job in the source that could not be read (not copied).
    pub damaged_sources: Vec<String>,
}

/// The facts a run's step produced.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(untagged)]
pub enum StepDetails {
    #[default]
    None,
    Backup(BackupDetails),
    Check(CheckDetails),
    Prune(PruneDetails),
    Drill(DrillReport),
    Copy(CopyDetails),
}

impl StepDetails {
    /// Decodes the stored facts of a run of `step` (rows of earlier versions included).
    pub fn decode(step: Step, v: serde_json::Value) -> StepDetails {
        let empty = v.as_object().is_none_or(|o| o.keys().all(|k| k == "attempts" || k == "rebuilt_from"));
        if empty {
            return StepDetails::None;
        }
        let typed = match step {
            Step::Backup => serde_json::from_value(v).map(StepDetails::Backup),
            Step::Check => serde_json::from_value(v).map(StepDetails::Check),
            Step::Prune => serde_json::from_value(v).map(StepDetails::Prune),
            Step::Drill => serde_json::from_value(v).map(StepDetails::Drill),
            Step::Copy => serde_json::from_value(v).map(StepDetails::Copy),
            Step::Ransomware => serde_json::from_value(v).map(StepDetails::Drill),
        };
        typed.unwrap_or_default()
    }

    /// The drill report, for a drill run.
    pub fn drill(&self) -> Option<&DrillReport> {
        match self {
            StepDetails::Drill(d) => Some(d),
            _ => None,
        }
    }

    /// The backup facts, for a backup run.
    pub fn backup(&self) -> Option<&BackupDetails> {
        match self {
            StepDetails::Backup(b) => Some(b),
            _ => None,
        }
    }

    /// The copy facts, for a copy run.
    pub fn copy(&self) -> Option<&CopyDetails> {
        match self {
            StepDetails::Copy(c) => Some(c),
            _ => None,
        }
    }

    /// The check facts, for a check run.
    pub fn check(&self) -> Option<&CheckDetails> {
        match self {
            StepDetails::Check(c) => Some(c),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_details_decode_as_their_step_and_old_rows_still_read() {
        let d = DrillReport { level_reached: 3, rows_verified: 7, target: "x".into(), ..Default::default() };
        let v = serde_json::to_value(StepDetails::Drill(d.clone())).unwrap();
        assert_eq!(StepDetails::decode(Step::Drill, v).drill(), Some(&d));
        // A row of an earlier version: fewer fields, an extra one.
        let old = serde_json::json!({ "level_reached": 2, "passed": true, "attempts": 2, "checks": [] });
        let back = StepDetails::decode(Step::Drill, old);
        assert_eq!(back.drill().unwrap().level_reached, 2);
        assert!(matches!(StepDetails::decode(Step::Backup, serde_json::json!({})), StepDetails::None));
        assert_eq!(Status::parse("partial"), Status::Partial);
        assert!(Status::Partial.succeeded() && !Status::Interrupted.succeeded());
    }
}
