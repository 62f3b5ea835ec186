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
use super::record::EvidenceRecord;
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
            Cause::CopiesMissing { required, fresh, freshness } => format!(
                "{fresh} of the {required} required copies hold a snapshot younger than {freshness} (3-2-1 not met)"
            ),
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

/// The readiness of `job` at `now` from an audit of the ledger.
pub fn readiness(job: &Job, audit: &super::audit::Audit, now: DateTime<Utc>) -> JobReadiness {
    let mk = |state, cause: Cause, last: Option<EvidenceRecord>| JobReadiness {
        job: job.name.clone(),
        state,
        reason: cause.english(),
        cause,
        last_drill: last,
    };
    let repo_id = match audit.job_repositories.get(&job.name) {
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
        audit.entries.iter().filter(|e| e.record().job == job.name).map(|e| e.chain.as_str()).collect();
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
        .filter(|r| r.job == job.name && r.step == Some(Step::Drill))
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
    let required = u64::from(job.drill.level);
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
    if age > job.drill.interval {
        let interval = crate::jobs::duration::format_duration(job.drill.interval);
        return mk(
            State::NeedsVerified,
            Cause::Overdue { required, age_hours: age.as_secs() / 3600, interval },
        );
    }
    let recorded = g.job_definition_hash.as_deref();
    if recorded != Some(job.definition_hash.to_hex().as_str())
        && recorded != Some(job.legacy_definition_hash.to_hex().as_str())
    {
        return mk(State::NeedsVerified, Cause::JobChanged);
    }
    if job.required_copies > 0 {
        let freshness = job.rpo.unwrap_or(job.drill.interval);
        let fresh = fresh_copies(audit, &repo_id, job, now, freshness);
        if fresh < job.required_copies {
            let freshness = crate::jobs::duration::format_duration(freshness);
            return mk(
                State::NeedsVerified,
                Cause::CopiesMissing { required: job.required_copies, fresh, freshness },
            );
        }
    }
    let level = g.level_reached.unwrap_or(0);
    mk(State::Verified, Cause::Passed { level, ended: ended_text(g) })
}

/// How many of the job's copies held a snapshot younger than `freshness` at `now`, according
/// to the latest copy record of a trusted chain of the job's repository.
fn fresh_copies(
    audit: &super::audit::Audit,
    repo_id: &str,
    job: &Job,
    now: DateTime<Utc>,
    freshness: std::time::Duration,
) -> u32 {
    let latest = audit
        .entries
        .iter()
        .chain(&audit.repository_entries)
        .filter(|e| super::verify::chain_repository(&e.chain) == repo_id && audit.verdict.trusted(&e.chain))
        .map(LedgerEntry::record)
        .filter(|r| r.job == job.name && r.step == Some(Step::Copy) && r.repository_id == repo_id)
        .max_by_key(EvidenceRecord::ended_at);
    let Some(latest) = latest else { return 0 };
    let limit = chrono::Duration::from_std(freshness).unwrap_or(chrono::Duration::MAX);
    latest
        .copies
        .iter()
        .filter(|c| c.reached && job.copies.iter().any(|t| t.name == c.name))
        .filter(|c| !last_copy_drill_failed(audit, job, c.repository_id.as_deref()))
        .filter_map(|c| c.newest_snapshot_time.as_deref())
        .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .filter(|t| now.signed_duration_since(t.with_timezone(&Utc)) <= limit)
        .count() as u32
}

/// True when the latest drill of the copy whose repository id is `copy_id` (`drill --copy`,
/// a trusted chain of that repository) failed: such a copy does not count as a copy.
fn last_copy_drill_failed(audit: &super::audit::Audit, job: &Job, copy_id: Option<&str>) -> bool {
    let Some(copy_id) = copy_id else { return false };
    audit
        .entries
        .iter()
        .chain(&audit.repository_entries)
        .filter(|e| super::verify::chain_repository(&e.chain) == copy_id && audit.verdict.trusted(&e.chain))
        .map(LedgerEntry::record)
        .filter(|r| r.job == job.name && r.step == Some(Step::Drill) && r.repository_id == copy_id)
        .max_by_key(EvidenceRecord::ended_at)
        .is_some_and(|r| !r.passed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::run::Status;
    use crate::evidence::audit::Audit;
    use crate::evidence::verify::chain_id;
    use crate::evidence::verify::tests::{chain, record};
    use ed25519_dalek::SigningKey;
    use std::collections::{HashMap, HashSet};

    const JOB: &str = "name = \"j\"\nsources = [\"/srv\"]\n[drill]\nlevel = 3\ninterval = \"2d\"\n";

    fn job(text: &str) -> Job {
        let dir = std::path::Path::new("/nonexistent/jobs");
        let defaults = crate::jobs::Defaults::new(dir, std::path::Path::new("/nonexistent/state"), Some(dir));
        crate::jobs::spec::parse_job(&dir.join("j.toml"), text, &defaults).expect("valid job")
    }

    fn drill(id: &str, job: &Job, ended: DateTime<Utc>, level: u64, outcome: Status) -> EvidenceRecord {
        let mut r = record(id);
        r.step = Some(Step::Drill);
        r.ended = Some(ended.to_rfc3339());
        r.level_reached = Some(level);
        r.outcome = Some(outcome);
        r.job_definition_hash = Some(job.definition_hash.to_hex().to_string());
        if outcome != Status::Success {
            r.errors = vec!["restored file differs".into()];
        }
        r
    }

    /// The readiness of `job` when the ledger holds `records`, all copied to the repository.
    fn ready(job: &Job, records: Vec<EvidenceRecord>, now: DateTime<Utc>) -> JobReadiness {
        let key = SigningKey::from_bytes(&[7; 32]);
        let id = chain_id(&crate::evidence::key::fingerprint(&key.verifying_key()), "repo");
        let entries = chain(&key, &id, records);
        let audit = audited(&key, entries.clone(), &entries, Ok("repo".into()));
        readiness(job, &audit, now)
    }

    /// An audit of the local `entries` against a repository holding `copies` (or unreachable).
    fn audited(
        key: &SigningKey,
        entries: Vec<LedgerEntry>,
        copies: &[LedgerEntry],
        repo: Result<String, String>,
    ) -> Audit {
        let pem = crate::evidence::key::public_pem(key);
        let repos = match &repo {
            Ok(_) => vec![crate::evidence::verify::RepoEvidence {
                repository_id: "repo".into(),
                copies: copies
                    .iter()
                    .map(|e| crate::evidence::ledger::RepoCopy {
                        entry: e.clone(),
                        public_key_pem: pem.clone(),
                    })
                    .collect(),
                keys: vec![crate::evidence::registry::RegisteredKey {
                    fingerprint: crate::evidence::key::fingerprint(&key.verifying_key()),
                    public_key_pem: pem.clone(),
                    host: "h".into(),
                    registered: Utc::now(),
                }],
            }],
            Err(_) => vec![],
        };
        let unreachable = repo.as_ref().err().cloned().into_iter().collect();
        let jobs = HashMap::from([("j".to_string(), repo)]);
        Audit::from_parts(entries, repos, unreachable, jobs, Some(&key.verifying_key()), &[], &HashSet::new())
    }

    #[test]
    fn each_state_follows_from_the_verified_drills() {
        let j = job(JOB);
        let now = Utc::now();
        let hour = chrono::Duration::hours(1);
        let r = ready(&j, vec![], now);
        assert_eq!((r.state, r.cause), (State::NeedsVerified, Cause::NeverDrilled));

        let r = ready(&j, vec![drill("a", &j, now - hour, 4, Status::Success)], now);
        assert_eq!(r.state, State::Verified, "{}", r.reason);

        let r = ready(&j, vec![drill("a", &j, now - hour * 49, 4, Status::Success)], now);
        assert!(matches!(r.cause, Cause::Overdue { age_hours: 49, .. }), "{:?}", r.cause);
        assert_eq!(r.state, State::NeedsVerified);

        let r = ready(&j, vec![drill("a", &j, now - hour, 2, Status::Success)], now);
        assert_eq!(r.cause, Cause::LevelNotReached { required: 3 });

        let passed_then_failed = vec![
            drill("a", &j, now - hour * 2, 4, Status::Success),
            drill("b", &j, now - hour, 4, Status::Failed),
        ];
        let r = ready(&j, passed_then_failed, now);
        assert_eq!(r.state, State::NotVerified);
        assert!(r.reason.contains("restored file differs"), "{}", r.reason);

        let changed = job(&format!("{JOB}snapshot = \"latest\"\n"));
        let r = ready(&changed, vec![drill("a", &j, now - hour, 4, Status::Success)], now);
        assert_eq!(r.cause, Cause::JobChanged);
        // Comments and key order are not changes.
        let reworded = job(&format!("# reworded\n{JOB}"));
        let r = ready(&reworded, vec![drill("a", &j, now - hour, 4, Status::Success)], now);
        assert_eq!(r.state, State::Verified, "{}", r.reason);
    }

    #[test]
    fn tampering_or_an_unreachable_repository_never_reads_verified() {
        let j = job(JOB);
        let now = Utc::now();
        let key = SigningKey::from_bytes(&[7; 32]);
        let id = chain_id(&crate::evidence::key::fingerprint(&key.verifying_key()), "repo");
        let passed = drill("a", &j, now - chrono::Duration::hours(1), 4, Status::Success);

        // A failed drill edited into a pass after it was copied to the repository.
        let mut failed = passed.clone();
        failed.outcome = Some(Status::Failed);
        let copied = chain(&key, &id, vec![failed]);
        let mut edited = copied.clone();
        edited[0].canonical = edited[0].canonical.replace("\"failed\"", "\"success\"");
        assert_ne!(edited[0].canonical, copied[0].canonical, "the edit must change the record");
        let r = readiness(&j, &audited(&key, edited, &copied, Ok("repo".into())), now);
        assert_eq!(r.state, State::NotVerified, "{}", r.reason);
        assert!(matches!(r.cause, Cause::EvidenceTampered { .. }), "{:?}", r.cause);

        // The repository cannot be read: nothing was compared, so nothing counts.
        let entries = chain(&key, &id, vec![passed.clone()]);
        let r = readiness(&j, &audited(&key, entries, &[], Err("connection refused".into())), now);
        assert_eq!(r.state, State::NotVerified);
        assert!(matches!(r.cause, Cause::RepositoryUnreachable { .. }));

        // A pass signed by a stranger's key into this installation's chain, copied as well.
        let stranger = SigningKey::from_bytes(&[9; 32]);
        let forged = chain(&stranger, &id, vec![passed]);
        let r = readiness(&j, &audited(&key, forged.clone(), &forged, Ok("repo".into())), now);
        assert_ne!(r.state, State::Verified, "{}", r.reason);
    }

    #[test]
    fn pinned_chains_in_the_repository_count_and_local_failures_and_future_passes_do_not_flatter() {
        let j = job(JOB);
        let now = Utc::now();
        let hour = chrono::Duration::hours(1);
        let mine = SigningKey::from_bytes(&[7; 32]);
        let theirs = SigningKey::from_bytes(&[8; 32]);
        let their_fp = crate::evidence::key::fingerprint(&theirs.verifying_key());
        // A recovery host's passing drill, only in the repository: counts once its key is pinned.
        let their_chain = chain_id(&their_fp, "repo");
        let copies = chain(&theirs, &their_chain, vec![drill("r", &j, now - hour, 4, Status::Success)]);
        let pem = crate::evidence::key::public_pem(&theirs);
        let repo = crate::evidence::verify::RepoEvidence {
            repository_id: "repo".into(),
            copies: copies
                .iter()
                .map(|e| crate::evidence::ledger::RepoCopy { entry: e.clone(), public_key_pem: pem.clone() })
                .collect(),
            keys: vec![crate::evidence::registry::RegisteredKey {
                fingerprint: their_fp.clone(),
                public_key_pem: pem,
                host: "recovery".into(),
                registered: now,
            }],
        };
        let jobs = || HashMap::from([("j".to_string(), Ok("repo".to_string()))]);
        let audit_with = |local: Vec<LedgerEntry>, pinned: &[String]| {
            Audit::from_parts(
                local,
                vec![repo.clone()],
                vec![],
                jobs(),
                Some(&mine.verifying_key()),
                pinned,
                &HashSet::new(),
            )
        };
        assert_eq!(readiness(&j, &audit_with(vec![], &[]), now).state, State::NeedsVerified);
        let pinned = [their_fp];
        let r = readiness(&j, &audit_with(vec![], &pinned), now);
        assert_eq!(r.state, State::Verified, "{}", r.reason);

        // Then a drill of this host that could not even open the repository failed.
        let unreachable = chain_id(
            &crate::evidence::key::fingerprint(&mine.verifying_key()),
            crate::evidence::verify::UNREACHABLE,
        );
        let mut failed = drill("f", &j, now - hour / 2, 0, Status::Failed);
        failed.repository_id = crate::evidence::verify::UNREACHABLE.into();
        let local = chain(&mine, &unreachable, vec![failed]);
        let r = readiness(&j, &audit_with(local, &pinned), now);
        assert_eq!(r.state, State::NotVerified, "{}", r.reason);

        // A pass dated next week never falls due: it does not count.
        let r = ready(&j, vec![drill("a", &j, now + chrono::Duration::days(7), 4, Status::Success)], now);
        assert_ne!(r.state, State::Verified, "{}", r.reason);
    }
}
