//! The scheduler daemon: runs every job step on its cron schedule.
//!
//! One tokio task sleeps until the next due step, then starts it on the blocking pool (steps
//! are CPU- and I/O-heavy; the executor threads only schedule). Guarantees:
//!
//! - a global limit on concurrent runs (a semaphore);
//! - steps on one repository never overlap an exclusive one: backups, checks and drills share
//!   a per-repository read lock, prune takes it exclusively (the repository locks enforce the
//!   same across processes);
//! - a step still running when its next time comes is not started twice (the tick is skipped
//!   and logged);
//! - runs missed while the daemon was down are caught up once at start (`catch_up`, default on);
//!   jobs with `run_at_start` run their backup once when the daemon starts;
//! - transient failures are retried with backoff inside the run;
//! - SIGTERM or SIGINT stop new runs, let running ones finish within the grace period, then
//!   cancel them cleanly (no snapshot is written by a cancelled backup, locks are released) and
//!   the daemon exits 0; SIGHUP reloads the job files (an invalid set is refused and the old one
//!   kept).

pub mod dashboard;
pub mod http;
pub mod metrics;
pub mod notify;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::sync::{RwLock, Semaphore};

use crate::error::{Error, Result};
use crate::jobs::{load_dir, Defaults, Job, Step};
use crate::runner::{run_step, RunContext};

#[derive(Clone, Debug)]
pub struct DaemonOptions {
    pub jobs_dir: PathBuf,
    pub keys_dir: Option<PathBuf>,
    pub listen: SocketAddr,
    pub max_concurrent: usize,
    pub grace: Duration,
    /// The bearer token every HTTP page but /healthz requires, when set.
    pub token: Option<String>,
}

/// One async lock per repository: shared for backups, checks and drills, exclusive for prune.
type RepoLocks = Arc<Mutex<HashMap<String, Arc<RwLock<()>>>>>;

/// What the HTTP handlers read.
pub struct Shared {
    pub jobs: Mutex<Vec<Job>>,
    pub running: Mutex<HashSet<(String, Step)>>,
    pub next: Mutex<HashMap<(String, Step), DateTime<Utc>>>,
    pub ctx: RunContext,
    pub started: DateTime<Utc>,
    /// The last audit of the evidence (the dashboard and metrics read it), and when it was made;
    /// dropped whenever a run ends.
    pub audit: Mutex<Option<(std::time::Instant, Arc<crate::evidence::audit::Audit>)>>,
}

/// How long an audit serves the dashboard and metrics before it is made again.
const AUDIT_TTL: std::time::Duration = std::time::Duration::from_secs(60);

impl Shared {
    /// The audit of the evidence for the current jobs: the one verification, cached briefly
    /// (it opens every repository). Call from a blocking thread.
    pub fn audit(&self) -> Arc<crate::evidence::audit::Audit> {
        if let Some((at, a)) = self.audit.lock().as_ref() {
            if at.elapsed() < AUDIT_TTL {
                return a.clone();
            }
        }
        let jobs = self.jobs.lock().clone();
        let a = Arc::new(crate::evidence::audit::for_context(&self.ctx, &jobs).unwrap_or_else(|e| {
            let mut a = crate::evidence::audit::Audit::default();
            a.verdict.unreachable.push(format!("the ledger cannot be read: {e}"));
            a
        }));
        *self.audit.lock() = Some((std::time::Instant::now(), a.clone()));
        a
    }
}

/// Loads and validates the jobs for the daemon.
///
/// # Errors
/// Every problem of every file, in one message.
pub fn load_jobs(opts: &DaemonOptions, state_dir: &std::path::Path) -> Result<Vec<Job>> {
    let defaults = Defaults::new(&opts.jobs_dir, state_dir, opts.keys_dir.as_deref());
    load_dir(&opts.jobs_dir, &defaults)
        .map_err(|errs| crate::jobs::invalid_jobs(&errs, "the daemon does not start with an invalid job"))
}

/// Signals the daemon reacts to.
pub enum Signal {
    Shutdown,
    Reload,
}

struct Due {
    job: String,
    step: Step,
    trigger: &'static str,
}

/// Runs the daemon until `signals` says to stop.
///
/// # Errors
/// `InvalidInput` when the jobs are invalid at start; `Failed` when the listen address is taken.
pub async fn run(
    opts: DaemonOptions,
    ctx: RunContext,
    mut signals: tokio::sync::mpsc::Receiver<Signal>,
) -> Result<()> {
    let jobs = load_jobs(&opts, &ctx.state_dir)?;
    // One daemon per state directory: a second one would run every step twice.
    let _one_daemon = crate::state::ProcessLock::acquire(
        &ctx.state_dir.join("daemon.lock"),
        &format!("a rempart daemon on state directory '{}'", ctx.state_dir.display()),
    )?;
    let now = (ctx.now)();
    for s in crate::drill::scratch::clean_leftovers(&ctx.state_dir) {
        tracing::warn!("removed a leftover of an interrupted drill: {s}");
    }
    if let Ok(mut c) = ctx.catalog() {
        for r in c.close_dangling(now)? {
            tracing::warn!(
                "run {} of {}/{} was cut short by the previous daemon; recorded as interrupted",
                r.run_id,
                r.job,
                r.step
            );
        }
    }
    let shared = Arc::new(Shared {
        jobs: Mutex::new(jobs),
        running: Mutex::new(HashSet::new()),
        next: Mutex::new(HashMap::new()),
        ctx: ctx.clone(),
        started: now,
        audit: Mutex::new(None),
    });
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| Error::failed(format!("cannot listen on {}: {e}", opts.listen)))?;
    let addr = listener.local_addr().map_err(|e| Error::failed(e.to_string()))?;
    println!(
        "rempart daemon: {} jobs; dashboard http://{addr}/ metrics http://{addr}/metrics",
        shared.jobs.lock().len()
    );
    let http_task = tokio::spawn(http::serve(listener, shared.clone(), opts.token.clone()));

    let semaphore = Arc::new(Semaphore::new(opts.max_concurrent.max(1)));
    let repo_locks: RepoLocks = Default::default();
    let mut tasks = tokio::task::JoinSet::new();

    // First runs: at-start backups and catch-ups of what was missed.
    let mut due: Vec<Due> = Vec::new();
    for job in shared.jobs.lock().iter() {
        if job.run_at_start {
            due.push(Due { job: job.name.clone(), step: Step::Backup, trigger: "start" });
        }
        if job.catch_up {
            if let Ok(c) = ctx.catalog() {
                for (step, sched) in &job.schedules {
                    let missed = c
                        .last_run(&job.name, *step)
                        .ok()
                        .flatten()
                        .and_then(|r| sched.next_after(r.started))
                        .is_some_and(|t| t <= now);
                    let already = job.run_at_start && *step == Step::Backup;
                    if missed && !already {
                        due.push(Due { job: job.name.clone(), step: *step, trigger: "catch-up" });
                    }
                }
            }
        }
    }
    reschedule(&shared, now);
    let systemd = notify::Notifier::from_env();
    systemd.send(&format!("READY=1\nSTATUS=scheduling {} jobs; http://{addr}/", shared.jobs.lock().len()));
    // The watchdog is fed from the scheduling loop: a loop that stops turning is restarted.
    let mut watchdog = tokio::time::interval(systemd.watchdog.unwrap_or(Duration::from_secs(3600)));

    loop {
        for d in due.drain(..) {
            start(&shared, &semaphore, &repo_locks, &mut tasks, d);
        }
        let wake = shared.next.lock().values().min().copied();
        let sleep = match wake {
            Some(t) => (t - (ctx.now)()).to_std().unwrap_or(Duration::ZERO),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            _ = watchdog.tick(), if systemd.watchdog.is_some() => systemd.send("WATCHDOG=1"),
            _ = tokio::time::sleep(sleep) => {
                let now = (ctx.now)();
                let mut next = shared.next.lock();
                let jobs = shared.jobs.lock();
                for ((name, step), at) in next.iter_mut() {
                    if *at <= now {
                        due.push(Due { job: name.clone(), step: *step, trigger: "schedule" });
                        if let Some(s) = jobs.iter().find(|j| &j.name == name).and_then(|j| j.schedule(*step)) {
                            *at = s.next_after(now).unwrap_or(now + chrono::Duration::days(3650));
                        }
                    }
                }
            }
            Some(Ok(())) = tasks.join_next(), if !tasks.is_empty() => {}
            sig = signals.recv() => match sig {
                Some(Signal::Reload) => {
                    systemd.reloading();
                    match load_jobs(&opts, &ctx.state_dir) {
                        Ok(j) => {
                            tracing::info!("reloaded {} jobs", j.len());
                            *shared.jobs.lock() = j;
                            // The audit was made for the old jobs: a new job would read
                            // "not audited" until it expired.
                            *shared.audit.lock() = None;
                            reschedule(&shared, (ctx.now)());
                        }
                        Err(e) => tracing::error!("reload refused, keeping the current jobs: {e}"),
                    }
                    systemd.send("READY=1");
                }
                Some(Signal::Shutdown) | None => break,
            },
        }
    }

    // Shutdown: no new runs; running ones get the grace period, then are cancelled.
    systemd.send("STOPPING=1");
    let running = tasks.len();
    if running > 0 {
        tracing::info!("stopping: waiting up to {:?} for {running} running steps", opts.grace);
        let finished =
            tokio::time::timeout(opts.grace, async { while tasks.join_next().await.is_some() {} }).await;
        if finished.is_err() {
            tracing::warn!("grace period over: cancelling the running steps");
            ctx.cancel.store(true, Ordering::Relaxed);
            while tasks.join_next().await.is_some() {}
        }
    }
    http_task.abort();
    tracing::info!("daemon stopped");
    Ok(())
}

/// The copy step of a job whose copies follow its backups, right after a backup that stored a
/// snapshot (skipped, with a warning, while a copy of the job is still running).
async fn copy_after_backup(shared: &Arc<Shared>, job: &Job) {
    let key = (job.name.clone(), Step::Copy);
    if !shared.running.lock().insert(key.clone()) {
        tracing::warn!("{}/copy is still running: the copy after this backup is skipped", job.name);
        return;
    }
    let (ctx, job2) = (shared.ctx.clone(), job.clone());
    let ran = tokio::task::spawn_blocking(move || match crate::runner::step_lock(&ctx, &job2, Step::Copy) {
        Ok(_held) => {
            run_step(&ctx, &job2, Step::Copy, "after-backup");
        }
        Err(e) => tracing::warn!("{}/copy: skipped: {e}", job2.name),
    })
    .await;
    if let Err(e) = ran {
        tracing::error!("run of {}/copy panicked: {e}", job.name);
    }
    // Removed whatever happened (a panic included), or every later copy would be skipped.
    shared.running.lock().remove(&key);
    *shared.audit.lock() = None;
}

/// Recomputes every step's next run time from `now`.
fn reschedule(shared: &Shared, now: DateTime<Utc>) {
    let mut next = shared.next.lock();
    next.clear();
    for job in shared.jobs.lock().iter() {
        for (step, sched) in &job.schedules {
            if let Some(t) = sched.next_after(now) {
                next.insert((job.name.clone(), *step), t);
            }
        }
    }
}

fn start(
    shared: &Arc<Shared>,
    semaphore: &Arc<Semaphore>,
    repo_locks: &RepoLocks,
    tasks: &mut tokio::task::JoinSet<()>,
    d: Due,
) {
    let Some(job) = shared.jobs.lock().iter().find(|j| j.name == d.job).cloned() else { return };
    if !shared.running.lock().insert((d.job.clone(), d.step)) {
        tracing::warn!(
            "{}/{} is still running: this {} run is skipped, not started twice",
            d.job,
            d.step.name(),
            d.trigger
        );
        return;
    }
    let repo_lock = repo_locks.lock().entry(job.repository.clone()).or_default().clone();
    let (shared, semaphore) = (shared.clone(), semaphore.clone());
    tasks.spawn(async move {
        let _permit = semaphore.acquire_owned().await.expect("semaphore open");
        let exclusive = d.step == Step::Prune;
        let (_r, _w) = if exclusive {
            (None, Some(repo_lock.write().await))
        } else {
            (Some(repo_lock.read().await), None)
        };
        if shared.ctx.cancel.load(Ordering::Relaxed) {
            shared.running.lock().remove(&(d.job.clone(), d.step));
            return;
        }
        let ctx = shared.ctx.clone();
        let (job2, step, trigger) = (job.clone(), d.step, d.trigger);
        let rec = tokio::task::spawn_blocking(move || {
            // `rempart run` of the same step from a shell holds it: never run a step twice.
            match crate::runner::step_lock(&ctx, &job2, step) {
                Ok(_held) => Some(run_step(&ctx, &job2, step, trigger)),
                Err(e) => {
                    tracing::warn!("{}/{}: skipped: {e}", job2.name, step.name());
                    None
                }
            }
        })
        .await;
        let stored = match &rec {
            Ok(ran) => {
                ran.as_ref().is_some_and(|r| r.outcome.status.succeeded() && r.outcome.snapshot.is_some())
            }
            Err(e) => {
                tracing::error!("run of {}/{} panicked: {e}", job.name, d.step.name());
                false
            }
        };
        shared.running.lock().remove(&(d.job.clone(), d.step));
        *shared.audit.lock() = None;
        // The copies that follow each backup: a step of their own (the backup is no longer
        // marked running), in the same slot and under the same repository read lock.
        if d.step == Step::Backup
            && stored
            && job.copies_after_backup()
            && !shared.ctx.cancel.load(Ordering::Relaxed)
        {
            copy_after_backup(&shared, &job).await;
        }
    });
}
