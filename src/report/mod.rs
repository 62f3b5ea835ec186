//! Reports for people: the PRA readiness report (HTML, Markdown, JSON; English and French),
//! built from the catalog, the repositories and the audit of the evidence ledger. The daemon's
//! live dashboard (`daemon::dashboard`) renders the same model.

pub(crate) mod charts;
pub mod fleet;
pub mod fleet_render;
pub(crate) mod gather;
pub(crate) mod html;
pub mod i18n;
pub mod model;
pub mod render;
