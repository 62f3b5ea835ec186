//! `rempart backup`

use crate::backup::shared::Counters;
use crate::backup::{backup, BackupOptions, ParentChoice};
use crate::cli::args::BackupArgs;
use crate::cli::context::Context;
use crate::cli::progress::{Progress, Status};
use crate::error::{ExitStatus, Result};
use crate::id::Id;
use crate::util::{human_bytes, human_duration};

pub fn run(ctx: &Context, mut a: BackupArgs) -> Result<ExitStatus> {
    // Kept as paths, byte for byte (a name need not be UTF-8).
    let mut listed_paths = Vec::new();
    for f in &a.files_from {
        let listed = crate::backup::filters::read_files_from(f, a.null)?;
        if listed.is_empty() {
            return Err(crate::Error::invalid(format!(
                "--files-from '{}' lists no path; expected one path per line{}",
                f.display(),
                if a.null { " (NUL-separated with -0)" } else { "" }
            )));
        }
        listed_paths.extend(listed);
    }
    for f in &a.exclude_file {
        a.excludes.extend(crate::backup::filters::read_pattern_file(f)?);
    }
    let db_urls: Vec<&String> = a.paths.iter().filter(|p| crate::sources::is_db_url(p)).collect();
    if !db_urls.is_empty() && (db_urls.len() != a.paths.len() || !listed_paths.is_empty()) {
        return Err(crate::Error::invalid(
            "back up files and databases in separate commands: each database URL makes its own snapshot",
        ));
    }
    let urls = db_urls.iter().map(|u| crate::sources::DbUrl::parse(u)).collect::<Result<Vec<_>>>()?;
    let repo = ctx.open()?;
    let mut opts =
        BackupOptions::new(a.paths.iter().map(std::path::PathBuf::from).chain(listed_paths).collect());
    opts.excludes = a.excludes;
    opts.exclude_if_present = a.exclude_if_present;
    opts.exclude_caches = a.exclude_caches;
    opts.exclude_larger_than = a.exclude_larger_than;
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
    let lines = file_lines(ctx, &opts.counters);
    let progress = Progress::start(
        !ctx.global.quiet,
        "backup",
        move || Status {
            done: Counters::get(&c.bytes_read) + Counters::get(&c.bytes_unmodified),
            total: c
                .walk_done
                .load(std::sync::atomic::Ordering::Relaxed)
                .then(|| Counters::get(&c.bytes_found)),
            detail: format!(
                "{} of {} files, {} new",
                Counters::get(&c.files_done),
                Counters::get(&c.files_found),
                human_bytes(Counters::get(&c.bytes_added))
            ),
        },
        lines,
    );
    if a.stdin {
        progress.finish();
        let r = crate::backup::stream::backup_stdin(&repo, &opts, &a.stdin_filename)?;
        crate::state::SnapshotRegister::open(&ctx.state_dir(), &repo.id()).added(&r.snapshot_id)?;
        print_result(ctx, &r);
        return Ok(r.status());
    }
    if !urls.is_empty() {
        progress.finish();
        let auth = crate::sources::DbAuth { password_file: a.db_password_file.clone() };
        let mut worst = ExitStatus::Success;
        for url in &urls {
            let mut o = opts.clone();
            o.counters = std::sync::Arc::new(Counters::default());
            let r = crate::backup::database::backup_database(&repo, url, &auth, &o)?;
            crate::state::SnapshotRegister::open(&ctx.state_dir(), &repo.id()).added(&r.snapshot_id)?;
            print_result(ctx, &r);
            worst = worst.worst(r.status());
        }
        return Ok(worst);
    }
    let result = backup(&repo, &opts);
    progress.finish();
    let result = result?;
    crate::state::SnapshotRegister::open(&ctx.state_dir(), &repo.id()).added(&result.snapshot_id)?;
    print_result(ctx, &result);
    Ok(result.status())
}

/// With `-v`, one line per new or modified file (and with `-vv`, per unchanged one too), as
/// restic prints them; none with `--json` or `--quiet`.
fn file_lines(ctx: &Context, counters: &Counters) -> Option<crate::cli::progress::Lines> {
    if ctx.global.verbose == 0 || ctx.global.json || ctx.global.quiet {
        return None;
    }
    let (tx, rx) = crossbeam_channel::unbounded::<crate::backup::shared::FileChange>();
    let _ = counters.changes.set(tx);
    let all = ctx.global.verbose > 1;
    Some(Box::new(move || {
        use crate::backup::shared::ChangeKind;
        rx.try_iter()
            .filter_map(|c| {
                let word = match c.kind {
                    ChangeKind::New => "new      ",
                    ChangeKind::Modified => "modified ",
                    ChangeKind::Unchanged if all => "unchanged",
                    ChangeKind::Unchanged => return None,
                };
                let path = crate::repo::walk::show_escaped(c.path.as_os_str().as_encoded_bytes());
                Some(format!("{word} {path} ({})", human_bytes(c.size)))
            })
            .collect()
    }))
}

fn print_result(ctx: &Context, result: &crate::backup::BackupResult) {
    let s = &result.snapshot.summary;
    if !result.snapshot.source.dumps.is_empty() && !ctx.global.json && !ctx.global.quiet {
        let src = &result.snapshot.source;
        crate::outln!(
            "snapshot {} saved: {} from {}{}",
            result.snapshot_id.short(),
            src.dumps
                .iter()
                .map(|d| format!("{} {}", d.path.trim_start_matches('/'), human_bytes(d.size)))
                .collect::<Vec<_>>()
                .join(", "),
            src.url.clone().unwrap_or_else(|| src.kind.clone()),
            src.server_version.as_ref().map(|v| format!(" ({v})")).unwrap_or_default()
        );
        crate::outln!(
            "added {} ({} stored) in {}",
            human_bytes(s.bytes_added),
            human_bytes(s.bytes_stored),
            human_duration(std::time::Duration::from_secs_f64(s.duration_secs))
        );
        return;
    }
    if ctx.global.json {
        crate::cli::print_json(&serde_json::json!({
            "snapshot": result.snapshot_id.to_hex(),
            "status": result.status(),
            "source": result.snapshot.source,
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
}
