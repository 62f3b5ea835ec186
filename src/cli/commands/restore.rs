//! `rempart restore`

use std::sync::atomic::Ordering;

use crate::cli::args::RestoreArgs;
use crate::cli::context::Context;
use crate::cli::progress::Progress;
use crate::error::{ExitStatus, Result};
use crate::restore::{restore, RestoreOptions};
use crate::util::{human_bytes, human_duration};

pub fn run(ctx: &Context, a: RestoreArgs) -> Result<ExitStatus> {
    let to = a.to.as_deref().map(crate::sources::DbUrl::parse).transpose()?;
    let repo = ctx.open()?;
    let (id, snap) = repo.find_snapshot(&a.snapshot)?;
    if let Some(to) = to {
        let opts = crate::restore::database::DbRestoreOptions {
            to,
            auth: crate::sources::DbAuth { password_file: a.db_password_file.clone() },
            force: a.force,
            database: a.database.clone(),
            globals: a.globals,
        };
        let r = crate::restore::database::restore_database(&repo, &snap, &opts)?;
        if ctx.global.json {
            crate::cli::print_json(
                &serde_json::json!({ "snapshot": id.to_hex(), "status": ExitStatus::Success, "result": r }),
            );
        } else if !ctx.global.quiet {
            crate::outln!(
                "restored database '{}' of snapshot {} into '{}' ({}) in {}",
                r.source_database,
                id.short(),
                r.target,
                human_bytes(r.bytes),
                human_duration(std::time::Duration::from_secs_f64(r.duration_secs))
            );
        }
        return Ok(ExitStatus::Success);
    }
    let mut opts = RestoreOptions::new(a.target.expect("clap requires --target without --to"));
    opts.includes = a.includes;
    opts.excludes = a.excludes;
    opts.dry_run = a.dry_run;
    opts.overwrite = a.overwrite;
    opts.delete = a.delete;
    opts.protect = ctx.state_dir();
    opts.threads = a.threads;
    opts.cancel = crate::cli::cancel_on_signal(ctx);
    let c = opts.counters.clone();
    // Known only for a whole restore (a part restores an unknown share of it).
    let total = (opts.includes.is_empty() && opts.excludes.is_empty()).then_some(snap.summary.bytes_total);
    let progress = Progress::start(
        !ctx.global.quiet && !opts.dry_run,
        "restore",
        move || crate::cli::progress::Status {
            done: c.bytes.load(Ordering::Relaxed),
            total,
            detail: format!("{} files", c.files.load(Ordering::Relaxed)),
        },
        None,
    );
    let result = restore(&repo, &snap, &opts);
    progress.finish();
    let result = result?;
    if opts.dry_run {
        if ctx.global.json {
            crate::cli::print_json(
                &serde_json::json!({ "snapshot": id.to_hex(), "dry_run": true, "result": result }),
            );
        } else {
            crate::outln!(
                "dry run: would restore {} files, {} folders, {} other entries, {} from snapshot {} into {}; nothing written",
                result.files,
                result.dirs,
                result.other,
                human_bytes(result.bytes),
                id.short(),
                opts.target.display()
            );
            if result.skipped > 0 {
                crate::outln!("{} entries already there would be left as they are", result.skipped);
            }
            for d in &result.deleted {
                crate::outln!("would delete '{d}' (not in the snapshot)");
            }
        }
        return Ok(ExitStatus::Success);
    }
    if ctx.global.json {
        crate::cli::print_json(&serde_json::json!({
            "snapshot": id.to_hex(),
            "status": result.status(),
            "result": result,
        }));
    } else {
        let verdict = if result.damaged.is_empty() {
            "every file verified against its backup hash".to_string()
        } else {
            format!(
                "{} paths DAMAGED (not restored intact, listed below); every other file verified against its backup hash",
                result.damaged.len()
            )
        };
        if !ctx.global.quiet || !result.damaged.is_empty() {
            crate::outln!(
                "restored snapshot {} into {}: {} files, {} dirs, {} in {}; {verdict}",
                id.short(),
                opts.target.display(),
                result.files,
                result.dirs,
                human_bytes(result.bytes),
                human_duration(std::time::Duration::from_secs_f64(result.duration_secs))
            );
        }
        if result.skipped > 0 && !ctx.global.quiet {
            let why = match opts.overwrite {
                crate::restore::Overwrite::IfChanged => "their content matches the backup's hash",
                crate::restore::Overwrite::IfNewer => {
                    "they are as new as the snapshot's or newer (not checked)"
                }
                _ => "--overwrite never (not checked)",
            };
            crate::outln!("{} entries already there were left as they are: {why}", result.skipped);
        }
        if !result.deleted.is_empty() && !ctx.global.quiet {
            crate::outln!("deleted {} paths the snapshot does not hold", result.deleted.len());
            if ctx.global.verbose > 0 {
                for d in &result.deleted {
                    crate::outln!("  deleted '{d}'");
                }
            }
        }
        for d in &result.damaged {
            crate::outln!("DAMAGED '{}': {}", d.path, d.error);
        }
        if !ctx.global.quiet {
            for w in &result.warnings {
                eprintln!("warning: {w}");
            }
        }
    }
    if !result.damaged.is_empty() {
        eprintln!(
            "{} paths could not be restored intact; everything else was restored",
            result.damaged.len()
        );
    }
    Ok(result.status())
}
