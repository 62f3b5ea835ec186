//! Appending to and reading the ledger: the catalog's `evidence` table and the repository's
//! write-once copies.

use ed25519_dalek::{Signer, SigningKey};
use rusqlite::{params, TransactionBehavior};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::key::b64;
use super::record::canonical;
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::Repository;
use crate::storage::Kind;

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One record as stored: its canonical text, hash and signature.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LedgerEntry {
    pub chain: String,
    pub seq: u64,
    pub record_id: String,
    pub canonical: String,
    /// SHA-256 of `canonical`, hex.
    pub hash: String,
    /// Ed25519 over `canonical`, base64.
    pub signature: String,
}

impl LedgerEntry {
    /// The record this entry signs, typed.
    pub fn record(&self) -> super::record::EvidenceRecord {
        super::record::EvidenceRecord::parse(&self.canonical)
    }
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

fn db(e: rusqlite::Error) -> Error {
    Error::failed(format!("evidence ledger: {e}"))
}

/// Appends a record to `chain`: numbered, chained to the previous one and signed.
pub fn append(
    catalog: &mut Catalog,
    key: &SigningKey,
    chain: &str,
    mut record: super::record::EvidenceRecord,
) -> Result<LedgerEntry> {
    let conn = catalog.connection();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
    let last: Option<(i64, String)> = tx
        .query_row(
            "select seq, hash from evidence where chain = ?1 order by seq desc limit 1",
            [chain],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .ok();
    let (seq, prev) = match last {
        Some((s, h)) => (s as u64 + 1, h),
        None => (1, GENESIS.to_string()),
    };
    record.chain = chain.into();
    record.seq = seq;
    record.prev = prev;
    let text = canonical(&record.to_canonical_value());
    let entry = LedgerEntry {
        chain: chain.into(),
        seq,
        record_id: record.record_id.clone(),
        hash: sha256_hex(&text),
        signature: b64(&key.sign(text.as_bytes()).to_bytes()),
        canonical: text,
    };
    insert(&tx, &entry)?;
    tx.commit().map_err(db)?;
    Ok(entry)
}

fn insert(conn: &rusqlite::Connection, e: &LedgerEntry) -> Result<()> {
    conn.execute(
        "insert into evidence (chain, seq, record_id, canonical, hash, signature) values (?1, ?2, ?3, ?4, ?5, ?6)",
        params![e.chain, e.seq as i64, e.record_id, e.canonical, e.hash, e.signature],
    )
    .map_err(db)?;
    Ok(())
}

/// Inserts an entry read from a repository copy (catalog rebuild); existing ones are kept.
pub fn restore_entry(catalog: &mut Catalog, e: &LedgerEntry) -> Result<bool> {
    let conn = catalog.connection();
    let exists: bool =
        conn.query_row("select 1 from evidence where record_id = ?1", [&e.record_id], |_| Ok(())).is_ok();
    if exists {
        return Ok(false);
    }
    insert(conn, e)?;
    Ok(true)
}

/// Every local entry, by chain then number (`chain` to restrict).
pub fn entries(catalog: &mut Catalog, chain: Option<&str>) -> Result<Vec<LedgerEntry>> {
    let conn = catalog.connection();
    let mut stmt = conn
        .prepare("select chain, seq, record_id, canonical, hash, signature from evidence where ?1 is null or chain = ?1 order by chain, seq, rowid")
        .map_err(db)?;
    let rows = stmt
        .query_map([chain], |r| {
            Ok(LedgerEntry {
                chain: r.get(0)?,
                seq: r.get::<_, i64>(1)? as u64,
                record_id: r.get(2)?,
                canonical: r.get(3)?,
                hash: r.get(4)?,
                signature: r.get(5)?,
            })
        })
        .map_err(db)?;
    rows.collect::<std::result::Result<Vec<_>, _>>().map_err(db)
}

/// The copy of a record kept in the repository.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RepoCopy {
    pub entry: LedgerEntry,
    pub public_key_pem: String,
}

/// Writes the write-once, encrypted repository copy of an entry.
pub fn save_copy(repo: &Repository, entry: &LedgerEntry, public_key_pem: &str) -> Result<Id> {
    let copy = RepoCopy { entry: entry.clone(), public_key_pem: public_key_pem.into() };
    repo.save_object(Kind::Evidence, "evidence", &serde_json::to_vec(&copy).expect("serializable"))
}

/// Evidence copies that decode, and (object, reason) of each damaged one.
pub type CopyList = (Vec<RepoCopy>, Vec<(String, String)>);

/// Every evidence copy that decodes, and each damaged one with the reason.
///
/// # Errors
/// Storage errors.
pub fn load_copies_lenient(repo: &Repository) -> Result<CopyList> {
    let names: Vec<String> = repo.storage().list(Kind::Evidence)?.into_iter().map(|o| o.name).collect();
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (name, bytes) in repo.fetch_many(Kind::Evidence, names) {
        let bytes = match bytes {
            Ok(b) => b,
            Err(Error::NotFound(_)) => continue,
            Err(e) if !e.is_integrity() => return Err(e),
            Err(e) => {
                bad.push((Kind::Evidence.describe(&name), e.to_string()));
                continue;
            }
        };
        let what = Kind::Evidence.describe(&name);
        let decoded = repo.open_loaded(Kind::Evidence, "evidence", &name, &bytes).and_then(|plain| {
            serde_json::from_slice::<RepoCopy>(&plain).map_err(|e| Error::corrupt(&what, e))
        });
        match decoded {
            Ok(c) => out.push(c),
            Err(e) => bad.push((what, e.to_string())),
        }
    }
    Ok((out, bad))
}

/// Notes that the repository copy of `record_id` is still to be written.
///
/// # Errors
/// The catalog cannot be written.
pub fn mark_pending(catalog: &mut Catalog, record_id: &str) -> Result<()> {
    catalog
        .connection()
        .execute("insert or ignore into evidence_pending (record_id) values (?1)", [record_id])
        .map_err(db)?;
    Ok(())
}

/// The records whose repository copies are still to be written.
///
/// # Errors
/// The catalog cannot be read.
pub fn pending(catalog: &mut Catalog) -> Result<std::collections::HashSet<String>> {
    let conn = catalog.connection();
    let mut stmt = conn.prepare("select record_id from evidence_pending").map_err(db)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(db)?;
    rows.collect::<std::result::Result<_, _>>().map_err(db)
}

/// Writes the pending copies of `chain` into `repo`; returns how many were uploaded.
///
/// # Errors
/// The catalog cannot be read; storage errors leave the records pending.
pub fn upload_pending(
    catalog: &mut Catalog,
    repo: &Repository,
    chain: &str,
    public_key_pem: &str,
) -> Result<usize> {
    let waiting = pending(catalog)?;
    if waiting.is_empty() {
        return Ok(0);
    }
    let mut n = 0;
    for e in entries(catalog, Some(chain))?.into_iter().filter(|e| waiting.contains(&e.record_id)) {
        save_copy(repo, &e, public_key_pem)?;
        catalog
            .connection()
            .execute("delete from evidence_pending where record_id = ?1", [&e.record_id])
            .map_err(db)?;
        n += 1;
    }
    Ok(n)
}
