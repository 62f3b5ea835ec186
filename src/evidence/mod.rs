//! The evidence ledger: a tamper-evident record of every backup, check, prune and drill.
//!
//! One chain per installation and repository, identified by the installation's evidence key
//! (`key-FINGERPRINT/REPOSITORY-ID`) and labelled with its host name. Each record is encoded
//! canonically (RFC 8785 JSON: keys sorted, no whitespace, integers only), hash-chained to the
//! one before (SHA-256 of the previous record's canonical bytes), and signed with the Ed25519 key
//! kept with the other key material (`KEYS/evidence.key`, mode 0600, created on first use).
//! Records live in the catalog and, write-once and encrypted, in the repository, which also
//! holds every writing installation's public key (`registry`). A local key can re-sign an
//! edited chain, but it cannot change the repository's copies, so the one verification
//! ([`verify`]) names any edited, deleted, reordered, inserted or re-signed record; readiness
//! ([`readiness`]) counts only records it accepts. docs/evidence.md has the trust model.

pub mod audit;
pub(crate) mod export;
pub mod key;
pub mod ledger;
pub mod readiness;
pub mod record;
pub(crate) mod registry;
pub mod replicate;
pub mod verify;

use crate::catalog::RunRecord;
use crate::error::Result;
use crate::jobs::access::RunContext;
use crate::jobs::Job;
use crate::repo::Repository;

/// Appends the record of a run to the ledger and writes its repository copy.
///
/// The repository is opened again when the step did not leave it open (never created); when
/// it cannot be reached the record stays local (and verification reports its chain as not
/// compared). On a host whose ledger holds nothing of this installation's chain yet (a fresh
/// state directory with a restored evidence key, or a rebuilt catalog), the chain's records are
/// first adopted from the repository, so a chain never forks.
pub fn record_run(
    ctx: &RunContext,
    job: &Job,
    run: &RunRecord,
    repo: Option<Repository>,
) -> Result<ledger::LedgerEntry> {
    let key = key::load_or_create(&ctx.keys_dir)?;
    let repo = match repo {
        Some(r) => Some(r),
        None => crate::jobs::access::open_existing_job_repository(job, &ctx.state_dir, &ctx.handle).ok(),
    };
    let repo_id = repo.as_ref().map(|r| r.id().to_hex()).unwrap_or_else(|| verify::UNREACHABLE.into());
    let fp = key::fingerprint(&key.verifying_key());
    let chain = verify::chain_id(&fp, &repo_id);
    let mut catalog = ctx.catalog()?;
    if let Some(repo) = &repo {
        if ledger::entries(&mut catalog, Some(&chain))?.is_empty() {
            adopt_chain(&mut catalog, repo, &chain, &key.verifying_key())?;
        }
    }
    let entry =
        ledger::append(&mut catalog, &key, &chain, record::EvidenceRecord::from_run(job, run, &repo_id))?;
    if let Some(repo) = &repo {
        let pem = key::public_pem(&key);
        let copied = registry::ensure(repo, &key)
            .and_then(|()| ledger::upload_pending(&mut catalog, repo, &chain, &pem))
            .and_then(|_| ledger::save_copy(repo, &entry, &pem));
        if let Err(e) = copied {
            // A read-only repository (a cold drill from recovery media): the record waits
            // locally, marked pending, and the next run that can write uploads it.
            tracing::warn!(
                "evidence record {} could not be copied into the repository ({e}): kept locally as pending upload",
                entry.record_id
            );
            ledger::mark_pending(&mut catalog, &entry.record_id)?;
        }
    }
    Ok(entry)
}

/// The chains of `repo`'s evidence copies that verify standalone (each with its own key,
/// registered in the repository), in order; and, for each chain that does not, why. What a
/// ledger adopts from a repository must verify first: a planted copy must never become part
/// of the chain new records are linked to.
///
/// # Errors
/// Storage errors other than damaged objects.
pub fn verified_copies(
    repo: &Repository,
    local_key: Option<&ed25519_dalek::VerifyingKey>,
) -> Result<(Vec<ledger::LedgerEntry>, Vec<String>)> {
    let (copies, damaged) = ledger::load_copies_lenient(repo)?;
    let (keys, bad_keys) = registry::load(repo)?;
    let evidence = verify::RepoEvidence { repository_id: repo.id().to_hex(), copies, keys };
    let verdict = verify::verify_ledger(
        &[],
        std::slice::from_ref(&evidence),
        vec![],
        local_key,
        &[],
        &Default::default(),
    );
    let mut refused: Vec<String> =
        damaged.into_iter().chain(bad_keys).map(|(object, why)| format!("{object}: {why}")).collect();
    // The copies are verified on their own: that the local ledger lacks them ("deleted") is
    // what adoption and `catalog rebuild` are for, never a reason to refuse them.
    let findings: Vec<&verify::Finding> = verdict.findings.iter().filter(|f| f.kind != "deleted").collect();
    let bad_chains: std::collections::HashSet<&str> = findings.iter().map(|f| f.chain.as_str()).collect();
    for f in &findings {
        refused.push(format!("chain {} record {}: {} ({})", f.chain, f.seq.unwrap_or(0), f.kind, f.detail));
    }
    let mut good: Vec<ledger::LedgerEntry> = evidence
        .copies
        .into_iter()
        .map(|c| c.entry)
        .filter(|e| !bad_chains.contains(e.chain.as_str()))
        .collect();
    good.sort_by(|a, b| (a.chain.as_str(), a.seq).cmp(&(b.chain.as_str(), b.seq)));
    good.dedup_by(|a, b| a.chain == b.chain && a.seq == b.seq);
    Ok((good, refused))
}

/// Brings the records of `chain` that the repository holds, and that verify, into the local
/// ledger.
fn adopt_chain(
    catalog: &mut crate::catalog::Catalog,
    repo: &Repository,
    chain: &str,
    key: &ed25519_dalek::VerifyingKey,
) -> Result<usize> {
    let (good, refused) = verified_copies(repo, Some(key))?;
    for r in refused.iter().filter(|r| r.contains(chain)) {
        tracing::warn!("not adopting evidence from the repository: {r}");
    }
    let mut n = 0;
    for e in good.iter().filter(|e| e.chain == chain) {
        if ledger::restore_entry(catalog, e)? {
            n += 1;
        }
    }
    if n > 0 {
        tracing::info!("adopted {n} records of evidence chain {chain} from the repository");
    }
    Ok(n)
}
