//! `rempart backup`

use crate::backup::shared::Counters;
use crate::backup::{backup, BackupOptions, ParentChoice};
use crate::cli::args::BackupArgs;
use crate::cli::context::Context;
use crate::cli::progress::Progress;
use crate::error::{ExitStatus, Result};
use crate::id::Id;
use crate::util::{human_bytes, human_duration};

pub fn run(ctx: &Context, a: BackupArgs) -> Result<ExitStatus> {
    let repo = ctx.open()?;
    let mut opts = BackupOptions::new(a.paths);
    opts.excludes = a.excludes;
    opts.tags = a.tags;
    opts.hostname = a.host;
    opts.one_file_system = a.one_file_system;
    opts.workers = a.workers;
    opts.upload_concurrency = a.uploads;
    opts.staging_dir = Some(ctx.state_dir().join("staging"));
    opts.parent = match (a.force, a.parent) {
        (true, _) => ParentChoice::None,
        (false, Some(p)) => {
            ParentChoice::Explicit(if p.len() == 64 { Id::from_hex(&p)? } else { repo.find_snapshot(&p)?.0 })
        }
        (false, None) => ParentChoice::Auto,
    };
    opts.cancel = crate::cli::cancel_on_signal(ctx);
    let c = opts.counters.clone();
    let progress = Progress::start(!ctx.global.quiet && !ctx.global.json, move || {
        format!(
            "{} files, {} read, {} new",
            Counters::get(&c.files_done),
            human_bytes(Counters::get(&c.bytes_read)),
            human_bytes(Counters::get(&c.bytes_added))
        )
    });
    let result = backup(&repo, &opts);
    progress.finish();
    let result = result?;
    crate::state::SnapshotRegister::open(&ctx.state_dir(), &repo.id()).added(&result.snapshot_id)?;
    let s = &result.snapshot.summary;
    if ctx.global.json {
        crate::cli::print_json(&serde_json::json!({
            "snapshot": result.snapshot_id.to_hex(),
            "status": result.status(),
            "summary": s,
        }));
    } else if !ctx.global.quiet {
        crate::outln!(
            "snapshot {} saved: {} files ({} new, {} changed, {} unchanged), {} dirs, {} in total",
            result.snapshot_id.short(),
            s.files_new + s.files_changed + s.files_unmodified,
            s.files_new,
            s.files_changed,
            s.files_unmodified,
            s.dirs,
            human_bytes(s.bytes_total)
        );
        crate::outln!(
            "read {}, added {} ({} stored after compression and encryption) in {}",
            human_bytes(s.bytes_read),
            human_bytes(s.bytes_added),
            human_bytes(s.bytes_stored),
            human_duration(std::time::Duration::from_secs_f64(s.duration_secs))
        );
        for e in &s.errors {
            eprintln!("warning: skipped '{}': {}", e.path, e.error);
        }
        if !s.errors.is_empty() {
            eprintln!("{} entries could not be read: the snapshot is partial", s.errors.len());
        }
    }
    Ok(result.status())
}
