//! Reports for people: the live dashboard of the daemon (and, with drills, the PRA report).

pub mod dashboard;
pub mod html;
