//! `rempart catalog rebuild | runs`

use crate::catalog::{Catalog, RunRecord};
use crate::cli::args::CatalogCommand;
use crate::cli::context::Context;
use crate::error::{Error, ExitStatus, Result};

pub fn run(ctx: &Context, cmd: CatalogCommand) -> Result<ExitStatus> {
    match cmd {
        CatalogCommand::Rebuild => {
            let jobs = ctx.jobs()?;
            let mut catalog = Catalog::open(&ctx.state_dir())?;
            let mut added = 0;
            let mut missing = Vec::new();
            let mut repos = Vec::new();
            for job in &jobs {
                // Never created here: a job whose repository is not there has nothing to bring back.
                let repo = match crate::jobs::access::open_existing_job_repository(
                    job,
                    &ctx.state_dir(),
                    ctx.runtime.handle(),
                ) {
                    Ok(r) => r,
                    Err(crate::Error::NotFound(m)) => {
                        missing.push(m);
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                repos.push(repo.clone());
                let (snaps, _) = repo.list_snapshots()?;
                let register = crate::state::SnapshotRegister::open(&ctx.state_dir(), &repo.id());
                for (id, s) in snaps.into_iter().filter(|(_, s)| s.job.as_deref() == Some(&job.name)) {
                    if catalog.has_snapshot(&id.to_hex())? {
                        continue;
                    }
                    let started = s.time;
                    catalog.record(&RunRecord {
                        run_id: format!("rebuilt-{}", &id.to_hex()[..12]),
                        job: job.name.clone(),
                        step: crate::catalog::Step::Backup,
                        trigger: "rebuilt".into(),
                        host: s.hostname.clone(),
                        operator: s.username.clone(),
                        repository: job.repository.clone(),
                        started,
                        // A snapshot's figures are repository bytes: an absurd duration is
                        // left out, never a panic.
                        ended: chrono::Duration::try_milliseconds((s.summary.duration_secs * 1000.0) as i64)
                            .filter(|d| *d >= chrono::Duration::zero())
                            .and_then(|d| started.checked_add_signed(d)),
                        outcome: crate::catalog::RunOutcome {
                            status: if s.summary.errors.is_empty() {
                                crate::catalog::Status::Success
                            } else {
                                crate::catalog::Status::Partial
                            },
                            snapshot: Some(id.to_hex()),
                            snapshot_time: Some(s.time),
                            files: Some(
                                s.summary.files_new + s.summary.files_changed + s.summary.files_unmodified,
                            ),
                            bytes_read: Some(s.summary.bytes_read),
                            bytes_added: Some(s.summary.bytes_added),
                            error: None,
                            details: crate::catalog::StepDetails::None,
                        },
                        attempts: None,
                        definition_hash: None,
                    })?;
                    register.added(&id)?;
                    added += 1;
                }
            }
            // The ledger comes back from the repositories' write-once copies: the chains that
            // verify (a planted or damaged chain is named and left out).
            let key = crate::evidence::key::load(&ctx.run_context(String::new()).keys_dir)?;
            let vk = key.map(|k| k.verifying_key());
            let mut restored = 0;
            let mut refused_all = Vec::new();
            let mut seen = std::collections::HashSet::new();
            let mut chains = std::collections::BTreeSet::new();
            for repo in &repos {
                if !seen.insert(repo.id()) {
                    continue;
                }
                let (good, refused) = crate::evidence::verified_copies(repo, vk.as_ref())?;
                refused_all.extend(refused);
                for e in good {
                    chains.insert(e.chain.clone());
                    if crate::evidence::ledger::restore_entry(&mut catalog, &e)? {
                        restored += 1;
                    }
                }
            }
            for r in &refused_all {
                eprintln!("not restored: {r}");
            }
            for m in &missing {
                eprintln!("note: {m}; nothing to rebuild from it (no repository was created)");
            }
            if !ctx.global.quiet {
                crate::outln!(
                    "catalog '{}': {added} backup runs recreated from the repositories, {restored} evidence records restored in {} chains",
                    catalog.path().display(),
                    chains.len()
                );
                for c in &chains {
                    crate::outln!("  chain {c}");
                }
            }
            Ok(if refused_all.is_empty() { ExitStatus::Success } else { ExitStatus::Integrity })
        }
        CatalogCommand::Runs { job, since } => {
            let since = crate::jobs::duration::parse_duration(&since).map_err(Error::invalid)?;
            let catalog = Catalog::open(&ctx.state_dir())?;
            let runs = catalog.runs(
                job.as_deref(),
                chrono::Utc::now() - chrono::Duration::from_std(since).unwrap_or_default(),
            )?;
            if ctx.global.json {
                crate::cli::print_json(&runs);
            } else {
                for r in &runs {
                    crate::outln!(
                        "{} {:<12} {:<7} {:<11} {:<9} {}{}",
                        r.started.format("%Y-%m-%d %H:%M:%S"),
                        r.job,
                        r.step,
                        r.outcome.status,
                        r.trigger,
                        r.outcome.snapshot.as_deref().map(|s| &s[..8]).unwrap_or(""),
                        r.outcome.error.as_ref().map(|e| format!("  {e}")).unwrap_or_default()
                    );
                }
            }
            Ok(ExitStatus::Success)
        }
    }
}
