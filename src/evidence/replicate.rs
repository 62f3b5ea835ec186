//! Copies a repository's evidence (every record's write-once copy and every registered key)
//! into another repository, so the proof survives the loss of the primary: whoever holds the
//! copy's key can verify every chain from the copy alone, as from the primary.
//!
//! Records are copied as they are (their signatures are over their content, not over the
//! repository), re-encrypted by the destination. Nothing is copied twice: a record already in
//! the destination (same chain, number and content) is skipped. A source record whose number the
//! destination holds with other content is copied all the same and counted as a conflict: the
//! destination then holds both, and its verification names them (one of the two was planted).
//! A source record that cannot be read is not copied and is counted as damaged.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::ledger::{self, RepoCopy};
use super::registry;
use crate::error::Result;
use crate::id::Id;
use crate::repo::Repository;
use crate::storage::Kind;

/// What a replication did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Replicated {
    pub records_copied: u64,
    pub records_already: u64,
    /// Source records copied beside a destination record of the same number and other content.
    pub conflicts: u64,
    pub keys_copied: u64,
    /// Source records or key registrations that could not be read (not copied).
    pub damaged: u64,
}

/// Copies the evidence of `src` that `dst` lacks.
///
/// # Errors
/// Storage errors (damaged objects are counted, not errors).
pub fn replicate(src: &Repository, dst: &Repository) -> Result<Replicated> {
    let mut out = Replicated::default();
    // Keys first: a record whose key is not registered is a finding in the destination.
    let (src_keys, bad_keys) = registry::load(src)?;
    let (dst_keys, _) = registry::load(dst)?;
    let have: HashSet<&str> = dst_keys.iter().map(|k| k.fingerprint.as_str()).collect();
    out.damaged += bad_keys.len() as u64;
    for k in src_keys.iter().filter(|k| !have.contains(k.fingerprint.as_str())) {
        let _: Id = dst.save_object(
            Kind::EvidenceKey,
            "evidence-key",
            &serde_json::to_vec(k).expect("serializable"),
        )?;
        out.keys_copied += 1;
    }
    let (src_copies, bad) = ledger::load_copies_lenient(src)?;
    out.damaged += bad.len() as u64;
    let (dst_copies, _) = ledger::load_copies_lenient(dst)?;
    let mut held: HashMap<(String, u64), Vec<&RepoCopy>> = HashMap::new();
    for c in &dst_copies {
        held.entry((c.entry.chain.clone(), c.entry.seq)).or_default().push(c);
    }
    let same = |a: &RepoCopy, b: &RepoCopy| {
        a.entry.canonical == b.entry.canonical && a.entry.signature == b.entry.signature
    };
    let mut written: Vec<&RepoCopy> = Vec::new();
    for c in &src_copies {
        let there = held.get(&(c.entry.chain.clone(), c.entry.seq)).map(Vec::as_slice).unwrap_or(&[]);
        if there.iter().any(|d| same(d, c)) {
            out.records_already += 1;
            continue;
        }
        // The source may hold one record twice (a retried upload): write it once.
        if written.iter().any(|w| same(w, c)) {
            continue;
        }
        if !there.is_empty() {
            // Copied all the same: the destination then holds both, and its verification
            // names the conflict as the source's does.
            out.conflicts += 1;
        }
        ledger::save_copy(dst, &c.entry, &c.public_key_pem)?;
        written.push(c);
        out.records_copied += 1;
    }
    Ok(out)
}
