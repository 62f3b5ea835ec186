//! The report as HTML (one self-contained file), Markdown or JSON.

use std::fmt::Write;

use super::charts::{rto_trend, timeline};
use super::html::{esc, page};
use super::i18n::{action, reason, t, Lang};
use super::model::{JobReport, Report};
use crate::evidence::readiness::State;
use crate::util::human_bytes;

/// `3d 4h`, `5h 12m`, `7m`, `42s`.
pub fn dur(secs: Option<u64>) -> String {
    let Some(s) = secs else { return "-".into() };
    match s {
        s if s >= 86_400 => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

pub(crate) fn date(t: Option<chrono::DateTime<chrono::Utc>>, l: Lang) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_else(|| self::t(l, "never").into())
}

pub(crate) fn met(v: Option<bool>, l: Lang) -> &'static str {
    match v {
        Some(true) => t(l, "met"),
        Some(false) => t(l, "missed"),
        None => "-",
    }
}

pub(crate) fn state_class(s: State) -> &'static str {
    match s {
        State::Verified => "ok",
        State::NeedsVerified => "warn",
        State::NotVerified => "bad",
    }
}

/// ", over the monitored part only" when monitoring covers less than the period.
fn partial(j: &JobReport, period: u64, l: Lang) -> String {
    if j.covered_secs + 60 < period {
        format!(", {} ({})", t(l, "over_monitored"), dur(Some(j.covered_secs)))
    } else {
        String::new()
    }
}

/// The facts of one job as (label, value) rows, shared by HTML and Markdown.
fn rows(j: &JobReport, period: u64, l: Lang) -> Vec<(String, String)> {
    let mut v = vec![
        (
            t(l, "monitoring").into(),
            match j.monitoring_since {
                Some(m) => format!(
                    "{} {}: {} / {} {} ({:.1} %)",
                    t(l, "monitoring_since"),
                    m.format("%Y-%m-%d %H:%M UTC"),
                    dur(Some(j.covered_secs)),
                    dur(Some(period)),
                    t(l, "of_period"),
                    j.covered_secs as f64 * 100.0 / period.max(1) as f64
                ),
                None => t(l, "not_monitored").into(),
            },
        ),
        (t(l, "sources").into(), j.sources.join(", ")),
        (t(l, "repository").into(), j.repository.clone()),
        (
            t(l, "rpo").into(),
            format!(
                "{} {}; {}: {} ({}); {}: {} ({})",
                t(l, "target"),
                dur(j.rpo_target_secs),
                t(l, "current_age"),
                dur(j.current_backup_age_secs),
                met(j.rpo_met_now, l),
                t(l, "worst_gap"),
                dur(j.worst_gap_secs),
                met(j.rpo_met_worst, l)
            ),
        ),
        (
            t(l, "rto").into(),
            format!(
                "{} {}; {}: {}; {}: {}",
                t(l, "target"),
                dur(j.rto_target_secs),
                t(l, "last_measured"),
                j.rto_last_secs.map(|s| format!("{s:.1} s")).unwrap_or("-".into()),
                t(l, "worst_measured"),
                j.rto_worst_secs.map(|s| format!("{s:.1} s")).unwrap_or("-".into())
            ),
        ),
        (
            t(l, "last_drill").into(),
            match &j.last_drill {
                Some(d) => format!(
                    "{} · {} {} · {} · {}",
                    d.time.format("%Y-%m-%d %H:%M UTC"),
                    t(l, "level"),
                    d.level,
                    if d.passed { t(l, "passed") } else { t(l, "failed") },
                    if d.target.is_empty() {
                        "-".to_string()
                    } else {
                        format!(
                            "{} ({})",
                            d.target,
                            if d.segregated { t(l, "segregated") } else { t(l, "not_segregated") }
                        )
                    }
                ),
                None => t(l, "never").into(),
            },
        ),
        (
            t(l, "drills_interval").into(),
            if j.monitoring_since.is_none() {
                t(l, "not_monitored").into()
            } else {
                format!(
                    "{} ({} {}){}",
                    if j.drills_overdue == 0 { t(l, "yes") } else { t(l, "no") },
                    j.drills_overdue,
                    t(l, "overdue"),
                    partial(j, period, l)
                )
            },
        ),
        (
            t(l, "success_rate").into(),
            match j.backup_success_rate {
                Some(r) => {
                    format!(
                        "{:.1} % ({}/{}){}",
                        r * 100.0,
                        j.backups_ok,
                        j.backups_total,
                        partial(j, period, l)
                    )
                }
                None => "-".into(),
            },
        ),
        (
            t(l, "restore_points").into(),
            format!(
                "{} ({} {}, {} {})",
                j.restore_points,
                t(l, "oldest"),
                date(j.oldest_restore_point, l),
                t(l, "newest"),
                date(j.newest_restore_point, l)
            ),
        ),
        (
            t(l, "copies").into(),
            if j.copies.is_empty() {
                t(l, "none").into()
            } else {
                let list: Vec<String> = j
                    .copies
                    .iter()
                    .map(|c| {
                        let drill = match c.last_drill_passed {
                            Some(true) => format!("{} {}", t(l, "drill_passed"), date(c.last_drill, l)),
                            Some(false) => format!("{} {}", t(l, "drill_failed"), date(c.last_drill, l)),
                            None => t(l, "never_drilled").into(),
                        };
                        let immutable = match c.locked_until {
                            Some(until) => format!(", {} {}", t(l, "locked_until"), date(Some(until), l)),
                            None => format!(", {}", t(l, "not_locked")),
                        };
                        let ransomware = match c.last_ransomware_drill_passed {
                            Some(true) => {
                                format!(
                                    ", {} {}",
                                    t(l, "ransomware_passed"),
                                    date(c.last_ransomware_drill, l)
                                )
                            }
                            Some(false) => {
                                format!(
                                    ", {} {}",
                                    t(l, "ransomware_failed"),
                                    date(c.last_ransomware_drill, l)
                                )
                            }
                            None => String::new(),
                        };
                        format!(
                            "{} ({}): {} {}{}{immutable}, {drill}{ransomware}",
                            c.name,
                            c.repository,
                            t(l, "newest_snapshot"),
                            date(c.newest_snapshot_time, l),
                            if c.last_run_ok == Some(false) {
                                format!(", {}", t(l, "unreached"))
                            } else {
                                String::new()
                            }
                        )
                    })
                    .collect();
                let required = if j.copies_required > 0 {
                    format!(" [{} {}]", j.copies_required, t(l, "required"))
                } else {
                    String::new()
                };
                format!("{}{required}", list.join("; "))
            },
        ),
        (
            t(l, "last_check").into(),
            format!(
                "{} ({})",
                date(j.last_check, l),
                match j.last_check_ok {
                    Some(true) => t(l, "passed"),
                    Some(false) => t(l, "failed"),
                    None => "-",
                }
            ),
        ),
        (
            t(l, "verified_data").into(),
            format!(
                "{} files, {}, {} rows",
                j.files_verified,
                human_bytes(j.bytes_verified),
                j.rows_verified
            ),
        ),
    ];
    if !j.failures.is_empty() {
        v.push((
            t(l, "failures").into(),
            j.failures
                .iter()
                .map(|f| format!("{} {}: {}", f.time.format("%Y-%m-%d %H:%M"), f.step, f.error))
                .collect::<Vec<_>>()
                .join(" | "),
        ));
    }
    v
}

fn period_secs(r: &Report) -> u64 {
    (r.period_end - r.period_start).num_seconds().max(0) as u64
}

fn drill_header(l: Lang) -> Vec<String> {
    ["date", "level", "outcome", "rto_col", "rpo_col", "target_col"]
        .iter()
        .map(|k| t(l, k).to_string())
        .collect()
}

/// One drill as table cells: date, level, outcome, RTO target / measured, RPO target /
/// achieved, and where it was restored.
fn drill_cells(d: &super::model::DrillPoint, l: Lang) -> Vec<String> {
    vec![
        d.time.format("%Y-%m-%d %H:%M UTC").to_string(),
        d.level.to_string(),
        if d.passed { t(l, "passed") } else { t(l, "failed") }.to_string(),
        format!(
            "{} / {}",
            dur(d.rto_target_secs),
            d.rto_actual_secs.map(|s| format!("{s:.1} s")).unwrap_or("-".into())
        ),
        format!("{} / {}", dur(d.rpo_target_secs), dur(d.rpo_achieved_secs)),
        if d.target.is_empty() {
            "-".into()
        } else {
            format!(
                "{} ({})",
                d.target,
                if d.segregated { t(l, "segregated") } else { t(l, "not_segregated") }
            )
        },
    ]
}

fn evidence_lines(r: &Report, l: Lang) -> Vec<String> {
    let e = &r.evidence;
    let mut v = vec![format!(
        "{}: {}",
        t(l, "ledger"),
        match e.verified {
            Some(true) => t(l, "intact").to_string(),
            Some(false) => format!("{}: {}", t(l, "tampered"), e.findings.join("; ")),
            None => t(l, "not_verified_ledger").to_string(),
        }
    )];
    v.push(format!(
        "{} {} ({} {})",
        e.records,
        t(l, "records"),
        e.records_compared,
        t(l, "records_compared")
    ));
    for (chain, head) in &e.chain_heads {
        v.push(format!("{} {chain}: {head}", t(l, "chain_head")));
    }
    v.push(format!("{}: {}", t(l, "key"), e.key_fingerprint));
    v.push(t(l, "reverify").to_string());
    v
}

pub fn html(r: &Report, l: Lang) -> String {
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>{}</h1><p>{} {} — {} · {} {} · {} · rempart {}</p>",
        t(l, "title"),
        t(l, "period"),
        r.period_start.format("%Y-%m-%d"),
        r.period_end.format("%Y-%m-%d"),
        t(l, "generated"),
        r.generated.format("%Y-%m-%d %H:%M UTC"),
        esc(&r.host),
        esc(&r.rempart_version)
    );
    let _ = write!(
        b,
        "<section id=\"summary\"><h2>{}</h2><table><tr><th>{}</th><th>{}</th><th>{}</th></tr>",
        t(l, "summary"),
        t(l, "job"),
        t(l, "readiness"),
        t(l, "why")
    );
    for j in &r.jobs {
        let _ = write!(
            b,
            "<tr class=\"summary-row\" data-job=\"{0}\"><td><a href=\"#job-{0}\">{0}</a></td><td class=\"readiness {1}\">{2}</td><td>{3}</td></tr>",
            esc(&j.job),
            state_class(j.readiness),
            j.readiness.label(),
            esc(&reason(l, &j.cause))
        );
    }
    b.push_str("</table></section>");
    for j in &r.jobs {
        let _ = write!(b, "<section class=\"job\" id=\"job-{0}\"><h2>{0} <span class=\"readiness {1}\">{2}</span></h2><table>", esc(&j.job), state_class(j.readiness), j.readiness.label());
        for (k, v) in rows(j, period_secs(r), l) {
            let _ = write!(b, "<tr><th>{}</th><td>{}</td></tr>", esc(&k), esc(&v));
        }
        b.push_str("</table>");
        let _ = write!(b, "<h3>{}</h3><table class=\"drills\"><tr>", t(l, "drills_list"));
        for h in drill_header(l) {
            let _ = write!(b, "<th>{}</th>", esc(&h));
        }
        b.push_str("</tr>");
        for d in &j.drills {
            b.push_str("<tr class=\"drill-row\">");
            for c in drill_cells(d, l) {
                let _ = write!(b, "<td>{}</td>", esc(&c));
            }
            b.push_str("</tr>");
        }
        if j.drills.is_empty() {
            let _ = write!(b, "<tr><td colspan=\"6\">{}</td></tr>", t(l, "none"));
        }
        b.push_str("</table>");
        let _ = write!(b, "<h3>{}</h3>{}", t(l, "timeline"), timeline(j, r, t(l, "timeline"), l));
        let _ = write!(b, "<h3>{}</h3>{}", t(l, "rto_trend"), rto_trend(j, r, t(l, "rto_trend"), l));
        b.push_str("</section>");
    }
    let _ = write!(b, "<section id=\"evidence\"><h2>{}</h2><ul>", t(l, "evidence"));
    for line in evidence_lines(r, l) {
        let _ = write!(b, "<li>{}</li>", esc(&line));
    }
    b.push_str("</ul></section>");
    let _ = write!(b, "<section id=\"deficiencies\"><h2>{}</h2><ul>", t(l, "deficiencies"));
    let mut any = false;
    for j in &r.jobs {
        for d in &j.deficiencies {
            any = true;
            let _ = write!(
                b,
                "<li class=\"deficiency\" data-code=\"{}\"><b>{}</b>: {}</li>",
                esc(d),
                esc(&j.job),
                esc(action(l, d))
            );
        }
    }
    if !any {
        let _ = write!(b, "<li>{}</li>", t(l, "none"));
    }
    b.push_str("</ul></section>");
    page(t(l, "title"), &b).replacen(
        "lang=\"en\"",
        if l == Lang::Fr { "lang=\"fr\"" } else { "lang=\"en\"" },
        1,
    )
}

pub fn markdown(r: &Report, l: Lang) -> String {
    let mut m = format!(
        "# {}\n\n{} {} — {} · {} {} · {}\n\n## {}\n\n| {} | {} | {} |\n| --- | --- | --- |\n",
        t(l, "title"),
        t(l, "period"),
        r.period_start.format("%Y-%m-%d"),
        r.period_end.format("%Y-%m-%d"),
        t(l, "generated"),
        r.generated.format("%Y-%m-%d %H:%M UTC"),
        r.host,
        t(l, "summary"),
        t(l, "job"),
        t(l, "readiness"),
        t(l, "why")
    );
    for j in &r.jobs {
        let _ = writeln!(m, "| {} | **{}** | {} |", j.job, j.readiness.label(), reason(l, &j.cause));
    }
    for j in &r.jobs {
        let _ = write!(m, "\n## {} — {}\n\n", j.job, j.readiness.label());
        for (k, v) in rows(j, period_secs(r), l) {
            let _ = writeln!(m, "- **{k}**: {v}");
        }
        let _ = write!(
            m,
            "\n### {}\n\n| {} |\n|{}\n",
            t(l, "drills_list"),
            drill_header(l).join(" | "),
            " --- |".repeat(6)
        );
        for d in &j.drills {
            let _ = writeln!(m, "| {} |", drill_cells(d, l).join(" | "));
        }
        if j.drills.is_empty() {
            let _ = writeln!(m, "| {} | | | | | |", t(l, "none"));
        }
    }
    let _ = write!(m, "\n## {}\n\n", t(l, "evidence"));
    for line in evidence_lines(r, l) {
        let _ = writeln!(m, "- {line}");
    }
    let _ = write!(m, "\n## {}\n\n", t(l, "deficiencies"));
    let mut any = false;
    for j in &r.jobs {
        for d in &j.deficiencies {
            any = true;
            let _ = writeln!(m, "- **{}**: {}", j.job, action(l, d));
        }
    }
    if !any {
        let _ = writeln!(m, "- {}", t(l, "none"));
    }
    m
}

pub fn json(r: &Report) -> String {
    serde_json::to_string_pretty(r).expect("serializable")
}
