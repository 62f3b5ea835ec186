//! Restore drills: prove that a job's backups can be recovered, within its objectives.
//!
//! Levels, each including the ones below; the highest level fully passed is recorded:
//!
//! 1. structure: the snapshot, its trees and the packs of its data are present;
//! 2. data: every blob of the snapshot is read, decrypted and re-hashed;
//! 3. restore: the snapshot is restored into an isolated target (a fresh sandbox folder, or a
//!    scratch database `rempart_drill_<installation>_<id>` on the drill server) and checked there: each file
//!    against the content hash recorded when it was read and against its metadata; a database
//!    by its engine's own checks (`pg_amcheck`, `CHECK TABLE`, `PRAGMA integrity_check`);
//! 4. validation: the job's own checks (queries with expected results, files that must exist,
//!    a spot comparison with the live source).
//!
//! The recovery time is measured from the start of the restore to the end of validation and
//! compared with the job's RTO; the recovery point (snapshot age, time since the last
//! successful backup) with its RPO. Targets are always removed, also on failure; a drill killed
//! mid-way is cleaned up by the next drill or daemon start ([`scratch`]).

pub mod checks;
pub mod ransomware;
mod removal;
mod restored_metadata;
pub mod scratch;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::id::Id;
use crate::jobs::access::RunContext;
use crate::jobs::Job;
use crate::repo::index::Index;
use crate::repo::snapshot::Snapshot;
use crate::repo::Repository;
use crate::storage::Kind;

pub use crate::catalog::run::DrillReport;

#[derive(Clone, Debug)]
pub struct DrillOptions {
    /// `latest`, `random`, or a snapshot id (prefix).
    pub snapshot: String,
    /// The level to reach (default: the job's required level).
    pub level: Option<u8>,
    /// Use nothing but the repository URL and a key (recovery file or passphrase): no cache,
    /// no catalog, a fresh temporary state.
    pub cold: bool,
    pub recovery_file: Option<PathBuf>,
    pub password_file: Option<PathBuf>,
    /// Drill one of the job's copies (`[[copy]]` by name) instead of its repository.
    pub copy: Option<String>,
    /// A ransomware drill of the copy ([`ransomware`]) instead of a restore drill.
    pub ransomware: bool,
    /// With `cold`: read an S3 repository as it was at this moment (object versions), as after
    /// an attack that deleted or overwrote its objects since.
    pub as_of: Option<chrono::DateTime<chrono::Utc>>,
}

/// Opens the repository the way the drill is asked to.
fn open_repo(ctx: &RunContext, job: &Job, opts: &DrillOptions) -> Result<Repository> {
    let access = match &opts.copy {
        None => job.access(),
        Some(name) => copy_target(job, name)?.access(job),
    };
    if !opts.cold {
        return crate::jobs::access::open_existing(&access, &ctx.state_dir, &ctx.handle);
    }
    // A replacement machine: the URL and a key, nothing else.
    let storage = match opts.as_of {
        None => crate::jobs::access::storage_of(&access, &ctx.handle)?,
        Some(at) => {
            let _g = ctx.handle.enter();
            crate::storage::BlockingStorage::new(
                crate::storage::open_url_as_of(access.repository, access.s3_env_file, at)?,
                ctx.handle.clone(),
            )
        }
    };
    // A copy's own passphrase file, when this host has it, is the copy's key: a global one
    // (REMPART_PASSWORD_FILE is often the primary's) applies only without it.
    let pw_file = match &opts.password_file {
        Some(_) if opts.copy.is_some() && access.password_file.exists() => access.password_file.to_path_buf(),
        Some(given) => given.clone(),
        None => access.password_file.to_path_buf(),
    };
    let pass = crate::jobs::access::read_password_file(&pw_file)?;
    match &opts.recovery_file {
        Some(f) => {
            Repository::open_with_recovery(storage, &crate::repo::keyfile::RecoveryFile::load(f)?.key, &pass)
        }
        None => Repository::open(storage, &pass),
    }
}

/// The copy `name` of `job`.
///
/// # Errors
/// `InvalidInput` naming the job's copies when it has none by that name.
pub fn copy_target<'a>(job: &'a Job, name: &str) -> Result<&'a crate::jobs::copies::CopyTarget> {
    job.copies.iter().find(|c| c.name == name).ok_or_else(|| {
        let names: Vec<&str> = job.copies.iter().map(|c| c.name.as_str()).collect();
        Error::invalid(format!(
            "job '{}' has no copy '{name}' (its [[copy]] sections: {})",
            job.name,
            if names.is_empty() { "none".to_string() } else { names.join(", ") }
        ))
    })
}

fn pick_snapshot(
    repo: &Repository,
    job: &Job,
    spec: &str,
) -> Result<(Id, Snapshot, Option<chrono::DateTime<chrono::Utc>>)> {
    let (snaps, _) = repo.list_snapshots()?;
    let mine: Vec<_> = snaps.into_iter().filter(|(_, s)| s.job.as_deref() == Some(&job.name)).collect();
    let newest = mine.last().map(|(_, s)| s.time);
    let chosen = match spec {
        "latest" => mine.last().cloned(),
        "random" => {
            if mine.is_empty() {
                None
            } else {
                Some(mine[rand::random::<usize>() % mine.len()].clone())
            }
        }
        prefix => Some(repo.find_snapshot(prefix)?),
    };
    let (id, s) = chosen.ok_or_else(|| {
        Error::not_found(format!("job '{}' has no snapshot to drill yet: run a backup first", job.name))
    })?;
    Ok((id, s, newest))
}

/// Checks what an operator asked for before a drill starts, so that a typo is a usage error
/// (exit code 2, nothing recorded) and never a failed drill signed into the evidence: the
/// repository opens the way the drill will open it (a recovery file of another repository is
/// named as such), and a snapshot given by id exists.
///
/// # Errors
/// `InvalidInput` naming what is wrong, or the error of opening the repository with a recovery
/// or passphrase file given by hand.
pub fn preflight(ctx: &RunContext, job: &Job, opts: &DrillOptions) -> Result<()> {
    if opts.ransomware {
        return ransomware::target(job, opts.copy.as_deref()).map(|_| ());
    }
    if let Some(name) = &opts.copy {
        copy_target(job, name)?;
    }
    let repo = match open_repo(ctx, job, opts) {
        Ok(r) => r,
        // A recovery or passphrase file given by hand that does not fit: the operator's
        // mistake, recorded nowhere.
        Err(e @ (Error::InvalidInput(_) | Error::WrongPassphrase(_)))
            if opts.recovery_file.is_some() || opts.password_file.is_some() =>
        {
            return Err(e)
        }
        // The job's own repository cannot be opened: proving that it can is the drill's
        // purpose, so the drill runs and its failure is recorded.
        Err(_) => return Ok(()),
    };
    if matches!(opts.snapshot.as_str(), "latest" | "random") {
        return Ok(());
    }
    match pick_snapshot(&repo, job, &opts.snapshot) {
        Ok(_) => Ok(()),
        Err(Error::NotFound(m)) => Err(Error::InvalidInput(m)),
        Err(e) => Err(e),
    }
}

/// Runs a drill of `job` and returns its report (a failed drill is a report, not an error).
///
/// # Errors
/// When the drill cannot start (no repository, no snapshot) or a level-4 check cannot be set
/// up; the runner records either as a failed drill.
pub fn run_drill(
    ctx: &RunContext,
    job: &Job,
    opts: &DrillOptions,
    last_backup: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(DrillReport, Repository)> {
    if opts.ransomware {
        return ransomware::run(ctx, job, opts.copy.as_deref());
    }
    let now = (ctx.now)();
    scratch::clean_leftovers(&ctx.state_dir);
    let repo = open_repo(ctx, job, opts)?;
    let (snap_id, snap, newest) = pick_snapshot(&repo, job, &opts.snapshot)?;
    let mut r = DrillReport {
        drill_id: Id::random().to_hex()[..12].to_string(),
        snapshot: snap_id.to_hex(),
        snapshot_time: Some(snap.time),
        source_kind: snap.source.kind.clone(),
        level_required: job.drill.level,
        cold: opts.cold,
        as_of: opts.as_of,
        copy: opts.copy.clone(),
        rto_target_secs: job.rto.map(|d| d.as_secs()),
        rpo_target_secs: job.rpo.map(|d| d.as_secs()),
        cleanup_ok: true,
        ..Default::default()
    };
    let target_level = opts.level.unwrap_or(job.drill.level).clamp(1, 4);
    r.snapshot_age_secs = (now - snap.time).to_std().ok().map(|d| d.as_secs());
    let last = if opts.cold { newest } else { last_backup.or(newest) };
    r.since_last_backup_secs = last.and_then(|t| (now - t).to_std().ok()).map(|d| d.as_secs());
    r.rpo_met = match (job.rpo, r.since_last_backup_secs) {
        (Some(rpo), Some(age)) => Some(age <= rpo.as_secs()),
        _ => None,
    };
    let index = Arc::new(repo.load_index()?.into_lookup());

    // Level 1: structure.
    let structure_started = Instant::now();
    let (blobs, ok) = structure(&repo, &index, &snap, &mut r)?;
    tracing::debug!("drill: level 1 took {:?}", structure_started.elapsed());
    if !ok {
        return Ok((r, repo));
    }
    r.level_reached = 1;
    // A restore of files reads, decrypts and re-hashes every data blob as it writes them, so
    // at level 3 the data level is proven by the restore itself instead of by a pass of its
    // own before it: the drill's recovery time is then the restore's, not twice it. Database
    // drills restore only some dumps, so they keep the separate pass.
    let overlapped = target_level >= 3 && snap.source.kind == "files";
    if target_level >= 2 && !overlapped {
        if !verify_data(ctx, &repo, &index, &blobs, &mut r)? {
            return Ok((r, repo));
        }
        r.level_reached = 2;
    }
    if target_level >= 3 {
        ctx.progress.phase("restoring");
        let started = Instant::now();
        let mut guard = scratch::Guard::new(&ctx.state_dir, &r.drill_id)?;
        let restored = checks::restore_and_check(ctx, job, &repo, &index, &snap, &mut guard, &mut r);
        tracing::debug!("drill: restore and its checks took {:?}", started.elapsed());
        let mut ok = restored.as_ref().map(|d| d.ok).unwrap_or(false);
        if let Err(e) = &restored {
            r.check(3, "restore", false, e.to_string());
            r.fail(format!("restore failed: {e}"));
        }
        if overlapped {
            let verifying = Instant::now();
            let read = restored.as_ref().ok().and_then(|d| d.read_by_restore.as_ref());
            if data_level_of_restore(ctx, &repo, &index, &blobs, read, &mut r)? {
                r.level_reached = 2;
            } else {
                ok = false;
            }
            tracing::debug!("drill: the data level took {:?} after the restore", verifying.elapsed());
        }
        if ok {
            r.level_reached = 3;
            if target_level >= 4 {
                ok = checks::validate(ctx, job, &repo, &snap, &guard, &mut r)?;
                if ok {
                    r.level_reached = 4;
                }
            }
        }
        let elapsed = started.elapsed();
        r.rto_actual_ms = Some(elapsed.as_millis() as u64);
        if let Some(rto) = job.rto {
            let met = elapsed <= rto;
            r.rto_met = Some(met);
            if ok && !met {
                r.fail(format!(
                    "recovery took {} against an RTO of {}",
                    crate::util::human_duration(elapsed),
                    crate::jobs::duration::format_duration(rto)
                ));
            }
        }
        let cleaning = Instant::now();
        let (clean_ok, said) = guard.finish();
        tracing::debug!("drill: removing the targets took {:?}", cleaning.elapsed());
        r.cleanup = said;
        r.cleanup_ok = clean_ok;
    }
    r.passed = r.failure.is_none() && r.level_reached >= target_level && r.rto_met != Some(false);
    if !r.passed && r.failure.is_none() {
        r.failure = Some(format!("reached level {} of {target_level}", r.level_reached));
    }
    Ok((r, repo))
}

/// Level 2 as its own pass: every blob of the snapshot is read, decrypted and re-hashed.
/// Records the check; false (with the failure recorded) when a blob is damaged.
fn verify_data(
    ctx: &RunContext,
    repo: &Repository,
    index: &Arc<Index>,
    blobs: &HashSet<Id>,
    r: &mut DrillReport,
) -> Result<bool> {
    let data = Arc::new(crate::check::DataProgress::default());
    let d = data.clone();
    ctx.progress.phase_with("verifying the snapshot's data", move || {
        use std::sync::atomic::Ordering::Relaxed;
        let total = d.bytes_total.load(Relaxed);
        (d.bytes_read.load(Relaxed), (total > 0).then_some(total))
    });
    let v = crate::check::data::verify_blobs(
        repo,
        index,
        blobs,
        crate::backup::default_workers(),
        &ctx.cancel,
        Some(&data),
    )?;
    let detail = format!(
        "{} blobs in {} packs, {}",
        blobs.len(),
        v.packs_read,
        crate::util::human_bytes(v.bytes_read)
    );
    if v.bad.is_empty() {
        r.check(2, DATA_CHECK, true, detail);
        return Ok(true);
    }
    let (id, obj, why) = &v.bad[0];
    let msg = format!("{} damaged blobs, first {} in {obj}: {why}", v.bad.len(), id.short());
    r.check(2, DATA_CHECK, false, &msg);
    // Damaged data is the cause whatever the restore said about it first.
    r.failure = Some(format!("damaged data: {msg}"));
    Ok(false)
}

const DATA_CHECK: &str = "data: every blob decrypts and hashes to its id";

/// Level 2 of a drill whose restore did the data reading: what the restore did not read (the
/// trees, which it may have read from the local cache, and the chunks of hard-linked files,
/// which it links instead of writing) is verified here; the rest was verified by the restore
/// when it found nothing damaged. When the restore failed or found damage, a pass of its own
/// over every blob tells damaged data from a failure of the restore target. The check is
/// recorded before the level-3 ones, as if it had run first. A cancelled drill proves nothing.
fn data_level_of_restore(
    ctx: &RunContext,
    repo: &Repository,
    index: &Arc<Index>,
    blobs: &HashSet<Id>,
    read_by_restore: Option<&HashSet<Id>>,
    r: &mut DrillReport,
) -> Result<bool> {
    if ctx.cancel.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(false);
    }
    let at = r.checks.iter().position(|c| c.level >= 3).unwrap_or(r.checks.len());
    let later = r.checks.split_off(at);
    let ok = match read_by_restore {
        Some(read) => {
            let rest: HashSet<Id> = blobs.difference(read).copied().collect();
            let ok = verify_data(ctx, repo, index, &rest, r)?;
            if ok {
                let last = r.checks.last_mut().expect("verify_data records a check");
                last.detail = format!(
                    "{} blobs: {} read, decrypted and re-hashed by the restore, the other {} (trees, \
                     hard-linked files) read here",
                    blobs.len(),
                    blobs.len() - rest.len(),
                    rest.len()
                );
            }
            ok
        }
        None => verify_data(ctx, repo, index, blobs, r)?,
    };
    r.checks.extend(later);
    Ok(ok)
}

/// Level 1: every tree loads, every data blob is indexed, every pack holding them exists.
fn structure(
    repo: &Repository,
    index: &Index,
    snap: &Snapshot,
    r: &mut DrillReport,
) -> Result<(HashSet<Id>, bool)> {
    let packs: HashSet<String> = repo.storage().list(Kind::Pack)?.into_iter().map(|o| o.name).collect();
    let reach = crate::repo::walk::reachable(repo, index, [snap.tree]);
    let mut problems: Vec<String> =
        reach.unreadable.iter().map(|(t, e)| format!("tree {}: {e}", t.short())).collect();
    let blobs = reach.all();
    for id in &blobs {
        match index.lookup(id) {
            None => problems.push(format!("blob {} is not in the index", id.short())),
            Some(loc) if !packs.contains(&loc.pack.id.to_hex()) => problems.push(format!(
                "pack {} (holding blob {}) is missing",
                loc.pack.id.to_hex(),
                id.short()
            )),
            _ => {}
        }
    }
    problems.sort();
    problems.dedup_by(|a, b| a.split(" (").next() == b.split(" (").next());
    let ok = problems.is_empty();
    let detail = if ok {
        format!("{} trees and blobs present", blobs.len())
    } else {
        problems.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
    };
    r.check(1, "structure: snapshot, trees and packs present", ok, &detail);
    if !ok {
        r.fail(format!("missing data: {detail}"));
    }
    Ok((blobs, ok))
}
