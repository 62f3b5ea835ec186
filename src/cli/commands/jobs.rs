//! `rempart jobs list | validate`

use crate::cli::args::JobsCommand;
use crate::cli::context::Context;
use crate::error::{ExitStatus, Result};
use crate::jobs::{load_dir, Defaults, Source};

pub fn run(ctx: &Context, cmd: JobsCommand) -> Result<ExitStatus> {
    match cmd {
        JobsCommand::List => {
            let jobs = ctx.jobs()?;
            if ctx.global.json {
                crate::cli::print_json(&jobs);
                return Ok(ExitStatus::Success);
            }
            for j in &jobs {
                let sources: Vec<String> = j
                    .sources
                    .iter()
                    .map(|s| match s {
                        Source::Paths(p) => {
                            p.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" ")
                        }
                        Source::Database(u) => u.clone(),
                    })
                    .collect();
                crate::outln!("{}  ({})", j.name, j.file.display());
                crate::outln!("  sources:    {}", sources.join(" "));
                crate::outln!("  repository: {}", j.repository);
                for (step, s) in &j.schedules {
                    crate::outln!("  {:<7}     {} ({})", step.name(), s.expr, j.timezone);
                }
            }
            Ok(ExitStatus::Success)
        }
        JobsCommand::Validate { dir } => {
            let dir = dir.unwrap_or_else(|| ctx.jobs_dir.clone());
            let defaults = Defaults::new(&dir, &ctx.state_dir(), ctx.global.keys.as_deref());
            let errors = match load_dir(&dir, &defaults) {
                Ok(jobs) => {
                    let errs = crate::jobs::validate::check_reachable(&jobs, ctx.runtime.handle());
                    if errs.is_empty() && !ctx.global.quiet && !ctx.global.json {
                        for j in &jobs {
                            crate::outln!("{}: ok ({})", j.file.display(), j.name);
                        }
                    }
                    errs
                }
                Err(errs) => errs,
            };
            if ctx.global.json {
                crate::cli::print_json(&serde_json::json!({ "valid": errors.is_empty(), "errors": errors }));
            }
            for e in &errors {
                eprintln!("error: {e}");
            }
            Ok(if errors.is_empty() { ExitStatus::Success } else { ExitStatus::Usage })
        }
    }
}
