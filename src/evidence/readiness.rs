//! Readiness per job, derived from the ledger's drill records.
//!
//! - VERIFIED: the last drill at or above the job's required level passed, within the drill
//!   interval, and the job definition has not changed since;
//! - NEEDS VERIFIED: never drilled at that level, the drill is overdue, or the job changed;
//! - NOT VERIFIED: the last drill failed.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::ledger::LedgerEntry;
use crate::jobs::Job;

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub enum State {
    #[serde(rename = "VERIFIED")]
    Verified,
    #[serde(rename = "NEEDS VERIFIED")]
    NeedsVerified,
    #[serde(rename = "NOT VERIFIED")]
    NotVerified,
}

impl State {
    pub fn label(self) -> &'static str {
        match self {
            State::Verified => "VERIFIED",
            State::NeedsVerified => "NEEDS VERIFIED",
            State::NotVerified => "NOT VERIFIED",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct JobReadiness {
    pub job: String,
    pub state: State,
    pub reason: String,
    /// The latest drill record (its canonical fields).
    pub last_drill: Option<serde_json::Value>,
}

fn ended(f: &serde_json::Value) -> Option<DateTime<Utc>> {
    f["ended"].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc))
}

/// The readiness of `job` at `now` from every ledger entry.
pub fn readiness(job: &Job, entries: &[LedgerEntry], now: DateTime<Utc>) -> JobReadiness {
    let mut drills: Vec<serde_json::Value> = entries
        .iter()
        .map(LedgerEntry::fields)
        .filter(|f| f["job"] == job.name.as_str() && f["step"] == "drill")
        .collect();
    drills.sort_by_key(ended);
    let last = drills.last().cloned();
    let mk = |state, reason: String| JobReadiness {
        job: job.name.clone(),
        state,
        reason,
        last_drill: last.clone(),
    };
    let Some(l) = &last else {
        return mk(State::NeedsVerified, "never drilled".into());
    };
    if l["outcome"] != "success" {
        let why = l["errors"].get(0).and_then(|e| e.as_str()).unwrap_or("the drill failed");
        return mk(
            State::NotVerified,
            format!("the last drill ({}) failed: {why}", l["ended"].as_str().unwrap_or("?")),
        );
    }
    let required = u64::from(job.drill.level);
    let good = drills
        .iter()
        .rev()
        .find(|f| f["outcome"] == "success" && f["level_reached"].as_u64().unwrap_or(0) >= required);
    let Some(g) = good else {
        return mk(State::NeedsVerified, format!("no drill has reached the required level {required} yet"));
    };
    let when = ended(g).unwrap_or_default();
    let age = (now - when).to_std().unwrap_or_default();
    if age > job.drill.interval {
        return mk(
            State::NeedsVerified,
            format!(
                "the last drill at level {required} passed {} ago, beyond the {} interval",
                crate::jobs::duration::format_duration(std::time::Duration::from_secs(
                    age.as_secs() / 3600 * 3600
                )),
                crate::jobs::duration::format_duration(job.drill.interval)
            ),
        );
    }
    if g["job_definition_hash"].as_str() != Some(job.definition_hash.to_hex().as_str()) {
        return mk(State::NeedsVerified, "the job definition changed since the last passing drill".into());
    }
    mk(
        State::Verified,
        format!("drill at level {} passed {}", g["level_reached"], g["ended"].as_str().unwrap_or("?")),
    )
}
