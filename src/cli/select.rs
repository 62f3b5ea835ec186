//! The snapshot filter shared by the commands that take several snapshots (`snapshots`,
//! `find`, `stats`): ids or prefixes or `latest`, a host, a tag.

use crate::error::Result;
use crate::id::Id;
use crate::repo::snapshot::Snapshot;
use crate::repo::Repository;

#[derive(Clone, Debug, Default)]
pub struct SnapshotFilter {
    /// Ids, unique prefixes or `latest`; empty: every snapshot.
    pub ids: Vec<String>,
    pub host: Option<String>,
    pub tag: Option<String>,
}

impl SnapshotFilter {
    /// The snapshots that pass (oldest first), and the snapshot objects that cannot be read.
    ///
    /// # Errors
    /// `NotFound`/`InvalidInput` for an id that names no snapshot or several; storage errors.
    pub fn select(&self, repo: &Repository) -> Result<crate::repo::SnapshotList> {
        let (all, damaged) = repo.list_snapshots()?;
        let mut chosen: Vec<(Id, Snapshot)> = if self.ids.is_empty() {
            all
        } else {
            let mut picked = Vec::new();
            for spec in &self.ids {
                let (id, snap) = repo.find_snapshot(spec)?;
                if !picked.iter().any(|(i, _)| *i == id) {
                    picked.push((id, snap));
                }
            }
            picked.sort_by_key(|(_, s)| s.time);
            picked
        };
        chosen.retain(|(_, s)| {
            self.host.as_ref().is_none_or(|h| &s.hostname == h)
                && self.tag.as_ref().is_none_or(|t| s.tags.contains(t))
        });
        Ok((chosen, damaged))
    }
}
