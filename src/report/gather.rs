//! Collecting a report's inputs: runs from the state directory, restore points from the
//! repositories, and the audit of the evidence ledger (the one verification, shared with
//! `status` and `evidence verify`). Repositories are opened, never created.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::model::{build, EvidenceSummary, Report};
use crate::catalog::Catalog;
use crate::error::Result;
use crate::evidence::audit::Audit;
use crate::evidence::readiness::readiness;
use crate::jobs::access::RunContext;
use crate::jobs::Job;

/// Builds the report of `jobs` from the catalog, the repositories and `audit`.
pub fn gather(
    jobs: &[Job],
    ctx: &RunContext,
    audit: &Audit,
    now: DateTime<Utc>,
    since: Duration,
) -> Result<Report> {
    let catalog = Catalog::open(&ctx.state_dir)?;
    let runs = catalog.runs(None, DateTime::<Utc>::MIN_UTC)?;
    let mut points: HashMap<String, Vec<DateTime<Utc>>> = HashMap::new();
    for job in jobs {
        let repo = match crate::jobs::access::open_existing_job_repository(job, &ctx.state_dir, &ctx.handle) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("report: repository of job '{}' unreadable: {e}", job.name);
                continue;
            }
        };
        if let Ok((snaps, _)) = repo.list_snapshots() {
            points.insert(
                job.name.clone(),
                snaps
                    .iter()
                    .filter(|(_, s)| s.job.as_deref() == Some(&job.name))
                    .map(|(_, s)| s.time)
                    .collect(),
            );
        }
    }
    let ready = jobs.iter().map(|j| (j.name.clone(), readiness(j, audit, now))).collect();
    Ok(build(jobs, &runs, &ready, &points, evidence_summary(audit), now, since))
}

/// The report's evidence section, from the audit.
pub fn evidence_summary(audit: &Audit) -> EvidenceSummary {
    let v = &audit.verdict;
    let mut findings: Vec<String> = v
        .findings
        .iter()
        .map(|f| format!("{} record {:?}: {} ({})", f.chain, f.seq, f.kind, f.detail))
        .collect();
    findings.extend(v.unreachable.iter().map(|u| format!("not verified: {u}")));
    EvidenceSummary {
        verified: if !v.findings.is_empty() {
            Some(false)
        } else if v.intact() && v.unreachable.is_empty() {
            Some(true)
        } else {
            None
        },
        findings,
        records: v.records,
        records_compared: v.records - v.uncompared_records(),
        chain_heads: v.chains.iter().map(|c| (c.chain.clone(), c.head.clone())).collect(),
        key_fingerprint: v.key_fingerprint.clone(),
    }
}
