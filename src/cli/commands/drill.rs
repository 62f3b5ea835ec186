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
        // A ransomware drill is about one copy: named, or the job's only S3 copy.
        copy: match (a.ransomware, a.copy) {
            (true, None) => Some(crate::drill::ransomware::target(&job, None)?.name.clone()),
            (_, copy) => copy,
        },
        ransomware: a.ransomware,
        as_of: ctx.global.as_of,
    };
    if opts.as_of.is_some() && !opts.cold {
        return Err(crate::error::Error::invalid(
            "drill --as-of needs --cold: a drill of the repository as it was is a drill from its object versions alone, as a replacement machine would make it",
        ));
    }
    let step = if opts.ransomware { Step::Ransomware } else { Step::Drill };
    let _held = crate::runner::step_lock(&rctx, &job, step)?;
    crate::drill::preflight(&rctx, &job, &opts)?;
    let p = rctx.progress.clone();
    let progress = crate::cli::progress::Progress::start(
        !ctx.global.quiet,
        "drill",
        move || {
            let (phase, done, total) = p.read();
            crate::cli::progress::Status { done, total, detail: phase }
        },
        None,
    );
    let r = crate::runner::run_step_with(&rctx, &job, step, "manual", Some(&opts));
    progress.finish();
    if ctx.global.json {
        crate::cli::print_json(&r);
    } else if !ctx.global.quiet {
        if let Some(d) = r.outcome.details.drill() {
            print_report(&job.name, d);
        }
    }
    if let Some(e) = &r.outcome.error {
        eprintln!("drill FAILED: {e}");
    }
    Ok(if r.outcome.status == crate::catalog::Status::Success {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

fn print_report(job: &str, d: &crate::drill::DrillReport) {
    crate::outln!(
        "drill {} of job '{job}'{}: snapshot {} ({}), level {} of {} {}",
        d.drill_id,
        d.copy.as_deref().map(|c| format!(" (its copy '{c}')")).unwrap_or_default(),
        &d.snapshot[..8.min(d.snapshot.len())],
        d.snapshot_time.map(|t| t.to_rfc3339()).unwrap_or_default(),
        d.level_reached,
        d.level_required,
        if d.passed { "PASSED" } else { "FAILED" }
    );
    if let Some(at) = d.as_of {
        crate::outln!("  read as of {} (object versions)", at.to_rfc3339());
    }
    if let Some(rw) = &d.ransomware {
        crate::outln!(
            "  canary {} attacked as of {}: {} objects; the attacker overwrote {}, deleted {}, deleted {} versions ({} refused), shortened {} locks ({} refused); restored as of before: {}",
            rw.canary,
            rw.moment.map(|t| t.to_rfc3339()).unwrap_or_default(),
            rw.objects,
            rw.overwritten,
            rw.deleted,
            rw.versions_deleted,
            rw.version_delete_refused,
            rw.retention_shortened,
            rw.retention_shorten_refused,
            if rw.restored_as_of { "yes" } else { "NO" }
        );
    }
    for c in &d.checks {
        crate::outln!("  [{}] L{} {}: {}", if c.passed { "ok" } else { "FAIL" }, c.level, c.name, c.detail);
    }
    if !d.target.is_empty() {
        let isolation = if d.segregated {
            "segregated: on another server than the source"
        } else {
            "isolated, but on the source's host or server (not segregated)"
        };
        crate::outln!("  target: {} ({isolation})", d.target);
    }
    let met = |m: Option<bool>| if m == Some(true) { "met" } else { "MISSED" };
    if let Some(ms) = d.rto_actual_ms {
        crate::outln!(
            "  recovery time {:.1} s{}",
            ms as f64 / 1000.0,
            d.rto_target_secs.map(|t| format!(" (RTO {t} s: {})", met(d.rto_met))).unwrap_or_default()
        );
    }
    if let Some(age) = d.since_last_backup_secs {
        crate::outln!(
            "  last backup {} s ago{}",
            age,
            d.rpo_target_secs.map(|t| format!(" (RPO {t} s: {})", met(d.rpo_met))).unwrap_or_default()
        );
    }
    for line in &d.cleanup {
        crate::outln!("  cleanup: {line}");
    }
}
