//! Reports for people: the PRA readiness report (HTML, Markdown, JSON; English and French),
//! built from the catalog, the repositories and the audit of the evidence ledger. The daemon's
//! live dashboard (`daemon::dashboard`) renders the same model.

pub mod charts;
pub mod gather;
pub mod html;
pub mod i18n;
pub mod model;
pub mod render;
