//! Inline SVG charts (no external assets): a timeline of backups and drills, and the trend of
//! drill recovery times against the RTO. Each has labelled axes with units and a legend, in
//! the report's language, and marks when monitoring started (before it, nothing is known).

use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::html::esc;
use super::i18n::{t, Lang};
use super::model::{JobReport, Report};

const W: f64 = 720.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 20.0;
const OK: &str = "#1b8a3a";
const BAD: &str = "#c62828";
const BLUE: &str = "#1d4e89";

fn x_of(t: DateTime<Utc>, r: &Report) -> f64 {
    let span = (r.period_end - r.period_start).num_seconds().max(1) as f64;
    LEFT + (t - r.period_start).num_seconds() as f64 / span * (W - LEFT - RIGHT)
}

/// The time axis at height `y`: the line, the period's ends and middle, and its label.
fn time_axis(s: &mut String, r: &Report, y: f64, l: Lang) {
    let _ = write!(
        s,
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#99a\"/>",
        W - RIGHT
    );
    let mid = r.period_start + (r.period_end - r.period_start) / 2;
    for (t_, anchor) in [(r.period_start, "start"), (mid, "middle"), (r.period_end, "end")] {
        let x = x_of(t_, r);
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{y}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#99a\"/><text x=\"{x:.1}\" y=\"{}\" font-size=\"9\" text-anchor=\"{anchor}\">{}</text>",
            y + 3.0,
            y + 12.0,
            t_.format("%Y-%m-%d")
        );
    }
    let _ = write!(
        s,
        "<text class=\"axis-label\" x=\"{}\" y=\"{}\" font-size=\"9\" text-anchor=\"middle\">{}</text>",
        (LEFT + W - RIGHT) / 2.0,
        y + 22.0,
        esc(t(l, "axis_time"))
    );
}

/// A dashed vertical line where monitoring started, when that is inside the period.
fn monitoring_marker(s: &mut String, j: &JobReport, r: &Report, top: f64, bottom: f64, l: Lang) {
    if let Some(m) = j.monitoring_since.filter(|m| *m > r.period_start) {
        let x = x_of(m, r);
        let _ = write!(
            s,
            "<line class=\"monitoring-start\" x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{bottom}\" stroke=\"#888\" stroke-dasharray=\"2 2\"><title>{}</title></line>",
            esc(t(l, "legend_monitoring"))
        );
    }
}

/// A legend row of (swatch SVG, label) entries at height `y`.
fn legend(s: &mut String, y: f64, entries: &[(String, &str)]) {
    let mut x = LEFT;
    s.push_str("<g class=\"legend\">");
    for (swatch, label) in entries {
        let _ = write!(s, "<g transform=\"translate({x:.1},{y})\">{swatch}<text x=\"12\" y=\"4\" font-size=\"9\">{}</text></g>", esc(label));
        x += 24.0 + label.chars().count() as f64 * 5.2;
    }
    s.push_str("</g>");
}

/// Backups (circles, top row) and drills (squares, bottom row), green when they succeeded.
pub fn timeline(j: &JobReport, r: &Report, title: &str, l: Lang) -> String {
    let mut s = format!("<svg class=\"timeline\" role=\"img\" aria-label=\"{}\" width=\"{W}\" height=\"118\" viewBox=\"0 0 {W} 118\">", esc(title));
    legend(
        &mut s,
        8.0,
        &[
            (format!("<circle cx=\"4\" cy=\"1\" r=\"4\" fill=\"{OK}\"/>"), t(l, "legend_backup_ok")),
            (format!("<circle cx=\"4\" cy=\"1\" r=\"4\" fill=\"{BAD}\"/>"), t(l, "legend_backup_failed")),
            (
                format!("<rect x=\"0\" y=\"-3\" width=\"8\" height=\"8\" fill=\"{OK}\"/>"),
                t(l, "legend_drill_ok"),
            ),
            (
                format!("<rect x=\"0\" y=\"-3\" width=\"8\" height=\"8\" fill=\"{BAD}\"/>"),
                t(l, "legend_drill_failed"),
            ),
            (
                "<line x1=\"0\" y1=\"-3\" x2=\"0\" y2=\"6\" stroke=\"#888\" stroke-dasharray=\"2 2\"/>"
                    .to_string(),
                t(l, "legend_monitoring"),
            ),
        ],
    );
    let _ = write!(s, "<text x=\"4\" y=\"44\" font-size=\"9\">{}</text>", esc(t(l, "row_backups")));
    monitoring_marker(&mut s, j, r, 24.0, 84.0, l);
    for b in &j.backups {
        let _ = write!(
            s,
            "<circle class=\"backup {}\" cx=\"{:.1}\" cy=\"40\" r=\"4\" fill=\"{}\"><title>{} {}</title></circle>",
            if b.ok { "ok" } else { "failed" },
            x_of(b.time, r),
            if b.ok { OK } else { BAD },
            b.time.format("%Y-%m-%d %H:%M UTC"),
            esc(if b.ok { t(l, "legend_backup_ok") } else { t(l, "legend_backup_failed") })
        );
    }
    let _ = write!(s, "<text x=\"4\" y=\"66\" font-size=\"9\">{}</text>", esc(t(l, "row_drills")));
    for d in &j.drills {
        let _ = write!(
            s,
            "<rect class=\"drill {}\" x=\"{:.1}\" y=\"58\" width=\"8\" height=\"8\" fill=\"{}\"><title>{} {} {}</title></rect>",
            if d.passed { "ok" } else { "failed" },
            x_of(d.time, r) - 4.0,
            if d.passed { OK } else { BAD },
            d.time.format("%Y-%m-%d %H:%M UTC"),
            esc(if d.passed { t(l, "legend_drill_ok") } else { t(l, "legend_drill_failed") }),
            d.level
        );
    }
    time_axis(&mut s, r, 84.0, l);
    s.push_str("</svg>");
    s
}

/// Recovery time of each drill (points, in seconds) with the RTO as a dashed line.
pub fn rto_trend(j: &JobReport, r: &Report, title: &str, l: Lang) -> String {
    let points: Vec<(DateTime<Utc>, f64)> =
        j.drills.iter().filter_map(|d| d.rto_actual_secs.map(|s| (d.time, s))).collect();
    let max =
        points.iter().map(|p| p.1).chain(j.rto_target_secs.map(|t| t as f64)).fold(1.0f64, f64::max) * 1.1;
    let (top, bottom) = (22.0, 122.0);
    let y_of = |v: f64| bottom - v / max * (bottom - top);
    let mut s = format!("<svg class=\"rto-trend\" role=\"img\" aria-label=\"{}\" width=\"{W}\" height=\"160\" viewBox=\"0 0 {W} 160\">", esc(title));
    legend(
        &mut s,
        8.0,
        &[
            (format!("<circle cx=\"4\" cy=\"1\" r=\"3\" fill=\"{BLUE}\"/>"), t(l, "legend_measured")),
            (
                format!(
                    "<line x1=\"0\" y1=\"1\" x2=\"9\" y2=\"1\" stroke=\"{BAD}\" stroke-dasharray=\"4 3\"/>"
                ),
                t(l, "legend_rto"),
            ),
        ],
    );
    // The value axis: zero, half and the top, in seconds, and its label.
    let _ = write!(
        s,
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{top}\" x2=\"{LEFT}\" y2=\"{bottom}\" stroke=\"#99a\"/>"
    );
    for v in [0.0, max / 2.0, max] {
        let y = y_of(v);
        let _ = write!(
            s,
            "<line x1=\"{}\" y1=\"{y:.1}\" x2=\"{LEFT}\" y2=\"{y:.1}\" stroke=\"#99a\"/><text x=\"{}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"end\">{v:.0}</text>",
            LEFT - 3.0,
            LEFT - 5.0,
            y + 3.0
        );
    }
    let _ = write!(
        s,
        "<text class=\"axis-label\" x=\"10\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"middle\" transform=\"rotate(-90 10 {:.1})\">{}</text>",
        (top + bottom) / 2.0,
        (top + bottom) / 2.0,
        esc(t(l, "axis_seconds"))
    );
    monitoring_marker(&mut s, j, r, top, bottom, l);
    if let Some(target) = j.rto_target_secs {
        let y = y_of(target as f64);
        let _ = write!(s, "<line class=\"rto-target\" x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"{BAD}\" stroke-dasharray=\"4 3\"><title>{} {target} s</title></line>", W - RIGHT, esc(t(l, "legend_rto")));
    }
    let mut path = String::new();
    for (i, (t_, v)) in points.iter().enumerate() {
        let (x, y) = (x_of(*t_, r), y_of(*v));
        let _ = write!(path, "{}{x:.1},{y:.1} ", if i == 0 { "M" } else { "L" });
        let _ = write!(s, "<circle class=\"rto-point\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{BLUE}\"><title>{} {v:.1} s</title></circle>", t_.format("%Y-%m-%d %H:%M UTC"));
    }
    if !path.is_empty() {
        let _ = write!(s, "<path d=\"{path}\" fill=\"none\" stroke=\"{BLUE}\"/>");
    }
    time_axis(&mut s, r, bottom, l);
    s.push_str("</svg>");
    s
}
