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
use crate::evidence::ledger::{load_copies_lenient, sha256_hex, LedgerEntry};
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
    /// SHA-256 of the head record: keep it, and pass this report as `--previous` next time.
    pub head: String,
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

impl FleetJob {
    /// A job known only by name (from an earlier report): nothing in the repository about it.
    fn unknown(name: &str) -> FleetJob {
        let cause = Cause::NeverDrilled;
        FleetJob {
            job: name.to_string(),
            readiness: State::NeedsVerified,
            reason: cause.english(),
            cause,
            last_backup: None,
            last_backup_status: None,
            last_drill: None,
            last_drill_passed: None,
            last_drill_level: None,
            rpo_target_secs: None,
            rpo_met: None,
            rto_target_secs: None,
            rto_last_secs: None,
            rto_met: None,
            restore_points: 0,
        }
    }
}

impl FleetHost {
    /// A host the repository holds no chain of (deleted, or expected and never written).
    fn without_chain(host: &str, chain: &str, key_fingerprint: Option<String>, pinned: bool) -> FleetHost {
        FleetHost {
            host: host.to_string(),
            chain: chain.to_string(),
            key_fingerprint,
            pinned,
            records: 0,
            head_seq: 0,
            head: String::new(),
            findings: Vec::new(),
            jobs: Vec::new(),
            snapshots: 0,
            bytes_read: 0,
            bytes_added: 0,
        }
    }
}

/// Reads and judges the whole repository at `now`, counting the chains of `pinned` keys, and
/// holding every chain to what `previous` (an earlier fleet report's JSON) saw of it.
///
/// With no local ledger, nothing in the repository alone anchors the end of a chain: whoever
/// can delete objects could remove its newest records (a failed drill) unseen. So a pinned key
/// without a chain is a finding, and an earlier report anchors every chain it saw: a chain
/// that is gone, shorter, or whose record at the earlier head differs is a finding, and its
/// jobs are NOT VERIFIED.
///
/// # Errors
/// Storage errors other than damaged objects (those are named in the report).
pub fn gather_fleet(
    repo: &Repository,
    pinned: &[String],
    previous: Option<&serde_json::Value>,
    now: DateTime<Utc>,
) -> Result<FleetReport> {
    let repository_id = repo.id().to_hex();
    let (snapshots, damaged_snapshots) = repo.list_snapshots()?;
    let (copies, damaged_copies) = load_copies_lenient(repo)?;
    let (keys, bad_keys) = crate::evidence::registry::load(repo)?;
    let evidence = RepoEvidence { repository_id: repository_id.clone(), copies, keys };
    let verdict = verify_ledger(&[], std::slice::from_ref(&evidence), vec![], None, pinned, &HashSet::new());
    let damaged_evidence: Vec<String> =
        damaged_copies.into_iter().chain(bad_keys).map(|(object, why)| format!("{object}: {why}")).collect();
    let mut damaged: Vec<String> = damaged_evidence
        .iter()
        .cloned()
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
            head: cv.head.clone(),
            findings,
            jobs,
            snapshots: snaps,
            bytes_read: read,
            bytes_added: added,
        });
    }
    if let Some(prev) = previous {
        let hashes: HashMap<(&str, u64), String> = evidence
            .copies
            .iter()
            .map(|c| ((c.entry.chain.as_str(), c.entry.seq), sha256_hex(&c.entry.canonical)))
            .collect();
        anchor_to_previous(&mut hosts, prev, &hashes);
    }
    missing_pinned_chains(&mut hosts, pinned, &repository_id, &evidence.keys);
    // An evidence object that cannot be read may be any chain's newest record (a failed drill
    // damaged so that an earlier pass counts again): no host is VERIFIED while one is there,
    // as in the host report.
    for object in &damaged_evidence {
        for h in &mut hosts {
            tamper(h, format!("an evidence object of this repository cannot be read, and may be one of this chain's records: {object}"));
        }
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

/// Makes every job of `host` NOT VERIFIED for `finding`.
fn tamper(host: &mut FleetHost, finding: String) {
    host.findings.push(finding);
    let n = host.findings.len() as u64;
    for j in &mut host.jobs {
        j.readiness = State::NotVerified;
        j.cause = Cause::EvidenceTampered { findings: n };
        j.reason = j.cause.english();
    }
}

/// Holds every chain to what the earlier report `prev` saw: gone, shorter, or rewritten at the
/// earlier head is a finding (`hashes`: each record's hash by chain and number).
fn anchor_to_previous(
    hosts: &mut Vec<FleetHost>,
    prev: &serde_json::Value,
    hashes: &HashMap<(&str, u64), String>,
) {
    let when = prev["generated"].as_str().unwrap_or("?").to_string();
    for p in prev["hosts"].as_array().into_iter().flatten() {
        let (Some(chain), Some(seq)) = (p["chain"].as_str(), p["head_seq"].as_u64()) else { continue };
        let head = p["head"].as_str().unwrap_or_default();
        if seq == 0 {
            continue;
        }
        match hosts.iter_mut().find(|h| h.chain == chain) {
            Some(h) if h.head_seq < seq => tamper(
                h,
                format!("records deleted: the report of {when} saw {seq} records in this chain, the repository now holds {}", h.head_seq),
            ),
            Some(h) if hashes.get(&(chain, seq)).is_none_or(|x| x != head) => tamper(
                h,
                format!("record {seq} differs from the one the report of {when} saw: the chain was rewritten"),
            ),
            Some(_) => {}
            None => {
                let mut gone = FleetHost::without_chain(
                    p["host"].as_str().unwrap_or("?"),
                    chain,
                    p["key_fingerprint"].as_str().map(String::from),
                    p["pinned"].as_bool().unwrap_or(false),
                );
                gone.jobs = p["jobs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|j| j["job"].as_str())
                    .map(FleetJob::unknown)
                    .collect();
                tamper(
                    &mut gone,
                    format!("chain deleted: the report of {when} saw {seq} records in it, the repository now holds none"),
                );
                hosts.push(gone);
            }
        }
    }
}

/// A pinned key with no chain in the repository is a finding: its host's evidence is gone,
/// or it never ran a job here.
fn missing_pinned_chains(
    hosts: &mut Vec<FleetHost>,
    pinned: &[String],
    repository_id: &str,
    keys: &[crate::evidence::registry::RegisteredKey],
) {
    for fp in pinned {
        let fp = fp.to_ascii_lowercase();
        if hosts.iter().any(|h| h.key_fingerprint.as_deref() == Some(fp.as_str())) {
            continue;
        }
        let label = keys.iter().find(|k| k.fingerprint == fp).map_or("?", |k| k.host.as_str());
        let mut missing = FleetHost::without_chain(
            label,
            &crate::evidence::verify::chain_id(&fp, repository_id),
            Some(fp.clone()),
            true,
        );
        missing.findings.push(format!(
            "no evidence chain of pinned key {fp} in this repository: its records were deleted, or that host never ran a job here"
        ));
        hosts.push(missing);
    }
}
