//! Small HTML helpers: escaping and the shared page frame (inline CSS, no external assets).

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#1d2430}\
table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #ccd;padding:.35rem .6rem;text-align:left}\
th{background:#eef1f6}.ok{color:#116b2f;font-weight:600}.bad{color:#a4161a;font-weight:600}\
.warn{color:#8a5a00;font-weight:600}small{color:#667}";

/// A complete page.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        esc(title)
    )
}
