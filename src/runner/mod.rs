//! Running one step of a job, exactly as the daemon does: hooks, the step itself, retries of
//! transient failures, the catalog record and the notifications.
//!
//! `rempart run JOB --step S` and the daemon both call [`run_step`]; only the trigger and the
//! operator differ.

mod copy_step;
pub mod hooks;
pub mod notify;
pub mod steps;

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::catalog::{RunOutcome, RunRecord, Status};
use crate::error::{Error, Result};
pub use crate::jobs::access::RunContext;
use crate::jobs::{Job, Step};

/// The result of a step before it is recorded.
#[derive(Default)]
pub struct StepOutcome {
    /// The repository the step opened (reused to write the evidence record).
    pub repository: Option<crate::repo::Repository>,
    pub outcome: RunOutcome,
}

fn sleep_or_cancel(ctx: &RunContext, d: Duration) -> bool {
    let step = Duration::from_millis(100);
    let mut waited = Duration::ZERO;
    while waited < d {
        if ctx.cancel.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(step);
        waited += step;
    }
    true
}

/// Holds the step `step` of `job` for this process (across processes: the daemon and
/// `rempart run` never run the same step of a job at once).
///
/// # Errors
/// `Locked` naming the process running it.
pub fn step_lock(ctx: &RunContext, job: &Job, step: Step) -> Result<crate::state::ProcessLock> {
    let path = ctx.state_dir.join("locks").join(format!("{}.{}.lock", job.name, step.name()));
    crate::state::ProcessLock::acquire(&path, &format!("step {} of job '{}'", step.name(), job.name))
}

/// Runs one step of `job` and records it; never fails itself (a failure is a recorded run).
pub fn run_step(ctx: &RunContext, job: &Job, step: Step, trigger: &str) -> RunRecord {
    run_step_with(ctx, job, step, trigger, None)
}

/// [`run_step`] of a drill started by hand with its own options.
pub fn run_step_with(
    ctx: &RunContext,
    job: &Job,
    step: Step,
    trigger: &str,
    drill: Option<&crate::drill::DrillOptions>,
) -> RunRecord {
    let mut record = RunRecord {
        run_id: crate::id::Id::random().to_hex()[..16].to_string(),
        job: job.name.clone(),
        step,
        trigger: trigger.into(),
        host: job.host.clone().unwrap_or_else(crate::util::hostname),
        operator: ctx.operator.clone(),
        repository: job.repository.clone(),
        started: (ctx.now)(),
        ended: None,
        outcome: RunOutcome::default(),
        attempts: None,
        definition_hash: Some(job.definition_hash.to_hex()),
    };
    let _span =
        tracing::info_span!("run", job = %job.name, step = step.name(), run = %record.run_id).entered();
    tracing::info!("starting ({trigger})");
    let mut catalog = ctx.catalog();
    if let Ok(c) = &mut catalog {
        if let Err(e) = c.record(&record) {
            tracing::warn!("cannot record the run start: {e}");
        }
    }
    notify::ping(ctx, job, notify::Ping::Start);

    let mut repository = None;
    let mut attempt = 0usize;
    let outcome = loop {
        let result = crate::jobs::priority::run_with(job.priority, || attempt_step(ctx, job, step, drill));
        match result {
            Err(e)
                if e.is_retryable()
                    && attempt < job.retries as usize
                    && !ctx.cancel.load(Ordering::Relaxed) =>
            {
                let wait = ctx.backoff.get(attempt).copied().unwrap_or(Duration::from_secs(600));
                tracing::warn!("transient failure, retrying in {wait:?}: {e}");
                attempt += 1;
                if !sleep_or_cancel(ctx, wait) {
                    break Err(Error::Interrupted("stopped while waiting to retry".into()));
                }
            }
            other => break other,
        }
    };
    match outcome {
        Ok(o) => {
            repository = o.repository;
            record.outcome = o.outcome;
        }
        Err(e) => {
            record.outcome.status =
                if matches!(e, Error::Interrupted(_)) { Status::Interrupted } else { Status::Failed };
            record.outcome.error = Some(e.to_string());
            // A drill of a copy stays marked as one, so it never counts against the job's
            // own repository.
            if let Some(copy) = drill.and_then(|d| d.copy.clone()) {
                record.outcome.details = crate::catalog::StepDetails::Drill(crate::drill::DrillReport {
                    copy: Some(copy),
                    level_required: job.drill.level,
                    failure: Some(e.to_string()),
                    ..Default::default()
                });
            }
        }
    }
    if attempt > 0 {
        record.attempts = Some(attempt as u32 + 1);
    }
    record.ended = Some((ctx.now)());
    let o = &record.outcome;
    let snapshot = o.snapshot.as_deref().unwrap_or("");
    let bytes_added = o.bytes_added.unwrap_or(0);
    match &o.error {
        // The status as a field: an interruption's message already starts with "interrupted".
        Some(e) => tracing::warn!(status = %o.status, snapshot, bytes_added, "{e}"),
        None => tracing::info!(status = %o.status, snapshot, bytes_added, "{}", o.status),
    }
    let mut unrecorded = match &mut catalog {
        Ok(c) => c.record(&record).err().map(|e| format!("cannot record the run in the catalog: {e}")),
        Err(e) => Some(format!("cannot open the catalog: {e}")),
    };
    let evidence = match crate::evidence::record_run(ctx, job, &record, repository) {
        Ok(e) => {
            tracing::debug!("evidence record {} of chain {}", e.seq, e.chain);
            Some(e)
        }
        Err(e) => {
            unrecorded.get_or_insert(format!("cannot append to the evidence ledger: {e}"));
            None
        }
    };
    if let Some(why) = unrecorded {
        // A run recorded nowhere proves nothing: it fails, whatever the step did.
        tracing::error!("{why}");
        let what = match (record.outcome.status, &record.outcome.snapshot) {
            (Status::Success | Status::Partial, Some(s)) => {
                format!(" (the {} itself ended {}: snapshot {s})", step.name(), record.outcome.status)
            }
            _ => String::new(),
        };
        record.outcome.error = Some(format!("{why}; the run is not in the evidence{what}"));
        record.outcome.status = Status::Failed;
        if let Ok(c) = &mut catalog {
            let _ = c.record(&record);
        }
    }
    notify::after_run(ctx, job, &record, evidence.as_ref());
    record
}

/// One attempt: before hook, step, after hook.
fn attempt_step(
    ctx: &RunContext,
    job: &Job,
    step: Step,
    drill: Option<&crate::drill::DrillOptions>,
) -> Result<StepOutcome> {
    let hooked = step == Step::Backup;
    if hooked {
        if let Some(cmd) = &job.hooks.before {
            hooks::run_hook("before", cmd, job, step, "running", job.hooks.timeout)
                .map_err(|e| Error::failed(format!("{e}; the {} was not run", step.name())))?;
        }
    }
    let result = steps::execute(ctx, job, step, drill);
    if hooked {
        if let Some(cmd) = &job.hooks.after {
            let status = match &result {
                Ok(o) => o.outcome.status,
                Err(_) => Status::Failed,
            };
            if let Err(e) = hooks::run_hook("after", cmd, job, step, status.name(), job.hooks.timeout) {
                return match result {
                    // The snapshot stays valid; the run is failed so someone looks at the hook.
                    Ok(mut o) => {
                        o.outcome.status = Status::Failed;
                        o.outcome.error = Some(format!(
                            "{e} (the backup itself succeeded: snapshot {})",
                            o.outcome.snapshot.clone().unwrap_or_default()
                        ));
                        Ok(o)
                    }
                    Err(inner) => Err(Error::failed(format!("{inner}; and {e}"))),
                };
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::StepDetails;
    use chrono::{DateTime, Utc};

    /// A job over `dir/src` into a local repository under `dir`, with its state and keys there.
    fn setup(dir: &std::path::Path, extra: &str) -> (RunContext, Job, tokio::runtime::Runtime) {
        setup_with_drill(dir, extra, "level = 3")
    }

    /// [`setup`] with the body of the job's `[drill]` table.
    fn setup_with_drill(
        dir: &std::path::Path,
        extra: &str,
        drill: &str,
    ) -> (RunContext, Job, tokio::runtime::Runtime) {
        let src = dir.join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("a.txt"), "alpha\n".repeat(1000)).unwrap();
        std::fs::write(src.join("sub/b.bin"), crate::backup::testing::noise(7, 200_000)).unwrap();
        let text = format!(
            "name = \"unit\"\nsources = [\"{}\"]\nrepository = \"{}\"\n{extra}\n[drill]\n{drill}\n",
            src.display(),
            dir.join("repo").display()
        );
        let jobs = dir.join("jobs");
        std::fs::create_dir_all(&jobs).unwrap();
        let defaults = crate::jobs::Defaults::new(&jobs, &dir.join("state"), Some(&dir.join("keys")));
        let job = crate::jobs::spec::parse_job(&jobs.join("unit.toml"), &text, &defaults).expect("valid job");
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let mut ctx =
            RunContext::new(dir.join("state"), dir.join("keys"), rt.handle().clone(), "tester".into());
        ctx.backoff = vec![Duration::ZERO; 3];
        (ctx, job, rt)
    }

    /// Flips 64 bytes a third of the way into the largest pack of the local repository `repo`.
    fn damage_largest_pack(repo: &std::path::Path) {
        let mut files = Vec::new();
        let mut stack = vec![repo.join("data")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(d).unwrap().flatten() {
                let m = e.metadata().unwrap();
                if m.is_dir() {
                    stack.push(e.path());
                } else {
                    files.push((m.len(), e.path()));
                }
            }
        }
        let (len, pack) = files.into_iter().max().unwrap();
        let mut bytes = std::fs::read(&pack).unwrap();
        for b in &mut bytes[len as usize / 3..len as usize / 3 + 64] {
            *b ^= 0xff;
        }
        std::fs::write(&pack, bytes).unwrap();
    }

    #[test]
    fn the_four_steps_record_typed_runs_and_evidence_that_reads_verified() {
        let dir = tempfile::tempdir().unwrap();
        let (ctx, job, _rt) = setup(dir.path(), "");
        let backup = run_step(&ctx, &job, Step::Backup, "manual");
        assert_eq!(backup.outcome.status, Status::Success, "{:?}", backup.outcome.error);
        let StepDetails::Backup(b) = &backup.outcome.details else {
            panic!("backup details: {:?}", backup.outcome.details)
        };
        assert_eq!((b.snapshots.len(), b.snapshot_count), (1, Some(1)));
        assert_eq!(backup.outcome.files, Some(2));

        for step in [Step::Check, Step::Drill, Step::Prune] {
            let r = run_step(&ctx, &job, step, "manual");
            assert_eq!(r.outcome.status, Status::Success, "{}: {:?}", step.name(), r.outcome.error);
        }
        let runs = ctx.catalog().unwrap().runs(Some("unit"), DateTime::<Utc>::MIN_UTC).unwrap();
        assert_eq!(runs.len(), 4);
        let drill = runs.iter().find(|r| r.step == Step::Drill).unwrap();
        let StepDetails::Drill(d) = &drill.outcome.details else {
            panic!("drill details: {:?}", drill.outcome.details)
        };
        assert!(d.level_reached >= 3 && d.files_verified == 2, "{d:?}");

        let audit = crate::evidence::audit::for_context(&ctx, std::slice::from_ref(&job)).unwrap();
        assert!(audit.verdict.findings.is_empty(), "{:?}", audit.verdict.findings);
        assert_eq!(audit.entries.len(), 4);
        let ready = crate::evidence::readiness::readiness(&job, &audit, Utc::now());
        assert_eq!(ready.state, crate::evidence::readiness::State::Verified, "{}", ready.reason);
    }

    #[test]
    fn a_failing_before_hook_runs_nothing_and_is_recorded_as_failed() {
        let dir = tempfile::tempdir().unwrap();
        let (ctx, job, _rt) = setup(dir.path(), "[hooks]\nbefore = \"exit 3\"\n");
        let r = run_step(&ctx, &job, Step::Backup, "manual");
        assert_eq!(r.outcome.status, Status::Failed);
        assert!(r.outcome.error.as_deref().unwrap_or("").contains("was not run"), "{:?}", r.outcome.error);
        assert!(r.outcome.snapshot.is_none());
        let runs = ctx.catalog().unwrap().runs(Some("unit"), DateTime::<Utc>::MIN_UTC).unwrap();
        assert_eq!(runs[0].outcome.status, Status::Failed);
    }

    #[test]
    fn a_run_that_cannot_be_recorded_in_the_evidence_fails() {
        let dir = tempfile::tempdir().unwrap();
        let pass = format!("password_file = \"{}\"", dir.path().join("unit.pass").display());
        let (ctx, job, _rt) = setup(dir.path(), &pass);
        // The keys folder is a file: the evidence key cannot be created, the backup itself works.
        std::fs::write(dir.path().join("keys"), "not a folder").unwrap();
        let r = run_step(&ctx, &job, Step::Backup, "manual");
        assert_eq!(r.outcome.status, Status::Failed, "{:?}", r.outcome.error);
        let error = r.outcome.error.unwrap_or_default();
        assert!(error.contains("not in the evidence (the backup itself ended success: snapshot"), "{error}");
    }

    #[test]
    fn a_drill_on_damaged_data_fails_naming_it_and_leaves_no_sandbox() {
        let dir = tempfile::tempdir().unwrap();
        let (ctx, job, _rt) = setup(dir.path(), "");
        assert_eq!(run_step(&ctx, &job, Step::Backup, "manual").outcome.status, Status::Success);
        // Flip bytes in the middle of the largest data pack (the one holding b.bin).
        damage_largest_pack(&dir.path().join("repo"));

        let r = run_step(&ctx, &job, Step::Drill, "manual");
        assert_eq!(r.outcome.status, Status::Failed, "{:?}", r.outcome.details);
        let StepDetails::Drill(d) = &r.outcome.details else {
            panic!("drill details: {:?}", r.outcome.details)
        };
        assert!(!d.passed && d.level_reached < 3, "{d:?}");
        let left: Vec<_> = std::fs::read_dir(ctx.state_dir.join("drills"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "the drill left {left:?}");
        let audit = crate::evidence::audit::for_context(&ctx, std::slice::from_ref(&job)).unwrap();
        let ready = crate::evidence::readiness::readiness(&job, &audit, Utc::now());
        assert_eq!(ready.state, crate::evidence::readiness::State::NotVerified, "{}", ready.reason);
    }

    #[test]
    fn a_drill_that_fails_after_restoring_removes_its_sandbox() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("src/never-backed-up");
        let checks = format!(
            "level = 4\n[[drill.checks]]\nkind = \"file_exists\"\npath = \"{}\"\n",
            missing.display()
        );
        let (ctx, job, _rt) = setup_with_drill(dir.path(), "", &checks);
        assert_eq!(run_step(&ctx, &job, Step::Backup, "manual").outcome.status, Status::Success);
        let r = run_step(&ctx, &job, Step::Drill, "manual");
        let StepDetails::Drill(d) = &r.outcome.details else {
            panic!("drill details: {:?}", r.outcome.details)
        };
        assert!(!d.passed && d.level_reached == 3, "{d:?}");
        assert!(d.checks.iter().any(|c| !c.passed && c.name.contains("never-backed-up")), "{:?}", d.checks);
        assert!(d.cleanup_ok && d.cleanup.iter().any(|c| c.contains("removed")), "{:?}", d.cleanup);
        let left: Vec<_> =
            std::fs::read_dir(ctx.state_dir.join("drills")).unwrap().flatten().map(|e| e.path()).collect();
        assert!(left.is_empty(), "the drill left {left:?}");
    }

    #[test]
    fn copies_take_the_snapshots_and_the_evidence_and_one_bad_copy_fails_the_step_not_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let copy_repo = dir.path().join("usb");
        std::fs::write(dir.path().join("a-file"), "not a folder").unwrap();
        let extra = format!(
            "[[copy]]\nname = \"usb\"\nrepository = \"{}\"\n[[copy]]\nname = \"broken\"\nrepository = \"{}\"\n",
            copy_repo.display(),
            dir.path().join("a-file/repo").display()
        );
        let (ctx, job, _rt) = setup(dir.path(), &extra);
        let backup = run_step(&ctx, &job, Step::Backup, "manual");
        assert_eq!(backup.outcome.status, Status::Success, "{:?}", backup.outcome.error);
        assert_eq!(run_step(&ctx, &job, Step::Check, "manual").outcome.status, Status::Success);

        let first = run_step(&ctx, &job, Step::Copy, "manual");
        assert_eq!(first.outcome.status, Status::Failed);
        let error = first.outcome.error.clone().unwrap_or_default();
        assert!(error.contains("copy 'broken'") && !error.contains("copy 'usb'"), "{error}");
        let details = first.outcome.details.copy().expect("copy details").clone();
        let usb = &details.targets[0];
        assert_eq!((usb.name.as_str(), usb.copied, usb.error.as_deref()), ("usb", 1, None), "{usb:?}");
        // The backup's and the check's records (the copy's own follows with the next copy).
        assert_eq!((usb.evidence_records_copied, usb.evidence_keys_copied), (2, 1), "{usb:?}");
        assert_eq!(usb.newest_snapshot_time, backup.outcome.snapshot_time);
        assert!(details.targets[1].error.is_some());

        // Again: nothing to store; the first copy's record follows.
        let second = run_step(&ctx, &job, Step::Copy, "manual");
        let usb2 = second.outcome.details.copy().unwrap().targets[0].clone();
        assert_eq!(
            (usb2.copied, usb2.already, usb2.bytes_stored, usb2.evidence_records_copied),
            (0, 1, 0, 1)
        );
        let states = crate::catalog::copy_state::copy_states(&ctx.catalog().unwrap(), &job).unwrap();
        assert_eq!((states[0].last_run_ok, states[1].last_run_ok), (Some(true), Some(false)));
        assert_eq!(states[0].newest_snapshot_time, backup.outcome.snapshot_time);

        // The copy's disk is unmounted: the copy fails, naming why, and no new empty copy
        // appears where the disk was mounted.
        std::fs::rename(&copy_repo, dir.path().join("usb-unmounted")).unwrap();
        let gone = run_step(&ctx, &job, Step::Copy, "manual");
        let usb3 = &gone.outcome.details.copy().unwrap().targets[0];
        assert!(usb3.error.as_deref().unwrap_or("").contains("is its disk mounted"), "{usb3:?}");
        assert!(!copy_repo.exists());
        std::fs::rename(dir.path().join("usb-unmounted"), &copy_repo).unwrap();

        // The primary is lost: the copy alone restores the files and holds verifiable proof.
        std::fs::remove_dir_all(dir.path().join("repo")).unwrap();
        let target = job.copies[0].clone();
        let copy =
            crate::jobs::access::open_existing(&target.access(&job), &ctx.state_dir, &ctx.handle).unwrap();
        let (records, refused) = crate::evidence::verified_copies(&copy, None).unwrap();
        assert!(refused.is_empty(), "{refused:?}");
        let local = crate::evidence::ledger::entries(&mut ctx.catalog().unwrap(), None).unwrap();
        assert_eq!(records.len(), local.len() - 2, "every record but those of the last two copy runs");
        let (_, snap) = copy.find_snapshot("latest").unwrap();
        let out = dir.path().join("restored");
        let r =
            crate::restore::restore(&copy, &snap, &crate::restore::RestoreOptions::new(out.clone())).unwrap();
        assert!(r.damaged.is_empty());
        let back =
            crate::restore::target_path(&out, dir.path().join("src/sub/b.bin").to_str().unwrap().as_bytes());
        assert_eq!(std::fs::read(back).unwrap(), crate::backup::testing::noise(7, 200_000));
    }

    #[test]
    fn a_job_that_requires_a_copy_is_verified_only_while_its_copy_is_fresh() {
        use crate::evidence::readiness::{readiness, Cause, State};
        let dir = tempfile::tempdir().unwrap();
        let extra = format!(
            "[objectives]\nrpo = \"1h\"\ncopies = 1\n[[copy]]\nrepository = \"{}\"\n",
            dir.path().join("usb").display()
        );
        let (ctx, job, _rt) = setup(dir.path(), &extra);
        let ready = |at: DateTime<Utc>| {
            let audit = crate::evidence::audit::for_context(&ctx, std::slice::from_ref(&job)).unwrap();
            readiness(&job, &audit, at)
        };
        assert_eq!(run_step(&ctx, &job, Step::Backup, "manual").outcome.status, Status::Success);
        assert_eq!(run_step(&ctx, &job, Step::Drill, "manual").outcome.status, Status::Success);
        let r = ready(Utc::now());
        assert_eq!(r.state, State::NeedsVerified, "{}", r.reason);
        assert!(matches!(r.cause, Cause::CopiesMissing { required: 1, fresh: 0, .. }), "{:?}", r.cause);
        assert_eq!(run_step(&ctx, &job, Step::Copy, "manual").outcome.status, Status::Success);
        let r = ready(Utc::now());
        assert_eq!(r.state, State::Verified, "{}", r.reason);
        // Two hours later the copy's newest snapshot is older than the 1 h RPO.
        let r = ready(Utc::now() + chrono::Duration::hours(2));
        assert!(matches!(r.cause, Cause::CopiesMissing { fresh: 0, .. }), "{:?}", r.cause);
        assert!(r.reason.contains("3-2-1 not met"), "{}", r.reason);

        // A drill of the copy itself: its evidence is compared with the copy and the ledger
        // stays intact; a failed one takes the copy out of the count.
        let copy_drill = |ctx: &RunContext| {
            let opts = crate::drill::DrillOptions {
                snapshot: "latest".into(),
                level: None,
                cold: false,
                recovery_file: None,
                password_file: None,
                copy: Some("copy".into()),
                ransomware: false,
                as_of: None,
            };
            run_step_with(ctx, &job, Step::Drill, "manual", Some(&opts))
        };
        // The copy out of reach: its drill fails as a drill of the copy, never of the job.
        let usb = dir.path().join("usb");
        std::fs::rename(&usb, dir.path().join("usb-away")).unwrap();
        let away = copy_drill(&ctx);
        assert_eq!(away.outcome.status, Status::Failed);
        std::fs::rename(dir.path().join("usb-away"), &usb).unwrap();
        let audit = crate::evidence::audit::for_context(&ctx, std::slice::from_ref(&job)).unwrap();
        let r = readiness(&job, &audit, Utc::now());
        assert!(matches!(r.cause, Cause::CopiesMissing { fresh: 0, .. }), "{:?}", r.cause);
        let d = copy_drill(&ctx);
        assert_eq!(d.outcome.status, Status::Success, "{:?}", d.outcome.error);
        assert_eq!(d.outcome.details.drill().unwrap().copy.as_deref(), Some("copy"));
        let audit = crate::evidence::audit::for_context(&ctx, std::slice::from_ref(&job)).unwrap();
        assert!(audit.verdict.intact(), "{:?}", audit.verdict);
        assert_eq!(readiness(&job, &audit, Utc::now()).state, State::Verified);
        let states = crate::catalog::copy_state::copy_states(&ctx.catalog().unwrap(), &job).unwrap();
        assert_eq!(states[0].last_drill_passed, Some(true));
        // The job's own last drill (dashboard, metrics, catch-up) is not the copy's.
        let own = ctx.catalog().unwrap().last_run(&job.name, Step::Drill).unwrap().unwrap();
        assert!(own.outcome.details.drill().is_some_and(|d| d.copy.is_none()), "{own:?}");
        // Whoever holds the copy plants a record under the job's own chain there (another
        // version of one of its records): the job's evidence and readiness do not move.
        let copy_repo =
            crate::jobs::access::open_existing(&job.copies[0].access(&job), &ctx.state_dir, &ctx.handle)
                .unwrap();
        let (held, _) = crate::evidence::ledger::load_copies_lenient(&copy_repo).unwrap();
        let own = crate::evidence::ledger::load_copies_lenient(
            &crate::jobs::access::open_existing_job_repository(&job, &ctx.state_dir, &ctx.handle).unwrap(),
        )
        .unwrap()
        .0;
        let victim = held.iter().find(|c| own.iter().any(|o| o.entry.chain == c.entry.chain)).unwrap();
        let mut forged = victim.entry.clone();
        forged.canonical = forged.canonical.replacen("manual", "forged", 1);
        crate::evidence::ledger::save_copy(&copy_repo, &forged, &victim.public_key_pem).unwrap();
        let audit = crate::evidence::audit::for_context(&ctx, std::slice::from_ref(&job)).unwrap();
        assert!(audit.verdict.findings.is_empty(), "{:?}", audit.verdict.findings);
        assert_eq!(readiness(&job, &audit, Utc::now()).state, State::Verified);
        // Damage the copy's data: its drill fails, and the job needs a good copy again.
        damage_largest_pack(&dir.path().join("usb"));
        assert_eq!(copy_drill(&ctx).outcome.status, Status::Failed);
        let audit = crate::evidence::audit::for_context(&ctx, std::slice::from_ref(&job)).unwrap();
        let r = readiness(&job, &audit, Utc::now());
        assert!(matches!(r.cause, Cause::CopiesMissing { fresh: 0, .. }), "{:?}", r.cause);
    }

    #[test]
    fn no_step_but_a_backup_creates_a_repository_or_a_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let (ctx, job, _rt) = setup(dir.path(), "");
        for step in [Step::Check, Step::Prune, Step::Drill] {
            let r = run_step(&ctx, &job, step, "manual");
            assert_eq!(r.outcome.status, Status::Failed, "{}", step.name());
            let error = r.outcome.error.unwrap_or_default();
            assert!(error.contains("no repository"), "{}: {error}", step.name());
        }
        // A repository on an unmounted disk must not be replaced by a new, empty one.
        assert!(!dir.path().join("repo").exists());
        assert!(!job.password_file.exists());
    }
}
