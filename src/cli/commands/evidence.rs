//! `rempart status`, `rempart evidence verify | export | verify-export`

use std::io::Write;

use crate::cli::args::EvidenceCommand;
use crate::cli::context::Context;
use crate::error::{Error, ExitStatus, Result};
use crate::evidence::audit::Audit;
use crate::evidence::export;
use crate::evidence::readiness::{readiness, State};

/// The audit every evidence command starts from (the one verification).
fn audit(ctx: &Context) -> Result<(Vec<crate::jobs::Job>, Audit)> {
    let jobs = ctx.jobs()?;
    let rctx = ctx.run_context(crate::util::username());
    let audit = crate::evidence::audit::for_context(&rctx, &jobs)?;
    Ok((jobs, audit))
}

pub fn status(ctx: &Context) -> Result<ExitStatus> {
    let (jobs, audit) = audit(ctx)?;
    let now = chrono::Utc::now();
    let list: Vec<_> = jobs.iter().map(|j| readiness(j, &audit, now)).collect();
    if ctx.global.json {
        crate::cli::print_json(&list);
    } else {
        for r in &list {
            crate::outln!("{:<16} {:<15} {}", r.job, r.state.label(), r.reason);
        }
        if !audit.verdict.findings.is_empty() {
            crate::outln!(
                "evidence: {} findings in the ledger ('rempart evidence verify' names them)",
                audit.verdict.findings.len()
            );
        }
    }
    Ok(if list.iter().all(|r| r.state == State::Verified) {
        ExitStatus::Success
    } else {
        ExitStatus::NotVerified
    })
}

pub fn run(ctx: &Context, cmd: EvidenceCommand) -> Result<ExitStatus> {
    match cmd {
        EvidenceCommand::Verify => {
            let (_, audit) = audit(ctx)?;
            let v = &audit.verdict;
            let status = if !v.findings.is_empty() {
                ExitStatus::Integrity
            } else if v.uncompared_records() > 0 {
                ExitStatus::Failure
            } else {
                ExitStatus::Success
            };
            if ctx.global.json {
                crate::cli::print_json(&serde_json::json!({ "status": status, "verdict": v }));
                return Ok(status);
            }
            crate::outln!(
                "checked all {} local records and {} repository copies in {} chains; this installation's evidence key: {} (pinned: {})",
                v.records,
                v.repository_copies,
                v.chains.len(),
                if v.key_fingerprint.is_empty() { "none here" } else { &v.key_fingerprint },
                v.pinned_keys.join(", ")
            );
            for c in &v.chains {
                crate::outln!(
                    "chain {} (host {}, key {}{}): {} local, {} in the repository, head {} {}{}",
                    c.chain,
                    if c.host.is_empty() { "?" } else { &c.host },
                    c.key_fingerprint.as_deref().unwrap_or("unknown"),
                    if c.pinned { ", pinned" } else { ", not pinned: not counted for readiness" },
                    c.local_records,
                    c.repository_records,
                    c.head_seq,
                    c.head,
                    if !c.compared {
                        "; NOT compared with its repository (not reachable from these jobs)".to_string()
                    } else if c.pending_upload > 0 {
                        format!(
                            "; {} records pending upload (written while the repository was read-only; the next run that can write uploads them)",
                            c.pending_upload
                        )
                    } else {
                        String::new()
                    }
                );
            }
            for u in &v.unreachable {
                eprintln!("not reachable: {u}");
            }
            for f in &v.findings {
                eprintln!(
                    "TAMPERED {} record {} ({}): {}: {}",
                    f.chain,
                    f.seq.map(|s| s.to_string()).unwrap_or("-".into()),
                    f.record_id,
                    f.kind,
                    f.detail
                );
            }
            match status {
                ExitStatus::Success => crate::outln!("the ledger is intact: all {} records verified", v.records),
                ExitStatus::Failure => eprintln!(
                    "the ledger is NOT confirmed intact: {} of {} records could not be compared with their repository (a repository not reachable from these jobs: run from the host and jobs folder that wrote them; or records pending upload)",
                    v.uncompared_records(),
                    v.records
                ),
                _ => eprintln!("{} findings: the ledger was tampered with", v.findings.len()),
            }
            Ok(status)
        }
        EvidenceCommand::Export { since, format, output } => {
            let since = since
                .map(|s| crate::jobs::duration::parse_duration(&s).map_err(Error::invalid))
                .transpose()?
                .map(|d| chrono::Utc::now() - chrono::Duration::from_std(d).unwrap_or_default());
            let rctx = ctx.run_context(crate::util::username());
            // Read, never created: an export signed by a key minted now would prove nothing.
            let key = crate::evidence::key::load(&rctx.keys_dir)?.ok_or_else(|| {
                Error::not_found(format!(
                    "no evidence key in '{}': this installation has recorded no evidence to export (give --keys of the installation that did)",
                    rctx.keys_dir.display()
                ))
            })?;
            let mut catalog = rctx.catalog()?;
            let all = crate::evidence::ledger::entries(&mut catalog, None)?;
            let out = match format.as_str() {
                "csv" => export::csv(&all, &key, since),
                _ => export::jsonl(&all, &key, since, chrono::Utc::now()),
            };
            match output {
                Some(p) => std::fs::File::create(&p)
                    .and_then(|mut f| f.write_all(out.as_bytes()))
                    .map_err(|e| Error::io(format!("cannot write '{}'", p.display()), e))?,
                None => crate::cli::out(&out),
            }
            Ok(ExitStatus::Success)
        }
        EvidenceCommand::VerifyExport { file, key_fingerprint } => {
            let text = std::fs::read_to_string(&file).map_err(|e| {
                Error::invalid(format!("evidence export '{}' cannot be read: {e}", file.display()))
            })?;
            let r = export::verify_export(&text, &key_fingerprint);
            if ctx.global.json {
                crate::cli::print_json(&r);
            } else {
                for c in &r.chains {
                    crate::outln!("chain {}: records {} to {}, head {}", c.0, c.1, c.2, c.3);
                }
                for p in &r.problems {
                    eprintln!("FAILED {p}");
                }
                if r.problems.is_empty() {
                    crate::outln!("{} records verified against key {}", r.records, key_fingerprint);
                }
            }
            Ok(if r.problems.is_empty() { ExitStatus::Success } else { ExitStatus::Integrity })
        }
    }
}
