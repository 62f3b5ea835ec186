//! `rempart copy [ID...] --to REPO --to-password-file FILE`

use crate::cli::args::CopyArgs;
use crate::cli::context::Context;
use crate::cli::select::SnapshotFilter;
use crate::error::{ExitStatus, Result};
use crate::util::human_bytes;

pub fn run(ctx: &Context, a: CopyArgs) -> Result<ExitStatus> {
    let src = ctx.open()?;
    // Snapshots named on the command line are copied even if the destination forgot them.
    let named = !a.snapshots.is_empty();
    let (snapshots, damaged) = SnapshotFilter { ids: a.snapshots, host: a.host, tag: a.tag }.select(&src)?;
    let dst = ctx.open_other(&a.to, &a.to_password_file)?;
    let report = crate::maintenance::copy::copy(&src, &dst, &snapshots, &ctx.state_dir(), named)?;
    // The evidence follows the snapshots: the proof must survive the loss of the source.
    let evidence = crate::evidence::replicate::replicate(&src, &dst)?;
    for e in &damaged {
        eprintln!("not copied, cannot be read: {e}");
    }
    if ctx.global.json {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            #[serde(flatten)]
            copy: &'a crate::maintenance::copy::CopyReport,
            evidence: &'a crate::evidence::replicate::Replicated,
        }
        crate::cli::print_json(&Out { copy: &report, evidence: &evidence });
    } else if !ctx.global.quiet {
        for (s, d) in &report.copied {
            crate::outln!("copied snapshot {} to {} as {}", s.short(), a.to, d.short());
        }
        for s in &report.already {
            crate::outln!("snapshot {} is already in {}", s.short(), a.to);
        }
        for s in &report.forgotten_there {
            crate::outln!(
                "snapshot {} was copied before and forgotten in {} since: not copied again",
                s.short(),
                a.to
            );
        }
        let ev = &evidence;
        crate::outln!(
            "evidence: {} records and {} keys copied, {} records already there{}",
            ev.records_copied,
            ev.keys_copied,
            ev.records_already,
            if ev.damaged > 0 {
                format!(", {} unreadable in the source (not copied)", ev.damaged)
            } else {
                String::new()
            }
        );
        crate::outln!(
            "{} blobs stored ({}), {} found in the destination without reading them",
            report.blobs_stored,
            human_bytes(report.bytes_stored),
            report.blobs_skipped
        );
    }
    Ok(if damaged.is_empty() { ExitStatus::Success } else { ExitStatus::Integrity })
}
