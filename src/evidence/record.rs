//! Building a ledger record from a run, in canonical JSON.
//!
//! RFC 8785 (JCS) with the subset this ledger uses: objects with sorted keys (serde_json's
//! map is ordered), strings, booleans, null and integers (durations in milliseconds, never
//! floats), no whitespace. Under these restrictions serde_json's compact output is exactly the
//! JCS serialization.

use serde_json::{json, Value};

use crate::catalog::RunRecord;
use crate::jobs::Job;

/// Replaces floats by integers (JCS-safe) everywhere in a value.
pub fn integers_only(v: Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => Value::from(n.as_f64().map(|f| f.round() as i64).unwrap_or(0)),
        Value::Array(a) => Value::Array(a.into_iter().map(integers_only).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, integers_only(v))).collect()),
        other => other,
    }
}

/// The canonical bytes of a record.
pub fn canonical(v: &Value) -> String {
    serde_json::to_string(v).expect("JSON values serialize")
}

/// The facts of a run as the ledger keeps them (chain, seq and prev are added on append).
pub fn from_run(job: &Job, r: &RunRecord, repository_id: &str) -> Value {
    let d = &r.details;
    let get = |k: &str| d.get(k).cloned().unwrap_or(Value::Null);
    let ms =
        |k: &str| d.get(k).and_then(|v| v.as_u64()).map(|s| Value::from(s * 1000)).unwrap_or(Value::Null);
    let checks = match r.step.as_str() {
        "drill" => get("checks"),
        "check" => json!([{
            "name": "repository check",
            "passed": r.status == "success",
            "detail": d.pointer("/report/read_data").cloned().unwrap_or(Value::Null),
        }]),
        _ => json!([]),
    };
    integers_only(json!({
        "record_id": r.run_id,
        "job": job.name,
        "step": r.step,
        "trigger": r.trigger,
        "host": r.host,
        "operator": r.operator,
        "started": r.started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "ended": r.ended.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        "snapshot": r.snapshot,
        "snapshot_time": r.snapshot_time.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        "level_reached": get("level_reached"),
        "level_required": get("level_required"),
        "checks": checks,
        "files_verified": if r.step == "drill" { get("files_verified") } else { Value::Null },
        "bytes_verified": if r.step == "drill" { get("bytes_verified") } else { Value::Null },
        "rows_verified": get("rows_verified"),
        "files": r.files,
        "bytes_read": r.bytes_read,
        "bytes_added": r.bytes_added,
        "rto_target_ms": job.rto.map(|d| d.as_millis() as u64),
        "rto_actual_ms": get("rto_actual_ms"),
        "rpo_target_ms": job.rpo.map(|d| d.as_millis() as u64),
        "rpo_achieved_ms": ms("since_last_backup_secs"),
        "snapshot_age_ms": ms("snapshot_age_secs"),
        "target": get("target"),
        "segregated": get("segregated"),
        "outcome": r.status,
        "errors": r.error.iter().collect::<Vec<_>>(),
        "cleanup": get("cleanup"),
        "cleanup_ok": get("cleanup_ok"),
        "cold": get("cold"),
        "rempart_version": env!("CARGO_PKG_VERSION"),
        "job_definition_hash": r.definition_hash,
        "repository_id": repository_id,
    }))
}
