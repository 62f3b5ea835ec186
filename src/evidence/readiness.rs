//! Readiness per job, derived from the verified ledger's drill records.
//!
//! - VERIFIED: the last drill at or above the job's required level passed, within the drill
//!   interval, and the job definition has not changed since;
//!   and, when `[objectives] copies = N`, at least N of its copies held a snapshot younger than
//!   the RPO (the drill interval without one) when the last copy step reached them, none of
//!   them with a failed last drill (`drill --copy`);
//! - NEEDS VERIFIED: never drilled at that level, the drill is overdue, the job changed, or too
//!   few fresh copies;
//! - NOT VERIFIED: the last drill failed, the evidence of the job's repository or chains was
//!   tampered with, or its repository cannot be reached.
//!
//! Only records that the one verification ([`super::verify`]) accepts count: signed by this
//! installation's key or one pinned in the configuration, in a chain without findings that was
//! compared with the job's own repository, and naming that repository. A record forged into the
//! local ledger, or into another chain, never makes a job VERIFIED.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::ledger::LedgerEntry;
use super::record::{EvidenceRecord, RecordObjectives};
use crate::catalog::run::Step;
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

/// Why a job has its readiness, with the facts the sentence needs; reports word it in their
/// language (`report::i18n::reason`), `reason` holds the English sentence.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum Cause {
    NeverDrilled,
    LastDrillFailed {
        ended: String,
        error: Option<String>,
    },
    LevelNotReached {
        required: u64,
    },
    Overdue {
        required: u64,
        age_hours: u64,
        interval: String,
    },
    JobChanged,
    Passed {
        level: u64,
        ended: String,
    },
    EvidenceTampered {
        findings: u64,
    },
    RepositoryUnreachable {
        error: String,
    },
    /// `[objectives] immutable`: no passing ransomware drill within the drill interval; `last`
    /// is when the latest one ended, `failed` whether it failed.
    ImmutabilityUnproven {
        last: Option<String>,
        failed: bool,
        interval: String,
    },
    /// The fleet report: the chain's key is registered in the repository but not pinned by
    /// whoever runs the report, so its records prove nothing yet.
    KeyNotPinned {
        fingerprint: String,
    },
    /// Fewer copies than `[objectives] copies` hold a snapshot younger than `freshness`.
    CopiesMissing {
        required: u32,
        fresh: u32,
        freshness: String,
    },
}

impl Cause {
    /// The English sentence.
    pub fn english(&self) -> String {
        match self {
            Cause::NeverDrilled => "never drilled".into(),
            Cause::LastDrillFailed { ended, error } => {
                format!("the last drill ({ended}) failed: {}", error.as_deref().unwrap_or("the drill failed"))
            }
            Cause::LevelNotReached { required } => {
                format!("no drill has reached the required level {required} yet")
            }
            Cause::Overdue { required, age_hours, interval } => format!(
                "the last drill at level {required} passed {} ago, beyond the {interval} interval",
                hours(*age_hours)
            ),
            Cause::JobChanged => "the job definition changed since the last passing drill".into(),
            Cause::Passed { level, ended } => format!("drill at level {level} passed {ended}"),
            Cause::EvidenceTampered { findings } => format!(
                "the evidence ledger was tampered with ({findings} findings; 'rempart evidence verify' names them)"
            ),
            Cause::RepositoryUnreachable { error } => {
                format!("the repository cannot be read, so recovery cannot be proven now: {error}")
            }
            Cause::KeyNotPinned { fingerprint } => format!(
                "its evidence key {fingerprint} is not pinned here: its records are shown but prove nothing until it is pinned ([evidence] pinned_keys or --pin)"
            ),
            Cause::CopiesMissing { required, fresh, freshness } => format!(
                "{fresh} of the {required} required copies hold a snapshot younger than {freshness} (3-2-1 not met)"
            ),
            Cause::ImmutabilityUnproven { last: None, .. } => {
                "the copy was never proven immutable: run 'rempart drill JOB --ransomware'".into()
            }
            Cause::ImmutabilityUnproven { last: Some(when), failed: true, .. } => {
                format!("the last ransomware drill ({when}) failed: the copy is not proven immutable")
            }
            Cause::ImmutabilityUnproven { last: Some(when), failed: false, interval } => {
                format!("the last ransomware drill ({when}) is older than the drill interval ({interval})")
            }
        }
    }
}

/// Whole hours as a duration (like `76h`, or `3d` when whole days).
pub fn hours(h: u64) -> String {
    crate::jobs::duration::format_duration(std::time::Duration::from_secs(h * 3600))
}

#[derive(Clone, Debug, Serialize)]
pub struct JobReadiness {
    pub job: String,
    pub state: State,
    /// `cause` in English.
    pub reason: String,
    pub cause: Cause,
    /// The latest drill record that counts.
    pub last_drill: Option<EvidenceRecord>,
}

/// True for a record of this installation's chain of runs that could not open their repository,
/// when that chain verified without findings.
fn local_failure(audit: &super::audit::Audit, e: &LedgerEntry) -> bool {
    super::verify::chain_repository(&e.chain) == super::verify::UNREACHABLE
        && audit
            .verdict
            .chains
            .iter()
            .any(|c| c.chain == e.chain && c.local_only && c.findings == 0 && c.pinned)
}

/// What a job must meet: from its definition (a host's own report), or from the newest
/// record of its chain (the fleet report, which has no job files).
#[derive(Clone, Debug)]
pub struct Objectives {
    pub job: String,
    pub targets: RecordObjectives,
    pub rpo: Option<std::time::Duration>,
    /// The definition hashes a passing drill may carry (the current one, and its legacy form).
    pub definitions: Vec<String>,
}

impl Objectives {
    pub fn of(job: &Job) -> Objectives {
        Objectives {
            job: job.name.clone(),
            targets: RecordObjectives::of(job),
            rpo: job.rpo,
            definitions: vec![job.definition_hash.to_hex(), job.legacy_definition_hash.to_hex()],
        }
    }

    /// The objectives `newest` (the newest record of a job in its chain) carries; a record
    /// written before rempart recorded them gives the defaults (level 3 weekly, no copies),
    /// with the level its own drill required when it is a drill record.
    pub fn from_record(newest: &EvidenceRecord) -> Objectives {
        let targets = newest.objectives.clone().unwrap_or_else(|| RecordObjectives {
            drill_level: newest.level_required.unwrap_or(3),
            drill_interval_ms: 7 * 24 * 3600 * 1000,
            ..Default::default()
        });
        Objectives {
            job: newest.job.clone(),
            targets,
            rpo: newest.rpo_target_ms.map(std::time::Duration::from_millis),
            definitions: newest.job_definition_hash.iter().cloned().collect(),
        }
    }

    fn drill_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.targets.drill_interval_ms)
    }
}

/// The readiness of `job` at `now` from an audit of the ledger.
pub fn readiness(job: &Job, audit: &super::audit::Audit, now: DateTime<Utc>) -> JobReadiness {
    readiness_of(&Objectives::of(job), audit, now)
}

/// The readiness of the job `job` describes at `now` from an audit of the ledger.
pub fn readiness_of(job: &Objectives, audit: &super::audit::Audit, now: DateTime<Utc>) -> JobReadiness {
    let mk = |state, cause: Cause, last: Option<EvidenceRecord>| JobReadiness {
        job: job.job.clone(),
        state,
        reason: cause.english(),
        cause,
        last_drill: last,
    };
    let repo_id = match audit.job_repositories.get(&job.job) {
        Some(Ok(id)) => id.clone(),
        Some(Err(e)) => {
            return mk(State::NotVerified, Cause::RepositoryUnreachable { error: e.clone() }, None)
        }
        None => {
            let error = "not audited".to_string();
            return mk(State::NotVerified, Cause::RepositoryUnreachable { error }, None);
        }
    };
    // Findings in the job's repository, or in any chain that holds records of the job.
    let job_chains: std::collections::HashSet<&str> =
        audit.entries.iter().filter(|e| e.record().job == job.job).map(|e| e.chain.as_str()).collect();
    let tampered = audit
        .verdict
        .findings
        .iter()
        .filter(|f| {
            super::verify::chain_repository(&f.chain) == repo_id || job_chains.contains(f.chain.as_str())
        })
        .count() as u64;
    if tampered > 0 {
        return mk(State::NotVerified, Cause::EvidenceTampered { findings: tampered }, None);
    }
    // Drill records of trusted chains of this repository, from the local ledger or (another
    // installation's, pinned) from the repository's copies; and failed drills that never
    // reached the repository (they can only make things worse, never VERIFIED).
    let mut seen = std::collections::HashSet::new();
    let mut drills: Vec<EvidenceRecord> = audit
        .entries
        .iter()
        .chain(&audit.repository_entries)
        .filter(|e| seen.insert(e.record_id.as_str()))
        .filter(|e| {
            let in_repo =
                super::verify::chain_repository(&e.chain) == repo_id && audit.verdict.trusted(&e.chain);
            in_repo || (local_failure(audit, e) && !e.record().passed())
        })
        .map(LedgerEntry::record)
        .filter(|r| r.job == job.job && r.step == Some(Step::Drill) && r.copy.is_none())
        .filter(|r| r.repository_id == repo_id || r.repository_id == super::verify::UNREACHABLE)
        .collect();
    drills.sort_by_key(EvidenceRecord::ended_at);
    let last = drills.last().cloned();
    let mk = |state, cause: Cause| mk(state, cause, last.clone());
    let ended_text = |r: &EvidenceRecord| r.ended.clone().unwrap_or_else(|| "?".into());
    let Some(l) = &last else {
        return mk(State::NeedsVerified, Cause::NeverDrilled);
    };
    if !l.passed() {
        let error = l.errors.first().cloned();
        return mk(State::NotVerified, Cause::LastDrillFailed { ended: ended_text(l), error });
    }
    let required = job.targets.drill_level;
    // A pass dated in the future (beyond clock skew) would never fall due: it does not count.
    let skew = chrono::Duration::minutes(5);
    let good = drills.iter().rev().find(|r| {
        r.passed()
            && r.level_reached.unwrap_or(0) >= required
            && r.ended_at().is_some_and(|t| t <= now + skew)
    });
    let Some(g) = good else {
        return mk(State::NeedsVerified, Cause::LevelNotReached { required });
    };
    let when = g.ended_at().unwrap_or_default();
    let age = (now - when).to_std().unwrap_or_default();
    if age > job.drill_interval() {
        let interval = crate::jobs::duration::format_duration(job.drill_interval());
        return mk(
            State::NeedsVerified,
            Cause::Overdue { required, age_hours: age.as_secs() / 3600, interval },
        );
    }
    if !g.job_definition_hash.as_ref().is_some_and(|h| job.definitions.contains(h)) {
        return mk(State::NeedsVerified, Cause::JobChanged);
    }
    if job.targets.copies_required > 0 {
        let freshness = job.rpo.unwrap_or(job.drill_interval());
        let fresh = fresh_copies(audit, &repo_id, job, now, freshness);
        if u64::from(fresh) < job.targets.copies_required {
            let freshness = crate::jobs::duration::format_duration(freshness);
            return mk(
                State::NeedsVerified,
                Cause::CopiesMissing { required: job.targets.copies_required as u32, fresh, freshness },
            );
        }
    }
    if job.targets.immutable_required {
        if let Some(cause) = immutability_unproven(audit, job, now) {
            let state = if matches!(cause, Cause::ImmutabilityUnproven { failed: true, .. }) {
                State::NotVerified
            } else {
                State::NeedsVerified
            };
            return mk(state, cause);
        }
    }
    let level = g.level_reached.unwrap_or(0);
    mk(State::Verified, Cause::Passed { level, ended: ended_text(g) })
}

/// Why `[objectives] immutable` is not met, if it is not: the latest ransomware drill of the
/// job (trusted chains, and this installation's own failures whatever their chain) failed, or
/// no passing one ended within the drill interval.
fn immutability_unproven(audit: &super::audit::Audit, job: &Objectives, now: DateTime<Utc>) -> Option<Cause> {
    let last = latest_counting(audit, |r| {
        r.job == job.job
            && r.step == Some(Step::Ransomware)
            // A drill of a copy without immutable_for proves nothing about the one that has it.
            && r.copy.as_deref().is_some_and(|c| job.targets.immutable_copies.iter().any(|t| t == c))
    });
    let interval = crate::jobs::duration::format_duration(job.drill_interval());
    let Some(last) = last else {
        return Some(Cause::ImmutabilityUnproven { last: None, failed: false, interval });
    };
    let ended = last.ended.clone().unwrap_or_else(|| "?".into());
    if !last.passed() {
        return Some(Cause::ImmutabilityUnproven { last: Some(ended), failed: true, interval });
    }
    let skew = chrono::Duration::minutes(5);
    let fresh = last
        .ended_at()
        .is_some_and(|t| t <= now + skew && (now - t).to_std().unwrap_or_default() <= job.drill_interval());
    (!fresh).then_some(Cause::ImmutabilityUnproven { last: Some(ended), failed: false, interval })
}

/// How many of the job's copies held a snapshot younger than `freshness` at `now`, according
/// to the latest copy record of a trusted chain of the job's repository.
fn fresh_copies(
    audit: &super::audit::Audit,
    repo_id: &str,
    job: &Objectives,
    now: DateTime<Utc>,
    freshness: std::time::Duration,
) -> u32 {
    let latest = audit
        .entries
        .iter()
        .chain(&audit.repository_entries)
        .filter(|e| super::verify::chain_repository(&e.chain) == repo_id && audit.verdict.trusted(&e.chain))
        .map(LedgerEntry::record)
        .filter(|r| r.job == job.job && r.step == Some(Step::Copy) && r.repository_id == repo_id)
        .max_by_key(EvidenceRecord::ended_at);
    let Some(latest) = latest else { return 0 };
    let limit = chrono::Duration::from_std(freshness).unwrap_or(chrono::Duration::MAX);
    latest
        .copies
        .iter()
        .filter(|c| c.reached && job.targets.copies.contains(&c.name))
        .filter(|c| !last_copy_drill_failed(audit, job, &c.name))
        .filter_map(|c| c.newest_snapshot_time.as_deref())
        .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| now.signed_duration_since(t.with_timezone(&Utc)))
        // A snapshot dated in the future (beyond clock skew) proves nothing about freshness.
        .filter(|age| *age >= -chrono::Duration::minutes(5) && *age <= limit)
        .count() as u32
}

/// True when the latest drill of copy `copy` (`drill --copy`) that counts ([`latest_counting`])
/// failed: such a copy does not count.
fn last_copy_drill_failed(audit: &super::audit::Audit, job: &Objectives, copy: &str) -> bool {
    latest_counting(audit, |r| {
        r.job == job.job && r.step == Some(Step::Drill) && r.copy.as_deref() == Some(copy)
    })
    .is_some_and(|r| !r.passed())
}

/// The latest record `wanted` picks among those that count: from trusted chains, and this
/// installation's own failures whatever the state of their chain (a copy unreachable at audit
/// time, a record pending upload): they can only make things worse.
fn latest_counting(
    audit: &super::audit::Audit,
    wanted: impl Fn(&EvidenceRecord) -> bool,
) -> Option<EvidenceRecord> {
    let mut seen = std::collections::HashSet::new();
    audit
        .entries
        .iter()
        .map(|e| (e, true))
        .chain(audit.repository_entries.iter().map(|e| (e, false)))
        .filter(|(e, _)| seen.insert(e.record_id.as_str()))
        .map(|(e, local)| (e, local, e.record()))
        .filter(|(_, _, r)| wanted(r))
        .filter(|(e, local, r)| audit.verdict.trusted(&e.chain) || (*local && !r.passed()))
        .map(|(_, _, r)| r)
        .max_by_key(EvidenceRecord::ended_at)
}
