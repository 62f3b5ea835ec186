//! `check`: proves the repository is whole, and names what is not.
//!
//! Structure (always): every key object and index object decodes and matches its name; every
//! indexed pack exists with the size the index records; every snapshot decodes; every tree of
//! every snapshot decodes; every blob a snapshot references is indexed in a pack that exists.
//! Data (`--read-data`, or a subset): packs are read whole, hashed against their names, their
//! headers compared with the index, and every blob decrypted, decompressed and re-hashed.
//!
//! Each problem names the damaged object and, through `attribution`, the snapshots and file
//! paths it touches, so an operator knows what is lost and what to run next.

pub(crate) mod attribution;
pub(crate) mod data;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ExitStatus, Result};
use crate::id::Id;
use crate::repo::index::{Index, IndexFile};
use crate::repo::keyfile::KeyFile;
use crate::repo::Repository;
use crate::storage::Kind;

/// How much data to read.
#[derive(Clone, Debug, PartialEq)]
pub enum ReadData {
    None,
    All,
    /// Packs of bucket `n` (1-based) out of `m`: running 1/m .. m/m covers every pack once.
    Subset {
        n: u32,
        m: u32,
    },
    /// A random sample of this percentage of packs.
    Percent(f64),
}

impl ReadData {
    /// Parses `N/M` or `P%`.
    ///
    /// # Errors
    /// `InvalidInput` quoting the text.
    pub fn parse_subset(text: &str) -> Result<ReadData> {
        let bad = || {
            Error::invalid(format!(
                "read-data subset '{text}': expected N/M (like 2/7) or a percentage (like 10%)"
            ))
        };
        if let Some(p) = text.strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(0.0..=100.0).contains(&v) || v == 0.0 {
                return Err(bad());
            }
            return Ok(ReadData::Percent(v));
        }
        let (n, m) = text.split_once('/').ok_or_else(bad)?;
        let (n, m): (u32, u32) = (n.trim().parse().map_err(|_| bad())?, m.trim().parse().map_err(|_| bad())?);
        if m == 0 || n == 0 || n > m {
            return Err(bad());
        }
        Ok(ReadData::Subset { n, m })
    }

    /// Whether the pack with this id is in the chosen subset.
    pub fn includes(&self, pack: &Id) -> bool {
        let bucket = u32::from_be_bytes([pack.0[0], pack.0[1], pack.0[2], pack.0[3]]);
        match self {
            ReadData::None => false,
            ReadData::All => true,
            ReadData::Subset { n, m } => bucket % m == n - 1,
            ReadData::Percent(p) => rand::random::<f64>() * 100.0 < *p,
        }
    }
}

#[derive(Clone, Debug)]
pub struct CheckOptions {
    pub read_data: ReadData,
    /// Snapshots this host recorded as written and not forgotten (to find deleted ones).
    pub known_snapshots: HashSet<Id>,
    /// Parallel pack readers for `--read-data`.
    pub threads: usize,
    pub cancel: Arc<AtomicBool>,
    /// What `--read-data` has read so far, for progress displays.
    pub progress: Arc<DataProgress>,
}

/// Live counters of `check --read-data`.
#[derive(Debug, Default)]
pub struct DataProgress {
    pub packs_total: std::sync::atomic::AtomicU64,
    pub packs_read: std::sync::atomic::AtomicU64,
    pub bytes_total: std::sync::atomic::AtomicU64,
    pub bytes_read: std::sync::atomic::AtomicU64,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            read_data: ReadData::None,
            known_snapshots: HashSet::new(),
            threads: crate::backup::default_workers(),
            cancel: Arc::new(AtomicBool::new(false)),
            progress: Arc::default(),
        }
    }
}

/// One damaged or missing object and what it touches.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Problem {
    /// The object, as stored: `pack data/ab/ab12...`, `index index/...`, `tree <id>`, ...
    pub object: String,
    pub detail: String,
    /// Snapshots (short ids) that reference the damaged data.
    pub snapshots: Vec<String>,
    /// Paths inside those snapshots that are damaged (at most 50 listed).
    pub paths: Vec<String>,
    /// How many affected paths exist beyond the ones listed.
    pub more_paths: usize,
    /// What to do about it.
    pub action: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckStats {
    pub keys: usize,
    pub index_files: usize,
    pub packs: usize,
    pub blobs: usize,
    pub snapshots: usize,
    pub trees: usize,
    pub packs_read: usize,
    pub bytes_read: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckReport {
    pub problems: Vec<Problem>,
    /// Not damage, but worth knowing (unindexed packs left by interrupted backups, ...).
    pub notes: Vec<String>,
    pub stats: CheckStats,
    pub read_data: String,
}

impl CheckReport {
    pub fn status(&self) -> ExitStatus {
        if self.problems.is_empty() {
            ExitStatus::Success
        } else {
            ExitStatus::Integrity
        }
    }
}

/// What the structure pass learned, shared with repair.
pub struct Findings {
    pub index: Index,
    /// Blobs that cannot be read, with the reason and the object to blame.
    pub bad_blobs: HashMap<Id, (String, String)>,
    /// Packs listed in storage, with sizes.
    pub stored_packs: HashMap<Id, u64>,
    pub snapshots: Vec<(Id, crate::repo::snapshot::Snapshot)>,
    /// Snapshot objects that cannot be read or decrypted, by name.
    pub damaged_snapshots: Vec<String>,
    /// Packs listed only by trash objects (set aside by a prune, still readable).
    pub trashed: HashSet<Id>,
    /// Packs stored but in neither the index nor a trash object.
    pub unindexed_packs: usize,
}

fn problem(object: impl Into<String>, detail: impl Into<String>, action: &str) -> Problem {
    Problem {
        object: object.into(),
        detail: detail.into(),
        snapshots: vec![],
        paths: vec![],
        more_paths: 0,
        action: action.into(),
    }
}

const REPAIR_INDEX: &str = "run 'rempart repair index' to rebuild the index from the packs that exist";
const REPAIR_SNAPSHOTS: &str =
    "restore what is intact; run 'rempart repair snapshots --forget' to drop what cannot be read, then back up again";

/// Checks keys, index, packs, snapshots and trees (no data reads); fills `report`.
pub fn check_structure(repo: &Repository, opts: &CheckOptions, report: &mut CheckReport) -> Result<Findings> {
    let storage = repo.storage();
    // Keys: each must decode and match its name.
    let keys = storage.list(Kind::Key)?;
    report.stats.keys = keys.len();
    if keys.is_empty() {
        report.problems.push(problem(
            "keys/",
            "the repository has no key objects: only a recovery file can open it",
            "add a key now with 'rempart key add' (opened with the recovery file)",
        ));
    }
    for k in &keys {
        let what = Kind::Key.describe(&k.name);
        match storage.get(Kind::Key, &k.name) {
            Ok(b) if Id::of_bytes(&b).to_hex() != k.name => {
                report.problems.push(problem(
                    &what,
                    "content does not hash to its name (damaged)",
                    "remove it with 'rempart key remove' and add a new key",
                ));
            }
            Ok(b) => {
                if let Err(e) = KeyFile::from_bytes(&b, &what) {
                    report.problems.push(problem(
                        &what,
                        e.to_string(),
                        "remove it with 'rempart key remove'",
                    ));
                }
            }
            Err(e) => report.problems.push(problem(&what, e.to_string(), "check the storage")),
        }
    }

    // The snapshots before the index: a backup writes its index before its snapshot, so every
    // snapshot read here has its blobs in an index object listed after it, even when backups
    // on other hosts commit meanwhile (index first, such a snapshot looked damaged).
    let forgotten = crate::repo::forgotten::load(repo)?;
    let (snapshots, damaged, leftover) = repo.read_snapshots(&forgotten)?;

    // Index objects: damaged ones are named, the rest merged.
    let names: Vec<String> = storage.list(Kind::Index)?.into_iter().map(|o| o.name).collect();
    report.stats.index_files = names.len();
    let mut files: Vec<(Id, IndexFile)> = Vec::new();
    for (name, bytes) in repo.fetch_many(Kind::Index, names) {
        let what = Kind::Index.describe(&name);
        let decoded = bytes.and_then(|b| {
            if Id::of_bytes(&b).to_hex() != name {
                return Err(Error::corrupt(
                    &what,
                    "content does not hash to its name (damaged or truncated)",
                ));
            }
            let plain = crate::crypto::seal::open_object(repo.keys(), "index", &b, &what)?;
            IndexFile::decode(&plain, &what)
        });
        match (decoded, Id::from_hex(&name)) {
            (Ok(f), Ok(id)) => files.push((id, f)),
            (Err(Error::NotFound(_)), _) => {}
            (Err(e), _) => {
                report.problems.push(problem(&what, strip_object(&e.to_string(), &what), REPAIR_INDEX))
            }
            (_, Err(_)) => report.problems.push(problem(&what, "name is not an id", REPAIR_INDEX)),
        }
    }
    // Packs a prune set aside stay readable until a later prune sweeps them: snapshots
    // written meanwhile may use them, so they are part of what check reads through.
    let (trash, damaged_trash) = crate::repo::trash::read_trash(repo)?;
    for e in damaged_trash {
        let (object, detail) = split_corrupt(&e);
        report.problems.push(problem(object, detail, REPAIR_INDEX));
    }
    let live_packs: HashSet<Id> = files.iter().flat_map(|(_, f)| f.packs.iter().map(|p| p.id)).collect();
    let mut trashed: HashMap<Id, u64> = HashMap::new();
    for (tid, t) in trash {
        let packs: Vec<_> = t.packs.into_iter().filter(|p| !live_packs.contains(&p.id)).collect();
        trashed.extend(packs.iter().map(|p| (p.id, p.size)));
        files.push((tid, IndexFile { supersedes: vec![], packs }));
    }
    let index = Index::from_files(files);
    report.stats.blobs = index.blob_count();

    // Packs: every indexed pack exists with its recorded size.
    let stored_packs: HashMap<Id, u64> = storage
        .list(Kind::Pack)?
        .into_iter()
        .filter_map(|o| Id::from_hex(&o.name).ok().map(|id| (id, o.size)))
        .collect();
    report.stats.packs = index.packs().len();
    let mut bad_packs: HashMap<Id, String> = HashMap::new();
    let mut swept = 0;
    for p in index.packs() {
        let what = Kind::Pack.describe(&p.id.to_hex());
        if trashed.contains_key(&p.id) && !stored_packs.contains_key(&p.id) {
            // Deleted by a prune's sweep that did not get to delete its trash object: damage
            // only if a snapshot uses it, which the tree walk below finds.
            bad_packs.insert(p.id, "missing (deleted by a prune after it was marked)".into());
            swept += 1;
            continue;
        }
        match stored_packs.get(&p.id) {
            None => {
                bad_packs.insert(p.id, "missing".into());
                report.problems.push(problem(
                    &what,
                    "missing: the index lists it but the storage does not have it",
                    REPAIR_SNAPSHOTS,
                ));
            }
            Some(&size) if size != p.size => {
                let detail = format!("truncated or altered: {size} bytes stored, {} expected", p.size);
                bad_packs.insert(p.id, detail.clone());
                report.problems.push(problem(&what, detail, REPAIR_SNAPSHOTS));
            }
            Some(_) => {}
        }
    }
    if swept > 0 {
        report.notes.push(format!(
            "{swept} packs marked for deletion are already deleted but still listed in a trash object (an interrupted prune); the next 'rempart prune' completes it"
        ));
    }
    let unindexed = stored_packs.keys().filter(|id| index.pack(id).is_none()).count();
    if unindexed > 0 {
        report.notes.push(format!(
            "{unindexed} packs are in neither the index nor a trash object (left by interrupted backups or being written by one now); the next backup indexes the ones that decode ('rempart repair index' does it now), and a prune deletes the rest after its grace period"
        ));
    }
    let mut bad_blobs: HashMap<Id, (String, String)> = HashMap::new();
    for loc in index.iter() {
        if let Some(why) = bad_packs.get(&loc.pack.id) {
            bad_blobs.insert(loc.entry.id, (Kind::Pack.describe(&loc.pack.id.to_hex()), why.clone()));
        }
    }

    // Snapshots: each decodes; the ones this host wrote and did not forget still exist.
    for (name, why) in &forgotten.damaged {
        report.problems.push(problem(
            Kind::Forgotten.describe(name),
            why.clone(),
            "run 'rempart repair snapshots' to remove this record; snapshots it forgot whose objects remain show up again: forget them again with 'rempart forget ID'",
        ));
    }
    report.stats.snapshots = snapshots.len();
    if leftover > 0 {
        report.notes.push(format!(
            "{leftover} forgotten snapshots still have their objects (a forget was interrupted); the next 'rempart forget' or 'rempart prune' deletes them"
        ));
    }
    let damaged_snapshots: Vec<String> = damaged.iter().map(|(n, _)| n.clone()).collect();
    for (name, e) in damaged {
        let (object, detail) = split_corrupt(&e);
        let object = if object == "object" { Kind::Snapshot.describe(&name) } else { object };
        report.problems.push(problem(
            object,
            detail,
            format!(
                "the snapshot cannot be read; other snapshots are not affected: remove it with 'rempart forget {}' (or 'rempart repair snapshots --forget')",
                &name[..name.len().min(8)]
            )
            .as_str(),
        ));
    }
    let present: HashSet<Id> =
        repo.storage().list(Kind::Snapshot)?.into_iter().filter_map(|o| Id::from_hex(&o.name).ok()).collect();
    for id in &opts.known_snapshots {
        if !present.contains(id) && !forgotten.contains(id) {
            report.problems.push(problem(
                Kind::Snapshot.describe(&id.to_hex()),
                "missing: this host recorded writing it and never forgot it (deleted outside rempart?)",
                "the snapshot is lost; check who can delete objects in the repository",
            ));
        }
    }

    // Trees: every tree decodes, every referenced blob is indexed in a usable pack.
    let reach = crate::repo::walk::reachable(repo, &index, snapshots.iter().map(|(_, s)| s.tree));
    for (tid, e) in &reach.unreadable {
        let object = match index.lookup(tid) {
            Some(loc) => format!("tree {} in {}", tid, Kind::Pack.describe(&loc.pack.id.to_hex())),
            None => format!("tree {tid}"),
        };
        // A tree in a pack already known bad keeps that pack as its cause.
        bad_blobs.entry(*tid).or_insert((object, strip_object(&e.to_string(), "")));
    }
    for id in &reach.data {
        if !index.contains(id) && !bad_blobs.contains_key(id) {
            bad_blobs.insert(*id, (format!("data blob {id}"), "not in the index (missing)".into()));
        }
    }
    let seen_trees = reach.trees;
    report.stats.trees = seen_trees.len();
    let trashed = trashed.into_keys().collect();
    Ok(Findings {
        index,
        bad_blobs,
        stored_packs,
        snapshots,
        damaged_snapshots,
        trashed,
        unindexed_packs: unindexed,
    })
}

/// The object and detail of an integrity error (other errors name no object).
fn split_corrupt(e: &Error) -> (String, String) {
    match e {
        Error::Corrupt { object, detail } => (object.clone(), detail.clone()),
        other => ("object".to_string(), other.to_string()),
    }
}

/// Drops a repeated object name from an error message ("integrity damage in X: ...").
fn strip_object(msg: &str, what: &str) -> String {
    let prefix = format!("integrity damage in {what}: ");
    msg.strip_prefix(&prefix).map(str::to_string).unwrap_or_else(|| msg.to_string())
}

/// Runs a full check.
///
/// # Errors
/// Storage errors that prevent checking at all; damage is reported in the result.
pub fn check(repo: &Repository, opts: &CheckOptions) -> Result<CheckReport> {
    let _lock = repo.lock(crate::repo::lock::LockKind::Check, "check")?;
    let mut report = CheckReport { read_data: format!("{:?}", opts.read_data), ..Default::default() };
    let mut findings = check_structure(repo, opts, &mut report)?;
    if opts.read_data != ReadData::None {
        data::read_data(repo, &findings.index, opts, &mut findings.bad_blobs, &mut report)?;
    }
    // Blobs with problems found while walking trees, reported per object.
    let mut by_object: HashMap<String, (String, Vec<Id>)> = HashMap::new();
    for (id, (object, detail)) in &findings.bad_blobs {
        by_object.entry(object.clone()).or_insert_with(|| (detail.clone(), vec![])).1.push(*id);
    }
    let affected = attribution::attribute(repo, &findings, &findings.bad_blobs.keys().copied().collect())?;
    let mut extra: Vec<Problem> = Vec::new();
    for (object, (detail, ids)) in by_object {
        let existing = report.problems.iter_mut().find(|p| p.object == object);
        let mut snaps = HashSet::new();
        let mut paths = Vec::new();
        for id in &ids {
            if let Some(a) = affected.get(id) {
                snaps.extend(a.snapshots.iter().cloned());
                paths.extend(a.paths.iter().cloned());
            }
        }
        if snaps.is_empty() && existing.is_none() {
            // Damage in data no snapshot uses: worth a note, not a failure.
            report.notes.push(format!("{object}: {detail} (no snapshot uses it; prune will remove it)"));
            continue;
        }
        let p = match existing {
            Some(p) => p,
            None => {
                let not_indexed = detail.contains("not in the index");
                let action =
                    if object.starts_with("data blob") || (not_indexed && findings.unindexed_packs > 0) {
                        REPAIR_INDEX
                    } else {
                        REPAIR_SNAPSHOTS
                    };
                extra.push(problem(&object, &detail, action));
                extra.last_mut().expect("just pushed")
            }
        };
        let mut snaps: Vec<String> = snaps.into_iter().collect();
        snaps.sort();
        paths.sort();
        paths.dedup();
        p.snapshots = snaps;
        p.more_paths = paths.len().saturating_sub(50);
        paths.truncate(50);
        p.paths = paths;
    }
    report.problems.extend(extra);
    report.problems.sort_by(|a, b| a.object.cmp(&b.object));
    Ok(report)
}
