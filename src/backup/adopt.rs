//! Adopting packs that an interrupted backup stored but did not index.
//!
//! An index object is written every 16 packs; a backup killed between two of them leaves
//! durable packs no index names. Rather than upload that data again, the next backup lists
//! the packs, reads the headers of the unindexed ones (ranged reads), and writes an index
//! object for those that decode. Torn or foreign objects fail their header check and are left
//! for prune. Packs marked for deletion by a prune (in `trash/`) are never adopted.

use std::collections::HashSet;

use crate::error::Result;
use crate::id::Id;
use crate::repo::index::{Index, IndexFile};
use crate::repo::Repository;
use crate::storage::Kind;

/// The index a backup dedups against: the index without packs marked for deletion, plus the
/// packs an interrupted backup left unindexed (adopted now).
///
/// # Errors
/// Storage errors, or a damaged index or trash object.
pub fn dedup_index(repo: &Repository) -> Result<Index> {
    let mut index = repo.load_index_without_trash()?;
    let trashed = crate::repo::trash::load_trash(repo)?
        .into_iter()
        .flat_map(|(_, t)| t.packs.into_iter().map(|p| p.id))
        .collect();
    adopt_unindexed_packs(repo, &mut index, &trashed)?;
    Ok(index)
}

/// Indexes the stored but unindexed packs; returns how many were adopted.
///
/// # Errors
/// Storage errors while listing or writing the new index object.
pub fn adopt_unindexed_packs(repo: &Repository, index: &mut Index, trashed: &HashSet<Id>) -> Result<usize> {
    let orphans: Vec<_> = repo
        .storage()
        .list(Kind::Pack)?
        .into_iter()
        .filter_map(|o| Id::from_hex(&o.name).ok().map(|id| (id, o.size)))
        .filter(|(id, _)| index.pack(id).is_none() && !trashed.contains(id))
        .collect();
    if orphans.is_empty() {
        return Ok(0);
    }
    let mut packs = Vec::new();
    for (id, size) in orphans {
        match repo.read_pack_header(&id, size) {
            Ok(p) => packs.push(p),
            Err(e) => tracing::warn!("not adopting unindexed pack {}: {e}", id.short()),
        }
    }
    if packs.is_empty() {
        return Ok(0);
    }
    repo.save_index(&IndexFile { supersedes: vec![], packs: packs.clone() })?;
    index.extend(&packs);
    tracing::info!("adopted {} packs left unindexed by an interrupted backup", packs.len());
    Ok(packs.len())
}
