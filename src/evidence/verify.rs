//! Verifying the ledger: each record against its hash and signature, the chain links, and the
//! repository's write-once copies (which a local key cannot rewrite).

use std::collections::HashMap;

use base64::Engine;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::Serialize;

use super::ledger::{sha256_hex, LedgerEntry, RepoCopy, GENESIS};

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Finding {
    pub chain: String,
    pub seq: Option<u64>,
    pub record_id: String,
    /// `edited`, `re-signed`, `deleted`, `inserted`, `reordered`, `bad-signature`, `broken-link`.
    pub kind: String,
    pub detail: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChainHead {
    pub chain: String,
    pub records: usize,
    pub head: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    pub records: usize,
    pub repository_copies: usize,
    pub chains: Vec<ChainHead>,
    pub key_fingerprint: String,
    pub findings: Vec<Finding>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }
}

fn signature_ok(key: &VerifyingKey, e: &LedgerEntry) -> bool {
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(&e.signature) else { return false };
    let Ok(sig) = Signature::from_slice(&bytes) else { return false };
    key.verify(e.canonical.as_bytes(), &sig).is_ok()
}

/// Verifies the local entries of some chains against the repository copies of the same chains.
pub fn verify(local: &[LedgerEntry], copies: &[RepoCopy], key: &VerifyingKey) -> VerifyReport {
    let mut report = VerifyReport {
        records: local.len(),
        repository_copies: copies.len(),
        key_fingerprint: super::key::fingerprint(key),
        ..Default::default()
    };
    let by_id: HashMap<&str, &LedgerEntry> =
        copies.iter().map(|c| (c.entry.record_id.as_str(), &c.entry)).collect();
    let mut chains: Vec<&str> =
        local.iter().map(|e| e.chain.as_str()).chain(copies.iter().map(|c| c.entry.chain.as_str())).collect();
    chains.sort();
    chains.dedup();
    let mut seen = std::collections::HashSet::new();
    for chain in chains {
        let mut prev = GENESIS.to_string();
        let mut count = 0;
        for (i, e) in local.iter().filter(|e| e.chain == chain).enumerate() {
            count += 1;
            seen.insert(e.record_id.as_str());
            let mut find = |kind: &str, detail: String| {
                report.findings.push(Finding {
                    chain: chain.into(),
                    seq: Some(e.seq),
                    record_id: e.record_id.clone(),
                    kind: kind.into(),
                    detail,
                });
            };
            let actual = sha256_hex(&e.canonical);
            let fields = e.fields();
            let sig_ok = signature_ok(key, e);
            if actual != e.hash {
                find("edited", "its content no longer matches its recorded hash".into());
            }
            if !sig_ok {
                find("bad-signature", "its signature does not verify with the evidence key".into());
            }
            if fields["prev"].as_str() != Some(prev.as_str())
                || fields["seq"].as_u64() != Some(i as u64 + 1)
                || e.seq != i as u64 + 1
            {
                find(
                    "broken-link",
                    format!(
                        "record {} of the chain does not follow the one before: a record was deleted, inserted or reordered here",
                        i + 1
                    ),
                );
            }
            match by_id.get(e.record_id.as_str()) {
                None => find(
                    "inserted",
                    "the repository holds no copy of it: it was added to the local ledger".into(),
                ),
                Some(copy) if copy.canonical != e.canonical => {
                    if sig_ok && actual == e.hash {
                        find("re-signed", "it differs from the repository's copy yet carries a valid signature: edited and re-signed with the local key".into());
                    } else {
                        find("edited", "it differs from the repository's copy".into());
                    }
                }
                Some(copy) if copy.seq != e.seq => {
                    find(
                        "reordered",
                        format!("it is number {} locally but {} in the repository", e.seq, copy.seq),
                    );
                }
                Some(_) => {}
            }
            prev = actual;
        }
        for c in
            copies.iter().filter(|c| c.entry.chain == chain && !seen.contains(c.entry.record_id.as_str()))
        {
            report.findings.push(Finding {
                chain: chain.into(),
                seq: Some(c.entry.seq),
                record_id: c.entry.record_id.clone(),
                kind: "deleted".into(),
                detail: format!("the repository holds record {} but the local ledger does not", c.entry.seq),
            });
        }
        report.chains.push(ChainHead { chain: chain.into(), records: count, head: prev });
    }
    report.findings.sort_by(|a, b| (a.chain.as_str(), a.seq).cmp(&(b.chain.as_str(), b.seq)));
    report
}
