//! Changing the tags of snapshots.
//!
//! A snapshot object is named by the hash of its sealed bytes, so a tag change writes a new
//! snapshot (same tree, same time, new tags) and then forgets the old one through a forget
//! record, as `forget` does: killed between the two, both copies exist (nothing is lost) and
//! the next run can be repeated; killed after the record, the next forget or prune completes it.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::lock::LockKind;
use crate::repo::Repository;
use crate::storage::Kind;

/// What to do to the tags.
#[derive(Clone, Debug, Default)]
pub struct TagChange {
    pub add: Vec<String>,
    pub remove: Vec<String>,
    /// Replace all tags with these.
    pub set: Option<Vec<String>>,
}

impl TagChange {
    fn apply(&self, tags: &[String]) -> Vec<String> {
        let mut out: Vec<String> = match &self.set {
            Some(set) => set.clone(),
            None => tags.iter().filter(|t| !self.remove.contains(t)).cloned().collect(),
        };
        for t in &self.add {
            if !out.contains(t) {
                out.push(t.clone());
            }
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|t| seen.insert(t.clone()));
        out
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Retagged {
    pub original: String,
    /// The new snapshot's id; `None` when the tags were already as asked.
    pub snapshot: Option<String>,
    pub tags: Vec<String>,
    #[serde(skip)]
    pub original_id: Id,
    #[serde(skip)]
    pub new_id: Option<Id>,
}

/// Applies `change` to the snapshots `ids`.
///
/// # Errors
/// `InvalidInput` when the change is empty or a tag is empty; `Locked` while a prune or check
/// runs; storage errors.
pub fn tag(repo: &Repository, ids: &[Id], change: &TagChange) -> Result<Vec<Retagged>> {
    if change.add.is_empty() && change.remove.is_empty() && change.set.is_none() {
        return Err(Error::invalid("no tag change given: use --add TAG, --remove TAG or --set TAG"));
    }
    let all = change.add.iter().chain(&change.remove).chain(change.set.iter().flatten());
    if let Some(bad) =
        all.clone().find(|t| t.is_empty() || t.contains(',') || t.chars().any(char::is_control))
    {
        return Err(Error::invalid(format!(
            "tag '{}' is not valid: expected a non-empty name without commas or control characters",
            bad.escape_debug()
        )));
    }
    let _lock = repo.lock(LockKind::Prune, "tag")?;
    let mut out = Vec::new();
    for id in ids {
        let mut snap = repo.load_snapshot(id)?;
        let tags = change.apply(&snap.tags);
        if tags == snap.tags {
            out.push(Retagged {
                original: id.to_hex(),
                snapshot: None,
                tags,
                original_id: *id,
                new_id: None,
            });
            continue;
        }
        snap.tags.clone_from(&tags);
        let new = repo.save_snapshot(&snap)?;
        out.push(Retagged {
            original: id.to_hex(),
            snapshot: Some(new.to_hex()),
            tags,
            original_id: *id,
            new_id: Some(new),
        });
    }
    let replaced: Vec<Id> = out.iter().filter(|r| r.new_id.is_some()).map(|r| r.original_id).collect();
    // The new snapshots are stored: now the old ones are forgotten, intent first.
    crate::repo::forgotten::record(repo, "tag", &replaced)?;
    for id in &replaced {
        repo.storage().delete(Kind::Snapshot, &id.to_hex())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::testing::TempRepo;

    #[test]
    fn tags_change_on_a_new_snapshot_and_the_old_one_is_forgotten() {
        let t = TempRepo::new();
        let src = t.source("src", &[("a", b"a".to_vec())]);
        let first = t.backup(&src);
        let change = TagChange { add: vec!["keep".into(), "keep".into()], ..Default::default() };
        let r = tag(&t.repo, &[first], &change).unwrap();
        let new = r[0].new_id.unwrap();
        assert_eq!(t.repo.load_snapshot(&new).unwrap().tags, ["keep"]);
        let (snaps, damaged) = t.repo.list_snapshots().unwrap();
        assert!(damaged.is_empty());
        assert_eq!(snaps.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [new]);
        assert!(crate::repo::forgotten::load(&t.repo).unwrap().contains(&first));
        // Unchanged tags write nothing.
        let again = tag(&t.repo, &[new], &change).unwrap();
        assert!(again[0].new_id.is_none());
        let set = TagChange { set: Some(vec!["a".into(), "b".into()]), ..Default::default() };
        assert_eq!(set.apply(&["x".into()]), ["a", "b"]);
        let remove = TagChange { remove: vec!["x".into()], add: vec!["y".into()], ..Default::default() };
        assert_eq!(remove.apply(&["x".into(), "z".into()]), ["z", "y"]);
        let none = TagChange::default();
        assert!(tag(&t.repo, &[new], &none).unwrap_err().to_string().contains("no tag change"));
        let bad = TagChange { add: vec!["a,b".into()], ..Default::default() };
        assert!(tag(&t.repo, &[new], &bad).is_err());
    }
}
