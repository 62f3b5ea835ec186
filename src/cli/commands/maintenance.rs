//! `rempart forget` and `rempart prune`

use crate::cli::args::{ForgetArgs, PruneArgs};
use crate::cli::context::Context;
use crate::error::{Error, ExitStatus, Result};
use crate::jobs::Retention;
use crate::maintenance::forget::{forget as do_forget, ForgetOptions, ForgetWhat, PolicyScope};
use crate::maintenance::prune::{prune as do_prune, PruneOptions};
use crate::util::human_bytes;

pub fn forget(ctx: &Context, a: ForgetArgs) -> Result<ExitStatus> {
    let (repo, job) = ctx.open_for(a.job.as_deref())?;
    let flags = Retention {
        keep_last: a.keep_last,
        keep_hourly: a.keep_hourly,
        keep_daily: a.keep_daily,
        keep_weekly: a.keep_weekly,
        keep_monthly: a.keep_monthly,
        keep_yearly: a.keep_yearly,
        keep_within: a.keep_within.clone(),
        keep_tags: a.keep_tags.clone(),
    };
    let scope = PolicyScope {
        host: a.host.clone(),
        tags: a.tags.clone(),
        paths: a.paths.clone(),
        group_by: a.group_by,
    };
    let what = if !a.ids.is_empty() {
        if !flags.is_empty() {
            return Err(Error::invalid("give either snapshot ids or --keep-* rules to forget, not both"));
        }
        if scope.host.is_some() || !scope.tags.is_empty() || !scope.paths.is_empty() {
            return Err(Error::invalid(
                "--host, --tag and --path choose what --keep-* rules apply to; with snapshot ids, name only the snapshots to forget",
            ));
        }
        ForgetWhat::Ids(a.ids.clone())
    } else {
        let (policy, tz_name) = match &job {
            Some(j) if flags.is_empty() => (j.retention.clone(), j.timezone.clone()),
            _ => (flags, a.timezone.clone()),
        };
        let tz = crate::jobs::schedule::parse_tz(&tz_name).map_err(Error::invalid)?;
        ForgetWhat::Policy { policy, tz }
    };
    let opts =
        ForgetOptions { what, job: job.as_ref().map(|j| j.name.clone()), select: scope, dry_run: a.dry_run };
    let report = do_forget(&repo, &opts)?;
    if !a.dry_run {
        let register = crate::state::SnapshotRegister::open(&ctx.state_dir(), &repo.id());
        for id in &report.removed {
            register.removed(id)?;
        }
    }
    if ctx.global.json {
        crate::cli::print_json(&report);
    } else {
        for g in &report.groups {
            let mut title = Vec::new();
            if let Some(h) = &g.host {
                title.push(format!("host {h}"));
            }
            if let Some(p) = &g.paths {
                title.push(format!("paths {}", p.join(" ")));
            }
            if let Some(t) = &g.tags {
                title.push(format!("tags {}", if t.is_empty() { "(none)".to_string() } else { t.join(",") }));
            }
            crate::outln!(
                "{}:",
                if title.is_empty() { "all snapshots".to_string() } else { title.join(" ") }
            );
            for d in &g.decisions {
                crate::outln!(
                    "  {} {} {}",
                    if d.keep { "keep  " } else { "remove" },
                    d.id.short(),
                    d.time.format("%Y-%m-%d %H:%M:%S")
                );
                if d.keep {
                    crate::outln!("         ({})", d.reasons.join(", "));
                }
            }
        }
        if matches!(opts.what, ForgetWhat::Ids(_)) {
            for id in &report.removed {
                crate::outln!("  remove {}", id.short());
            }
        }
        crate::outln!(
            "{} kept, {} {}",
            report.kept,
            report.removed.len(),
            if a.dry_run { "would be removed (dry run: nothing changed)" } else { "removed" }
        );
        if report.completed > 0 {
            crate::outln!(
                "completed an interrupted forget: deleted {} snapshot objects it had left",
                report.completed
            );
        }
    }
    if a.prune && !a.dry_run {
        return prune(ctx, PruneArgs { job: a.job, dry_run: false, grace: "1h".into() });
    }
    Ok(ExitStatus::Success)
}

pub fn prune(ctx: &Context, a: PruneArgs) -> Result<ExitStatus> {
    let (repo, _) = ctx.open_for(a.job.as_deref())?;
    let grace = crate::jobs::duration::parse_duration(&a.grace).map_err(Error::invalid)?;
    let opts = PruneOptions { dry_run: a.dry_run, grace, ..Default::default() };
    let p = opts.progress.clone();
    let progress = crate::cli::progress::Progress::start(
        !ctx.global.quiet && !a.dry_run,
        "prune",
        move || {
            use std::sync::atomic::Ordering::Relaxed;
            let total = p.total.load(Relaxed);
            crate::cli::progress::Status {
                done: p.done.load(Relaxed),
                total: (total > 0).then_some(total),
                detail: p.phase.lock().to_string(),
            }
        },
        None,
    );
    let r = do_prune(&repo, &opts);
    progress.finish();
    let r = r?;
    if ctx.global.json {
        crate::cli::print_json(&r);
        return Ok(ExitStatus::Success);
    }
    let would = if a.dry_run { "would be " } else { "" };
    crate::outln!("{} snapshots use {} blobs", r.snapshots, r.blobs_used);
    crate::outln!(
        "{} packs {}deleted ({} freed), marked by an earlier prune",
        r.packs_deleted,
        would,
        human_bytes(r.bytes_freed)
    );
    crate::outln!(
        "{} packs {}taken back into the index (a newer snapshot uses them)",
        r.packs_rescued,
        would
    );
    crate::outln!(
        "{} packs {}marked for deletion ({} unused, {} live bytes repacked from {} sparse packs); a later prune deletes them",
        r.packs_marked,
        would,
        human_bytes(r.bytes_marked),
        human_bytes(r.bytes_repacked),
        r.packs_repacked
    );
    if r.trash_waiting > 0 {
        crate::outln!(
            "{} trash objects wait for their grace period or for older backups to finish",
            r.trash_waiting
        );
    }
    for n in &r.notes {
        crate::outln!("note: {n}");
    }
    Ok(ExitStatus::Success)
}
