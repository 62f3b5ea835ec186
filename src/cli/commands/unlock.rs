//! `rempart unlock`

use crate::cli::args::UnlockArgs;
use crate::cli::context::Context;
use crate::error::{ExitStatus, Result};
use crate::repo::lock::list_locks;
use crate::storage::Kind;

pub fn run(ctx: &Context, a: UnlockArgs) -> Result<ExitStatus> {
    let repo = ctx.open()?;
    let now = chrono::Utc::now();
    let mut removed = Vec::new();
    let mut kept = Vec::new();
    for l in list_locks(repo.storage(), repo.keys())? {
        let stale = l.info.as_ref().is_none_or(|i| i.is_stale(now));
        let desc =
            l.info.as_ref().map(|i| i.describe()).unwrap_or_else(|| format!("unreadable lock {}", l.name));
        if stale || a.remove_all {
            repo.storage().delete(Kind::Lock, &l.name)?;
            removed.push(desc);
        } else {
            kept.push(desc);
        }
    }
    if ctx.global.json {
        crate::cli::print_json(&serde_json::json!({ "removed": removed, "kept": kept }));
    } else if !ctx.global.quiet {
        for r in &removed {
            crate::outln!("removed {r}");
        }
        for k in &kept {
            crate::outln!("kept live {k} (use --remove-all only if that process is really gone)");
        }
        if removed.is_empty() && kept.is_empty() {
            crate::outln!("no locks");
        }
    }
    Ok(ExitStatus::Success)
}
