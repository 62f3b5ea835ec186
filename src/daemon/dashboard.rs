//! The daemon's live page: one row per job with its readiness, last backup, last drill, its
//! copies (newest snapshot in each), next runs and recent failures; a page per job (its report
//! section with charts) and `/report`.

use std::fmt::Write;

use super::Shared;
use crate::catalog::Catalog;
use crate::evidence::readiness::{readiness, State};
use crate::jobs::Step;
use crate::report::html::{esc, page};

fn ago(t: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> String {
    crate::report::render::dur((now - t).to_std().ok().map(|d| d.as_secs())) + " ago"
}

/// Why the installation is not ready (empty when it is): jobs not VERIFIED, and steps whose
/// last run failed. `/readyz` answers 503 with these lines.
pub fn not_ready(shared: &Shared) -> Vec<String> {
    let now = (shared.ctx.now)();
    let jobs = shared.jobs.lock().clone();
    let audit = shared.audit();
    let catalog = shared.ctx.catalog().ok();
    let mut out = Vec::new();
    for job in &jobs {
        let r = readiness(job, &audit, now);
        if r.state != State::Verified {
            out.push(format!("job {}: {}: {}", job.name, r.state.label(), r.reason));
        }
        for step in Step::ALL {
            if let Some(run) = catalog.as_ref().and_then(|c| c.last_run(&job.name, step).ok().flatten()) {
                if !run.succeeded() && run.outcome.status != crate::catalog::Status::Running {
                    out.push(format!(
                        "job {}: the last {} {}: {}",
                        job.name,
                        step.name(),
                        run.outcome.status.name(),
                        run.outcome.error.as_deref().unwrap_or("")
                    ));
                }
            }
        }
    }
    out
}

pub fn render_index(shared: &Shared) -> String {
    let now = (shared.ctx.now)();
    let jobs = shared.jobs.lock().clone();
    let next = shared.next.lock().clone();
    let catalog = shared.ctx.catalog().ok();
    let audit = shared.audit();
    let mut body = String::from(
        "<h1>rempart</h1><p><a href=\"/report\">PRA readiness report</a> · <a href=\"/metrics\">metrics</a></p>\
         <table id=\"jobs\"><tr><th>job</th><th>readiness</th><th>last backup</th><th>last drill</th><th>copies</th><th>next runs</th><th>recent failures</th></tr>",
    );
    for job in &jobs {
        let c: Option<&Catalog> = catalog.as_ref();
        let ready = readiness(job, &audit, now);
        let class = match ready.state {
            State::Verified => "ok",
            State::NeedsVerified => "warn",
            State::NotVerified => "bad",
        };
        let run_cell = |step: Step| match c.and_then(|c| c.last_run(&job.name, step).ok().flatten()) {
            Some(r) => format!(
                "<span class=\"{}\">{}</span> {} <small>({})</small>",
                if r.succeeded() { "ok" } else { "bad" },
                r.outcome.status.name(),
                r.started.format("%Y-%m-%d %H:%M UTC"),
                ago(r.started, now)
            ),
            None => "<span class=\"warn\">never</span>".into(),
        };
        let copies: Vec<String> = c
            .and_then(|c| crate::catalog::copy_state::copy_states(c, job).ok())
            .unwrap_or_default()
            .iter()
            .map(|s| {
                let class = match s.last_run_ok {
                    Some(true) => "ok",
                    Some(false) => "bad",
                    None => "warn",
                };
                let newest = match s.newest_snapshot_time {
                    Some(t) => format!("newest snapshot {}", ago(t, now)),
                    None => "no snapshot yet".into(),
                };
                format!(
                    "<span class=\"{class}\" title=\"{}\">{}</span> {newest}",
                    esc(&s.repository),
                    esc(&s.name)
                )
            })
            .collect();
        let mut nexts = String::new();
        for step in Step::ALL {
            if let Some(t) = next.get(&(job.name.clone(), step)) {
                let _ = write!(nexts, "{} {}<br>", step.name(), t.format("%Y-%m-%d %H:%M UTC"));
            }
        }
        let failures: Vec<String> = c
            .and_then(|c| c.runs(Some(&job.name), now - chrono::Duration::days(7)).ok())
            .unwrap_or_default()
            .into_iter()
            .filter(|r| !r.succeeded() && r.outcome.status != crate::catalog::Status::Running)
            .rev()
            .take(3)
            .map(|r| {
                format!(
                    "{} {}: {}",
                    r.started.format("%m-%d %H:%M"),
                    r.step.name(),
                    esc(r.outcome.error.as_deref().unwrap_or(r.outcome.status.name()))
                )
            })
            .collect();
        let _ = write!(
            body,
            "<tr class=\"job\" data-job=\"{n}\"><td><a href=\"/job/{n}\">{n}</a></td><td class=\"readiness {class}\" title=\"{why}\">{state}</td><td>{}</td><td>{}</td><td>{}</td><td>{nexts}</td><td>{}</td></tr>",
            run_cell(Step::Backup),
            run_cell(Step::Drill),
            if copies.is_empty() { "none".into() } else { copies.join("<br>") },
            if failures.is_empty() { "none".into() } else { failures.join("<br>") },
            n = esc(&job.name),
            why = esc(&ready.reason),
            state = ready.state.label(),
        );
    }
    body.push_str("</table>");
    page("rempart", &body)
}

/// The report (HTML) of some jobs of the daemon, over 30 days (the job page) or 90 (`/report`).
pub fn render_report(shared: &Shared, only: Option<&str>, days: u64) -> Option<String> {
    let jobs: Vec<_> =
        shared.jobs.lock().iter().filter(|j| only.is_none_or(|o| j.name == o)).cloned().collect();
    if jobs.is_empty() {
        return None;
    }
    let ctx = &shared.ctx;
    let report = crate::report::gather::gather(
        &jobs,
        ctx,
        &shared.audit(),
        (ctx.now)(),
        std::time::Duration::from_secs(days * 86_400),
    );
    Some(match report {
        Ok(r) => crate::report::render::html(&r, crate::report::i18n::Lang::En),
        Err(e) => {
            page("rempart", &format!("<p class=\"bad\">report unavailable: {}</p>", esc(&e.to_string())))
        }
    })
}
