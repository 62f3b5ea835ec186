//! The daemon's live page: one row per job with its last backup, next runs and failures.

use std::fmt::Write;

use super::html::{esc, page};
use crate::daemon::Shared;
use crate::jobs::Step;

fn ago(t: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> String {
    let d = (now - t).to_std().unwrap_or_default();
    format!(
        "{} ago",
        crate::jobs::duration::format_duration(std::time::Duration::from_secs(d.as_secs() / 60 * 60))
    )
}

pub fn render_index(shared: &Shared) -> String {
    let now = (shared.ctx.now)();
    let jobs = shared.jobs.lock().clone();
    let next = shared.next.lock().clone();
    let catalog = shared.ctx.catalog().ok();
    let mut body = String::from("<h1>rempart</h1><table id=\"jobs\"><tr><th>job</th><th>last backup</th><th>status</th><th>next runs</th><th>recent failures</th></tr>");
    for job in &jobs {
        let last = catalog.as_ref().and_then(|c| c.last_run(&job.name, "backup").ok().flatten());
        let (when, status) = match &last {
            Some(r) => (
                format!(
                    "{} <small>({})</small>",
                    r.started.format("%Y-%m-%d %H:%M UTC"),
                    ago(r.started, now)
                ),
                format!(
                    "<span class=\"{}\">{}</span>",
                    if r.succeeded() { "ok" } else { "bad" },
                    esc(&r.status)
                ),
            ),
            None => ("never".into(), "<span class=\"warn\">no backup yet</span>".into()),
        };
        let mut nexts = String::new();
        for step in Step::ALL {
            if let Some(t) = next.get(&(job.name.clone(), step)) {
                let _ = write!(nexts, "{} {}<br>", step.name(), t.format("%Y-%m-%d %H:%M UTC"));
            }
        }
        let failures: Vec<String> = catalog
            .as_ref()
            .and_then(|c| c.runs(Some(&job.name), now - chrono::Duration::days(7)).ok())
            .unwrap_or_default()
            .into_iter()
            .filter(|r| !r.succeeded() && r.status != "running")
            .rev()
            .take(3)
            .map(|r| {
                format!(
                    "{} {}: {}",
                    r.started.format("%m-%d %H:%M"),
                    esc(&r.step),
                    esc(r.error.as_deref().unwrap_or(&r.status))
                )
            })
            .collect();
        let _ = write!(
            body,
            "<tr class=\"job\"><td>{}</td><td>{when}</td><td>{status}</td><td>{nexts}</td><td>{}</td></tr>",
            esc(&job.name),
            if failures.is_empty() { "none".into() } else { failures.join("<br>") }
        );
    }
    body.push_str("</table>");
    page("rempart", &body)
}
