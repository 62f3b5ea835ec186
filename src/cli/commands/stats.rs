//! `rempart stats`

use crate::cli::args::StatsArgs;
use crate::cli::context::Context;
use crate::cli::select::SnapshotFilter;
use crate::error::{ExitStatus, Result};
use crate::inspect::stats::stats;
use crate::repo::lock::LockKind;
use crate::util::human_bytes;

pub fn run(ctx: &Context, a: StatsArgs) -> Result<ExitStatus> {
    let repo = ctx.open()?;
    let _lock = repo.lock(LockKind::Read, "stats")?;
    let filter = SnapshotFilter { ids: a.snapshots, host: a.host, tag: a.tag };
    let (snaps, unreadable) = filter.select(&repo)?;
    let index = repo.load_index()?;
    let mut st = stats(&repo, &index, &snaps)?;
    st.damaged.extend(unreadable.iter().map(ToString::to_string));
    if ctx.global.json {
        crate::cli::print_json(&st);
    } else {
        crate::outln!(
            "{:<10} {:<26} {:>9} {:>12} {:>12} {:>12}",
            "snapshot",
            "time",
            "files",
            "restore",
            "raw data",
            "stored"
        );
        for s in &st.per_snapshot {
            crate::outln!(
                "{:<10} {:<26} {:>9} {:>12} {:>12} {:>12}",
                &s.snapshot[..8],
                s.time,
                s.files,
                human_bytes(s.restore_size),
                human_bytes(s.raw_size),
                human_bytes(s.stored_size)
            );
        }
        let t = &st.total;
        crate::outln!(
            "{} snapshots, {} files: restore size {}, raw data after deduplication {} ({:.2}x), stored {} ({:.2}x compression), {} blobs",
            t.snapshots,
            t.files,
            human_bytes(t.restore_size),
            human_bytes(t.raw_size),
            t.dedup_ratio,
            human_bytes(t.stored_size),
            t.compression_ratio,
            t.blobs
        );
        let r = &st.repository;
        crate::outln!(
            "repository: {} packs, {}, {} blobs indexed; {} blobs ({}) used by none of these snapshots",
            r.packs,
            human_bytes(r.pack_bytes),
            r.blobs,
            r.unused_blobs,
            human_bytes(r.unused_stored_size)
        );
    }
    for d in &st.damaged {
        eprintln!("damaged: {d}");
    }
    Ok(if st.damaged.is_empty() { ExitStatus::Success } else { ExitStatus::Integrity })
}
