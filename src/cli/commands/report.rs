//! `rempart report`

use crate::cli::args::ReportArgs;
use crate::cli::context::Context;
use crate::error::{Error, ExitStatus, Result};
use crate::report::i18n::Lang;

pub fn run(ctx: &Context, a: ReportArgs) -> Result<ExitStatus> {
    let since = crate::jobs::duration::parse_duration(&a.since).map_err(Error::invalid)?;
    let lang = Lang::parse(&a.lang).map_err(Error::invalid)?;
    if a.fleet {
        return fleet(ctx, &a, lang);
    }
    let mut jobs = ctx.jobs()?;
    if !a.only.is_empty() {
        for name in &a.only {
            if !jobs.iter().any(|j| &j.name == name) {
                return Err(Error::not_found(format!("no job '{name}' in '{}'", ctx.jobs_dir.display())));
            }
        }
        jobs.retain(|j| a.only.contains(&j.name));
    }
    let rctx = ctx.run_context(crate::util::username());
    // The audit covers every job (tampering anywhere in the ledger is the report's business).
    let audit = crate::evidence::audit::for_context(&rctx, &ctx.jobs()?)?;
    let report = crate::report::gather::gather(&jobs, &rctx, &audit, chrono::Utc::now(), since)?;
    // `--json` asks for machine output: the report's JSON, whatever --format says.
    let format = if ctx.global.json { "json" } else { a.format.as_str() };
    let text = match format {
        "json" => crate::report::render::json(&report),
        "md" => crate::report::render::markdown(&report, lang),
        _ => crate::report::render::html(&report, lang),
    };
    write_out(&a, &text)?;
    Ok(ExitStatus::Success)
}

/// `rempart report --fleet`: every host and job of the repository, from the repository alone.
fn fleet(ctx: &Context, a: &ReportArgs, lang: Lang) -> Result<ExitStatus> {
    let mut pinned = ctx.settings.pinned_keys.clone();
    for p in &a.pin {
        let fp = p.trim().to_ascii_lowercase();
        if fp.len() != 16 || !fp.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::invalid(format!(
                "--pin '{p}': expected an evidence key fingerprint of 16 hexadecimal digits ('rempart evidence verify' prints it on each host)"
            )));
        }
        pinned.push(fp);
    }
    let previous = match &a.previous {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                Error::io(format!("cannot read the previous fleet report '{}'", p.display()), e)
            })?;
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                Error::invalid(format!(
                    "--previous '{}': not a fleet report in JSON ({e}); expected the output of 'rempart --json report --fleet'",
                    p.display()
                ))
            })?;
            if !v["hosts"].is_array() {
                return Err(Error::invalid(format!(
                    "--previous '{}': no 'hosts' list; expected the output of 'rempart --json report --fleet'",
                    p.display()
                )));
            }
            Some(v)
        }
        None => None,
    };
    let repo = ctx.open()?;
    let report = crate::report::fleet::gather_fleet(&repo, &pinned, previous.as_ref(), chrono::Utc::now())?;
    let format = if ctx.global.json { "json" } else { a.format.as_str() };
    let text = match format {
        "json" => crate::report::fleet_render::json(&report),
        "md" => crate::report::fleet_render::markdown(&report, lang),
        _ => crate::report::fleet_render::html(&report, lang),
    };
    write_out(a, &text)?;
    Ok(ExitStatus::Success)
}

fn write_out(a: &ReportArgs, text: &str) -> Result<()> {
    match &a.output {
        Some(p) => {
            std::fs::write(p, text).map_err(|e| Error::io(format!("cannot write '{}'", p.display()), e))
        }
        None => {
            crate::cli::out(text);
            Ok(())
        }
    }
}
