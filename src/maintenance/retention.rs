//! Which snapshots a retention policy keeps, with restic's semantics.
//!
//! Snapshots are grouped by host and paths. Within a group, newest first, each rule keeps a
//! snapshot when its bucket (the snapshot itself for `keep_last`, its hour, day, ISO week,
//! month or year for the others) differs from the last bucket that rule kept, until the rule
//! has kept its count. The rules are ORed: a snapshot is kept when any rule keeps it, and the
//! decision lists every rule that did. `keep_within` keeps what is younger than the duration
//! counted back from the group's newest snapshot; `keep_tags` keeps snapshots carrying a tag.
//! Buckets are computed in the job's time zone (UTC by default).
//!
//! Example: daily snapshots for 30 days with `keep_daily = 7, keep_weekly = 4` keep the 7
//! newest days, plus the newest snapshot of each of the 4 newest ISO weeks (some of which are
//! already kept by the daily rule): 9 or 10 snapshots in all.

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::Id;
use crate::jobs::duration::parse_duration;
use crate::jobs::Retention;
use crate::repo::snapshot::Snapshot;

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Decision {
    pub id: Id,
    pub time: DateTime<Utc>,
    pub keep: bool,
    /// The rules that kept it (`last 3`, `daily 7`, `within 30d`, `tag important`).
    pub reasons: Vec<String>,
}

struct Rule {
    name: &'static str,
    count: u32,
    bucket: fn(DateTime<Tz>) -> String,
    last: Option<String>,
    left: u32,
}

/// Applies `policy` to one group of snapshots (any order); returns decisions newest first.
///
/// # Errors
/// `InvalidInput` for an empty policy (forgetting everything is never a default) or a bad
/// `keep_within`.
pub fn apply(policy: &Retention, snaps: &[(Id, Snapshot)], tz: Tz) -> Result<Vec<Decision>> {
    let within = validate(policy)?;
    let mut sorted: Vec<&(Id, Snapshot)> = snaps.iter().collect();
    sorted.sort_by(|a, b| b.1.time.cmp(&a.1.time).then(b.0.cmp(&a.0)));
    let mut rules: Vec<Rule> = [
        ("last", policy.keep_last, (|t: DateTime<Tz>| t.to_rfc3339()) as fn(DateTime<Tz>) -> String),
        ("hourly", policy.keep_hourly, |t| {
            format!("{}-{:02}-{:02} {:02}", t.year(), t.month(), t.day(), t.hour())
        }),
        ("daily", policy.keep_daily, |t| format!("{}-{:02}-{:02}", t.year(), t.month(), t.day())),
        ("weekly", policy.keep_weekly, |t| {
            let w = t.iso_week();
            format!("{}-W{:02}", w.year(), w.week())
        }),
        ("monthly", policy.keep_monthly, |t| format!("{}-{:02}", t.year(), t.month())),
        ("yearly", policy.keep_yearly, |t| format!("{}", t.year())),
    ]
    .into_iter()
    .filter_map(|(name, n, bucket)| {
        n.filter(|&n| n > 0).map(|count| Rule { name, count, bucket, last: None, left: count })
    })
    .collect();
    let newest = sorted.first().map(|s| s.1.time);
    let mut out = Vec::with_capacity(sorted.len());
    for (i, (id, s)) in sorted.iter().enumerate() {
        let local = s.time.with_timezone(&tz);
        let mut reasons = Vec::new();
        for r in rules.iter_mut() {
            // keep_last counts snapshots, not time buckets.
            let b = if r.name == "last" { i.to_string() } else { (r.bucket)(local) };
            if r.left > 0 && r.last.as_ref() != Some(&b) {
                r.last = Some(b);
                r.left -= 1;
                reasons.push(format!("{} {}", r.name, r.count));
            }
        }
        if let (Some(w), Some(newest)) = (within, newest) {
            // Durations are bounded at parse time; a start before the calendar begins keeps all.
            let start = chrono::Duration::from_std(w).ok().and_then(|w| newest.checked_sub_signed(w));
            if start.is_none_or(|start| s.time > start) {
                reasons.push(format!("within {}", policy.keep_within.clone().unwrap_or_default()));
            }
        }
        for t in &policy.keep_tags {
            if s.tags.contains(t) {
                reasons.push(format!("tag {t}"));
            }
        }
        out.push(Decision { id: *id, time: s.time, keep: !reasons.is_empty(), reasons });
    }
    Ok(out)
}

/// Checks a policy: at least one rule, and a `keep_within` that parses (bounded, so the date
/// it leads to exists); returns that duration.
///
/// # Errors
/// `InvalidInput` quoting what is wrong.
pub fn validate(policy: &Retention) -> Result<Option<std::time::Duration>> {
    if policy.is_empty() {
        return Err(Error::invalid(
            "no retention rule: give at least one of keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, keep_within, keep_tags",
        ));
    }
    policy
        .keep_within
        .as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(|e| Error::invalid(format!("keep_within: {e}")))
}

/// What snapshots are grouped by before a policy is applied to each group (`--group-by`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupBy {
    pub host: bool,
    pub paths: bool,
    pub tags: bool,
}

impl Default for GroupBy {
    /// Host and paths, as restic does.
    fn default() -> GroupBy {
        GroupBy { host: true, paths: true, tags: false }
    }
}

impl std::str::FromStr for GroupBy {
    type Err = String;

    /// `host,paths` (the default), any comma-separated subset of `host`, `paths`, `tags`, or
    /// an empty string for one group of every snapshot.
    fn from_str(text: &str) -> std::result::Result<GroupBy, String> {
        let mut g = GroupBy { host: false, paths: false, tags: false };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "host" => g.host = true,
                "paths" | "path" => g.paths = true,
                "tags" | "tag" => g.tags = true,
                other => {
                    return Err(format!(
                        "'{other}' is not something to group by: expected a comma-separated list of host, paths, tags (or '' for one group)"
                    ))
                }
            }
        }
        Ok(g)
    }
}

/// One group's key: the host, sorted paths and sorted tags it was grouped by (`None` for
/// what it was not grouped by).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupKey {
    pub host: Option<String>,
    pub paths: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
}

/// Groups snapshots by what `by` says (restic's default: host and paths).
pub fn group(snaps: Vec<(Id, Snapshot)>, by: GroupBy) -> Vec<(GroupKey, Vec<(Id, Snapshot)>)> {
    let mut groups: std::collections::BTreeMap<GroupKey, Vec<(Id, Snapshot)>> = Default::default();
    for (id, s) in snaps {
        let sorted = |v: &[String]| {
            let mut v = v.to_vec();
            v.sort();
            v
        };
        let key = GroupKey {
            host: by.host.then(|| s.hostname.clone()),
            paths: by.paths.then(|| sorted(&s.paths)),
            tags: by.tags.then(|| sorted(&s.tags)),
        };
        groups.entry(key).or_default().push((id, s));
    }
    groups.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(t: &str) -> (Id, Snapshot) {
        let time = DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
        let s = Snapshot {
            version: 1,
            time,
            hostname: "h".into(),
            username: "u".into(),
            paths: vec!["/d".into()],
            tags: vec![],
            tree: Id::default(),
            parent: None,
            source: Default::default(),
            job: None,
            summary: Default::default(),
            program_version: "t".into(),
            repaired: None,
        };
        (Id::of_bytes(t.as_bytes()), s)
    }

    #[test]
    fn rules_are_ored_and_reasons_listed() {
        let snaps: Vec<_> = (1..=20).map(|d| snap(&format!("2026-11-{d:02}T10:00:00Z"))).collect();
        let p =
            Retention { keep_last: Some(2), keep_daily: Some(3), keep_weekly: Some(2), ..Default::default() };
        let d = apply(&p, &snaps, chrono_tz::UTC).unwrap();
        let kept: Vec<String> =
            d.iter().filter(|x| x.keep).map(|x| x.time.format("%d").to_string()).collect();
        // 20, 19 (last), 18 (daily), 15 (newest of the previous ISO week).
        assert_eq!(kept, ["20", "19", "18", "15"]);
        assert_eq!(d[0].reasons, ["last 2", "daily 3", "weekly 2"]);
        assert!(apply(&Retention::default(), &snaps, chrono_tz::UTC).is_err());
    }

    #[test]
    fn days_are_the_jobs_days_not_utcs() {
        // 23:30 UTC on the 1st is 00:30 on the 2nd in Paris: one day there, two in UTC.
        let snaps =
            vec![snap("2026-11-02T00:30:00Z"), snap("2026-11-01T23:30:00Z"), snap("2026-11-01T12:00:00Z")];
        let p = Retention { keep_daily: Some(2), ..Default::default() };
        let kept = |tz| -> Vec<String> {
            let d = apply(&p, &snaps, tz).unwrap();
            d.iter().filter(|x| x.keep).map(|x| x.time.format("%dT%H").to_string()).collect()
        };
        assert_eq!(kept(chrono_tz::UTC), ["02T00", "01T23"]);
        assert_eq!(kept(chrono_tz::Europe::Paris), ["02T00", "01T12"]);
    }
}
