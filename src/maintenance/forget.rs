//! `forget`: removes the snapshots a retention policy does not keep, or the ones named.
//!
//! Crash-safe in any order of death: the decision is first written to the repository as a
//! forget record (`repo::forgotten`), then the snapshot objects are deleted. A forget
//! killed in between has already forgotten them for every reader, and the next forget or prune
//! deletes the objects it left.

use serde::Serialize;

use super::retention::{apply, group, Decision, GroupBy};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::jobs::Retention;
use crate::repo::forgotten;
use crate::repo::lock::LockKind;
use crate::repo::Repository;
use crate::storage::Kind;

/// What to forget.
#[derive(Clone, Debug)]
pub enum ForgetWhat {
    /// What a retention policy does not keep (per host and paths).
    Policy { policy: Retention, tz: chrono_tz::Tz },
    /// These snapshots: ids or unique prefixes, also of snapshot objects that cannot be read.
    Ids(Vec<String>),
}

#[derive(Clone, Debug)]
pub struct ForgetOptions {
    pub what: ForgetWhat,
    /// Only snapshots written by this job (a shared repository holds other jobs' too).
    pub job: Option<String>,
    /// Which snapshots a policy looks at, and how it groups them.
    pub select: PolicyScope,
    pub dry_run: bool,
}

/// Which snapshots a retention policy applies to (`--host`, `--tag`, `--path`) and how it
/// groups them (`--group-by`); snapshots outside the scope are neither kept nor removed.
#[derive(Clone, Debug, Default)]
pub struct PolicyScope {
    pub host: Option<String>,
    /// Each entry a comma-separated set of tags a snapshot must all carry (an empty entry:
    /// no tags at all); a snapshot passes when it matches any entry (restic's rule). Empty:
    /// any tags.
    pub tags: Vec<String>,
    /// Paths a snapshot must all have backed up. Empty: any paths.
    pub paths: Vec<String>,
    pub group_by: GroupBy,
}

impl PolicyScope {
    /// True when `s` is in scope.
    pub fn covers(&self, s: &crate::repo::snapshot::Snapshot) -> bool {
        let tags_ok = self.tags.is_empty()
            || self.tags.iter().any(|set| {
                let wanted: Vec<&str> = set.split(',').map(str::trim).filter(|t| !t.is_empty()).collect();
                // `--tag ''` means snapshots without tags (restic's rule).
                if wanted.is_empty() {
                    s.tags.is_empty()
                } else {
                    wanted.iter().all(|t| s.tags.iter().any(|x| x == t))
                }
            });
        self.host.as_ref().is_none_or(|h| &s.hostname == h)
            && tags_ok
            && self.paths.iter().all(|p| s.paths.iter().any(|x| x == p))
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct GroupDecisions {
    /// What the group shares (only what it was grouped by is set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    pub decisions: Vec<Decision>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ForgetReport {
    pub groups: Vec<GroupDecisions>,
    pub removed: Vec<Id>,
    pub kept: usize,
    /// Snapshot objects an interrupted forget had left, deleted now.
    pub completed: usize,
    pub dry_run: bool,
}

/// Forgets what `opts` says (unless dry run).
///
/// # Errors
/// `InvalidInput` for an empty policy or an id that names no snapshot (or several);
/// `Locked` while a prune or check runs; storage errors.
pub fn forget(repo: &Repository, opts: &ForgetOptions) -> Result<ForgetReport> {
    if let ForgetWhat::Policy { policy, .. } = &opts.what {
        // Refuse a bad policy before anything else, even with no snapshot to apply it to.
        super::retention::validate(policy)?;
    }
    let _lock = repo.lock(LockKind::Prune, "forget")?;
    let known = forgotten::load(repo)?;
    let (snaps, damaged, _) = repo.read_snapshots(&known)?;
    let mut report = ForgetReport { dry_run: opts.dry_run, ..Default::default() };
    match &opts.what {
        ForgetWhat::Policy { policy, tz } => {
            let snaps: Vec<_> = snaps
                .into_iter()
                .filter(|(_, s)| opts.job.as_ref().is_none_or(|j| s.job.as_ref() == Some(j)))
                .filter(|(_, s)| opts.select.covers(s))
                .collect();
            for (key, members) in group(snaps, opts.select.group_by) {
                let decisions = apply(policy, &members, *tz)?;
                for d in &decisions {
                    if d.keep {
                        report.kept += 1;
                    } else {
                        report.removed.push(d.id);
                    }
                }
                report.groups.push(GroupDecisions {
                    host: key.host,
                    paths: key.paths,
                    tags: key.tags,
                    decisions,
                });
            }
        }
        ForgetWhat::Ids(specs) => {
            let names: Vec<Id> = snaps
                .iter()
                .map(|(id, _)| *id)
                .chain(damaged.iter().filter_map(|(n, _)| Id::from_hex(n).ok()))
                .collect();
            for spec in specs {
                let id = resolve(spec, &names, repo)?;
                if let Some((_, s)) = snaps.iter().find(|(i, _)| *i == id) {
                    if let Some(j) = &opts.job {
                        if s.job.as_ref() != Some(j) {
                            return Err(Error::invalid(format!(
                                "snapshot '{spec}' was not written by job '{j}'; leave out --job to forget it"
                            )));
                        }
                    }
                }
                if !report.removed.contains(&id) {
                    report.removed.push(id);
                }
            }
            report.kept = names.len() - report.removed.len();
        }
    }
    if opts.dry_run {
        return Ok(report);
    }
    let operation = match opts.what {
        ForgetWhat::Policy { .. } => "forget",
        ForgetWhat::Ids(_) => "forget ID",
    };
    // The intent first: from here on these snapshots are forgotten, whatever happens next.
    forgotten::record(repo, operation, &report.removed)?;
    for id in &report.removed {
        repo.storage().delete(Kind::Snapshot, &id.to_hex())?;
    }
    report.completed = forgotten::complete(repo, &known)?;
    Ok(report)
}

/// The one snapshot object whose name starts with `spec`.
fn resolve(spec: &str, names: &[Id], repo: &Repository) -> Result<Id> {
    let s = spec.to_ascii_lowercase();
    if s.len() < 4 || !s.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::invalid(format!(
            "'{spec}' is not a snapshot id: expected at least 4 hex digits of a snapshot id ('rempart snapshots' lists them)"
        )));
    }
    let matches: Vec<&Id> = names.iter().filter(|id| id.to_hex().starts_with(&s)).collect();
    match matches.as_slice() {
        [one] => Ok(**one),
        [] => Err(Error::invalid(format!(
            "no snapshot '{spec}' in repository '{}'; 'rempart snapshots' lists them",
            repo.storage().location()
        ))),
        many => Err(Error::invalid(format!(
            "snapshot prefix '{spec}' is ambiguous: {} snapshots match; give more digits",
            many.len()
        ))),
    }
}
