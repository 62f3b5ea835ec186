//! Notifications: webhooks with a JSON body, and healthchecks.io-style pings.
//!
//! A notification that cannot be delivered is logged and never fails the run. Each carries the
//! run's evidence record (chain, sequence number, hash): the chain head at that moment, so a
//! receiver that keeps notifications holds an outside copy of the chain's progress.

use std::time::Duration;

use super::RunContext;
use crate::catalog::RunRecord;
use crate::evidence::ledger::LedgerEntry;
use crate::jobs::Job;

pub enum Ping {
    Start,
}

fn client() -> Option<reqwest::Client> {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().ok()
}

fn send(
    ctx: &RunContext,
    what: &str,
    req: impl std::future::Future<Output = reqwest::Result<reqwest::Response>>,
) {
    match ctx.handle.block_on(req) {
        Ok(r) if r.status().is_success() => tracing::debug!("{what} delivered"),
        Ok(r) => tracing::warn!("{what} not accepted: HTTP {}", r.status()),
        Err(e) => tracing::warn!("{what} could not be delivered: {e}"),
    }
}

/// The start ping.
pub fn ping(ctx: &RunContext, job: &Job, _p: Ping) {
    let _rt = ctx.handle.enter();
    let (Some(base), Some(c)) = (&job.notify.healthchecks, client()) else { return };
    send(ctx, "start ping", c.post(format!("{}/start", base.trim_end_matches('/'))).send());
}

/// The JSON body of a webhook.
pub fn webhook_body(job: &Job, r: &RunRecord, evidence: Option<&LedgerEntry>) -> serde_json::Value {
    serde_json::json!({
        "job": job.name,
        "step": r.step,
        "status": r.outcome.status,
        "trigger": r.trigger,
        "host": r.host,
        "run_id": r.run_id,
        "started": r.started,
        "ended": r.ended,
        "duration_secs": r.duration().map(|d| d.as_secs_f64()),
        "snapshot": r.outcome.snapshot,
        "error": r.outcome.error,
        "bytes_added": r.outcome.bytes_added,
        "repository": r.repository,
        "details": r.outcome.details,
        "evidence": evidence.map(|e| serde_json::json!({
            "chain": e.chain,
            "seq": e.seq,
            "chain_head": e.hash,
        })),
    })
}

/// Webhook (on failure, or always with `on_success`) and the final ping.
pub fn after_run(ctx: &RunContext, job: &Job, r: &RunRecord, evidence: Option<&LedgerEntry>) {
    let _rt = ctx.handle.enter();
    let Some(c) = client() else { return };
    let ok = r.succeeded();
    if let Some(url) = &job.notify.webhook {
        if !ok || job.notify.on_success {
            send(ctx, "webhook", c.post(url).json(&webhook_body(job, r, evidence)).send());
        }
    }
    if let Some(base) = &job.notify.healthchecks {
        let base = base.trim_end_matches('/');
        let url = if ok { base.to_string() } else { format!("{base}/fail") };
        let mut body = r.outcome.error.clone().unwrap_or_else(|| format!("{} {}", r.step, r.outcome.status));
        if let Some(e) = evidence {
            body.push_str(&format!("\nevidence {} #{} chain head {}", e.chain, e.seq, e.hash));
        }
        send(ctx, "result ping", c.post(url).body(body).send());
    }
}
