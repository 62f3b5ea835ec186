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
        if let Some(line) = object_lock_line(&repo) {
            crate::outln!("{line}");
        }
    }
    for e in &damaged {
        eprintln!("error: {e}");
    }
    Ok(if damaged.is_empty() { ExitStatus::Success } else { ExitStatus::Integrity })
}

/// What an S3 repository's bucket enforces, in one line (detected, never declared); `None`
/// for other repositories.
fn object_lock_line(repo: &crate::repo::Repository) -> Option<String> {
    let storage = repo.storage();
    let control = storage.inner().bucket_control()?;
    let past = storage.inner().is_view_of_the_past();
    let line = storage.handle().block_on(async {
        let p = control.protection().await?;
        if past {
            // The objects' current versions are not the ones read: only the bucket is said.
            return Ok(format!(
                "bucket: {}; read from object versions ({})",
                if p.object_lock { "Object Lock enabled" } else { "no Object Lock" },
                storage.location()
            ));
        }
        let config = control.api.retention(&control.key(crate::storage::Kind::Config, "config"), None).await;
        Ok::<_, crate::error::Error>(match (p.object_lock, config) {
            (true, Ok(Some(r))) => format!(
                "bucket: Object Lock, every live object locked until at least {} ({})",
                r.until.to_rfc3339(),
                r.mode.as_s3()
            ),
            (true, _) => "bucket: Object Lock enabled, but this repository's objects are not locked".into(),
            (false, _) if p.versioning == "Enabled" => {
                "bucket: versioned, no Object Lock (objects can be deleted)".into()
            }
            (false, _) => "bucket: no versioning, no Object Lock (objects can be deleted)".into(),
        })
    });
    Some(line.unwrap_or_else(|e| format!("bucket: protection unknown ({e})")))
}
