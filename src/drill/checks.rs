//! Drill levels 3 (restore into an isolated target, engine checks) and 4 (the job's checks).

use std::collections::{HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::restored_metadata;
use super::scratch::{Guard, ScratchDb};
use super::DrillReport;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::jobs::access::RunContext;
use crate::jobs::{DrillCheck, Job, Source};
use crate::repo::index::Index;
use crate::repo::snapshot::Snapshot;
use crate::repo::tree::{Node, NodeKind};
use crate::repo::walk::{walk, WalkItem};
use crate::repo::Repository;
use crate::restore::database::{restore_database, DbRestoreOptions};
use crate::restore::{restore_with_index, RestoreOptions};
use crate::sources::{DbAuth, DbKind, DbUrl};

/// Where a drill restores a database: the job's drill server, or the source's server.
fn drill_server(job: &Job, snap: &Snapshot) -> Result<(DbUrl, DbAuth, bool)> {
    let source = DbUrl::parse(snap.source.url.as_deref().unwrap_or_default())?;
    match &job.drill.server {
        Some(s) => {
            let server = DbUrl::parse(s)?;
            let segregated = (server.host.clone(), server.port) != (source.host.clone(), source.port);
            Ok((server, DbAuth { password_file: job.drill.server_password_file.clone() }, segregated))
        }
        None => Ok((source, DbAuth { password_file: job.db_password_file.clone() }, false)),
    }
}

/// Restores the snapshot into its isolated target and runs the level-3 checks.
pub fn restore_and_check(
    ctx: &RunContext,
    job: &Job,
    repo: &Repository,
    index: &std::sync::Arc<Index>,
    snap: &Snapshot,
    guard: &mut Guard,
    r: &mut DrillReport,
) -> Result<Restored> {
    if snap.source.kind == "files" {
        return restore_files(ctx, repo, index, snap, guard, r);
    }
    restore_databases(ctx, job, repo, index, snap, guard, r).map(|ok| Restored { ok, read_by_restore: None })
}

/// What a level-3 restore proved.
#[derive(Clone, Debug)]
pub struct Restored {
    /// Every level-3 check passed.
    pub ok: bool,
    /// The data blobs the restore read into the files, each decrypted and re-hashed against
    /// its id, when it found none damaged: that much of level 2, done once instead of in a
    /// separate pass before the restore. `None` when the restore found damage, or restored
    /// only part of the snapshot (databases).
    pub read_by_restore: Option<HashSet<Id>>,
}

fn restore_databases(
    ctx: &RunContext,
    job: &Job,
    repo: &Repository,
    index: &std::sync::Arc<Index>,
    snap: &Snapshot,
    guard: &mut Guard,
    r: &mut DrillReport,
) -> Result<bool> {
    let kind = DbKind::of_source(&snap.source.kind).unwrap_or(DbKind::Sqlite);
    let dumps: Vec<_> =
        snap.source.dumps.iter().filter(|d| d.format != "pg_dumpall-globals").cloned().collect();
    let mut all_ok = true;
    for (i, dump) in dumps.iter().enumerate() {
        let suffix = if dumps.len() > 1 { format!("_{i}") } else { String::new() };
        // A drill server may serve several hosts: the installation's key fingerprint in the
        // name keeps their scratch databases apart (and says whose a leftover is).
        let installation = crate::evidence::key::load(&ctx.keys_dir)
            .ok()
            .flatten()
            .map(|k| crate::evidence::key::fingerprint(&k.verifying_key()))
            .unwrap_or_else(|| "nokey".into());
        let scratch_name = format!("rempart_drill_{installation}_{}{suffix}", r.drill_id);
        let (to, auth) = if kind == DbKind::Sqlite {
            let dir = ctx.state_dir.join("drills").join(&r.drill_id);
            guard.marker.sandbox = Some(dir.clone());
            guard.save()?;
            let path = dir.join(format!("{scratch_name}.db"));
            r.target = format!("sqlite://{}", path.display());
            r.segregated = false; // isolated in a sandbox, but on this host
            (
                DbUrl { kind, user: None, host: None, port: None, databases: vec![], path: Some(path) },
                DbAuth::default(),
            )
        } else {
            let (server, auth, segregated) = drill_server(job, snap)?;
            let mut to = server.clone();
            to.databases = vec![scratch_name.clone()];
            let scratch_url = to.display();
            let server_url = DbUrl { databases: vec![], ..server.clone() }.display();
            guard.marker.databases.push(ScratchDb {
                server: server_url.clone(),
                password_file: auth.password_file.clone(),
                database: scratch_name.clone(),
            });
            guard.save()?;
            r.target = scratch_url;
            r.segregated = segregated;
            (to, auth)
        };
        let opts = DbRestoreOptions {
            to: to.clone(),
            auth: auth.clone(),
            force: false,
            database: Some(dump.database.clone()),
            globals: false,
        };
        let restored = restore_database(repo, snap, &opts)?;
        r.bytes_verified += restored.bytes;
        r.check(
            3,
            format!("load of {} into {}", dump.database, to.display()),
            true,
            format!("{} loaded", crate::util::human_bytes(restored.bytes)),
        );
        let engine = crate::sources::engine::connect(&to, &auth)?;
        let db = to.databases.first().cloned().unwrap_or_default();
        // What was restored against what the dump holds: tables and rows, table by table.
        let restored_inv = engine.inventory(&db)?;
        let dump_inv = {
            let index = index.clone();
            let node = crate::restore::find_path(repo, &index, &snap.tree, &dump.path)?.ok_or_else(|| {
                Error::corrupt(format!("snapshot tree, {}", dump.path), "the dump file is missing")
            })?;
            let mut reader = crate::restore::stream::VerifiedReader::new(repo, index, &node);
            engine.dump_inventory(&mut reader)?
        };
        let rows: u64 = restored_inv.values().sum();
        r.rows_verified += rows;
        let name = format!("inventory of {}: tables and rows as in the dump", dump.database);
        match crate::sources::inventory::compare(&dump_inv, &restored_inv) {
            None => {
                all_ok &=
                    r.check(3, name, true, format!("{} tables, {rows} rows, as in the dump", dump_inv.len()));
            }
            Some(diff) => {
                all_ok &= r.check(3, name, false, &diff);
                r.fail(format!("the restored database is not what was backed up: {diff}"));
            }
        }
        let (ok, detail) = engine.engine_check(&db)?;
        let detail = format!("{detail}; {rows} rows in {} tables", restored_inv.len());
        all_ok &= r.check(3, format!("engine checks of {}", dump.database), ok, &detail);
        if !ok {
            r.fail(format!("the restored database fails its engine's checks: {detail}"));
        }
    }
    Ok(all_ok)
}

fn restore_files(
    ctx: &RunContext,
    repo: &Repository,
    index: &std::sync::Arc<Index>,
    snap: &Snapshot,
    guard: &mut Guard,
    r: &mut DrillReport,
) -> Result<Restored> {
    let dir = ctx.state_dir.join("drills").join(&r.drill_id);
    guard.marker.sandbox = Some(dir.clone());
    guard.save()?;
    let target = dir.join("restore");
    r.target = target.display().to_string();
    r.segregated = false; // isolated in a sandbox, but on this host
    let mut opts = RestoreOptions::new(target.clone());
    opts.cancel = ctx.cancel.clone();
    let (counters, total) = (opts.counters.clone(), snap.summary.bytes_total);
    ctx.progress.phase_with("restoring into the sandbox", move || {
        (counters.bytes.load(std::sync::atomic::Ordering::Relaxed), Some(total))
    });
    let restoring = std::time::Instant::now();
    let result = restore_with_index(repo, index, snap.tree, &opts)?;
    tracing::debug!("drill: the restore took {:?}", restoring.elapsed());
    ctx.progress.phase("checking what was restored");
    if !result.damaged.is_empty() {
        let d = &result.damaged[0];
        let msg = format!("{} paths damaged, first '{}': {}", result.damaged.len(), d.path, d.error);
        r.check(3, "restore: every file matches the hash recorded at backup", false, &msg);
        r.fail(format!("restore found damage: {msg}"));
        return Ok(Restored { ok: false, read_by_restore: None });
    }
    r.check(
        3,
        "restore: every file matches the hash recorded at backup",
        true,
        format!("{} files, {}", result.files, crate::util::human_bytes(result.bytes)),
    );
    // Metadata of every restored entry against its node, `lstat`s spread over the cores a
    // bounded batch at a time; and which data blobs the restore itself read and verified.
    let mut totals = restored_metadata::MetadataTotals::default();
    let mut read_by_restore: HashSet<Id> = HashSet::new();
    let mut batch: Vec<(Vec<u8>, Node)> = Vec::new();
    walk(repo, index, &snap.tree, &mut |item| {
        if let WalkItem::Entry { path, node } = item {
            // A file of one link is always written, every chunk fetched and verified; other
            // paths of a hard-link group are linked to the first, their chunks not read.
            if node.kind == NodeKind::File && node.links <= 1 {
                read_by_restore.extend(node.content.iter().copied());
            }
            batch.push((path.to_vec(), node.clone()));
            if batch.len() >= restored_metadata::METADATA_BATCH {
                totals.compare(&target, &batch);
                batch.clear();
            }
        }
        Ok(true)
    })?;
    totals.compare(&target, &batch);
    let restored_metadata::MetadataTotals { mismatches, files, bytes } = totals;
    r.files_verified = files;
    r.bytes_verified = bytes;
    let ok = mismatches.is_empty();
    let detail = if ok {
        format!("{files} files: size, mode, owner and mtime as recorded")
    } else {
        mismatches.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
    };
    r.check(3, "metadata of every restored entry", ok, &detail);
    if !ok {
        r.fail(format!("restored metadata differs: {detail}"));
    }
    Ok(Restored { ok, read_by_restore: Some(read_by_restore) })
}

/// Level 4: the job's own checks.
pub fn validate(
    ctx: &RunContext,
    job: &Job,
    repo: &Repository,
    snap: &Snapshot,
    guard: &Guard,
    r: &mut DrillReport,
) -> Result<bool> {
    let mut all_ok = true;
    if job.drill.checks.is_empty() {
        r.check(4, "validation", true, "the job defines no validation checks");
        return Ok(true);
    }
    let job_dir = job.file.parent().map(Path::to_path_buf).unwrap_or_default();
    for check in &job.drill.checks {
        let (name, ok, detail) = match check {
            DrillCheck::Sql { query, expect, expect_at_least, database } => {
                let scratch = guard.marker.databases.iter().find(|d| {
                    database.is_none() || d.database.ends_with(&suffix_for(snap, database.as_deref()))
                });
                let to = match (snap.source.kind.as_str(), scratch) {
                    ("sqlite", _) => {
                        let dir = guard.marker.sandbox.clone().unwrap_or_default();
                        let db = std::fs::read_dir(&dir).ok().and_then(|rd| {
                            rd.flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|x| x == "db"))
                        });
                        db.map(|p| DbUrl {
                            kind: DbKind::Sqlite,
                            user: None,
                            host: None,
                            port: None,
                            databases: vec![],
                            path: Some(p),
                        })
                    }
                    (_, Some(s)) => DbUrl::parse(&s.server).ok().map(|mut u| {
                        u.databases = vec![s.database.clone()];
                        u
                    }),
                    _ => None,
                };
                let auth = DbAuth { password_file: scratch.and_then(|s| s.password_file.clone()) };
                match to {
                    None => (
                        "sql check".to_string(),
                        false,
                        "the snapshot holds no restored database to query".to_string(),
                    ),
                    Some(to) => match crate::sources::engine::connect(&to, &auth).and_then(|e| {
                        e.query_first(&to.databases.first().cloned().unwrap_or_default(), query)
                    }) {
                        Ok(v) => {
                            let (ok, want) = match (expect, expect_at_least) {
                                (Some(e), _) => (&v == e, format!("'{e}'")),
                                (None, Some(n)) => {
                                    (v.trim().parse::<i64>().is_ok_and(|x| x >= *n), format!("at least {n}"))
                                }
                                (None, None) => (true, "any result".into()),
                            };
                            (format!("sql: {query}"), ok, format!("returned '{v}', expected {want}"))
                        }
                        Err(e) => (format!("sql: {query}"), false, e.to_string()),
                    },
                }
            }
            DrillCheck::FileExists { path } => {
                let abs = if Path::new(path).is_absolute() {
                    PathBuf::from(path)
                } else {
                    crate::backup::walker::absolute(&job_dir.join(path))?
                };
                let sandbox = guard.marker.sandbox.clone().unwrap_or_default().join("restore");
                let found = exists_inside(&sandbox, &abs);
                (
                    format!("file exists: {}", abs.display()),
                    found.is_ok(),
                    match found {
                        Ok(()) => "present in the restored copy".into(),
                        Err(why) => why,
                    },
                )
            }
            DrillCheck::SpotCheck { sample_percent, count_tolerance_percent, data_tolerance_percent } => {
                spot_check(
                    ctx,
                    job,
                    repo,
                    snap,
                    *sample_percent,
                    *count_tolerance_percent,
                    *data_tolerance_percent,
                )?
            }
        };
        all_ok &= r.check(4, &name, ok, &detail);
        if !ok {
            r.fail(format!("validation failed: {name}: {detail}"));
        }
    }
    Ok(all_ok)
}

/// Whether the backed-up path `abs` exists inside the restored copy at `root`, without ever
/// leaving it: `..` is resolved lexically first, and a symlink on the way (which could point at
/// the host's own files) is refused rather than followed.
fn exists_inside(root: &Path, abs: &Path) -> std::result::Result<(), String> {
    let abs = crate::backup::walker::absolute(abs).map_err(|e| e.to_string())?;
    let mut p = root.to_path_buf();
    let parts: Vec<_> = abs.components().filter(|c| matches!(c, std::path::Component::Normal(_))).collect();
    for (i, c) in parts.iter().enumerate() {
        p.push(c);
        let meta = std::fs::symlink_metadata(&p).map_err(|_| "missing from the restored copy".to_string())?;
        if meta.file_type().is_symlink() && i + 1 < parts.len() {
            return Err(format!(
                "'{}' in the restored copy is a symlink: not followed out of the restored copy",
                p.strip_prefix(root).unwrap_or(&p).display()
            ));
        }
    }
    Ok(())
}

fn suffix_for(snap: &Snapshot, database: Option<&str>) -> String {
    let dumps: Vec<_> = snap.source.dumps.iter().filter(|d| d.format != "pg_dumpall-globals").collect();
    match database.and_then(|db| dumps.iter().position(|d| d.database == db)) {
        Some(i) if dumps.len() > 1 => format!("_{i}"),
        _ => String::new(),
    }
}

/// Compares the snapshot with the live source: file counts, and a sample of contents.
fn spot_check(
    _ctx: &RunContext,
    job: &Job,
    repo: &Repository,
    snap: &Snapshot,
    sample: f64,
    count_tol: f64,
    data_tol: f64,
) -> Result<(String, bool, String)> {
    let name = "spot check against the live source".to_string();
    let Some(Source::Paths(_)) = job.sources.iter().find(|s| matches!(s, Source::Paths(_))) else {
        return Ok((name, false, "spot checks compare files: this job backs up no paths".into()));
    };
    let index = repo.load_index()?;
    let mut files: Vec<(Vec<u8>, Option<Id>)> = Vec::new();
    walk(repo, &index, &snap.tree, &mut |item| {
        if let WalkItem::Entry { path, node } = item {
            if node.kind == NodeKind::File {
                files.push((path.to_vec(), node.content_hash));
            }
        }
        Ok(true)
    })?;
    let filters = crate::backup::filters::Filters::new(
        &job.exclude,
        &job.exclude_if_present,
        job.exclude_caches,
        job.exclude_larger_than,
    )?;
    let mut live = 0u64;
    for p in snap.paths.iter() {
        count_files(Path::new(p), &filters, &mut live);
    }
    let in_snap = files.len() as u64;
    let count_diff = (in_snap as f64 - live as f64).abs() * 100.0 / (in_snap.max(1) as f64);
    // A random sample, hashed on the live side with the same keyed hash.
    let want = ((files.len() as f64) * sample / 100.0).ceil().max(1.0) as usize;
    let mut chosen: HashMap<usize, ()> = HashMap::new();
    while chosen.len() < want.min(files.len()) {
        chosen.insert(rand::random::<usize>() % files.len(), ());
    }
    let mut differ = Vec::new();
    for i in chosen.keys() {
        let (path, hash) = &files[*i];
        let p = PathBuf::from(std::ffi::OsStr::from_bytes(path));
        let live_hash = std::fs::File::open(&p).ok().and_then(|f| {
            let mut h = repo.keys().content_hasher();
            h.update_reader(f).ok()?;
            Some(Id(*h.finalize().as_bytes()))
        });
        if live_hash.is_none() || live_hash != *hash {
            differ.push(p.display().to_string());
        }
    }
    let data_diff = differ.len() as f64 * 100.0 / (chosen.len().max(1) as f64);
    let ok = count_diff <= count_tol && data_diff <= data_tol;
    let detail = format!(
        "{in_snap} files in the snapshot, {live} live ({count_diff:.1} % apart, tolerance {count_tol} %); {} of {} sampled files differ ({data_diff:.1} %, tolerance {data_tol} %){}",
        differ.len(),
        chosen.len(),
        if differ.is_empty() { String::new() } else { format!(": {}", differ.iter().take(3).cloned().collect::<Vec<_>>().join(", ")) }
    );
    Ok((name, ok, detail))
}

/// Counts the regular files below `p` that a backup with `filters` would take.
fn count_files(p: &Path, filters: &crate::backup::filters::Filters, n: &mut u64) {
    let Ok(m) = std::fs::symlink_metadata(p) else { return };
    if m.is_file() {
        *n += 1;
    } else if m.is_dir() {
        let marker = filters.marker_in(p).map(|m| m.name.clone());
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                let path = e.path();
                let name = e.file_name();
                if marker.as_ref().is_some_and(|m| m.as_slice() != name.as_encoded_bytes())
                    || filters.patterns.matches(&path, name.as_encoded_bytes())
                {
                    continue;
                }
                let too_big = filters.larger_than.is_some_and(|limit| {
                    std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && m.len() > limit)
                });
                if !too_big {
                    count_files(&path, filters, n);
                }
            }
        }
    }
}
