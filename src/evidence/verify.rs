//! Verifying the ledger: the one verification that `evidence verify`, `status`, the report, the
//! dashboard and the metrics all use.
//!
//! Inputs: *every* record of the local ledger, and the write-once copies and registered keys of
//! every repository the jobs reach. For each chain:
//!
//! - its key is found by fingerprint (new chains are named `FINGERPRINT/REPOSITORY`; legacy
//!   chains `HOST/REPOSITORY` take the key their copies carry, else this installation's);
//! - every local record is checked against its hash, its signature and its link to the one
//!   before (`prev`, consecutive `seq`);
//! - when the chain's repository is reachable, the local records are compared with the
//!   repository's copies (edited, re-signed, inserted, reordered, deleted);
//! - chains the repository holds but the local ledger does not are checked standalone with the
//!   key they carry, which must be registered there; this installation's own chains must not
//!   be missing locally (deleted).
//!
//! Verification never says "intact" about fewer records than the ledger holds: a chain whose
//! repository cannot be reached is "not compared", and the verdict is then incomplete.

use std::collections::{BTreeMap, HashMap, HashSet};

use base64::Engine;
use ed25519_dalek::pkcs8::DecodePublicKey;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::Serialize;

use super::ledger::{sha256_hex, LedgerEntry, RepoCopy, GENESIS};
use super::registry::RegisteredKey;

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Finding {
    pub chain: String,
    pub seq: Option<u64>,
    pub record_id: String,
    /// `edited`, `re-signed`, `deleted`, `inserted`, `reordered`, `bad-signature`,
    /// `broken-link`, `unknown-key`, `key-unregistered`, `conflicting-copies`, `damaged-copy`.
    pub kind: String,
    pub detail: String,
}

/// What one repository holds of the evidence.
#[derive(Clone, Debug, Default)]
pub struct RepoEvidence {
    pub repository_id: String,
    pub copies: Vec<RepoCopy>,
    pub keys: Vec<RegisteredKey>,
}

/// One chain as verified.
#[derive(Clone, Debug, Serialize)]
pub struct ChainVerdict {
    pub chain: String,
    pub repository_id: String,
    /// The host the chain's records were written on (a label).
    pub host: String,
    pub key_fingerprint: Option<String>,
    /// Signed by this installation's key or a key pinned in the configuration.
    pub pinned: bool,
    pub local_records: usize,
    pub repository_records: usize,
    /// Compared with its repository's copies (the repository was reachable).
    pub compared: bool,
    /// Records of runs that never reached their repository (chain `KEY/unreachable`): their
    /// signatures and links are checked, but no repository holds copies to compare with.
    pub local_only: bool,
    /// Local records whose repository copy is still to be uploaded (not compared yet).
    pub pending_upload: usize,
    pub head_seq: u64,
    pub head: String,
    pub findings: usize,
}

/// The result of the one verification.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Verdict {
    /// Records in the local ledger; every one of them is checked.
    pub records: usize,
    pub repository_copies: usize,
    /// This installation's key.
    pub key_fingerprint: String,
    pub pinned_keys: Vec<String>,
    pub chains: Vec<ChainVerdict>,
    pub findings: Vec<Finding>,
    /// Why some repositories could not be read (their chains are not compared).
    pub unreachable: Vec<String>,
}

impl Verdict {
    /// No finding, and every local record compared with its repository.
    pub fn intact(&self) -> bool {
        self.findings.is_empty() && self.uncompared_records() == 0
    }

    /// Local records whose repository copies could not be read.
    pub fn uncompared_records(&self) -> usize {
        self.chains
            .iter()
            .map(|c| match (c.compared, c.local_only) {
                (true, _) => c.pending_upload,
                (false, true) => 0,
                (false, false) => c.local_records,
            })
            .sum()
    }

    /// True when `chain` may be counted: a pinned key, no finding, compared.
    pub fn trusted(&self, chain: &str) -> bool {
        self.chains
            .iter()
            .any(|c| c.chain == chain && c.pinned && c.findings == 0 && c.compared && c.pending_upload == 0)
    }
}

/// Parses a PEM public key.
pub fn key_from_pem(pem: &str) -> Option<VerifyingKey> {
    VerifyingKey::from_public_key_pem(pem).ok()
}

/// True when `sig_b64` (base64) is `key`'s Ed25519 signature of `text`.
pub fn signature_valid(key: &VerifyingKey, text: &str, sig_b64: &str) -> bool {
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(sig_b64) else { return false };
    let Ok(sig) = Signature::from_slice(&bytes) else { return false };
    key.verify(text.as_bytes(), &sig).is_ok()
}

/// True when `key` signed entry `e`.
pub fn signature_ok(key: &VerifyingKey, e: &LedgerEntry) -> bool {
    signature_valid(key, &e.canonical, &e.signature)
}

/// The repository part of a chain id (`X/REPOSITORY`).
pub fn chain_repository(chain: &str) -> &str {
    chain.rsplit_once('/').map_or("", |(_, r)| r)
}

/// The key part of a chain id when it is a fingerprint (new chains), else `None` (legacy
/// `HOST/REPOSITORY` chains).
pub fn chain_fingerprint(chain: &str) -> Option<&str> {
    let (head, _) = chain.rsplit_once('/')?;
    let fp = head.strip_prefix("key-")?;
    (fp.len() == 16 && fp.chars().all(|c| c.is_ascii_hexdigit())).then_some(fp)
}

/// The repository part of the chain of runs that could not open their repository.
pub const UNREACHABLE: &str = "unreachable";

/// The chain id of an installation's records in a repository.
pub fn chain_id(key_fingerprint: &str, repository_id: &str) -> String {
    format!("key-{key_fingerprint}/{repository_id}")
}

/// Verifies every local record and every reachable repository's evidence.
pub fn verify_ledger(
    local: &[LedgerEntry],
    repos: &[RepoEvidence],
    unreachable: Vec<String>,
    local_key: Option<&VerifyingKey>,
    pinned: &[String],
    pending: &HashSet<String>,
) -> Verdict {
    let local_fp = local_key.map(super::key::fingerprint).unwrap_or_default();
    let mut pinned_all: Vec<String> = pinned.iter().map(|p| p.to_ascii_lowercase()).collect();
    if local_key.is_some() {
        pinned_all.push(local_fp.clone());
    }
    pinned_all.sort();
    pinned_all.dedup();
    let mut v = Verdict {
        records: local.len(),
        repository_copies: repos.iter().map(|r| r.copies.len()).sum(),
        key_fingerprint: local_fp.clone(),
        pinned_keys: pinned_all.clone(),
        unreachable,
        ..Default::default()
    };
    // Every key we know, by fingerprint.
    let mut keys: HashMap<String, VerifyingKey> = HashMap::new();
    if let Some(k) = local_key {
        keys.insert(local_fp.clone(), *k);
    }
    let mut registered: HashMap<&str, HashSet<String>> = HashMap::new();
    for r in repos {
        for k in &r.keys {
            if let Some(vk) = key_from_pem(&k.public_key_pem) {
                let fp = super::key::fingerprint(&vk);
                registered.entry(r.repository_id.as_str()).or_default().insert(fp.clone());
                keys.insert(fp, vk);
            }
        }
        for c in &r.copies {
            if let Some(vk) = key_from_pem(&c.public_key_pem) {
                keys.entry(super::key::fingerprint(&vk)).or_insert(vk);
            }
        }
    }
    let reachable: HashMap<&str, &RepoEvidence> =
        repos.iter().map(|r| (r.repository_id.as_str(), r)).collect();
    let mut by_chain: BTreeMap<&str, (Vec<&LedgerEntry>, Vec<&RepoCopy>)> = BTreeMap::new();
    for e in local {
        by_chain.entry(e.chain.as_str()).or_default().0.push(e);
    }
    for r in repos {
        for c in &r.copies {
            by_chain.entry(c.entry.chain.as_str()).or_default().1.push(c);
        }
    }
    for (chain, (mut mine, mut theirs)) in by_chain {
        mine.sort_by_key(|e| e.seq);
        theirs.sort_by_key(|c| c.entry.seq);
        let repository_id = chain_repository(chain).to_string();
        // The chain's key: by its fingerprint, else (legacy) the key its copies carry.
        let fp = match chain_fingerprint(chain) {
            Some(fp) => Some(fp.to_string()),
            None => theirs
                .iter()
                .find_map(|c| key_from_pem(&c.public_key_pem))
                .map(|k| super::key::fingerprint(&k))
                .or_else(|| (!mine.is_empty() && local_key.is_some()).then(|| local_fp.clone())),
        };
        let key = fp.as_ref().and_then(|f| keys.get(f));
        let mut findings: Vec<Finding> = Vec::new();
        let mut find = |e: &LedgerEntry, kind: &str, detail: String| {
            findings.push(Finding {
                chain: chain.into(),
                seq: Some(e.seq),
                record_id: e.record_id.clone(),
                kind: kind.into(),
                detail,
            });
        };
        let is_mine = fp.as_deref() == Some(local_fp.as_str());
        let compared = reachable.contains_key(repository_id.as_str());
        let local_only = repository_id == UNREACHABLE;
        // Two different copies under one number or one record id: one of them was planted
        // (a copy is write-once; an edit is a second object beside the first).
        let mut by_seq: HashMap<u64, &RepoCopy> = HashMap::new();
        let mut by_record: HashMap<&str, &RepoCopy> = HashMap::new();
        for c in &theirs {
            let same = |o: &&RepoCopy| {
                o.entry.canonical == c.entry.canonical && o.entry.signature == c.entry.signature
            };
            let clash = [by_seq.get(&c.entry.seq), by_record.get(c.entry.record_id.as_str())]
                .into_iter()
                .flatten()
                .any(|o| !same(o));
            if clash {
                find(
                    &c.entry,
                    "conflicting-copies",
                    format!("the repository holds two different records numbered {} (or with id {}): one was planted", c.entry.seq, c.entry.record_id),
                );
            }
            by_seq.entry(c.entry.seq).or_insert(c);
            by_record.entry(c.entry.record_id.as_str()).or_insert(c);
        }
        let host = mine
            .first()
            .map(|e| e.record())
            .or_else(|| theirs.first().map(|c| c.entry.record()))
            .map(|r| r.host)
            .unwrap_or_default();
        // The records to walk: this installation's own chains from the local ledger (the
        // repository's copies are compared below); another installation's from the repository
        // when it can be read (what this ledger holds of it is a cache, perhaps behind).
        let walk: Vec<&LedgerEntry> = if mine.is_empty() || (!is_mine && compared && !theirs.is_empty()) {
            let mut seen = HashSet::new();
            theirs.iter().map(|c| &c.entry).filter(|e| seen.insert(e.seq)).collect()
        } else {
            mine.clone()
        };
        let mut prev = GENESIS.to_string();
        for (i, e) in walk.iter().enumerate() {
            let actual = sha256_hex(&e.canonical);
            let fields = e.record();
            if actual != e.hash {
                find(e, "edited", "its content no longer matches its recorded hash".into());
            }
            match key {
                // Without its repository there is nothing to check the signature against:
                // the chain is "not compared", which is not tampering.
                None if !compared => {}
                None => find(e, "unknown-key", "no known key signed this chain (its key is neither this installation's nor registered in the repository)".into()),
                Some(k) if !signature_ok(k, e) => {
                    find(e, "bad-signature", "its signature does not verify with the chain's key".into())
                }
                Some(_) => {}
            }
            if fields.chain != chain
                || fields.prev != prev
                || fields.seq != i as u64 + 1
                || e.seq != i as u64 + 1
            {
                find(
                    e,
                    "broken-link",
                    format!(
                        "record {} of the chain does not follow the one before: a record was deleted, inserted or reordered here",
                        i + 1
                    ),
                );
            }
            prev = actual;
        }
        let head_seq = walk.len() as u64;
        let mut waiting = 0;
        if compared && !mine.is_empty() {
            let by_id: HashMap<&str, &LedgerEntry> =
                theirs.iter().map(|c| (c.entry.record_id.as_str(), &c.entry)).collect();
            for e in &mine {
                match by_id.get(e.record_id.as_str()) {
                    // Written while the repository could not be (a read-only repository):
                    // waiting for its upload, not compared yet.
                    None if pending.contains(&e.record_id) => waiting += 1,
                    None => find(
                        e,
                        "inserted",
                        "the repository holds no copy of it: it was added to the local ledger".into(),
                    ),
                    Some(copy) if copy.canonical != e.canonical => {
                        let valid =
                            sha256_hex(&e.canonical) == e.hash && key.is_some_and(|k| signature_ok(k, e));
                        if valid {
                            find(e, "re-signed", "it differs from the repository's copy yet carries a valid signature: edited and re-signed with the local key".into());
                        } else {
                            find(e, "edited", "it differs from the repository's copy".into());
                        }
                    }
                    // Same content, another signature: the local record was re-signed (by
                    // a replaced key, say) and no longer matches what was written.
                    Some(copy) if copy.signature != e.signature => {
                        let by_local_key = local_key.is_some_and(|k| signature_ok(k, e));
                        if by_local_key && !key.is_some_and(|k| signature_ok(k, e)) {
                            find(e, "re-signed", "its signature differs from the repository's copy and was made with this installation's current key, not the chain's: re-signed".into());
                        } else if !key.is_some_and(|k| signature_ok(k, e)) {
                            find(e, "bad-signature", "its signature differs from the repository's copy and does not verify with the chain's key".into());
                        }
                    }
                    Some(copy) if copy.seq != e.seq => find(
                        e,
                        "reordered",
                        format!("it is number {} locally but {} in the repository", e.seq, copy.seq),
                    ),
                    Some(_) => {}
                }
            }
        }
        if compared && is_mine {
            // A record of this installation's chain that only the repository holds was
            // deleted locally (or the local ledger was lost: `catalog rebuild` brings it back).
            // Another installation's chain goes on growing without this ledger: not deleted.
            let seen: HashSet<&str> = mine.iter().map(|e| e.record_id.as_str()).collect();
            for c in theirs.iter().filter(|c| !seen.contains(c.entry.record_id.as_str())) {
                find(
                    &c.entry,
                    "deleted",
                    format!("the repository holds record {} but the local ledger does not", c.entry.seq),
                );
            }
        }
        if compared && chain_fingerprint(chain).is_some() {
            if let Some(f) = &fp {
                let is_registered = registered.get(repository_id.as_str()).is_some_and(|s| s.contains(f));
                if !is_registered && !theirs.is_empty() {
                    let e = &theirs[0].entry;
                    find(e, "key-unregistered", format!("the key {f} that signs this chain is not registered in the repository (its registration was deleted)"));
                }
            }
        }
        let n = findings.len();
        v.findings.extend(findings);
        v.chains.push(ChainVerdict {
            chain: chain.to_string(),
            repository_id,
            host,
            pinned: fp.as_ref().is_some_and(|f| pinned_all.contains(f)),
            key_fingerprint: fp,
            local_records: mine.len(),
            repository_records: theirs.len(),
            compared,
            local_only,
            pending_upload: waiting,
            head_seq,
            head: prev,
            findings: n,
        });
    }
    v.findings.sort_by(|a, b| (a.chain.as_str(), a.seq).cmp(&(b.chain.as_str(), b.seq)));
    v
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::evidence::record::{canonical, EvidenceRecord};
    use ed25519_dalek::{Signer, SigningKey};

    /// A chain of `n` records signed by `key`, as the ledger would append them.
    pub(crate) fn chain(key: &SigningKey, chain: &str, records: Vec<EvidenceRecord>) -> Vec<LedgerEntry> {
        let mut prev = GENESIS.to_string();
        let mut out = Vec::new();
        for (i, mut r) in records.into_iter().enumerate() {
            r.chain = chain.into();
            r.seq = i as u64 + 1;
            r.prev = prev.clone();
            let text = canonical(&r.to_canonical_value());
            let e = LedgerEntry {
                chain: chain.into(),
                seq: r.seq,
                record_id: r.record_id.clone(),
                hash: sha256_hex(&text),
                signature: crate::evidence::key::b64(&key.sign(text.as_bytes()).to_bytes()),
                canonical: text,
            };
            prev = e.hash.clone();
            out.push(e);
        }
        out
    }

    pub(crate) fn record(id: &str) -> EvidenceRecord {
        EvidenceRecord {
            record_id: id.into(),
            job: "j".into(),
            repository_id: "repo".into(),
            ..Default::default()
        }
    }

    fn repo_with(key: &SigningKey, entries: &[LedgerEntry]) -> RepoEvidence {
        let pem = crate::evidence::key::public_pem(key);
        RepoEvidence {
            repository_id: "repo".into(),
            copies: entries
                .iter()
                .map(|e| RepoCopy { entry: e.clone(), public_key_pem: pem.clone() })
                .collect(),
            keys: vec![RegisteredKey {
                fingerprint: crate::evidence::key::fingerprint(&key.verifying_key()),
                public_key_pem: pem,
                host: "h".into(),
                registered: chrono::Utc::now(),
            }],
        }
    }

    fn kinds(v: &Verdict) -> Vec<String> {
        v.findings.iter().map(|f| format!("{}@{}", f.kind, f.seq.unwrap_or(0))).collect()
    }

    #[test]
    fn every_kind_of_tampering_is_named_and_intact_means_all_compared() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let vk = key.verifying_key();
        let id = chain_id(&crate::evidence::key::fingerprint(&vk), "repo");
        let good = chain(&key, &id, vec![record("a"), record("b"), record("c")]);
        let repo = repo_with(&key, &good);
        let none = HashSet::new();
        let v = verify_ledger(&good, std::slice::from_ref(&repo), vec![], Some(&vk), &[], &none);
        assert!(v.intact() && v.trusted(&id), "{:?}", v.findings);

        // Edited in place.
        let mut edited = good.clone();
        edited[1].canonical = edited[1].canonical.replace("\"b\"", "\"x\"");
        assert!(kinds(&verify_ledger(&edited, std::slice::from_ref(&repo), vec![], Some(&vk), &[], &none))
            .contains(&"edited@2".into()));
        // Deleted: the link breaks and the repository still holds it.
        let deleted = vec![good[0].clone(), good[2].clone()];
        let k = kinds(&verify_ledger(&deleted, std::slice::from_ref(&repo), vec![], Some(&vk), &[], &none));
        assert!(k.contains(&"deleted@2".into()) && k.iter().any(|x| x.starts_with("broken-link")), "{k:?}");
        // Re-signed with the local key after an edit: valid locally, not what the repository holds.
        let mut r2 = record("b");
        r2.errors = vec!["forged".into()];
        let resigned = chain(&key, &id, vec![record("a"), r2, record("c")]);
        let k = kinds(&verify_ledger(&resigned, std::slice::from_ref(&repo), vec![], Some(&vk), &[], &none));
        assert!(
            k.contains(&"re-signed@2".into()) && !k.iter().any(|x| x.starts_with("bad-signature")),
            "{k:?}"
        );
        // Inserted: a local record the repository never got...
        let mut more = good.clone();
        more.extend(chain(&key, &id, vec![record("a"), record("b"), record("c"), record("d")]).pop());
        assert!(kinds(&verify_ledger(&more, std::slice::from_ref(&repo), vec![], Some(&vk), &[], &none))
            .contains(&"inserted@4".into()));
        // ...unless it waits for its upload (a read-only repository): then not compared yet.
        let pending = HashSet::from(["d".to_string()]);
        let v = verify_ledger(&more, std::slice::from_ref(&repo), vec![], Some(&vk), &[], &pending);
        assert!(v.findings.is_empty() && !v.intact() && v.uncompared_records() == 1 && !v.trusted(&id));
        // A garbage signature.
        let mut bad = good.clone();
        bad[0].signature = crate::evidence::key::b64(&[0u8; 64]);
        assert!(kinds(&verify_ledger(&bad, std::slice::from_ref(&repo), vec![], Some(&vk), &[], &none))
            .contains(&"bad-signature@1".into()));
        // Without the repository nothing is compared: not tampering, but not intact either.
        let v = verify_ledger(&good, &[], vec!["repository unreachable".into()], Some(&vk), &[], &none);
        assert!(v.findings.is_empty() && !v.intact() && v.uncompared_records() == 3);
    }

    #[test]
    fn other_installations_chains_verify_standalone_and_count_only_when_pinned() {
        let mine = SigningKey::from_bytes(&[1; 32]);
        let theirs = SigningKey::from_bytes(&[2; 32]);
        let their_fp = crate::evidence::key::fingerprint(&theirs.verifying_key());
        let id = chain_id(&their_fp, "repo");
        let entries = chain(&theirs, &id, vec![record("x"), record("y")]);
        let repo = repo_with(&theirs, &entries);
        let none = HashSet::new();
        let v =
            verify_ledger(&[], std::slice::from_ref(&repo), vec![], Some(&mine.verifying_key()), &[], &none);
        assert!(v.findings.is_empty(), "{:?}", v.findings);
        assert!(!v.trusted(&id), "another installation's chain never counts unpinned");
        let v = verify_ledger(
            &[],
            std::slice::from_ref(&repo),
            vec![],
            Some(&mine.verifying_key()),
            std::slice::from_ref(&their_fp),
            &none,
        );
        assert!(v.trusted(&id));
        // Its key registration deleted: a finding.
        let mut unregistered = repo.clone();
        unregistered.keys.clear();
        let v = verify_ledger(&[], &[unregistered], vec![], Some(&mine.verifying_key()), &[their_fp], &none);
        assert!(kinds(&v).iter().any(|k| k.starts_with("key-unregistered")), "{:?}", v.findings);
    }

    #[test]
    fn a_second_copy_under_the_same_number_is_a_finding() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let vk = key.verifying_key();
        let id = chain_id(&crate::evidence::key::fingerprint(&vk), "repo");
        let good = chain(&key, &id, vec![record("a"), record("b")]);
        // The local ledger edited and re-signed, and a matching copy planted beside the true one.
        let mut forged = record("b");
        forged.errors = vec!["forged".into()];
        let resigned = chain(&key, &id, vec![record("a"), forged]);
        let mut repo = repo_with(&key, &good);
        repo.copies.push(RepoCopy {
            entry: resigned[1].clone(),
            public_key_pem: crate::evidence::key::public_pem(&key),
        });
        let v =
            verify_ledger(&resigned, std::slice::from_ref(&repo), vec![], Some(&vk), &[], &HashSet::new());
        assert!(kinds(&v).contains(&"conflicting-copies@2".into()), "{:?}", v.findings);
        assert!(!v.trusted(&id));
    }

    #[test]
    fn another_installations_chain_grows_without_this_ledger_and_is_not_deleted() {
        let mine = SigningKey::from_bytes(&[1; 32]);
        let theirs = SigningKey::from_bytes(&[2; 32]);
        let their_fp = crate::evidence::key::fingerprint(&theirs.verifying_key());
        let id = chain_id(&their_fp, "repo");
        let all = chain(&theirs, &id, vec![record("x"), record("y"), record("z")]);
        let repo = repo_with(&theirs, &all);
        // A rebuilt catalog holds the first two; the other installation wrote a third since.
        let cached = all[..2].to_vec();
        let pinned = [their_fp];
        let v = verify_ledger(
            &cached,
            std::slice::from_ref(&repo),
            vec![],
            Some(&mine.verifying_key()),
            &pinned,
            &HashSet::new(),
        );
        assert!(v.findings.is_empty(), "{:?}", v.findings);
        assert!(v.trusted(&id) && v.chains[0].head_seq == 3);
        // An edit of the cache is still found.
        let mut edited = cached.clone();
        edited[1].canonical = edited[1].canonical.replace("\"y\"", "\"w\"");
        let v = verify_ledger(
            &edited,
            std::slice::from_ref(&repo),
            vec![],
            Some(&mine.verifying_key()),
            &pinned,
            &HashSet::new(),
        );
        assert!(kinds(&v).iter().any(|k| k.ends_with("@2")), "{:?}", v.findings);
        // The cache re-signed by this installation's (replaced) key, contents untouched: the
        // chain is walked from the repository, yet the local records are still compared.
        let mut resigned = cached.clone();
        for e in &mut resigned {
            e.signature = crate::evidence::key::b64(&mine.sign(e.canonical.as_bytes()).to_bytes());
        }
        let v = verify_ledger(
            &resigned,
            std::slice::from_ref(&repo),
            vec![],
            Some(&mine.verifying_key()),
            &pinned,
            &HashSet::new(),
        );
        assert_eq!(kinds(&v), ["re-signed@1", "re-signed@2"], "{:?}", v.findings);
        resigned[0].signature = crate::evidence::key::b64(&[0u8; 64]);
        let v =
            verify_ledger(&resigned, &[repo], vec![], Some(&mine.verifying_key()), &pinned, &HashSet::new());
        assert!(kinds(&v).contains(&"bad-signature@1".into()), "{:?}", v.findings);
    }

    #[test]
    fn runs_that_never_reached_their_repository_are_checked_locally_and_never_block_intact() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let vk = key.verifying_key();
        let id = chain_id(&crate::evidence::key::fingerprint(&vk), UNREACHABLE);
        let local = chain(&key, &id, vec![record("a"), record("b")]);
        let v = verify_ledger(&local, &[], vec![], Some(&vk), &[], &HashSet::new());
        assert!(v.intact() && !v.trusted(&id), "{:?}", v.findings);
        let mut bad = local.clone();
        bad[0].signature = crate::evidence::key::b64(&[0u8; 64]);
        let v = verify_ledger(&bad, &[], vec![], Some(&vk), &[], &HashSet::new());
        assert!(kinds(&v).contains(&"bad-signature@1".into()), "{:?}", v.findings);
    }
}
