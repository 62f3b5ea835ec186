//! The auditor's export: this installation's chains, standing alone.
//!
//! A JSON Lines file. The first line is the header: the export time, the installation's public
//! key and its fingerprint, and for each chain its window — the first record exported, the
//! *anchor* (the hash of the record just before the window, 64 zeros from the start), and the
//! head (last number and hash) — each chain's statement signed with the installation's key, and
//! the header's list of chains signed as a whole.
//! Then one line per record: chain, number, id, canonical text, hash, previous hash and
//! signature. Whoever holds the export and the key's fingerprint (which `evidence verify`
//! prints on the installation) can check, with `rempart evidence verify-export` or
//! `scripts/verify-evidence` (Python and OpenSSL only): the key matches the pinned
//! fingerprint, every signature is by that key, the records link from the anchor to the
//! signed head without a gap, and nothing was cut from the end. Records signed by any other key
//! fail. A `--since` window verifies on its own, from its anchor.

use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};

use super::ledger::{sha256_hex, LedgerEntry, GENESIS};

/// The statement signed for each chain of an export.
pub fn head_statement(chain: &ChainWindow, exported: &str) -> String {
    format!(
        "rempart-evidence-export-v1\n{}\n{}\n{}\n{}\n{}\n{}",
        chain.chain, chain.first_seq, chain.anchor, chain.head_seq, chain.head_hash, exported
    )
}

/// The statement signed over the whole header: the export time and window, the key, how many
/// chains were left out, and every chain's window. Removing or adding a chain breaks it.
pub fn header_statement(h: &Header) -> String {
    let mut text = format!(
        "rempart-evidence-export-v1-header\n{}\n{}\n{}\n{}\n",
        h.exported,
        h.since.as_deref().unwrap_or("-"),
        h.key_fingerprint,
        h.other_chains_not_exported
    );
    for c in &h.chains {
        text.push_str(&format!("{} {} {} {} {}\n", c.chain, c.first_seq, c.anchor, c.head_seq, c.head_hash));
    }
    text
}

/// One chain's window in an export.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChainWindow {
    pub chain: String,
    pub first_seq: u64,
    pub anchor: String,
    pub head_seq: u64,
    pub head_hash: String,
    /// Ed25519 over [`head_statement`], base64.
    pub signature: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Header {
    pub rempart_evidence_export: u32,
    pub exported: String,
    pub since: Option<String>,
    pub key_fingerprint: String,
    pub public_key_pem: String,
    pub chains: Vec<ChainWindow>,
    /// Chains of other installations held by this ledger, not exported (they are verified with
    /// their own keys).
    pub other_chains_not_exported: usize,
    /// Ed25519 over [`header_statement`], base64.
    #[serde(default)]
    pub signature: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Line {
    chain: String,
    seq: u64,
    record_id: String,
    canonical: String,
    hash: String,
    prev: String,
    signature: String,
}

fn ended(e: &LedgerEntry) -> Option<chrono::DateTime<chrono::Utc>> {
    e.record().ended_at()
}

/// A chain's id, its records in the window, and the anchor (number and hash of the record
/// before the window; 0 and 64 zeros from the start).
type Window<'a> = (String, Vec<&'a LedgerEntry>, u64, String);

/// This installation's chains, and the window of each (records since `since`); also how many
/// chains of other installations were left out.
fn windows<'a>(
    all: &'a [LedgerEntry],
    key: &SigningKey,
    since: Option<chrono::DateTime<chrono::Utc>>,
) -> (Vec<Window<'a>>, usize) {
    let fp = super::key::fingerprint(&key.verifying_key());
    let mut chains: std::collections::BTreeMap<&str, Vec<&LedgerEntry>> = Default::default();
    for e in all {
        chains.entry(e.chain.as_str()).or_default().push(e);
    }
    let mut out = Vec::new();
    let mut others = 0;
    for (chain, mut recs) in chains {
        let mine = match super::verify::chain_fingerprint(chain) {
            Some(f) => f == fp,
            // Legacy chains were all signed with this installation's key.
            None => recs.first().is_some_and(|e| super::verify::signature_ok(&key.verifying_key(), e)),
        };
        if !mine {
            others += 1;
            continue;
        }
        recs.sort_by_key(|e| e.seq);
        // The window starts at the first record ended within `since`; the anchor is the hash
        // of the record before it.
        let start = since
            .map_or(0, |s| recs.iter().position(|e| ended(e).is_none_or(|t| t >= s)).unwrap_or(recs.len()));
        let (anchor_seq, anchor) = if start == 0 {
            (0, GENESIS.to_string())
        } else {
            (recs[start - 1].seq, recs[start - 1].hash.clone())
        };
        out.push((chain.to_string(), recs[start..].to_vec(), anchor_seq, anchor));
    }
    (out, others)
}

/// The JSON Lines export of this installation's chains.
pub fn jsonl(
    all: &[LedgerEntry],
    key: &SigningKey,
    since: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    let exported = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (chains, others) = windows(all, key, since);
    let mut header = Header {
        rempart_evidence_export: 1,
        exported: exported.clone(),
        since: since.map(|s| s.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        key_fingerprint: super::key::fingerprint(&key.verifying_key()),
        public_key_pem: super::key::public_pem(key),
        chains: vec![],
        other_chains_not_exported: others,
        signature: String::new(),
    };
    let mut lines = String::new();
    for (chain, recs, anchor_seq, anchor) in &chains {
        // An empty window: its head is its anchor.
        let (head_seq, head_hash) =
            recs.last().map_or((*anchor_seq, anchor.clone()), |e| (e.seq, e.hash.clone()));
        let mut w = ChainWindow {
            chain: chain.clone(),
            first_seq: anchor_seq + 1,
            anchor: anchor.clone(),
            head_seq,
            head_hash,
            signature: String::new(),
        };
        w.signature = super::key::b64(&key.sign(head_statement(&w, &exported).as_bytes()).to_bytes());
        header.chains.push(w);
        for e in recs {
            let line = Line {
                chain: e.chain.clone(),
                seq: e.seq,
                record_id: e.record_id.clone(),
                canonical: e.canonical.clone(),
                hash: e.hash.clone(),
                prev: e.record().prev,
                signature: e.signature.clone(),
            };
            lines.push_str(&serde_json::to_string(&line).expect("serializable"));
            lines.push('\n');
        }
    }
    header.signature = super::key::b64(&key.sign(header_statement(&header).as_bytes()).to_bytes());
    let mut out = serde_json::to_string(&header).expect("serializable");
    out.push('\n');
    out.push_str(&lines);
    out
}

/// The CSV export (one row per record of this installation's chains; no header signatures:
/// use the JSON Lines export to verify).
pub fn csv(all: &[LedgerEntry], key: &SigningKey, since: Option<chrono::DateTime<chrono::Utc>>) -> String {
    let mut out = String::from("chain,seq,record_id,job,step,outcome,ended,hash,prev,signature\n");
    let cell = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    for (_, recs, _, _) in windows(all, key, since).0 {
        for e in recs {
            let f = e.record();
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{}\n",
                cell(&e.chain),
                e.seq,
                cell(&e.record_id),
                cell(&f.job),
                cell(f.step.map(|s| s.name()).unwrap_or("")),
                cell(f.outcome.map(|s| s.name()).unwrap_or("")),
                cell(f.ended.as_deref().unwrap_or("")),
                e.hash,
                f.prev,
                e.signature
            ));
        }
    }
    out
}

/// What verifying an export found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ExportCheck {
    pub records: usize,
    /// (chain, first seq, head seq, head hash) of each chain that verified.
    pub chains: Vec<(String, u64, u64, String)>,
    pub problems: Vec<String>,
}

/// Verifies an export against the pinned key fingerprint `fingerprint`.
pub fn verify_export(text: &str, fingerprint: &str) -> ExportCheck {
    let mut r = ExportCheck::default();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next().and_then(|l| serde_json::from_str::<Header>(l).ok()) else {
        r.problems
            .push("the first line is not an export header (an export from 'rempart evidence export')".into());
        return r;
    };
    let Some(key) = super::verify::key_from_pem(&header.public_key_pem) else {
        r.problems.push("the header's public key does not parse".into());
        return r;
    };
    let actual = super::key::fingerprint(&key);
    if actual != fingerprint.trim().to_ascii_lowercase() {
        r.problems.push(format!(
            "the export's key has fingerprint {actual}, not the pinned {fingerprint}: it was not signed by the installation you trust"
        ));
        return r;
    }
    if !super::verify::signature_valid(&key, &header_statement(&header), &header.signature) {
        r.problems.push(
            "the header's list of chains is not signed by the pinned key (a chain was removed or added, or the export predates header signatures)"
                .into(),
        );
    }
    let mut state: std::collections::HashMap<String, (u64, String, &ChainWindow)> = Default::default();
    for w in &header.chains {
        if !super::verify::signature_valid(&key, &head_statement(w, &header.exported), &w.signature) {
            r.problems.push(format!("chain {}: the signed window statement does not verify", w.chain));
        }
        state.insert(w.chain.clone(), (w.first_seq.saturating_sub(1), w.anchor.clone(), w));
    }
    for (n, l) in lines.enumerate() {
        let Ok(line) = serde_json::from_str::<Line>(l) else {
            r.problems.push(format!("record line {}: not a record", n + 1));
            continue;
        };
        r.records += 1;
        let where_ = format!("chain {} record {}", line.chain, line.seq);
        let Some((last_seq, last_hash, _)) = state.get_mut(&line.chain) else {
            r.problems.push(format!("{where_}: its chain is not in the signed header"));
            continue;
        };
        if sha256_hex(&line.canonical) != line.hash {
            r.problems.push(format!("{where_}: its content does not match its hash"));
        }
        if !super::verify::signature_valid(&key, &line.canonical, &line.signature) {
            r.problems.push(format!("{where_}: not signed by the pinned key"));
        }
        let fields = super::record::EvidenceRecord::parse(&line.canonical);
        if Some(line.seq) != last_seq.checked_add(1)
            || fields.seq != line.seq
            || fields.prev != *last_hash
            || fields.chain != line.chain
        {
            r.problems.push(format!("{where_}: does not follow record {last_seq} of its chain (a record is missing, inserted or moved)"));
        }
        *last_seq = line.seq;
        *last_hash = sha256_hex(&line.canonical);
    }
    for (chain, (last_seq, last_hash, w)) in &state {
        if *last_seq != w.head_seq || *last_hash != w.head_hash {
            r.problems.push(format!(
                "chain {chain}: the export ends at record {last_seq} but its signed head is record {} (records were cut from the end)",
                w.head_seq
            ));
        } else {
            r.chains.push((chain.clone(), w.first_seq, w.head_seq, w.head_hash.clone()));
        }
    }
    r.chains.sort();
    r
}
