//! Collecting a report's inputs: runs and ledger from the state directory, restore points and
//! ledger copies from the repositories.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::model::{build, EvidenceSummary, Report};
use crate::catalog::Catalog;
use crate::error::Result;
use crate::evidence::key::{fingerprint, load_or_create};
use crate::evidence::ledger::{entries, load_copies};
use crate::evidence::verify::verify;
use crate::jobs::Job;

/// Builds the report of `jobs`, reading their repositories (unreachable ones are noted).
pub fn gather(
    jobs: &[Job],
    state_dir: &Path,
    keys_dir: &Path,
    handle: &tokio::runtime::Handle,
    now: DateTime<Utc>,
    since: Duration,
) -> Result<Report> {
    let mut catalog = Catalog::open(state_dir)?;
    let runs = catalog.runs(None, DateTime::<Utc>::MIN_UTC)?;
    let ledger = entries(&mut catalog, None)?;
    let key = load_or_create(keys_dir)?;
    let vk = key.verifying_key();
    let mut points: HashMap<String, Vec<DateTime<Utc>>> = HashMap::new();
    let mut evidence =
        EvidenceSummary { key_fingerprint: fingerprint(&vk), records: ledger.len(), ..Default::default() };
    let mut verified_all = true;
    let mut seen = HashSet::new();
    for job in jobs {
        let repo = match crate::runner::open::open_job_repository(job, state_dir, handle) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("report: repository of job '{}' unreachable: {e}", job.name);
                verified_all = false;
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
        if !seen.insert(repo.id()) {
            continue;
        }
        let rid = repo.id().to_hex();
        let mine: Vec<_> = ledger.iter().filter(|e| e.chain.ends_with(&format!("/{rid}"))).cloned().collect();
        match load_copies(&repo) {
            Ok(copies) => {
                let v = verify(&mine, &copies, &vk);
                evidence.findings.extend(
                    v.findings
                        .iter()
                        .map(|f| format!("{} record {:?}: {} ({})", f.chain, f.seq, f.kind, f.detail)),
                );
                evidence.chain_heads.extend(v.chains.into_iter().map(|c| (c.chain, c.head)));
            }
            Err(e) => {
                verified_all = false;
                evidence.findings.push(format!("repository copies of {rid} unreadable: {e}"));
            }
        }
    }
    evidence.verified = if !evidence.findings.is_empty() {
        Some(false)
    } else if verified_all {
        Some(true)
    } else {
        None
    };
    Ok(build(jobs, &runs, &ledger, &points, evidence, now, since))
}
