//! The fleet report: the readiness of every host and job that writes into one repository,
//! built from the repository alone (its snapshots, evidence copies and registered keys), so
//! any machine holding the repository key can run it, the auditor's among them.
//!
//! Each evidence chain (one per installation key) is one host. Every chain is verified with
//! the one verification ([`crate::evidence::verify`]); a job's readiness comes from the one
//! readiness rule ([`crate::evidence::readiness::readiness_of`]) applied to that chain alone,
//! with the objectives its newest record carries (the host's job files are not needed). A
//! chain counts only when its key is pinned by whoever runs the report (`[evidence]
//! pinned_keys` or `--pin`): a key registered in the repository proves only that someone
//! holding the repository key wrote it.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::catalog::run::{Status, Step};
use crate::error::Result;
use crate::evidence::audit::Audit;
use crate::evidence::ledger::{load_copies_lenient, LedgerEntry};
use crate::evidence::readiness::{readiness_of, Cause, Objectives, State};
use crate::evidence::record::EvidenceRecord;
use crate::evidence::verify::{verify_ledger, RepoEvidence, Verdict};
use crate::repo::Repository;

pub const FLEET_SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FleetJob {
    pub job: String,
    pub readiness: State,
    /// `cause` in English.
    pub reason: String,
    pub cause: Cause,
    pub last_backup: Option<DateTime<Utc>>,
    /// The last backup record's outcome (`success`, `partial`, `failed`, ...).
    pub last_backup_status: Option<Status>,
    pub last_drill: Option<DateTime<Utc>>,
    pub last_drill_passed: Option<bool>,
    pub last_drill_level: Option<u64>,
    pub rpo_target_secs: Option<u64>,
    /// The last successful backup is younger than the RPO.
    pub rpo_met: Option<bool>,
    pub rto_target_secs: Option<u64>,
    pub rto_last_secs: Option<f64>,
    pub rto_met: Option<bool>,
    /// Snapshots of this host and job in the repository.
    pub restore_points: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FleetHost {
    /// The host name its records carry (a label, not an identity: the key is).
    pub host: String,
    pub chain: String,
    pub key_fingerprint: Option<String>,
    pub pinned: bool,
    pub records: usize,
    pub head_seq: u64,
    /// What the verification found in this chain (empty when intact).
    pub findings: Vec<String>,
    pub jobs: Vec<FleetJob>,
    pub snapshots: u64,
    /// Bytes the host's backups read and added to the repository (what deduplication saved is
    /// the difference).
    pub bytes_read: u64,
    pub bytes_added: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FleetReport {
    pub schema_version: u32,
    pub generated: DateTime<Utc>,
    pub repository: String,
    pub repository_id: String,
    pub rempart_version: String,
    pub hosts: Vec<FleetHost>,
    /// Hosts with snapshots in the repository but no evidence chain (backups run outside
    /// jobs, or by an installation that never wrote evidence here): listed, never counted.
    pub hosts_without_evidence: Vec<String>,
    pub snapshots: u64,
    /// Evidence objects that cannot be read, and damaged snapshots: named, never skipped.
    pub damaged: Vec<String>,
    pub pinned_keys: Vec<String>,
}

impl FleetReport {
    /// Every job of every host is VERIFIED and no evidence is damaged.
    pub fn all_verified(&self) -> bool {
        self.damaged.is_empty()
            && self.hosts.iter().all(|h| h.jobs.iter().all(|j| j.readiness == State::Verified))
    }
}

/// Reads and judges the whole repository at `now`, counting the chains of `pinned` keys.
///
/// # Errors
/// Storage errors other than damaged objects (those are named in the report).
pub fn gather_fleet(repo: &Repository, pinned: &[String], now: DateTime<Utc>) -> Result<FleetReport> {
    let repository_id = repo.id().to_hex();
    let (snapshots, damaged_snapshots) = repo.list_snapshots()?;
    let (copies, damaged_copies) = load_copies_lenient(repo)?;
    let (keys, bad_keys) = crate::evidence::registry::load(repo)?;
    let evidence = RepoEvidence { repository_id: repository_id.clone(), copies, keys };
    let verdict = verify_ledger(&[], std::slice::from_ref(&evidence), vec![], None, pinned, &HashSet::new());
    let mut damaged: Vec<String> = damaged_copies
        .into_iter()
        .chain(bad_keys)
        .map(|(object, why)| format!("{object}: {why}"))
        .chain(damaged_snapshots.iter().map(|e| format!("snapshot: {e}")))
        .collect();
    damaged.sort();

    // Snapshots per (host, job), and per host.
    let mut points: HashMap<(String, String), u64> = HashMap::new();
    let mut per_host: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for (_, s) in &snapshots {
        *points.entry((s.hostname.clone(), s.job.clone().unwrap_or_default())).or_default() += 1;
        let h = per_host.entry(s.hostname.clone()).or_default();
        h.0 += 1;
        h.1 += s.summary.bytes_read;
        h.2 += s.summary.bytes_added;
    }

    let mut by_chain: BTreeMap<&str, Vec<&LedgerEntry>> = BTreeMap::new();
    for c in &evidence.copies {
        by_chain.entry(c.entry.chain.as_str()).or_default().push(&c.entry);
    }
    let mut hosts = Vec::new();
    for (chain, mut entries) in by_chain {
        entries.sort_by_key(|e| e.seq);
        entries.dedup_by_key(|e| e.seq);
        let Some(cv) = verdict.chains.iter().find(|c| c.chain == chain) else { continue };
        let findings: Vec<String> = verdict
            .findings
            .iter()
            .filter(|f| f.chain == chain)
            .map(|f| format!("record {}: {} ({})", f.seq.unwrap_or(0), f.kind, f.detail))
            .collect();
        let audit = chain_audit(&verdict, chain, &entries, &repository_id);
        let records: Vec<EvidenceRecord> = entries.iter().map(|e| e.record()).collect();
        let mut names: Vec<&str> = records.iter().map(|r| r.job.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let jobs = names
            .into_iter()
            .map(|name| {
                let mine: Vec<&EvidenceRecord> = records.iter().filter(|r| r.job == name).collect();
                let restore_points = points.get(&(cv.host.clone(), name.to_string())).copied().unwrap_or(0);
                fleet_job(&audit, cv.pinned, cv.key_fingerprint.as_deref(), &mine, restore_points, now)
            })
            .collect();
        let (snaps, read, added) = per_host.get(&cv.host).copied().unwrap_or_default();
        hosts.push(FleetHost {
            host: cv.host.clone(),
            chain: chain.to_string(),
            key_fingerprint: cv.key_fingerprint.clone(),
            pinned: cv.pinned,
            records: entries.len(),
            head_seq: cv.head_seq,
            findings,
            jobs,
            snapshots: snaps,
            bytes_read: read,
            bytes_added: added,
        });
    }
    hosts.sort_by(|a, b| (a.host.as_str(), a.chain.as_str()).cmp(&(b.host.as_str(), b.chain.as_str())));
    let with_chain: HashSet<&str> = hosts.iter().map(|h| h.host.as_str()).collect();
    let hosts_without_evidence =
        per_host.keys().filter(|h| !with_chain.contains(h.as_str())).cloned().collect();
    Ok(FleetReport {
        schema_version: FLEET_SCHEMA_VERSION,
        generated: now,
        repository: repo.storage().location(),
        repository_id,
        rempart_version: env!("CARGO_PKG_VERSION").into(),
        hosts,
        hosts_without_evidence,
        snapshots: snapshots.len() as u64,
        damaged,
        pinned_keys: verdict.pinned_keys.clone(),
    })
}

/// The audit readiness needs, narrowed to one chain: its records, its findings, its verdict.
/// Another host's job of the same name, or a finding in another chain, never decides this
/// host's readiness.
fn chain_audit(verdict: &Verdict, chain: &str, entries: &[&LedgerEntry], repository_id: &str) -> Audit {
    let narrowed = Verdict {
        chains: verdict.chains.iter().filter(|c| c.chain == chain).cloned().collect(),
        findings: verdict.findings.iter().filter(|f| f.chain == chain).cloned().collect(),
        ..verdict.clone()
    };
    let job_repositories =
        entries.iter().map(|e| (e.record().job, Ok(repository_id.to_string()))).collect::<HashMap<_, _>>();
    Audit {
        entries: Vec::new(),
        repository_entries: entries.iter().map(|e| (*e).clone()).collect(),
        verdict: narrowed,
        job_repositories,
    }
}

/// One job of one host: readiness from the chain, figures from its records.
fn fleet_job(
    audit: &Audit,
    pinned: bool,
    fingerprint: Option<&str>,
    records: &[&EvidenceRecord],
    restore_points: u64,
    now: DateTime<Utc>,
) -> FleetJob {
    let newest = records.last().expect("a job has records");
    let objectives = Objectives::from_record(newest);
    let ready = readiness_of(&objectives, audit, now);
    let (state, cause) = if pinned || ready.state == State::NotVerified {
        (ready.state, ready.cause)
    } else {
        // Not pinned: never VERIFIED, whatever the records say.
        (State::NeedsVerified, Cause::KeyNotPinned { fingerprint: fingerprint.unwrap_or("?").to_string() })
    };
    let started =
        |r: &EvidenceRecord| DateTime::parse_from_rfc3339(&r.started).ok().map(|t| t.with_timezone(&Utc));
    let backups: Vec<&&EvidenceRecord> = records.iter().filter(|r| r.step == Some(Step::Backup)).collect();
    let last_backup_record = backups.last();
    let last_ok = backups
        .iter()
        .rev()
        .find(|r| matches!(r.outcome, Some(Status::Success) | Some(Status::Partial)))
        .and_then(|r| started(r));
    let drill = records.iter().rev().find(|r| r.step == Some(Step::Drill) && r.copy.is_none());
    let rpo = objectives.rpo.map(|d| d.as_secs());
    let rto_target = newest.rto_target_ms.map(|ms| ms / 1000);
    let rto_last = drill.and_then(|d| d.rto_actual_ms).map(|ms| ms as f64 / 1000.0);
    FleetJob {
        job: objectives.job.clone(),
        readiness: state,
        reason: cause.english(),
        cause,
        last_backup: last_ok,
        last_backup_status: last_backup_record.and_then(|r| r.outcome),
        last_drill: drill.and_then(|d| d.ended_at()),
        last_drill_passed: drill.map(|d| d.passed()),
        last_drill_level: drill.and_then(|d| d.level_reached),
        rpo_target_secs: rpo,
        rpo_met: rpo.zip(last_ok).map(|(r, t)| (now - t).num_seconds() <= r as i64),
        rto_target_secs: rto_target,
        rto_last_secs: rto_last,
        rto_met: rto_target.zip(rto_last).map(|(t, l)| l <= t as f64),
        restore_points,
    }
}
