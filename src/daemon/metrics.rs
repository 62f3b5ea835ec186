//! Prometheus metrics, following the naming guide: units as suffixes (`_seconds`, `_bytes`),
//! `_total` counters, label sets that never change for a series (no status in the labels of
//! a gauge), and a `rempart_build_info` gauge. docs/monitoring.md lists them with alert rules.

use std::fmt::Write;

use super::Shared;
use crate::evidence::readiness::State;
use crate::jobs::Step;

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// One metric family: its name, help, type and sample lines.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    samples: String,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str) -> Family {
        Family { name, help, kind, samples: String::new() }
    }

    /// Adds `name{labels} value`.
    fn add(&mut self, labels: &str, value: impl std::fmt::Display) {
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(self.samples, "{}{braces} {value}", self.name);
    }
}

/// The `/metrics` text.
pub fn render(shared: &Shared) -> String {
    let mut up = Family::new("rempart_up", "gauge", "1 while the daemon runs.");
    up.add("", 1);
    let mut build = Family::new("rempart_build_info", "gauge", "The running version (always 1).");
    build.add(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION")), 1);
    let mut start =
        Family::new("rempart_daemon_start_time_seconds", "gauge", "When the daemon started (Unix time).");
    start.add("", shared.started.timestamp());
    let mut last_success = Family::new(
        "rempart_last_success_timestamp_seconds",
        "gauge",
        "End of the last successful run of a step (Unix time).",
    );
    let mut last_ok =
        Family::new("rempart_last_run_success", "gauge", "1 when the last run of a step succeeded, else 0.");
    let mut last_end = Family::new(
        "rempart_last_run_timestamp_seconds",
        "gauge",
        "End of the last run of a step, whatever its outcome (Unix time).",
    );
    let mut duration =
        Family::new("rempart_last_run_duration_seconds", "gauge", "Duration of the last run of a step.");
    let mut added = Family::new(
        "rempart_last_backup_added_bytes",
        "gauge",
        "Bytes the last backup added to the repository.",
    );
    let mut snaps = Family::new(
        "rempart_snapshots",
        "gauge",
        "Snapshots of the job in its repository after its last backup.",
    );
    let mut running = Family::new("rempart_running", "gauge", "1 while a step of the job runs.");
    let mut runs = Family::new(
        "rempart_runs_total",
        "counter",
        "Ended runs by job, step and outcome (from the catalog).",
    );
    let mut verified = Family::new(
        "rempart_job_verified",
        "gauge",
        "1 when the job is VERIFIED (from the verified evidence ledger), else 0.",
    );
    let mut not_verified = Family::new("rempart_job_not_verified", "gauge", "1 when the job is NOT VERIFIED (a drill failed, tampering, or its repository is unreachable), else 0.");
    let mut age = Family::new(
        "rempart_newest_snapshot_age_seconds",
        "gauge",
        "Age of the job's newest successful backup (compare with rempart_job_rpo_seconds).",
    );
    let mut rpo = Family::new("rempart_job_rpo_seconds", "gauge", "The job's recovery point objective.");
    let mut rto = Family::new("rempart_job_rto_seconds", "gauge", "The job's recovery time objective.");
    let mut drill_rto = Family::new(
        "rempart_last_drill_restore_seconds",
        "gauge",
        "How long the last drill's restore and checks took (compare with rempart_job_rto_seconds).",
    );
    let mut copy_age = Family::new(
        "rempart_copy_newest_snapshot_age_seconds",
        "gauge",
        "Age of the job's newest snapshot in each of its copies, as of the last copy run that reached it.",
    );
    let mut copy_ok = Family::new(
        "rempart_copy_last_run_success",
        "gauge",
        "1 when the last copy run reached the copy, else 0.",
    );
    let mut findings = Family::new(
        "rempart_evidence_findings",
        "gauge",
        "Tampering findings of the evidence ledger's verification.",
    );

    let jobs = shared.jobs.lock().clone();
    let audit = shared.audit();
    findings.add("", audit.verdict.findings.len());
    let now = (shared.ctx.now)();
    let catalog = shared.ctx.catalog();
    for job in &jobs {
        let j = escape(&job.name);
        let r = crate::evidence::readiness::readiness(job, &audit, now);
        verified.add(&format!("job=\"{j}\""), u8::from(r.state == State::Verified));
        not_verified.add(&format!("job=\"{j}\""), u8::from(r.state == State::NotVerified));
        if let Some(d) = job.rpo {
            rpo.add(&format!("job=\"{j}\""), d.as_secs());
        }
        if let Some(d) = job.rto {
            rto.add(&format!("job=\"{j}\""), d.as_secs());
        }
        if let Ok(catalog) = &catalog {
            for c in crate::catalog::copy_state::copy_states(catalog, job).unwrap_or_default() {
                let labels = format!("job=\"{j}\",copy=\"{}\"", escape(&c.name));
                if let Some(t) = c.newest_snapshot_time {
                    copy_age.add(&labels, (now - t).num_seconds().max(0));
                }
                if let Some(ok) = c.last_run_ok {
                    copy_ok.add(&labels, u8::from(ok));
                }
            }
        }
        for step in Step::ALL {
            let labels = format!("job=\"{j}\",step=\"{}\"", step.name());
            let is_running = shared.running.lock().contains(&(job.name.clone(), step));
            running.add(&labels, u8::from(is_running));
            let Ok(catalog) = &catalog else { continue };
            if let Ok(Some(r)) = catalog.last_success(&job.name, step) {
                let end = r.ended.unwrap_or(r.started);
                last_success.add(&labels, end.timestamp());
                if step == Step::Backup {
                    let t = r.outcome.snapshot_time.unwrap_or(end);
                    age.add(&format!("job=\"{j}\""), (now - t).num_seconds().max(0));
                }
            }
            if let Ok(Some(r)) = catalog.last_run(&job.name, step) {
                last_ok.add(&labels, u8::from(r.succeeded()));
                if let Some(end) = r.ended {
                    last_end.add(&labels, end.timestamp());
                }
                if let Some(d) = r.duration() {
                    duration.add(&labels, format!("{:.3}", d.as_secs_f64()));
                }
                if step == Step::Backup {
                    if let Some(b) = r.outcome.bytes_added {
                        added.add(&format!("job=\"{j}\""), b);
                    }
                    if let Some(n) = r.outcome.details.backup().and_then(|b| b.snapshot_count) {
                        snaps.add(&format!("job=\"{j}\""), n);
                    }
                }
                if let Some(ms) = r.outcome.details.drill().and_then(|d| d.rto_actual_ms) {
                    drill_rto.add(&format!("job=\"{j}\""), format!("{:.3}", ms as f64 / 1000.0));
                }
            }
        }
    }
    if let Ok(catalog) = &catalog {
        let known: std::collections::HashSet<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
        for (job, step, status, n) in catalog.run_counts().unwrap_or_default() {
            if known.contains(job.as_str()) {
                runs.add(
                    &format!(
                        "job=\"{}\",step=\"{}\",status=\"{}\"",
                        escape(&job),
                        escape(&step),
                        escape(&status)
                    ),
                    n,
                );
            }
        }
    }
    let mut out = String::new();
    for f in [
        up,
        build,
        start,
        last_success,
        last_ok,
        last_end,
        duration,
        added,
        snaps,
        running,
        runs,
        verified,
        not_verified,
        age,
        rpo,
        rto,
        drill_rto,
        copy_age,
        copy_ok,
        findings,
    ] {
        if f.samples.is_empty() {
            continue;
        }
        let _ = writeln!(out, "# HELP {} {}\n# TYPE {} {}", f.name, f.help, f.name, f.kind);
        out.push_str(&f.samples);
    }
    out
}
