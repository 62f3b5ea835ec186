//! Gathering what the one verification needs, and holding its verdict for readiness.
//!
//! Reads every record of the local ledger, this installation's key, and, for every job, its
//! repository's evidence copies and registered keys. Repositories are opened, never created: a
//! job whose repository cannot be opened is named as unreachable. Status, the report, the
//! dashboard, the metrics and `evidence verify` all build their answer from an [`Audit`].

use std::collections::HashMap;
use std::path::Path;

use super::ledger::{entries, load_copies_lenient, LedgerEntry};
use super::verify::{verify_ledger, Finding, RepoEvidence, Verdict};
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::jobs::Job;

/// The ledger, its verdict, and which repository each job uses.
#[derive(Clone, Debug, Default)]
pub struct Audit {
    /// The local ledger.
    pub entries: Vec<LedgerEntry>,
    /// The copies the reachable repositories hold (other installations' chains among them,
    /// which this ledger may not hold at all).
    pub repository_entries: Vec<LedgerEntry>,
    pub verdict: Verdict,
    /// Job name to its repository id, or why it could not be opened.
    pub job_repositories: HashMap<String, std::result::Result<String, String>>,
}

impl Audit {
    /// Verifies `entries` against `repos` (used by [`audit`], and by tests that build the
    /// inputs themselves).
    pub fn from_parts(
        entries: Vec<LedgerEntry>,
        repos: Vec<RepoEvidence>,
        unreachable: Vec<String>,
        job_repositories: HashMap<String, std::result::Result<String, String>>,
        local_key: Option<&ed25519_dalek::VerifyingKey>,
        pinned: &[String],
        pending: &std::collections::HashSet<String>,
    ) -> Audit {
        let verdict = verify_ledger(&entries, &repos, unreachable, local_key, pinned, pending);
        let repository_entries = repos.into_iter().flat_map(|r| r.copies).map(|c| c.entry).collect();
        Audit { entries, repository_entries, verdict, job_repositories }
    }
}

/// Audits the ledger of this installation for `jobs`.
///
/// # Errors
/// The catalog or the evidence key cannot be read.
pub fn audit(
    jobs: &[Job],
    state_dir: &Path,
    keys_dir: &Path,
    pinned: &[String],
    handle: &tokio::runtime::Handle,
) -> Result<Audit> {
    let mut catalog = Catalog::open(state_dir)?;
    let local = entries(&mut catalog, None)?;
    let pending = super::ledger::pending(&mut catalog)?;
    // Read, never created: auditing from another folder must not mint a key of its own.
    let key = super::key::load(keys_dir)?;
    let mut repos: Vec<RepoEvidence> = Vec::new();
    let mut unreachable = Vec::new();
    let mut job_repositories = HashMap::new();
    let mut damaged: Vec<Finding> = Vec::new();
    for job in jobs {
        let repo = match crate::jobs::access::open_existing_job_repository(job, state_dir, handle) {
            Ok(r) => r,
            Err(e) => {
                unreachable.push(format!("job '{}': repository '{}': {e}", job.name, job.repository));
                job_repositories.insert(job.name.clone(), Err(e.to_string()));
                continue;
            }
        };
        let rid = repo.id().to_hex();
        job_repositories.insert(job.name.clone(), Ok(rid.clone()));
        if repos.iter().any(|r| r.repository_id == rid) {
            continue;
        }
        let read = load_copies_lenient(&repo).and_then(|(copies, bad)| {
            let (keys, bad_keys) = super::registry::load(&repo)?;
            Ok((copies, keys, bad.into_iter().chain(bad_keys).collect::<Vec<_>>()))
        });
        match read {
            Ok((copies, keys, bad)) => {
                damaged.extend(damaged_objects(&rid, bad));
                repos.push(RepoEvidence { repository_id: rid, copies, keys });
            }
            Err(e) => {
                // The repository opened, but its evidence cannot be listed or read: nothing can
                // be compared, and readiness says why rather than "never drilled".
                let why = format!("its evidence cannot be read: {e}");
                unreachable.push(format!("job '{}': repository '{}': {why}", job.name, job.repository));
                for (name, r) in &mut job_repositories {
                    if r.as_ref().is_ok_and(|id| *id == rid) || *name == job.name {
                        *r = Err(why.clone());
                    }
                }
            }
        }
    }
    // The jobs' copies hold the chains of drills run on them (`drill --copy`): those chains,
    // and only those, are read from each copy, so their records are compared too. What else a
    // copy holds (the replicated chains of its source) is for the day the source is lost: read
    // here, a planted record there could raise findings against the source's chains.
    for job in jobs {
        let own = job_repositories.get(&job.name).and_then(|r| r.as_ref().ok()).cloned();
        for target in &job.copies {
            let repo = match crate::jobs::access::open_existing(&target.access(job), state_dir, handle) {
                Ok(r) => r,
                // Not made yet: no drill can have run on it.
                Err(Error::NotFound(_)) => continue,
                Err(e) => {
                    unreachable.push(format!(
                        "job '{}': copy '{}' at '{}': {e}",
                        job.name, target.name, target.repository
                    ));
                    continue;
                }
            };
            let rid = repo.id().to_hex();
            if own.as_deref() == Some(rid.as_str()) || repos.iter().any(|r| r.repository_id == rid) {
                continue;
            }
            let read = load_copies_lenient(&repo).and_then(|(copies, bad)| {
                let (keys, _) = super::registry::load(&repo)?;
                Ok((copies, keys, bad))
            });
            match read {
                Ok((copies, keys, bad)) => {
                    damaged.extend(damaged_objects(&rid, bad));
                    let copies = copies
                        .into_iter()
                        .filter(|c| super::verify::chain_repository(&c.entry.chain) == rid)
                        .collect();
                    repos.push(RepoEvidence { repository_id: rid, copies, keys });
                }
                Err(e) => unreachable.push(format!(
                    "job '{}': copy '{}' at '{}': its evidence cannot be read: {e}",
                    job.name, target.name, target.repository
                )),
            }
        }
    }
    let vk = key.map(|k| k.verifying_key());
    let mut a = Audit::from_parts(local, repos, unreachable, job_repositories, vk.as_ref(), pinned, &pending);
    a.verdict.findings.extend(damaged);
    Ok(a)
}

/// Findings for the evidence objects of repository `rid` that cannot be read (object, why).
fn damaged_objects(rid: &str, bad: Vec<(String, String)>) -> impl Iterator<Item = Finding> + '_ {
    bad.into_iter().map(move |(object, why)| Finding {
        chain: format!("?/{rid}"),
        seq: None,
        record_id: object,
        kind: "damaged-copy".into(),
        detail: why,
    })
}

/// [`audit`] in a step's context (its state and key folders, pinned keys and runtime).
///
/// # Errors
/// The catalog or the evidence key cannot be read.
pub fn for_context(ctx: &crate::jobs::access::RunContext, jobs: &[Job]) -> Result<Audit> {
    audit(jobs, &ctx.state_dir, &ctx.keys_dir, &ctx.pinned_keys, &ctx.handle)
}
