//! The evidence ledger: a tamper-evident record of every backup, check, prune and drill.
//!
//! One chain per host and repository. Each record is encoded canonically (RFC 8785 JSON: keys
//! sorted, no whitespace, integers only), hash-chained to the one before (SHA-256 of the
//! previous record's canonical bytes), and signed with an Ed25519 key kept with the other key
//! material (`KEYS/evidence.key`, mode 0600, created on first use). Records live in the catalog
//! and, write-once and encrypted, in the repository: a local key can re-sign an edited chain,
//! but it cannot change the repository's copies, so `rempart evidence verify` compares both and
//! names any edited, deleted, reordered, inserted or re-signed record. docs/evidence.md shows how
//! a third party verifies an export with standard tools.

pub mod key;
pub mod ledger;
pub mod readiness;
pub mod record;
pub mod verify;

use crate::catalog::RunRecord;
use crate::error::Result;
use crate::jobs::Job;
use crate::repo::Repository;
use crate::runner::RunContext;

/// Appends the record of a run to the ledger and writes its repository copy.
///
/// The repository is opened again when the step did not leave it open; when it cannot be
/// reached the record stays local (and `evidence verify` reports it as not in the repository).
pub fn record_run(
    ctx: &RunContext,
    job: &Job,
    run: &RunRecord,
    repo: Option<Repository>,
) -> Result<ledger::LedgerEntry> {
    let key = key::load_or_create(&ctx.keys_dir)?;
    let repo = match repo {
        Some(r) => Some(r),
        None => crate::runner::open::open_job_repository(job, &ctx.state_dir, &ctx.handle).ok(),
    };
    let repo_id = repo.as_ref().map(|r| r.id().to_hex()).unwrap_or_else(|| "unreachable".into());
    let chain = format!("{}/{}", run.host, repo_id);
    let mut catalog = ctx.catalog()?;
    let entry = ledger::append(&mut catalog, &key, &chain, record::from_run(job, run, &repo_id))?;
    if let Some(repo) = &repo {
        if let Err(e) = ledger::save_copy(repo, &entry, &key::public_pem(&key)) {
            tracing::warn!(
                "evidence record {} could not be copied into the repository: {e}",
                entry.record_id
            );
        }
    }
    Ok(entry)
}
