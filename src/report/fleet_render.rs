//! The fleet report as HTML (one self-contained file), Markdown or JSON, in English or French.

use std::fmt::Write;

use super::fleet::{FleetHost, FleetJob, FleetReport};
use super::html::{esc, page};
use super::i18n::{reason, t, Lang};
use super::render::{date, dur, met, state_class};
use crate::evidence::readiness::State;
use crate::util::human_bytes;

/// Text from the repository (host labels, job names, findings) as inert Markdown: a name
/// holding `|`, a line break or HTML cannot add rows, hide rows or inject markup.
fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '|' | '`' | '*' | '_' | '[' | ']' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn drill(j: &FleetJob, l: Lang) -> String {
    match (j.last_drill, j.last_drill_passed) {
        (Some(when), Some(passed)) => format!(
            "{} ({} {})",
            date(Some(when), l),
            if passed { t(l, "drill_passed") } else { t(l, "drill_failed") },
            j.last_drill_level.map(|v| format!("L{v}")).unwrap_or_default()
        ),
        _ => t(l, "never_drilled").into(),
    }
}

fn rpo(j: &FleetJob, l: Lang) -> String {
    format!("{} ({} {})", met(j.rpo_met, l), t(l, "target"), dur(j.rpo_target_secs))
}

fn rto(j: &FleetJob, l: Lang) -> String {
    let last = j.rto_last_secs.map(|s| format!("{s:.1}s")).unwrap_or_else(|| "-".into());
    format!("{} ({last} / {} {})", met(j.rto_met, l), t(l, "target"), dur(j.rto_target_secs))
}

/// One row per job: host, job, readiness, why, last backup, last drill, RPO, RTO, points.
fn cells(h: &FleetHost, j: &FleetJob, l: Lang) -> [String; 9] {
    [
        h.host.clone(),
        j.job.clone(),
        j.readiness.label().to_string(),
        reason(l, &j.cause),
        date(j.last_backup, l),
        drill(j, l),
        rpo(j, l),
        rto(j, l),
        j.restore_points.to_string(),
    ]
}

fn header(l: Lang) -> [&'static str; 9] {
    [
        t(l, "host"),
        t(l, "job"),
        t(l, "readiness"),
        t(l, "why"),
        t(l, "last_backup"),
        t(l, "last_drill"),
        t(l, "rpo"),
        t(l, "rto"),
        t(l, "restore_points"),
    ]
}

fn host_line(h: &FleetHost, l: Lang) -> String {
    format!(
        "{} — {} {} ({}), {} {}, {} {} {} / {} {}",
        h.host,
        t(l, "key"),
        h.key_fingerprint.as_deref().unwrap_or("?"),
        if h.pinned { t(l, "pinned") } else { t(l, "not_pinned") },
        h.records,
        t(l, "records"),
        h.snapshots,
        t(l, "snapshots"),
        human_bytes(h.bytes_read),
        human_bytes(h.bytes_added),
        t(l, "read_added"),
    )
}

fn summary(r: &FleetReport, l: Lang) -> String {
    let jobs: Vec<&FleetJob> = r.hosts.iter().flat_map(|h| &h.jobs).collect();
    let verified = jobs.iter().filter(|j| j.readiness == State::Verified).count();
    format!(
        "{} {} · {} {} · {verified}/{} {} · {} {}",
        r.hosts.len(),
        t(l, "hosts"),
        jobs.len(),
        t(l, "jobs"),
        jobs.len(),
        State::Verified.label(),
        r.snapshots,
        t(l, "snapshots"),
    )
}

pub fn markdown(r: &FleetReport, l: Lang) -> String {
    let mut m = format!(
        "# {}\n\n{}: {} ({})\n\n{} {} · rempart {}\n\n{}\n\n",
        t(l, "fleet_title"),
        t(l, "repository"),
        md(&r.repository),
        md(&r.repository_id),
        t(l, "generated"),
        r.generated.format("%Y-%m-%d %H:%M UTC"),
        r.rempart_version,
        summary(r, l)
    );
    let h = header(l);
    let _ = writeln!(m, "| {} |\n|{}", h.join(" | "), " --- |".repeat(h.len()));
    for host in &r.hosts {
        for j in &host.jobs {
            let row: Vec<String> = cells(host, j, l).iter().map(|c| md(c)).collect();
            let _ = writeln!(m, "| {} |", row.join(" | "));
        }
    }
    let _ = write!(m, "\n## {}\n\n", t(l, "hosts"));
    for host in &r.hosts {
        let _ = writeln!(m, "- {}", md(&host_line(host, l)));
        for f in &host.findings {
            let _ = writeln!(m, "  - **{}**: {}", t(l, "finding"), md(f));
        }
    }
    for host in &r.hosts_without_evidence {
        let _ = writeln!(m, "- {} — {}", md(host), t(l, "no_evidence"));
    }
    if !r.damaged.is_empty() {
        let _ = write!(m, "\n## {}\n\n", t(l, "damaged"));
        for d in &r.damaged {
            let _ = writeln!(m, "- {}", md(d));
        }
    }
    m
}

pub fn html(r: &FleetReport, l: Lang) -> String {
    let mut b = format!(
        "<h1>{}</h1><p>{}: <code>{}</code> ({})<br>{} {} · rempart {}</p><p><strong>{}</strong></p><table><tr>",
        esc(t(l, "fleet_title")),
        esc(t(l, "repository")),
        esc(&r.repository),
        esc(&r.repository_id),
        esc(t(l, "generated")),
        r.generated.format("%Y-%m-%d %H:%M UTC"),
        esc(&r.rempart_version),
        esc(&summary(r, l)),
    );
    for h in header(l) {
        let _ = write!(b, "<th>{}</th>", esc(h));
    }
    b.push_str("</tr>");
    for host in &r.hosts {
        for j in &host.jobs {
            let class = state_class(j.readiness);
            b.push_str("<tr>");
            for (i, c) in cells(host, j, l).iter().enumerate() {
                if i == 2 {
                    let _ = write!(b, "<td class=\"{class}\">{}</td>", esc(c));
                } else {
                    let _ = write!(b, "<td>{}</td>", esc(c));
                }
            }
            b.push_str("</tr>");
        }
    }
    let _ = write!(b, "</table><h2>{}</h2><ul>", esc(t(l, "hosts")));
    for host in &r.hosts {
        let _ = write!(b, "<li>{}", esc(&host_line(host, l)));
        if !host.findings.is_empty() {
            b.push_str("<ul>");
            for f in &host.findings {
                let _ = write!(b, "<li class=\"bad\">{}: {}</li>", esc(t(l, "finding")), esc(f));
            }
            b.push_str("</ul>");
        }
        b.push_str("</li>");
    }
    for host in &r.hosts_without_evidence {
        let _ = write!(b, "<li>{} — {}</li>", esc(host), esc(t(l, "no_evidence")));
    }
    b.push_str("</ul>");
    if !r.damaged.is_empty() {
        let _ = write!(b, "<h2>{}</h2><ul>", esc(t(l, "damaged")));
        for d in &r.damaged {
            let _ = write!(b, "<li class=\"bad\">{}</li>", esc(d));
        }
        b.push_str("</ul>");
    }
    page(t(l, "fleet_title"), &b).replacen(
        "lang=\"en\"",
        if l == Lang::Fr { "lang=\"fr\"" } else { "lang=\"en\"" },
        1,
    )
}

pub fn json(r: &FleetReport) -> String {
    serde_json::to_string_pretty(r).expect("serializable")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::readiness::Cause;
    use crate::report::fleet::{FleetHost, FleetJob, FleetReport};

    fn sample() -> FleetReport {
        let job = FleetJob {
            job: "site".into(),
            readiness: State::NeedsVerified,
            reason: String::new(),
            cause: Cause::KeyNotPinned { fingerprint: "0123456789abcdef".into() },
            last_backup: None,
            last_backup_status: None,
            last_drill: None,
            last_drill_passed: None,
            last_drill_level: None,
            rpo_target_secs: Some(86_400),
            rpo_met: None,
            rto_target_secs: None,
            rto_last_secs: None,
            rto_met: None,
            restore_points: 2,
        };
        FleetReport {
            schema_version: 1,
            generated: chrono::Utc::now(),
            repository: "s3://b/p".into(),
            repository_id: "ab".into(),
            rempart_version: "0".into(),
            hosts: vec![FleetHost {
                host: "web<1>".into(),
                chain: "key-0123456789abcdef/ab".into(),
                key_fingerprint: Some("0123456789abcdef".into()),
                pinned: false,
                records: 3,
                head_seq: 3,
                head: "ab".into(),
                findings: vec!["record 2: edited (x)".into()],
                jobs: vec![job],
                snapshots: 2,
                bytes_read: 10,
                bytes_added: 5,
            }],
            hosts_without_evidence: vec!["old".into()],
            snapshots: 2,
            damaged: vec![],
            pinned_keys: vec![],
        }
    }

    #[test]
    fn every_phrase_of_the_fleet_report_is_worded_in_both_languages_and_html_is_escaped() {
        let r = sample();
        for l in [Lang::En, Lang::Fr] {
            let md = markdown(&r, l);
            assert!(!md.contains(" ? ") && !md.contains("| ? |") && !md.contains("# ?"), "{md}");
            let page = html(&r, l);
            assert!(page.contains("web&lt;1&gt;") && !page.contains("web<1>"), "{page}");
        }
        assert!(markdown(&r, Lang::Fr).contains("NON épinglée"));
        // A job name from a forged chain cannot add a row or hide the others.
        let mut forged = sample();
        forged.hosts[0].jobs[0].job = "x |\n| db1 | prod | VERIFIED | <!--".into();
        let md = markdown(&forged, Lang::En);
        assert!(!md.contains("| db1 | prod | VERIFIED |") && !md.contains("<!--"), "{md}");
        // The header, its rule and the one row.
        assert_eq!(md.lines().filter(|l| l.starts_with("| ")).count(), 3, "{md}");
        assert!(markdown(&r, Lang::En).contains("NOT pinned"));
    }
}
