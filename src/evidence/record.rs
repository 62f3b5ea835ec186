//! The evidence record: a run's facts, typed, and their canonical JSON.
//!
//! [`EvidenceRecord`] is version 1 of the record: serde derives its JSON, and the canonical
//! text that is hashed and signed is RFC 8785 (JCS) for the subset the ledger uses: objects
//! with sorted keys (serde_json's map is ordered), strings, booleans, null and integers
//! (durations in milliseconds, never floats), no whitespace. Under these restrictions
//! serde_json's compact output is exactly the JCS serialization. Every field is written, `null`
//! when it does not apply, as records always were; reading accepts records of earlier versions
//! (missing fields take their defaults). Records already signed are verified from their stored
//! bytes, never re-encoded.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::run::{Status, Step, StepDetails};
use crate::catalog::RunRecord;
use crate::jobs::Job;

/// Replaces floats by integers (JCS-safe) everywhere in a value.
pub fn integers_only(v: Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => Value::from(n.as_f64().map(|f| f.round() as i64).unwrap_or(0)),
        Value::Array(a) => Value::Array(a.into_iter().map(integers_only).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, integers_only(v))).collect()),
        other => other,
    }
}

/// The canonical bytes of a record.
pub fn canonical(v: &Value) -> String {
    serde_json::to_string(v).expect("JSON values serialize")
}

/// One check as the record keeps it (a drill's checks, or a repository check).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordCheck {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    pub name: String,
    pub passed: bool,
    pub detail: Option<String>,
}

/// One copy as a copy step's record keeps it (`[[copy]]`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordCopy {
    pub name: String,
    pub repository: String,
    /// Its repository id, when the step could open it.
    pub repository_id: Option<String>,
    /// The copy step reached it and copied what it lacked.
    pub reached: bool,
    /// The newest snapshot of the job in the copy after the step.
    pub newest_snapshot_time: Option<String>,
}

/// The job's objectives as the record's run knew them, so the repository alone says what each
/// job must meet (the fleet report judges every host's jobs from these, without their files).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordObjectives {
    pub drill_level: u64,
    pub drill_interval_ms: u64,
    pub copies_required: u64,
    /// The job's copies, and those of them written locked (S3 Object Lock).
    pub copies: Vec<String>,
    pub immutable_copies: Vec<String>,
    pub immutable_required: bool,
}

impl RecordObjectives {
    pub fn of(job: &Job) -> RecordObjectives {
        RecordObjectives {
            drill_level: u64::from(job.drill.level),
            drill_interval_ms: job.drill.interval.as_millis() as u64,
            copies_required: u64::from(job.required_copies),
            copies: job.copies.iter().map(|c| c.name.clone()).collect(),
            immutable_copies: job
                .copies
                .iter()
                .filter(|c| c.object_lock.is_some())
                .map(|c| c.name.clone())
                .collect(),
            immutable_required: job.require_immutable,
        }
    }
}

/// Version 1 of the evidence record.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EvidenceRecord {
    pub record_id: String,
    pub job: String,
    pub step: Option<Step>,
    pub trigger: String,
    pub host: String,
    pub operator: String,
    pub started: String,
    pub ended: Option<String>,
    pub snapshot: Option<String>,
    pub snapshot_time: Option<String>,
    pub level_reached: Option<u64>,
    pub level_required: Option<u64>,
    pub checks: Vec<RecordCheck>,
    pub files_verified: Option<u64>,
    pub bytes_verified: Option<u64>,
    pub rows_verified: Option<u64>,
    pub files: Option<u64>,
    pub bytes_read: Option<u64>,
    pub bytes_added: Option<u64>,
    pub rto_target_ms: Option<u64>,
    pub rto_actual_ms: Option<u64>,
    pub rpo_target_ms: Option<u64>,
    pub rpo_achieved_ms: Option<u64>,
    pub snapshot_age_ms: Option<u64>,
    pub target: Option<String>,
    pub segregated: Option<bool>,
    pub outcome: Option<Status>,
    pub errors: Vec<String>,
    pub cleanup: Option<Vec<String>>,
    pub cleanup_ok: Option<bool>,
    pub cold: Option<bool>,
    /// The copy a drill restored from (`drill --copy`), absent for drills of the job's own
    /// repository: such a drill never counts for the job's own readiness.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy: Option<String>,
    /// A copy step's copies (absent from the records of other steps).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub copies: Vec<RecordCopy>,
    /// Absent from records written before rempart recorded them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objectives: Option<RecordObjectives>,
    pub rempart_version: String,
    pub job_definition_hash: Option<String>,
    pub repository_id: String,
    /// Set when the record is appended to its chain.
    pub chain: String,
    pub seq: u64,
    pub prev: String,
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl EvidenceRecord {
    /// The facts of a run as the ledger keeps them (chain, seq and prev are set on append).
    pub fn from_run(job: &Job, r: &RunRecord, repository_id: &str) -> EvidenceRecord {
        let drill = r.outcome.details.drill();
        let ms = |secs: Option<u64>| secs.map(|s| s * 1000);
        let checks = match &r.outcome.details {
            StepDetails::Drill(d) => d
                .checks
                .iter()
                .map(|c| RecordCheck {
                    level: Some(c.level),
                    name: c.name.clone(),
                    passed: c.passed,
                    detail: Some(c.detail.clone()),
                })
                .collect(),
            StepDetails::Check(c) => vec![RecordCheck {
                level: None,
                name: "repository check".into(),
                passed: r.outcome.status == Status::Success,
                detail: Some(c.report.read_data.clone()),
            }],
            _ => vec![],
        };
        EvidenceRecord {
            record_id: r.run_id.clone(),
            job: job.name.clone(),
            step: Some(r.step),
            trigger: r.trigger.clone(),
            host: r.host.clone(),
            operator: r.operator.clone(),
            started: rfc3339(r.started),
            ended: r.ended.map(rfc3339),
            snapshot: r.outcome.snapshot.clone(),
            snapshot_time: r.outcome.snapshot_time.map(rfc3339),
            level_reached: drill.map(|d| u64::from(d.level_reached)),
            level_required: drill.map(|d| u64::from(d.level_required)),
            checks,
            files_verified: drill.map(|d| d.files_verified),
            bytes_verified: drill.map(|d| d.bytes_verified),
            rows_verified: drill.map(|d| d.rows_verified),
            files: r.outcome.files,
            bytes_read: r.outcome.bytes_read,
            bytes_added: r.outcome.bytes_added,
            rto_target_ms: job.rto.map(|d| d.as_millis() as u64),
            rto_actual_ms: drill.and_then(|d| d.rto_actual_ms),
            rpo_target_ms: job.rpo.map(|d| d.as_millis() as u64),
            rpo_achieved_ms: ms(drill.and_then(|d| d.since_last_backup_secs)),
            snapshot_age_ms: ms(drill.and_then(|d| d.snapshot_age_secs)),
            target: drill.map(|d| d.target.clone()),
            segregated: drill.map(|d| d.segregated),
            outcome: Some(r.outcome.status),
            errors: r.outcome.error.iter().cloned().collect(),
            cleanup: drill.map(|d| d.cleanup.clone()),
            cleanup_ok: drill.map(|d| d.cleanup_ok),
            cold: drill.map(|d| d.cold),
            copy: drill.and_then(|d| d.copy.clone()),
            copies: r
                .outcome
                .details
                .copy()
                .map(|c| {
                    c.targets
                        .iter()
                        .map(|t| RecordCopy {
                            name: t.name.clone(),
                            repository: t.repository.clone(),
                            repository_id: t.repository_id.clone(),
                            reached: t.error.is_none(),
                            newest_snapshot_time: t.newest_snapshot_time.map(rfc3339),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            objectives: Some(RecordObjectives::of(job)),
            rempart_version: env!("CARGO_PKG_VERSION").into(),
            job_definition_hash: r.definition_hash.clone(),
            repository_id: repository_id.into(),
            chain: String::new(),
            seq: 0,
            prev: String::new(),
        }
    }

    /// The JSON value whose compact form is the canonical text (integers only, sorted keys).
    pub fn to_canonical_value(&self) -> Value {
        integers_only(serde_json::to_value(self).expect("records serialize"))
    }

    /// Reads a record from its canonical text (of any version; missing fields default).
    pub fn parse(canonical: &str) -> EvidenceRecord {
        serde_json::from_str(canonical).unwrap_or_default()
    }

    /// A drill record that passed.
    pub fn passed(&self) -> bool {
        self.outcome == Some(Status::Success)
    }

    /// When the run ended.
    pub fn ended_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.ended
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_keeps_the_ledger_shape() {
        let rec = EvidenceRecord {
            record_id: "r".into(),
            job: "j".into(),
            step: Some(Step::Drill),
            outcome: Some(Status::Success),
            level_reached: Some(3),
            ended: Some("2026-11-29T10:00:00.000Z".into()),
            ..Default::default()
        };
        let text = canonical(&rec.to_canonical_value());
        // Sorted keys, no whitespace, nulls kept.
        assert!(
            text.starts_with(
                "{\"bytes_added\":null,\"bytes_read\":null,\"bytes_verified\":null,\"chain\":\"\",\"checks\":[]"
            ),
            "{text}"
        );
        let back = EvidenceRecord::parse(&text);
        assert_eq!(back.step, Some(Step::Drill));
        assert!(back.passed());
        use chrono::TimeZone;
        assert_eq!(back.ended_at().unwrap(), chrono::Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0).unwrap());
        // A record of an earlier version, with fewer fields, still reads.
        let old =
            EvidenceRecord::parse("{\"job\":\"j\",\"step\":\"drill\",\"outcome\":\"failed\",\"seq\":4}");
        assert_eq!(old.seq, 4);
        assert!(!old.passed());
    }
}
