//! `rempart snapshots`

use crate::cli::args::SnapshotsArgs;
use crate::cli::context::Context;
use crate::error::{ExitStatus, Result};
use crate::util::human_bytes;

pub fn run(ctx: &Context, a: SnapshotsArgs) -> Result<ExitStatus> {
    let repo = ctx.open()?;
    let (snaps, damaged) = repo.list_snapshots()?;
    let snaps: Vec<_> = snaps
        .into_iter()
        .filter(|(_, s)| a.host.as_ref().is_none_or(|h| &s.hostname == h))
        .filter(|(_, s)| a.tag.as_ref().is_none_or(|t| s.tags.contains(t)))
        .collect();
    if ctx.global.json {
        let list: Vec<_> = snaps
            .iter()
            .map(|(id, s)| {
                let mut v = serde_json::to_value(s).expect("serializable");
                v["id"] = serde_json::Value::String(id.to_hex());
                v
            })
            .collect();
        crate::cli::print_json(&list);
    } else {
        crate::outln!(
            "{:<10} {:<20} {:<16} {:<10} {:>10}  paths",
            "id",
            "time (UTC)",
            "host",
            "tags",
            "size"
        );
        for (id, s) in &snaps {
            crate::outln!(
                "{:<10} {:<20} {:<16} {:<10} {:>10}  {}{}",
                id.short(),
                s.time.format("%Y-%m-%d %H:%M:%S"),
                s.hostname,
                s.tags.join(","),
                human_bytes(s.summary.bytes_total),
                s.paths.join(" "),
                if s.repaired.is_some() { "  (repaired)" } else { "" }
            );
        }
        crate::outln!("{} snapshots", snaps.len());
    }
    for e in &damaged {
        eprintln!("error: {e}");
    }
    Ok(if damaged.is_empty() { ExitStatus::Success } else { ExitStatus::Integrity })
}
