//! Reports for people: the PRA readiness report (HTML, Markdown, JSON; English and French)
//! and the daemon's live dashboard, both built from the same model.

pub mod charts;
pub mod dashboard;
pub mod gather;
pub mod html;
pub mod i18n;
pub mod model;
pub mod render;
