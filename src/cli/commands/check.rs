//! `rempart check`

use crate::check::{check, CheckOptions, ReadData};
use crate::cli::args::CheckArgs;
use crate::cli::context::Context;
use crate::error::{ExitStatus, Result};
use crate::util::human_bytes;

pub fn run(ctx: &Context, a: CheckArgs) -> Result<ExitStatus> {
    let repo = ctx.open()?;
    let read_data = match (a.read_data, &a.read_data_subset) {
        (true, _) => ReadData::All,
        (false, Some(s)) => ReadData::parse_subset(s)?,
        (false, None) => ReadData::None,
    };
    let opts = CheckOptions {
        read_data,
        // As of a past moment, the local register names snapshots made since: not evidence.
        known_snapshots: if ctx.global.as_of.is_some() {
            Default::default()
        } else {
            crate::state::SnapshotRegister::open(&ctx.state_dir(), &repo.id()).known()
        },
        cancel: crate::cli::cancel_on_signal(ctx),
        ..Default::default()
    };
    let p = opts.progress.clone();
    let progress = crate::cli::progress::Progress::start(
        !ctx.global.quiet && opts.read_data != ReadData::None,
        "check",
        move || {
            use std::sync::atomic::Ordering::Relaxed;
            let total = p.bytes_total.load(Relaxed);
            crate::cli::progress::Status {
                done: p.bytes_read.load(Relaxed),
                total: (total > 0).then_some(total),
                detail: format!(
                    "{} of {} packs verified",
                    p.packs_read.load(Relaxed),
                    p.packs_total.load(Relaxed)
                ),
            }
        },
        None,
    );
    let report = check(&repo, &opts);
    progress.finish();
    let report = report?;
    if ctx.global.json {
        crate::cli::print_json(&serde_json::json!({ "status": report.status(), "report": report }));
        return Ok(report.status());
    }
    let s = &report.stats;
    if !ctx.global.quiet {
        crate::outln!(
            "checked {} keys, {} index objects, {} packs, {} blobs, {} snapshots, {} trees",
            s.keys,
            s.index_files,
            s.packs,
            s.blobs,
            s.snapshots,
            s.trees
        );
        if s.packs_read > 0 {
            crate::outln!("read and verified {} packs ({})", s.packs_read, human_bytes(s.bytes_read));
        }
        for n in &report.notes {
            crate::outln!("note: {n}");
        }
    }
    for p in &report.problems {
        eprintln!("DAMAGED {}: {}", p.object, p.detail);
        if !p.snapshots.is_empty() {
            eprintln!("  snapshots: {}", p.snapshots.join(", "));
        }
        for path in &p.paths {
            eprintln!("  {path}");
        }
        if p.more_paths > 0 {
            eprintln!("  ... and {} more paths", p.more_paths);
        }
        eprintln!("  what to do: {}", p.action);
    }
    if report.problems.is_empty() {
        if !ctx.global.quiet {
            crate::outln!("no errors found");
        }
    } else {
        eprintln!("{} problems found", report.problems.len());
    }
    Ok(report.status())
}
