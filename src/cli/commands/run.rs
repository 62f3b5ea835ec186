//! `rempart run JOB --step STEP`

use crate::cli::args::RunArgs;
use crate::cli::context::Context;
use crate::error::{ExitStatus, Result};
use crate::jobs::Step;

pub fn run(ctx: &Context, a: RunArgs) -> Result<ExitStatus> {
    let job = ctx.job(&a.job)?;
    let step = Step::parse(&a.step).expect("clap checked");
    let mut rctx = ctx.run_context(crate::util::username());
    rctx.cancel = crate::cli::cancel_on_signal(ctx);
    let r = {
        let _held = crate::runner::step_lock(&rctx, &job, step)?;
        crate::runner::run_step(&rctx, &job, step, "manual")
    };
    let mut status = report(ctx, &job, step, &r);
    let stored = r.outcome.status.succeeded() && r.outcome.snapshot.is_some();
    if step == Step::Backup && stored && job.copies_after_backup() {
        let _held = crate::runner::step_lock(&rctx, &job, Step::Copy)?;
        let c = crate::runner::run_step(&rctx, &job, Step::Copy, "after-backup");
        let copy_status = report(ctx, &job, Step::Copy, &c);
        if copy_status != ExitStatus::Success {
            status = copy_status;
        }
    }
    Ok(status)
}

/// Prints the outcome of a run; its exit status.
fn report(ctx: &Context, job: &crate::jobs::Job, step: Step, r: &crate::catalog::RunRecord) -> ExitStatus {
    if ctx.global.json {
        crate::cli::print_json(r);
    } else if !ctx.global.quiet {
        crate::outln!(
            "{} {} of job '{}' in {}{}",
            step.name(),
            r.outcome.status,
            job.name,
            crate::util::human_duration(r.duration().unwrap_or_default()),
            r.outcome.snapshot.as_ref().map(|s| format!(": snapshot {}", &s[..8])).unwrap_or_default()
        );
        if let Some(c) = r.outcome.details.copy() {
            for t in &c.targets {
                match &t.error {
                    None => crate::outln!(
                        "  copy '{}' ({}): {} snapshots copied, {} already there, {} stored; newest {}",
                        t.name,
                        t.repository,
                        t.copied,
                        t.already,
                        crate::util::human_bytes(t.bytes_stored),
                        t.newest_snapshot.as_deref().map(|s| &s[..8]).unwrap_or("none")
                    ),
                    Some(e) => crate::outln!("  copy '{}' ({}): FAILED: {e}", t.name, t.repository),
                }
            }
        }
    }
    if let Some(e) = &r.outcome.error {
        eprintln!("error: {e}");
    }
    use crate::catalog::Status;
    match r.outcome.status {
        Status::Success => ExitStatus::Success,
        Status::Partial => ExitStatus::Partial,
        Status::Interrupted => ExitStatus::Interrupted,
        _ if r.outcome.error.as_deref().is_some_and(|e| e.contains("integrity damage")) => {
            ExitStatus::Integrity
        }
        _ => ExitStatus::Failure,
    }
}
