//! Prometheus metrics from the catalog.

use std::fmt::Write;

use super::Shared;
use crate::jobs::Step;

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The `/metrics` text: per job and step the last success time, last status and duration;
/// per job the bytes added by the last backup and the snapshot count it saw.
pub fn render(shared: &Shared) -> String {
    let mut out = String::new();
    let jobs = shared.jobs.lock().clone();
    let catalog = shared.ctx.catalog();
    let _ = writeln!(out, "# HELP rempart_up The daemon is running.\n# TYPE rempart_up gauge\nrempart_up 1");
    let _ = writeln!(out, "# HELP rempart_daemon_start_time_seconds When the daemon started.\n# TYPE rempart_daemon_start_time_seconds gauge");
    let _ = writeln!(out, "rempart_daemon_start_time_seconds {}", shared.started.timestamp());
    let Ok(catalog) = catalog else { return out };
    let mut last_success = String::new();
    let mut last_status = String::new();
    let mut duration = String::new();
    let mut bytes = String::new();
    let mut snaps = String::new();
    let mut running = String::new();
    let mut verified = String::new();
    let audit = shared.audit();
    let now = (shared.ctx.now)();
    for job in &jobs {
        let r = crate::evidence::readiness::readiness(job, &audit, now);
        let _ = writeln!(
            verified,
            "rempart_job_verified{{job=\"{}\"}} {}",
            escape(&job.name),
            u8::from(r.state == crate::evidence::readiness::State::Verified)
        );
        let j = escape(&job.name);
        for step in Step::ALL {
            if let Ok(Some(r)) = catalog.last_success(&job.name, step) {
                let _ = writeln!(
                    last_success,
                    "rempart_last_success_timestamp_seconds{{job=\"{j}\",step=\"{}\"}} {}",
                    step.name(),
                    r.ended.unwrap_or(r.started).timestamp()
                );
            }
            if let Ok(Some(r)) = catalog.last_run(&job.name, step) {
                let ok = u8::from(r.succeeded());
                let _ = writeln!(
                    last_status,
                    "rempart_last_run_success{{job=\"{j}\",step=\"{}\",status=\"{}\"}} {ok}",
                    step.name(),
                    r.outcome.status.name()
                );
                if let Some(d) = r.duration() {
                    let _ = writeln!(
                        duration,
                        "rempart_last_run_duration_seconds{{job=\"{j}\",step=\"{}\"}} {:.3}",
                        step.name(),
                        d.as_secs_f64()
                    );
                }
                if step == Step::Backup {
                    if let Some(b) = r.outcome.bytes_added {
                        let _ = writeln!(bytes, "rempart_last_backup_bytes_added{{job=\"{j}\"}} {b}");
                    }
                    if let Some(n) = r.outcome.details.backup().and_then(|b| b.snapshot_count) {
                        let _ = writeln!(snaps, "rempart_snapshots{{job=\"{j}\"}} {n}");
                    }
                }
            }
            let is_running = shared.running.lock().contains(&(job.name.clone(), step));
            let _ = writeln!(
                running,
                "rempart_running{{job=\"{j}\",step=\"{}\"}} {}",
                step.name(),
                u8::from(is_running)
            );
        }
    }
    for (name, help, kind, body) in [
        (
            "rempart_last_success_timestamp_seconds",
            "End of the last successful run of a step.",
            "gauge",
            last_success,
        ),
        ("rempart_last_run_success", "1 when the last run of a step succeeded.", "gauge", last_status),
        ("rempart_last_run_duration_seconds", "Duration of the last run of a step.", "gauge", duration),
        ("rempart_last_backup_bytes_added", "Bytes the last backup added to the repository.", "gauge", bytes),
        (
            "rempart_snapshots",
            "Snapshots of the job in its repository after the last backup.",
            "gauge",
            snaps,
        ),
        ("rempart_running", "1 while a step runs.", "gauge", running),
        (
            "rempart_job_verified",
            "1 when the job is VERIFIED (from the verified evidence ledger), 0 otherwise.",
            "gauge",
            verified,
        ),
        (
            "rempart_evidence_findings",
            "Tampering findings of the evidence ledger's verification.",
            "gauge",
            format!("rempart_evidence_findings {}\n", audit.verdict.findings.len()),
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        out.push_str(&body);
    }
    out
}
