//! `rempart drill JOB`

use crate::cli::args::DrillArgs;
use crate::cli::context::Context;
use crate::drill::DrillOptions;
use crate::error::{ExitStatus, Result};
use crate::jobs::Step;

pub fn run(ctx: &Context, a: DrillArgs) -> Result<ExitStatus> {
    let job = ctx.job(&a.job)?;
    let mut rctx = ctx.run_context(crate::util::username());
    rctx.cancel = crate::cli::cancel_on_signal(ctx);
    let opts = DrillOptions {
        snapshot: a.snapshot,
        level: a.level,
        cold: a.cold,
        recovery_file: ctx.global.recovery_file.clone(),
        password_file: ctx.global.password_file.clone(),
    };
    let _held = crate::runner::step_lock(&rctx, &job, Step::Drill)?;
    crate::drill::preflight(&rctx, &job, &opts)?;
    let r = crate::runner::run_step_with(&rctx, &job, Step::Drill, "manual", Some(&opts));
    if ctx.global.json {
        crate::cli::print_json(&r);
    } else if !ctx.global.quiet {
        match serde_json::from_value::<serde_json::Value>(r.details.clone()) {
            Ok(d) if d.get("checks").is_some() => print_report(&job.name, &d),
            _ => {}
        }
    }
    if let Some(e) = &r.error {
        eprintln!("drill FAILED: {e}");
    }
    Ok(if r.status == "success" { ExitStatus::Success } else { ExitStatus::Failure })
}

fn print_report(job: &str, d: &serde_json::Value) {
    let s = |k: &str| d.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    let n = |k: &str| d.get(k).and_then(|v| v.as_u64());
    crate::outln!(
        "drill {} of job '{job}': snapshot {} ({}), level {} of {} {}",
        s("drill_id"),
        &s("snapshot")[..8.min(s("snapshot").len())],
        s("snapshot_time"),
        n("level_reached").unwrap_or(0),
        n("level_required").unwrap_or(0),
        if d["passed"].as_bool() == Some(true) { "PASSED" } else { "FAILED" }
    );
    if let Some(checks) = d["checks"].as_array() {
        for c in checks {
            crate::outln!(
                "  [{}] L{} {}: {}",
                if c["passed"].as_bool() == Some(true) { "ok" } else { "FAIL" },
                c["level"],
                c["name"].as_str().unwrap_or(""),
                c["detail"].as_str().unwrap_or("")
            );
        }
    }
    if !s("target").is_empty() {
        let isolation = if d["segregated"].as_bool() == Some(true) {
            "segregated from the source"
        } else {
            "on the source's server, never the source database"
        };
        crate::outln!("  target: {} ({isolation})", s("target"));
    }
    if let Some(ms) = n("rto_actual_ms") {
        crate::outln!(
            "  recovery time {:.1} s{}",
            ms as f64 / 1000.0,
            n("rto_target_secs")
                .map(|t| format!(
                    " (RTO {t} s: {})",
                    if d["rto_met"].as_bool() == Some(true) { "met" } else { "MISSED" }
                ))
                .unwrap_or_default()
        );
    }
    if let Some(age) = n("since_last_backup_secs") {
        crate::outln!(
            "  last backup {} s ago{}",
            age,
            n("rpo_target_secs")
                .map(|t| format!(
                    " (RPO {t} s: {})",
                    if d["rpo_met"].as_bool() == Some(true) { "met" } else { "MISSED" }
                ))
                .unwrap_or_default()
        );
    }
    if let Some(c) = d["cleanup"].as_array() {
        for line in c {
            crate::outln!("  cleanup: {}", line.as_str().unwrap_or(""));
        }
    }
}
