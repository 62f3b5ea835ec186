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
    let _held = crate::runner::step_lock(&rctx, &job, step)?;
    let r = crate::runner::run_step(&rctx, &job, step, "manual");
    if ctx.global.json {
        crate::cli::print_json(&r);
    } else if !ctx.global.quiet {
        crate::outln!(
            "{} {} of job '{}' in {}{}",
            step.name(),
            r.outcome.status,
            job.name,
            crate::util::human_duration(r.duration().unwrap_or_default()),
            r.outcome.snapshot.as_ref().map(|s| format!(": snapshot {}", &s[..8])).unwrap_or_default()
        );
    }
    if let Some(e) = &r.outcome.error {
        eprintln!("error: {e}");
    }
    use crate::catalog::Status;
    Ok(match r.outcome.status {
        Status::Success => ExitStatus::Success,
        Status::Partial => ExitStatus::Partial,
        Status::Interrupted => ExitStatus::Interrupted,
        _ if r.outcome.error.as_deref().is_some_and(|e| e.contains("integrity damage")) => {
            ExitStatus::Integrity
        }
        _ => ExitStatus::Failure,
    })
}
