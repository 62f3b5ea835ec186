//! `rempart status`, `rempart evidence verify | export`

use std::collections::HashSet;
use std::io::Write;

use crate::catalog::Catalog;
use crate::cli::args::EvidenceCommand;
use crate::cli::context::Context;
use crate::error::{Error, ExitStatus, Result};
use crate::evidence::key::{fingerprint, load_or_create, public_pem};
use crate::evidence::ledger::{entries, load_copies};
use crate::evidence::readiness::{readiness, State};
use crate::evidence::verify::{verify, VerifyReport};

fn keys_dir(ctx: &Context) -> std::path::PathBuf {
    crate::jobs::Defaults::new(&ctx.jobs_dir, &ctx.state_dir(), ctx.global.keys.as_deref()).keys_dir
}

pub fn status(ctx: &Context) -> Result<ExitStatus> {
    let jobs = ctx.jobs()?;
    let mut catalog = Catalog::open(&ctx.state_dir())?;
    let all = entries(&mut catalog, None)?;
    let now = chrono::Utc::now();
    let list: Vec<_> = jobs.iter().map(|j| readiness(j, &all, now)).collect();
    if ctx.global.json {
        crate::cli::print_json(&list);
    } else {
        for r in &list {
            crate::outln!("{:<16} {:<15} {}", r.job, r.state.label(), r.reason);
        }
    }
    Ok(if list.iter().all(|r| r.state == State::Verified) {
        ExitStatus::Success
    } else {
        ExitStatus::NotVerified
    })
}

/// Verifies the local ledger against every job repository's copies.
pub fn verify_all(ctx: &Context) -> Result<VerifyReport> {
    let jobs = ctx.jobs()?;
    let key = load_or_create(&keys_dir(ctx))?;
    let vk = key.verifying_key();
    let mut catalog = Catalog::open(&ctx.state_dir())?;
    let local = entries(&mut catalog, None)?;
    let mut total = VerifyReport { key_fingerprint: fingerprint(&vk), ..Default::default() };
    let mut seen = HashSet::new();
    for job in &jobs {
        let repo = crate::runner::open::open_job_repository(job, &ctx.state_dir(), ctx.runtime.handle())?;
        let rid = repo.id().to_hex();
        if !seen.insert(rid.clone()) {
            continue;
        }
        let copies = load_copies(&repo)?;
        let suffix = format!("/{rid}");
        let mine: Vec<_> = local.iter().filter(|e| e.chain.ends_with(&suffix)).cloned().collect();
        let mut r = verify(&mine, &copies, &vk);
        let pem = public_pem(&key);
        if copies.iter().any(|c| c.public_key_pem != pem) {
            r.findings.push(crate::evidence::verify::Finding {
                chain: format!("*{suffix}"),
                seq: None,
                record_id: String::new(),
                kind: "re-signed".into(),
                detail: "some repository copies were signed by another evidence key than the local one"
                    .into(),
            });
        }
        total.records += r.records;
        total.repository_copies += r.repository_copies;
        total.chains.append(&mut r.chains);
        total.findings.append(&mut r.findings);
    }
    Ok(total)
}

pub fn run(ctx: &Context, cmd: EvidenceCommand) -> Result<ExitStatus> {
    match cmd {
        EvidenceCommand::Verify => {
            let r = verify_all(ctx)?;
            if ctx.global.json {
                crate::cli::print_json(&r);
            } else {
                crate::outln!(
                    "{} local records, {} repository copies, evidence key {}",
                    r.records,
                    r.repository_copies,
                    r.key_fingerprint
                );
                for c in &r.chains {
                    crate::outln!("chain {}: {} records, head {}", c.chain, c.records, c.head);
                }
                for f in &r.findings {
                    eprintln!(
                        "TAMPERED {} record {} ({}): {}: {}",
                        f.chain,
                        f.seq.map(|s| s.to_string()).unwrap_or("-".into()),
                        f.record_id,
                        f.kind,
                        f.detail
                    );
                }
                if r.ok() {
                    crate::outln!("the ledger is intact");
                }
            }
            Ok(if r.ok() { ExitStatus::Success } else { ExitStatus::Integrity })
        }
        EvidenceCommand::Export { since, format, output } => {
            let key = load_or_create(&keys_dir(ctx))?;
            let pem = public_pem(&key);
            let mut catalog = Catalog::open(&ctx.state_dir())?;
            let since = since
                .map(|s| crate::jobs::duration::parse_duration(&s).map_err(Error::invalid))
                .transpose()?
                .map(|d| chrono::Utc::now() - chrono::Duration::from_std(d).unwrap_or_default());
            let mut out = String::new();
            if format == "csv" {
                out.push_str("chain,seq,record_id,job,step,outcome,ended,hash,prev,signature\n");
            }
            for e in entries(&mut catalog, None)? {
                let f = e.fields();
                let ended = f["ended"].as_str().unwrap_or("").to_string();
                if let Some(s) = since {
                    if chrono::DateTime::parse_from_rfc3339(&ended).map(|t| t < s).unwrap_or(false) {
                        continue;
                    }
                }
                if format == "csv" {
                    let cell = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
                    out.push_str(&format!(
                        "{},{},{},{},{},{},{},{},{},{}\n",
                        cell(&e.chain),
                        e.seq,
                        cell(&e.record_id),
                        cell(f["job"].as_str().unwrap_or("")),
                        cell(f["step"].as_str().unwrap_or("")),
                        cell(f["outcome"].as_str().unwrap_or("")),
                        cell(&ended),
                        e.hash,
                        f["prev"].as_str().unwrap_or(""),
                        e.signature
                    ));
                } else {
                    let line = serde_json::json!({
                        "chain": e.chain,
                        "seq": e.seq,
                        "record_id": e.record_id,
                        "canonical": e.canonical,
                        "hash": e.hash,
                        "prev": f["prev"],
                        "signature": e.signature,
                        "public_key_pem": pem,
                    });
                    out.push_str(&line.to_string());
                    out.push('\n');
                }
            }
            match output {
                Some(p) => std::fs::File::create(&p)
                    .and_then(|mut f| f.write_all(out.as_bytes()))
                    .map_err(|e| Error::io(format!("cannot write '{}'", p.display()), e))?,
                None => print!("{out}"),
            }
            Ok(ExitStatus::Success)
        }
    }
}
