//! Cron schedules with crontab(5) meaning, in a time zone, with Vixie cron's daylight-saving
//! behaviour.
//!
//! Expressions: 5 fields (`minute hour day-of-month month day-of-week`), or 6 with seconds
//! first, or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`. Day of week is 0-7 with 0
//! and 7 for Sunday, names allowed. The `cron` crate numbers days 1-7 from Sunday and wants a
//! seconds field, so the day-of-week field is expanded and rewritten with day names, never just
//! shifted. As in crontab(5), when both day fields are restricted a time matches if *either*
//! matches (two schedules, merged).
//!
//! Times are matched on the local wall clock of the zone. A wall time that does not exist
//! (the hour skipped in spring) runs right after the gap; a wall time that occurs twice (the
//! hour repeated in autumn) runs once, at its first occurrence.

use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

#[derive(Clone, Debug)]
pub struct CronSchedule {
    pub expr: String,
    pub tz: Tz,
    schedules: Vec<cron::Schedule>,
}

fn day_number(s: &str) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) =
        ["sun", "mon", "tue", "wed", "thu", "fri", "sat"].iter().position(|d| lower.starts_with(d))
    {
        return Ok(i as u32);
    }
    match s.parse::<u32>() {
        Ok(n) if n <= 7 => Ok(n % 7),
        _ => Err(format!("'{s}' is not a day of week (0-7 with 0 and 7 for Sunday, or sun..sat)")),
    }
}

const MONTH_NAMES: [&str; 12] =
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

/// Checks one field of a crontab expression the way crontab(5) words it: `*`, a value, a
/// range `a-b`, each optionally `/step`, separated by commas, within `lo..=hi` (or `names`,
/// counted from `lo`).
fn check_field(expr: &str, field: &str, what: &str, lo: u32, hi: u32, names: &[&str]) -> Result<(), String> {
    let allowed = if names.is_empty() {
        format!("{lo}-{hi}")
    } else {
        format!("{lo}-{hi} or {}..{}", names[0], names[names.len() - 1])
    };
    let bad = |why: String| {
        format!(
            "'{expr}': {why} in the {what} field (allowed: {allowed}, '*', ranges a-b, steps /n, lists a,b)"
        )
    };
    let value = |t: &str| -> Result<u32, String> {
        let lower = t.to_ascii_lowercase();
        if let Some(i) = names.iter().position(|n| lower == *n) {
            return Ok(lo + i as u32);
        }
        match t.parse::<u32>() {
            Ok(n) if (lo..=hi).contains(&n) => Ok(n),
            Ok(n) => Err(bad(format!("{n} is out of range"))),
            Err(_) => Err(bad(format!("'{t}' is not a number"))),
        }
    };
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, st)) => match st.parse::<u32>() {
                Ok(0) => return Err(bad(format!("the step of '{item}' is 0"))),
                Ok(n) => (r, Some(n)),
                Err(_) => return Err(bad(format!("the step of '{item}' is not a number"))),
            },
            None => (item, None),
        };
        let _ = step;
        if range == "*" {
            continue;
        }
        match range.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (value(a)?, value(b)?);
                if a > b {
                    return Err(bad(format!("the range '{range}' goes backwards")));
                }
            }
            None => {
                value(range)?;
            }
        }
    }
    Ok(())
}

/// Expands a crontab day-of-week field into the set of days (0 = Sunday).
fn expand_dow(field: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().map_err(|_| format!("bad step in '{item}'"))?),
            None => (item, 1),
        };
        if step == 0 {
            return Err(format!("step 0 in '{item}'"));
        }
        let (lo, hi) = if range == "*" {
            (0, 6)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) =
                (day_number(a)?, b.parse::<u32>().ok().filter(|&n| n == 7).unwrap_or(day_number(b)?));
            let b = if b == 0 && a > 0 { 7 } else { b };
            if a > b {
                return Err(format!("range '{range}' goes backwards"));
            }
            (a, b)
        } else {
            let a = day_number(range)?;
            (a, if step > 1 { 6 } else { a })
        };
        let mut d = lo;
        while d <= hi {
            days[(d % 7) as usize] = true;
            d += step;
        }
    }
    Ok(days)
}

impl CronSchedule {
    /// Parses an expression for zone `tz`.
    ///
    /// # Errors
    /// A sentence saying what is wrong and what is expected.
    pub fn parse(expr: &str, tz: Tz) -> Result<CronSchedule, String> {
        let expanded = match expr.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let (sec, rest) = match fields.len() {
            5 => ("0", &fields[..]),
            6 => (fields[0], &fields[1..]),
            n => {
                return Err(format!(
                    "'{expr}' has {n} fields: expected 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)"
                ))
            }
        };
        let (min, hour, dom, month, dow) = (rest[0], rest[1], rest[2], rest[3], rest[4]);
        if fields.len() == 6 {
            check_field(expr, sec, "second", 0, 59, &[])?;
        }
        check_field(expr, min, "minute", 0, 59, &[])?;
        check_field(expr, hour, "hour", 0, 23, &[])?;
        check_field(expr, dom, "day of month", 1, 31, &[])?;
        check_field(expr, month, "month", 1, 12, &MONTH_NAMES)?;
        let days = expand_dow(dow).map_err(|e| format!("'{expr}': {e}"))?;
        let dow_names: Vec<&str> = (0..7).filter(|&d| days[d]).map(|d| DAY_NAMES[d]).collect();
        let dow_restricted = !dow.starts_with('*');
        let dom_restricted = !dom.starts_with('*');
        let dow_expr = if dow_restricted { dow_names.join(",") } else { "*".to_string() };
        let mut texts = Vec::new();
        if dow_restricted && dom_restricted {
            texts.push(format!("{sec} {min} {hour} {dom} {month} *"));
            texts.push(format!("{sec} {min} {hour} * {month} {dow_expr}"));
        } else {
            texts.push(format!("{sec} {min} {hour} {dom} {month} {dow_expr}"));
        }
        let schedules = texts
            .iter()
            .map(|t| {
                cron::Schedule::from_str(t)
                    .map_err(|e| format!("'{expr}' is not a valid cron expression: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let s = CronSchedule { expr: expr.to_string(), tz, schedules };
        let probe = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("valid date");
        if s.next_after(probe).is_none_or(|t| t > probe + Duration::days(366 * 5)) {
            return Err(format!("'{expr}' never fires (no matching date within five years)"));
        }
        Ok(s)
    }

    /// The first instant strictly after `now` at which the schedule fires.
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local_now = now.with_timezone(&self.tz).naive_local();
        let start = Utc.from_utc_datetime(&local_now);
        let mut iters: Vec<_> = self.schedules.iter().map(|s| s.after(&start).peekable()).collect();
        for _ in 0..100_000 {
            // The smallest next wall time over the merged schedules.
            let mut best: Option<DateTime<Utc>> = None;
            for it in iters.iter_mut() {
                if let Some(t) = it.peek() {
                    if best.is_none_or(|b| *t < b) {
                        best = Some(*t);
                    }
                }
            }
            let wall = best?.naive_utc();
            for it in iters.iter_mut() {
                while it.peek().is_some_and(|t| t.naive_utc() == wall) {
                    it.next();
                }
            }
            let at = self.first_instant_at_or_after(wall);
            if at > now {
                return Some(at);
            }
        }
        None
    }

    /// The first real instant whose wall-clock time in the zone is at or after `wall`: the
    /// time itself, the first of two occurrences, or the end of a daylight-saving gap.
    fn first_instant_at_or_after(&self, wall: NaiveDateTime) -> DateTime<Utc> {
        match self.tz.from_local_datetime(&wall) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
            LocalResult::None => {
                // In a gap: binary search for the transition (wall time is monotonic here).
                // In whole seconds (transitions happen on whole seconds).
                let mut lo = (wall - Duration::hours(15)).and_utc().timestamp();
                let mut hi = (wall + Duration::hours(15)).and_utc().timestamp();
                let local = |t: i64| {
                    Utc.timestamp_opt(t, 0).single().expect("in range").with_timezone(&self.tz).naive_local()
                };
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    if local(mid) >= wall {
                        hi = mid;
                    } else {
                        lo = mid;
                    }
                }
                Utc.timestamp_opt(hi, 0).single().expect("in range")
            }
        }
    }
}

/// Parses a time zone name (`Europe/Paris`, `UTC`).
///
/// # Errors
/// A sentence naming the zone.
pub fn parse_tz(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>()
        .map_err(|_| format!("unknown time zone '{name}': expected an IANA name such as Europe/Paris or UTC"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn runs(expr: &str, tz: &str, from: &str, n: usize) -> Vec<String> {
        let s = CronSchedule::parse(expr, parse_tz(tz).unwrap()).unwrap();
        let mut t = utc(from);
        (0..n)
            .map(|_| {
                t = s.next_after(t).unwrap();
                t.to_rfc3339()
            })
            .collect()
    }

    #[test]
    fn day_of_week_means_what_crontab_says() {
        // 2026-11-29 is a Sunday. 0 and 7 are Sunday, 1 is Monday, 1-5 is Monday to Friday.
        assert_eq!(runs("0 9 * * 0", "UTC", "2026-11-28T00:00:00Z", 1), ["2026-11-29T09:00:00+00:00"]);
        assert_eq!(runs("0 9 * * 7", "UTC", "2026-11-28T00:00:00Z", 1), ["2026-11-29T09:00:00+00:00"]);
        assert_eq!(runs("0 9 * * 1", "UTC", "2026-11-28T00:00:00Z", 1), ["2026-11-30T09:00:00+00:00"]);
        assert_eq!(
            runs("0 9 * * 1-5", "UTC", "2026-11-27T10:00:00Z", 2),
            ["2026-11-30T09:00:00+00:00", "2026-12-01T09:00:00+00:00"]
        );
        assert_eq!(
            runs("0 9 * * 5-7", "UTC", "2026-11-26T10:00:00Z", 3),
            ["2026-11-27T09:00:00+00:00", "2026-11-28T09:00:00+00:00", "2026-11-29T09:00:00+00:00"]
        );
        assert_eq!(
            runs("0 9 * * sat,sun", "UTC", "2026-11-26T10:00:00Z", 2),
            ["2026-11-28T09:00:00+00:00", "2026-11-29T09:00:00+00:00"]
        );
        // Both day fields restricted: either matches (the 1st of the month, or any Monday).
        assert_eq!(
            runs("0 0 1 * 1", "UTC", "2026-11-29T00:00:00Z", 3),
            ["2026-11-30T00:00:00+00:00", "2026-12-01T00:00:00+00:00", "2026-12-07T00:00:00+00:00"]
        );
        // Six fields carry seconds.
        assert_eq!(
            runs("*/20 * * * * *", "UTC", "2026-11-29T00:00:00Z", 2),
            ["2026-11-29T00:00:20+00:00", "2026-11-29T00:00:40+00:00"]
        );
        assert_eq!(runs("@daily", "UTC", "2026-11-29T10:00:00Z", 1), ["2026-11-30T00:00:00+00:00"]);
    }

    #[test]
    fn paris_spring_gap_runs_right_after_and_autumn_repeat_runs_once() {
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC). 02:30 does not exist.
        assert_eq!(
            runs("30 2 * * *", "Europe/Paris", "2026-03-28T12:00:00Z", 2),
            ["2026-03-29T01:00:00+00:00", "2026-03-30T00:30:00+00:00"]
        );
        // Hourly across the gap: once per real hour.
        assert_eq!(
            runs("0 * * * *", "Europe/Paris", "2026-03-28T23:30:00Z", 3),
            ["2026-03-29T00:00:00+00:00", "2026-03-29T01:00:00+00:00", "2026-03-29T02:00:00+00:00"]
        );
        // 2026-10-25: 03:00 CEST goes back to 02:00 CET (01:00 UTC). 02:30 happens twice: once.
        assert_eq!(
            runs("30 2 * * *", "Europe/Paris", "2026-10-24T12:00:00Z", 2),
            ["2026-10-25T00:30:00+00:00", "2026-10-26T01:30:00+00:00"]
        );
        assert_eq!(
            runs("*/30 2 * * *", "Europe/Paris", "2026-10-24T23:45:00Z", 3),
            ["2026-10-25T00:00:00+00:00", "2026-10-25T00:30:00+00:00", "2026-10-26T01:00:00+00:00"]
        );
    }

    #[test]
    fn new_york_transitions() {
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
        assert_eq!(
            runs("15 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 2),
            ["2026-03-08T07:00:00+00:00", "2026-03-09T06:15:00+00:00"]
        );
        // 2026-11-01: 02:00 EDT goes back to 01:00 EST (06:00 UTC); 01:30 happens twice.
        assert_eq!(
            runs("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", 2),
            ["2026-11-01T05:30:00+00:00", "2026-11-02T06:30:00+00:00"]
        );
    }

    #[test]
    fn bad_expressions_say_what_is_expected() {
        let tz = parse_tz("UTC").unwrap();
        assert!(CronSchedule::parse("0 2 * *", tz).unwrap_err().contains("expected 5"));
        assert!(CronSchedule::parse("0 0 31 2 *", tz).unwrap_err().contains("never fires"));
        assert!(CronSchedule::parse("0 0 * * 8", tz).unwrap_err().contains("day of week"));
        let e = CronSchedule::parse("61 * * * *", tz).unwrap_err();
        assert!(e.contains("61 is out of range in the minute field (allowed: 0-59"), "{e}");
        let e = CronSchedule::parse("0 25 * * *", tz).unwrap_err();
        assert!(e.contains("in the hour field (allowed: 0-23"), "{e}");
        assert!(CronSchedule::parse("*/0 * * * *", tz).unwrap_err().contains("step of '*/0' is 0"));
        assert!(CronSchedule::parse("0 0 * 13 *", tz).unwrap_err().contains("month field"));
        assert!(CronSchedule::parse("0 0 1 jan-mar *", tz).is_ok());
        assert!(CronSchedule::parse("0 9-5 * * *", tz).unwrap_err().contains("goes backwards"));
        assert!(CronSchedule::parse("61 0 * * *", tz).is_err());
        assert!(parse_tz("Mars/Olympus").unwrap_err().contains("'Mars/Olympus'"));
    }
}
