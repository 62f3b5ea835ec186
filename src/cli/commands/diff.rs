//! `rempart diff`

use crate::cli::args::DiffArgs;
use crate::cli::context::Context;
use crate::error::{ExitStatus, Result};
use crate::inspect::diff::diff;
use crate::repo::lock::LockKind;
use crate::repo::walk::show_escaped;
use crate::util::human_bytes;

pub fn run(ctx: &Context, a: DiffArgs) -> Result<ExitStatus> {
    let repo = ctx.open()?;
    let _lock = repo.lock(LockKind::Read, "diff")?;
    let (before_id, before) = repo.find_snapshot(&a.before)?;
    let (after_id, after) = repo.find_snapshot(&a.after)?;
    let index = repo.load_index()?;
    let d = diff(&repo, &index, &before.tree, &after.tree)?;
    if ctx.global.json {
        crate::cli::print_json(&serde_json::json!({
            "before": before_id.to_hex(),
            "after": after_id.to_hex(),
            "changes": d.changes,
            "stats": d.stats,
            "damaged": d.damaged,
        }));
    } else {
        for c in &d.changes {
            let what = if c.what.is_empty() { String::new() } else { format!("  ({})", c.what.join(", ")) };
            crate::outln!("{}  {}{what}", c.change.symbol(), show_escaped(&c.raw_path));
        }
        if !ctx.global.quiet {
            let s = &d.stats;
            crate::outln!(
                "{} added, {} removed, {} modified, {} metadata only, {} changed type; {} added, {} removed",
                s.added,
                s.removed,
                s.modified,
                s.metadata,
                s.type_changed,
                human_bytes(s.bytes_added),
                human_bytes(s.bytes_removed)
            );
        }
    }
    for e in &d.damaged {
        eprintln!("damaged: {e}");
    }
    Ok(if d.damaged.is_empty() { ExitStatus::Success } else { ExitStatus::Integrity })
}
