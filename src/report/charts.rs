//! Inline SVG charts (no external assets): a timeline of backups and drills, and the trend of
//! drill recovery times against the RTO.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::model::{JobReport, Report};

const W: f64 = 720.0;

fn x_of(t: DateTime<Utc>, r: &Report) -> f64 {
    let span = (r.period_end - r.period_start).num_seconds().max(1) as f64;
    20.0 + (t - r.period_start).num_seconds() as f64 / span * (W - 40.0)
}

/// Backups (circles, top row) and drills (squares, bottom row), green when they succeeded.
pub fn timeline(j: &JobReport, r: &Report, title: &str) -> String {
    let mut s = format!("<svg class=\"timeline\" role=\"img\" aria-label=\"{}\" width=\"{W}\" height=\"80\" viewBox=\"0 0 {W} 80\">", super::html::esc(title));
    let _ = write!(s, "<line x1=\"20\" y1=\"70\" x2=\"{}\" y2=\"70\" stroke=\"#99a\"/>", W - 20.0);
    let _ = write!(s, "<text x=\"20\" y=\"79\" font-size=\"9\">{}</text>", r.period_start.format("%Y-%m-%d"));
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"79\" font-size=\"9\" text-anchor=\"end\">{}</text>",
        W - 20.0,
        r.period_end.format("%Y-%m-%d")
    );
    for b in &j.backups {
        let _ = write!(
            s,
            "<circle class=\"backup {}\" cx=\"{:.1}\" cy=\"22\" r=\"4\" fill=\"{}\"><title>backup {} {}</title></circle>",
            if b.ok { "ok" } else { "failed" },
            x_of(b.time, r),
            if b.ok { "#1b8a3a" } else { "#c62828" },
            b.time.format("%Y-%m-%d %H:%M"),
            if b.ok { "ok" } else { "failed" }
        );
    }
    for d in &j.drills {
        let _ = write!(
            s,
            "<rect class=\"drill {}\" x=\"{:.1}\" y=\"42\" width=\"8\" height=\"8\" fill=\"{}\"><title>drill {} level {} {}</title></rect>",
            if d.passed { "ok" } else { "failed" },
            x_of(d.time, r) - 4.0,
            if d.passed { "#1b8a3a" } else { "#c62828" },
            d.time.format("%Y-%m-%d %H:%M"),
            d.level,
            if d.passed { "passed" } else { "failed" }
        );
    }
    s.push_str("</svg>");
    s
}

/// Recovery time of each drill (points) with the RTO as a dashed line.
pub fn rto_trend(j: &JobReport, r: &Report, title: &str) -> String {
    let points: Vec<(DateTime<Utc>, f64)> =
        j.drills.iter().filter_map(|d| d.rto_actual_secs.map(|s| (d.time, s))).collect();
    let max =
        points.iter().map(|p| p.1).chain(j.rto_target_secs.map(|t| t as f64)).fold(1.0f64, f64::max) * 1.1;
    let y_of = |v: f64| 110.0 - v / max * 100.0;
    let mut s = format!("<svg class=\"rto-trend\" role=\"img\" aria-label=\"{}\" width=\"{W}\" height=\"120\" viewBox=\"0 0 {W} 120\">", super::html::esc(title));
    let _ = write!(s, "<line x1=\"20\" y1=\"110\" x2=\"{}\" y2=\"110\" stroke=\"#99a\"/>", W - 20.0);
    if let Some(t) = j.rto_target_secs {
        let y = y_of(t as f64);
        let _ = write!(s, "<line class=\"rto-target\" x1=\"20\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#c62828\" stroke-dasharray=\"4 3\"/><text x=\"24\" y=\"{:.1}\" font-size=\"9\" fill=\"#c62828\">RTO {t} s</text>", W - 20.0, y - 3.0);
    }
    let mut path = String::new();
    for (i, (t, v)) in points.iter().enumerate() {
        let (x, y) = (x_of(*t, r), y_of(*v));
        let _ = write!(path, "{}{x:.1},{y:.1} ", if i == 0 { "M" } else { "L" });
        let _ = write!(s, "<circle class=\"rto-point\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"#1d4e89\"><title>{} {v:.1} s</title></circle>", t.format("%Y-%m-%d %H:%M"));
    }
    if !path.is_empty() {
        let _ = write!(s, "<path d=\"{path}\" fill=\"none\" stroke=\"#1d4e89\"/>");
    }
    s.push_str("</svg>");
    s
}
