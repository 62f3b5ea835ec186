//! The ransomware drill (`rempart drill JOB --ransomware [--copy NAME]`): proves, with the
//! job's own credentials, that an attacker who holds this host cannot destroy a copy.
//!
//! It never attacks the real copy. It makes a small canary repository beside it on the same
//! bucket (`PREFIX-ransomware-canary`, written with the copy's lock mode for at most a day),
//! backs up a canary folder into it, notes the moment, and then attacks the canary with the
//! repertoire of docs/copies.md, through the same credentials the copy is written with:
//! overwrite every object, delete every object, delete every version, shorten every version's
//! retention. Then it restores the canary as of the moment before the attack, from object
//! versions alone, and compares it byte for byte with what it backed up. Suspending the
//! bucket's versioning is not tried (it would change the real copy's bucket too): the drill
//! reads the bucket's versioning and Object Lock state instead.
//!
//! For the real copy it checks, without writing, that every live object is locked beyond now +
//! the job's RPO (the drill interval without one), so a snapshot taken within the RPO cannot be
//! destroyed before the next one replaces it.
//!
//! It passes only when the canary came back whole and the attacker could neither delete a
//! locked version nor shorten a lock, and the copy's locks cover the RPO. Everything the
//! attacker tried is in the record (`RansomwareOutcome`). A COMPLIANCE canary stays until its
//! lock ends (a day at most); the next drill leaves it behind and makes a new one at the same
//! place: a few kilobytes per drill, removed by the bucket's lifecycle rule.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;

use crate::catalog::run::{DrillReport, RansomwareOutcome};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::jobs::access::{RepoAccess, RunContext};
use crate::jobs::copies::CopyTarget;
use crate::jobs::Job;
use crate::repo::Repository;
use crate::storage::s3_api::{ObjectVersion, Retention, S3Api};
use crate::storage::{Kind, LockPolicy};

/// The copy a ransomware drill is about: the one named, else the job's only S3 copy.
pub fn target<'a>(job: &'a Job, name: Option<&str>) -> Result<&'a CopyTarget> {
    if let Some(name) = name {
        let t = super::copy_target(job, name)?;
        if !t.repository.starts_with("s3://") {
            return Err(Error::invalid(format!(
                "copy '{name}' of job '{}' is '{}': the ransomware drill attacks an S3 bucket (object versions and Object Lock); an offline disk is protected by being offline",
                job.name, t.repository
            )));
        }
        return Ok(t);
    }
    let s3: Vec<_> = job.copies.iter().filter(|c| c.repository.starts_with("s3://")).collect();
    match s3.as_slice() {
        [one] => Ok(one),
        [] => Err(Error::invalid(format!(
            "job '{}' has no S3 [[copy]]: the ransomware drill proves an S3 copy with Object Lock (docs/copies.md)",
            job.name
        ))),
        _ => Err(Error::invalid(format!(
            "job '{}' has several S3 copies: name one with --copy ({})",
            job.name,
            s3.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Where the canaries of a copy live: `s3://bucket/prefix` → `s3://bucket/prefix-ransomware-canary`;
/// a whole-bucket copy gets `s3://bucket/rempart-ransomware-canary`. Each drill's canary is a
/// repository in its own folder below (`.../DRILL-ID`), so two drills never share one.
pub fn canaries_url(copy_url: &str) -> String {
    let trimmed = copy_url.trim_end_matches('/');
    let has_prefix = trimmed.strip_prefix("s3://").is_some_and(|r| r.contains('/'));
    if has_prefix {
        format!("{trimmed}-ransomware-canary")
    } else {
        format!("{trimmed}/rempart-ransomware-canary")
    }
}

/// Runs the drill; see the module documentation. Returns the report and the copy's
/// repository (the record goes to the copy's chain).
///
/// # Errors
/// When the drill cannot start: no such copy, the copy unreachable.
pub fn run(ctx: &RunContext, job: &Job, copy: Option<&str>) -> Result<(DrillReport, Repository)> {
    let target = target(job, copy)?;
    let copy_repo = crate::jobs::access::open_existing(&target.access(job), &ctx.state_dir, &ctx.handle)?;
    let mut r = DrillReport {
        drill_id: Id::random().to_hex()[..12].to_string(),
        source_kind: "ransomware-canary".into(),
        level_required: 3,
        cold: true,
        copy: Some(target.name.clone()),
        rpo_target_secs: job.rpo.map(|d| d.as_secs()),
        cleanup_ok: true,
        ..Default::default()
    };
    let work = ctx.state_dir.join("ransomware").join(&r.drill_id);
    let result = attack_and_restore(ctx, job, target, &work, &mut r);
    if let Err(e) = std::fs::remove_dir_all(&work) {
        if e.kind() != std::io::ErrorKind::NotFound {
            r.cleanup_ok = false;
            r.cleanup.push(format!("cannot remove '{}': {e}", work.display()));
        }
    }
    if let Err(e) = result {
        r.check(3, "ransomware drill", false, e.to_string());
        r.fail(format!("the ransomware drill could not finish: {e}"));
    }
    r.passed = r.failure.is_none();
    if r.passed {
        r.level_reached = 3;
    }
    Ok((r, copy_repo))
}

fn attack_and_restore(
    ctx: &RunContext,
    job: &Job,
    target: &CopyTarget,
    work: &Path,
    r: &mut DrillReport,
) -> Result<()> {
    let url = format!("{}/{}", canaries_url(&target.repository), r.drill_id);
    // The canary is locked like the copy is written (the copy's immutable_for, or the lock
    // policy of its S3 settings file), for at most a day: it only has to outlive the attack.
    let copy_storage = crate::jobs::access::storage_of(&target.access(job), &ctx.handle)?;
    let copy_policy = copy_storage.inner().bucket_control().and_then(|c| c.policy);
    let policy = copy_policy.map(|p| LockPolicy {
        immutable_for: p.immutable_for.min(Duration::from_secs(86_400)),
        refresh: Duration::from_secs(3600),
        ..p
    });
    let pass_file = work.join("canary.pass");
    std::fs::create_dir_all(work).map_err(|e| Error::io(format!("cannot create '{}'", work.display()), e))?;
    let access = RepoAccess {
        owner: format!("the ransomware canary of copy '{}'", target.name),
        label: format!("ransomware canary of copy {} of job {}", target.name, job.name),
        repository: &url,
        password_file: &pass_file,
        s3_env_file: target.s3_env_file.as_deref(),
        limit_upload: None,
        limit_download: None,
        object_lock: policy,
    };
    let storage = crate::jobs::access::storage_of(&access, &ctx.handle)?;
    let control = storage.inner().bucket_control().ok_or_else(|| {
        Error::invalid(format!(
            "copy '{}': the ransomware drill signs its own S3 requests and needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the copy's s3_env_file or the environment",
            target.name
        ))
    })?;
    let mut out = RansomwareOutcome { canary: url.clone(), ..Default::default() };
    let protection = ctx.handle.block_on(control.protection())?;
    out.bucket_versioning = protection.versioning.clone();
    out.bucket_object_lock = protection.object_lock;
    r.check(
        1,
        "bucket: versioning and Object Lock",
        protection.object_lock && protection.versioning == "Enabled",
        format!(
            "versioning {}, Object Lock {}",
            if protection.versioning.is_empty() { "never enabled" } else { &protection.versioning },
            if protection.object_lock { "enabled" } else { "not enabled" }
        ),
    );

    // Canaries left current by earlier drills stopped mid-way are retired (delete markers);
    // only those older than an hour, so a drill of another job sharing the copy is left alone.
    let canaries = format!("{}/", control.prefix.rsplit_once('/').map_or("", |(parent, _)| parent));
    let hour_ago = Utc::now() - chrono::Duration::hours(1);
    let leftovers: Vec<ObjectVersion> = ctx
        .handle
        .block_on(control.api.list_versions(&canaries))?
        .into_iter()
        .filter(|v| v.last_modified < hour_ago)
        .collect();
    for (key, _) in current_versions(&leftovers, "\0") {
        ctx.handle.block_on(control.api.delete(&key))?;
    }
    ctx.progress.phase("ransomware drill: backing up the canary");
    let canary = work.join("canary");
    write_canary(&canary)?;
    // Its cache goes in the drill's own folder (removed at the end): a new canary each time.
    let repo = crate::jobs::access::open_or_create(&access, work, &ctx.handle)?;
    let mut opts = crate::backup::BackupOptions::new(vec![canary.clone()]);
    opts.cancel = ctx.cancel.clone();
    opts.tags = vec!["ransomware-canary".into()];
    let backed = crate::backup::backup(&repo, &opts)?;
    r.snapshot = backed.snapshot_id.to_hex();
    r.snapshot_time = Some(backed.snapshot.time);
    drop(repo);

    // The moment is the server's: one second after the canary's newest version (servers date
    // versions to the second), and the attack starts two seconds after that, by the server's
    // clock too, whatever this host's clock says.
    ctx.progress.phase("ransomware drill: attacking the canary");
    let prefix = format!("{}/", control.prefix);
    let versions = ctx.handle.block_on(control.api.list_versions(&prefix))?;
    let originals = current_versions(&versions, &format!("{prefix}locks/"));
    let newest = versions.iter().map(|v| v.last_modified).max().ok_or_else(|| {
        Error::failed(format!(
            "the canary '{url}' lists no object versions after its backup: is the bucket versioned?"
        ))
    })?;
    let moment = newest + chrono::Duration::seconds(1);
    out.moment = Some(moment);
    std::thread::sleep(Duration::from_millis(2200));
    out.objects = originals.len() as u64;
    let inconclusive = ctx.handle.block_on(attack(&control.api, &originals, policy.is_some(), &mut out));
    let lock_note = if policy.is_none() { " (the copy has no lock policy: nothing is locked)" } else { "" };
    let all = out.objects;
    r.check(
        1,
        "attacker: delete every version",
        all > 0 && out.version_delete_refused == all,
        format!(
            "{} of {all} versions deleted, {} refused{lock_note}",
            out.versions_deleted, out.version_delete_refused
        ),
    );
    if policy.is_some() {
        r.check(
            1,
            "attacker: shorten every lock",
            all > 0 && out.retention_shorten_refused == all,
            format!(
                "{} shortened, {} refused{}",
                out.retention_shortened,
                out.retention_shorten_refused,
                if out.retention_shortened > 0 {
                    " (this server or this key does not enforce the lock: an attacker shortens the locks, waits, then deletes)"
                } else {
                    ""
                }
            ),
        );
    }
    if let Some(e) = inconclusive {
        r.check(1, "attacker: every attempt answered", false, format!("an attempt failed for another reason than a refusal, so what the attacker could do is unknown: {e}"));
    }
    r.check(
        1,
        "attacker: overwrite and delete every object",
        true,
        format!(
            "{} overwritten ({} refused), {} deleted ({} refused): expected, versions keep the originals",
            out.overwritten, out.overwrite_refused, out.deleted, out.delete_refused
        ),
    );

    ctx.progress.phase("ransomware drill: restoring the canary as of before the attack");
    let restored =
        restore_as_of(ctx, target, &url, &pass_file, moment, &backed.snapshot_id, &work.join("restored"))
            .and_then(|dir| same_files(&canary, &dir));
    out.restored_as_of = restored.is_ok();
    r.check(
        3,
        "canary restored as of the moment before the attack",
        restored.is_ok(),
        match &restored {
            Ok(n) => format!("{n} files identical, as of {}", moment.to_rfc3339()),
            Err(e) => e.to_string(),
        },
    );
    if let Ok(n) = &restored {
        r.files_verified = *n;
    }

    ctx.progress.phase("ransomware drill: reading the copy's locks");
    let rpo = job.rpo.unwrap_or(job.drill.interval);
    let copy_storage = crate::jobs::access::storage_of(&target.access(job), &ctx.handle)?;
    let (objects, covered, earliest) = ctx.handle.block_on(copy_locks(copy_storage.inner().as_ref(), rpo))?;
    out.copy_objects = objects;
    out.copy_objects_locked_beyond_rpo = covered;
    out.copy_earliest_lock_end = earliest;
    r.check(
        1,
        "copy: every live object locked beyond now + RPO",
        objects > 0 && covered == objects,
        format!(
            "{covered} of {objects} objects locked beyond now + {}{}",
            crate::duration::format_duration(rpo),
            earliest.map(|t| format!(", earliest lock end {}", t.to_rfc3339())).unwrap_or_default()
        ),
    );

    if let Some(c) = r.checks.iter().find(|c| !c.passed) {
        let why = format!("{}: {}", c.name, c.detail);
        r.fail(why);
    }
    r.ransomware = Some(Box::new(out));
    Ok(())
}

/// A small folder of random files: what the attacker must not be able to destroy.
fn write_canary(dir: &Path) -> Result<()> {
    use rand::RngCore;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create '{}'", dir.display()), e))?;
    for i in 0..8 {
        let mut data = vec![0u8; 4096 + i * 512];
        rand::thread_rng().fill_bytes(&mut data);
        let path = dir.join(format!("canary-{i}.bin"));
        std::fs::write(&path, &data)
            .map_err(|e| Error::io(format!("cannot write '{}'", path.display()), e))?;
    }
    Ok(())
}

/// The current version of every key (not lock objects), from a listing that gives each key's
/// entries newest first.
fn current_versions(versions: &[ObjectVersion], locks: &str) -> Vec<(String, String)> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for v in versions {
        if !seen.insert(v.key.as_str()) || v.delete_marker || v.key.starts_with(locks) {
            continue;
        }
        out.push((v.key.clone(), v.version_id.clone()));
    }
    out
}

/// The repertoire, in order; each step counts what the server allowed and refused. A refusal
/// is the server's `AccessDenied` only; each refused delete or shortening is tried again with
/// the GOVERNANCE bypass header, as an attacker holding `s3:BypassGovernanceRetention` would.
/// Returns the first answer that was neither success nor refusal (the drill is then
/// inconclusive, so it fails).
async fn attack(
    api: &S3Api,
    originals: &[(String, String)],
    locked: bool,
    out: &mut RansomwareOutcome,
) -> Option<Error> {
    use crate::storage::s3_api::{is_access_denied, LockMode};
    let mut odd: Option<Error> = None;
    let note = |e: Error, odd: &mut Option<Error>| {
        if !is_access_denied(&e) && odd.is_none() {
            *odd = Some(e);
        }
    };
    let garbage = bytes::Bytes::from_static(b"encrypted by the ransomware drill's attacker");
    for (key, _) in originals {
        match api.put(key, garbage.clone(), None).await {
            Ok(_) => out.overwritten += 1,
            Err(e) => {
                out.overwrite_refused += 1;
                note(e, &mut odd);
            }
        }
        match api.delete(key).await {
            Ok(()) => out.deleted += 1,
            Err(e) => {
                out.delete_refused += 1;
                note(e, &mut odd);
            }
        }
    }
    for (key, version) in originals {
        let mut result = api.delete_version(key, version, false).await;
        if result.as_ref().is_err_and(is_access_denied) {
            result = api.delete_version(key, version, true).await;
        }
        match result {
            Ok(()) => out.versions_deleted += 1,
            Err(e) => {
                out.version_delete_refused += 1;
                note(e, &mut odd);
            }
        }
    }
    if !locked {
        return odd;
    }
    let soon = Utc::now() + chrono::Duration::seconds(60);
    'keys: for (key, version) in originals {
        // Either mode, with and without the bypass: a shorter GOVERNANCE lock replacing a
        // COMPLIANCE one is a shortening too.
        let mut last = None;
        for mode in [LockMode::Governance, LockMode::Compliance] {
            for bypass in [false, true] {
                match api.put_retention(key, Some(version), Retention { mode, until: soon }, bypass).await {
                    Ok(()) => {
                        out.retention_shortened += 1;
                        continue 'keys;
                    }
                    Err(e) => last = Some(e),
                }
            }
        }
        out.retention_shorten_refused += 1;
        if let Some(e) = last {
            note(e, &mut odd);
        }
    }
    odd
}

/// Restores snapshot `id` of the canary as of `moment` into `into`; returns `into`.
fn restore_as_of(
    ctx: &RunContext,
    target: &CopyTarget,
    url: &str,
    pass_file: &Path,
    moment: chrono::DateTime<Utc>,
    id: &Id,
    into: &Path,
) -> Result<std::path::PathBuf> {
    let storage = {
        let _g = ctx.handle.enter();
        crate::storage::open_url_as_of(url, target.s3_env_file.as_deref(), moment)?
    };
    let storage = crate::storage::BlockingStorage::new(storage, ctx.handle.clone());
    let pass = crate::jobs::access::read_password_file(pass_file)?;
    let repo = Repository::open(storage, &pass)?;
    let (snaps, _) = repo.list_snapshots()?;
    let (_, snap) = snaps.into_iter().find(|(s, _)| s == id).ok_or_else(|| {
        Error::not_found(format!("the canary snapshot {} is not in '{url}' as of {moment}", id.short()))
    })?;
    let mut opts = crate::restore::RestoreOptions::new(into.to_path_buf());
    opts.cancel = ctx.cancel.clone();
    let result = crate::restore::restore(&repo, &snap, &opts)?;
    if let Some(d) = result.damaged.first() {
        return Err(Error::corrupt(&d.path, format!("restored damaged as of {moment}: {}", d.error)));
    }
    Ok(into.to_path_buf())
}

/// Compares the canary with its restored copy; returns the number of files.
fn same_files(canary: &Path, restored_root: &Path) -> Result<u64> {
    let restored = crate::restore::target_path(restored_root, canary.as_os_str().as_encoded_bytes());
    let mut n = 0;
    let entries =
        std::fs::read_dir(canary).map_err(|e| Error::io(format!("cannot read '{}'", canary.display()), e))?;
    for e in entries {
        let e = e.map_err(|e| Error::io(format!("cannot read '{}'", canary.display()), e))?;
        let original = std::fs::read(e.path())
            .map_err(|x| Error::io(format!("cannot read '{}'", e.path().display()), x))?;
        let back = restored.join(e.file_name());
        match std::fs::read(&back) {
            Ok(b) if b == original => n += 1,
            Ok(_) => return Err(Error::corrupt(back.display(), "differs from the canary")),
            Err(x) => {
                return Err(Error::io(format!("the canary file '{}' was not restored", back.display()), x))
            }
        }
    }
    Ok(n)
}

/// The copy's live objects (lock objects aside), those locked beyond now + `rpo`, and the
/// earliest lock end.
async fn copy_locks(
    storage: &dyn crate::storage::Storage,
    rpo: Duration,
) -> Result<(u64, u64, Option<chrono::DateTime<Utc>>)> {
    let Some(control) = storage.bucket_control() else {
        return Ok((0, 0, None));
    };
    let floor = Utc::now() + chrono::Duration::from_std(rpo).unwrap_or(chrono::Duration::MAX);
    let mut keys = Vec::new();
    for kind in Kind::ALL {
        if kind != Kind::Lock {
            keys.extend(storage.list(kind).await?.into_iter().map(|o| control.key(kind, &o.name)));
        }
    }
    let results: Vec<_> = futures::stream::iter(keys.iter().map(|k| control.api.retention(k, None)))
        .buffer_unordered(16)
        .collect()
        .await;
    let mut covered = 0;
    let mut earliest: Option<chrono::DateTime<Utc>> = None;
    for r in results {
        if let Some(ret) = r? {
            earliest = Some(earliest.map_or(ret.until, |e| e.min(ret.until)));
            if ret.until >= floor {
                covered += 1;
            }
        }
    }
    Ok((keys.len() as u64, covered, earliest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canary_sits_beside_the_copy() {
        assert_eq!(canaries_url("s3://b/vault"), "s3://b/vault-ransomware-canary");
        assert_eq!(canaries_url("s3://b/a/vault/"), "s3://b/a/vault-ransomware-canary");
        assert_eq!(canaries_url("s3://b"), "s3://b/rempart-ransomware-canary");
    }
}
