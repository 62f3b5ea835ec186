//! `rempart find`

use crate::cli::args::FindArgs;
use crate::cli::context::Context;
use crate::cli::select::SnapshotFilter;
use crate::error::{ExitStatus, Result};
use crate::inspect::find::{find, Pattern};
use crate::repo::lock::LockKind;
use crate::repo::walk::show_escaped;

pub fn run(ctx: &Context, a: FindArgs) -> Result<ExitStatus> {
    let pattern = Pattern::new(&a.pattern, a.path.as_deref())?;
    let repo = ctx.open()?;
    let _lock = repo.lock(LockKind::Read, "find")?;
    let filter = SnapshotFilter { ids: a.snapshots, host: a.host, tag: a.tag };
    let (snaps, unreadable) = filter.select(&repo)?;
    let index = repo.load_index()?;
    let (found, mut damaged) = find(&repo, &index, &snaps, &pattern)?;
    damaged.extend(unreadable.iter().map(ToString::to_string));
    let total: usize = found.iter().map(|s| s.matches.len()).sum();
    if ctx.global.json {
        crate::cli::print_json(
            &serde_json::json!({ "snapshots": found, "matches": total, "damaged": damaged }),
        );
    } else {
        for s in &found {
            crate::outln!("snapshot {} of {} ({}):", &s.snapshot[..8], s.time, s.hostname);
            for m in &s.matches {
                crate::outln!("  {:<8} {:>12} {}  {}", m.kind, m.size, m.mtime, show_escaped(&m.raw_path));
            }
        }
        if !ctx.global.quiet {
            crate::outln!("{total} matches in {} of {} snapshots", found.len(), snaps.len());
        }
    }
    for d in &damaged {
        eprintln!("damaged: {d}");
    }
    Ok(if damaged.is_empty() { ExitStatus::Success } else { ExitStatus::Integrity })
}
