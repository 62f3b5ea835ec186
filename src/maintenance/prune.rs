//! `prune`: frees the space of data no snapshot uses, without ever making a backup wait.
//!
//! Two phases (docs/format.md): this run first *sweeps* what earlier runs marked, then *marks*
//! what is unused now.
//!
//! - Sweep: a trash object older than the grace period, when no backup or reader that started before it
//!   was written is still running, has its packs deleted, except packs that a snapshot written
//!   since uses (taken back into the index) or that an index lists again (adopted by a backup).
//! - Mark: packs whose blobs no snapshot uses, and packs left unindexed by interrupted backups,
//!   are listed in a new trash object; packs more than half unused are repacked first (their
//!   live blobs copied into new packs). Then a new index without the marked packs supersedes the
//!   old index objects.
//!
//! Order of writes: new packs, trash object, new index, then deletions. An interruption at any
//! point leaves every snapshot readable (marked packs stay readable through the trash).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::index::{Index, IndexBuilder, IndexFile, IndexedPack};
use crate::repo::lock::{list_locks, LockInfo, LockKind};
use crate::repo::pack::PackEntry;
use crate::repo::trash::{load_trash, save_trash, TrashFile};
use crate::repo::writer::BlobWriter;
use crate::repo::{Repository, SnapshotList};
use crate::storage::Kind;

/// How far another host's clock may run ahead of this one's without harm: the sweep waits for
/// every backup or reader whose lock says it started before a mark, or up to this long after.
pub const CLOCK_SKEW_MARGIN: Duration = Duration::from_secs(10 * 60);

#[derive(Clone, Debug)]
pub struct PruneOptions {
    pub dry_run: bool,
    /// How long marked packs wait before a later prune may delete them.
    pub grace: Duration,
    /// Packs with less than this share of their bytes in use are repacked.
    pub repack_below: f64,
    /// Where the prune stands, for progress displays.
    pub progress: std::sync::Arc<PruneProgress>,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            dry_run: false,
            grace: Duration::from_secs(3600),
            repack_below: 0.5,
            progress: Default::default(),
        }
    }
}

/// Live counters of a prune: its phase, and what is done of the phase's total (bytes while
/// repacking, packs while deleting; no total while reading the snapshots).
#[derive(Debug, Default)]
pub struct PruneProgress {
    pub phase: parking_lot::Mutex<&'static str>,
    pub done: std::sync::atomic::AtomicU64,
    pub total: std::sync::atomic::AtomicU64,
}

impl PruneProgress {
    fn start(&self, phase: &'static str, total: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        *self.phase.lock() = phase;
        self.done.store(0, Relaxed);
        self.total.store(total, Relaxed);
    }

    fn add(&self, n: u64) {
        self.done.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PruneReport {
    pub snapshots: usize,
    pub blobs_used: usize,
    /// Packs deleted now (swept from earlier marks).
    pub packs_deleted: usize,
    pub bytes_freed: u64,
    /// Packs put back into the index because a newer snapshot uses them.
    pub packs_rescued: usize,
    /// Packs marked now, to be deleted by a later prune.
    pub packs_marked: usize,
    pub bytes_marked: u64,
    pub packs_repacked: usize,
    pub bytes_repacked: u64,
    /// Trash objects still waiting (grace period, or a backup older than the mark still runs).
    pub trash_waiting: usize,
    pub notes: Vec<String>,
    pub dry_run: bool,
}

/// Every blob the snapshots use.
fn used_blobs(repo: &Repository, index: &Index, listed: SnapshotList) -> Result<(usize, HashSet<Id>)> {
    let (snaps, damaged) = listed;
    if let Some(e) = damaged.first() {
        return Err(Error::failed(format!(
            "prune will not run while a snapshot cannot be read ({e}): it cannot know what that snapshot uses. Run 'rempart check' and repair first"
        )));
    }
    let r = crate::repo::walk::reachable(repo, index, snaps.iter().map(|(_, s)| s.tree));
    if let Some((_, e)) = r.unreadable.first() {
        return Err(Error::failed(format!(
            "prune will not run while a tree cannot be read ({e}); run 'rempart check' and repair first"
        )));
    }
    Ok((snaps.len(), r.all()))
}

/// Runs both phases.
///
/// # Errors
/// `Locked` while another prune or a check runs; `Failed` when a snapshot or tree cannot be
/// read (prune never guesses); storage errors.
pub fn prune(repo: &Repository, opts: &PruneOptions) -> Result<PruneReport> {
    let lock = repo.lock(LockKind::Prune, "prune")?;
    let now = chrono::Utc::now();
    let mut report = PruneReport { dry_run: opts.dry_run, ..Default::default() };
    if let Some(policy) = repo.storage().inner().bucket_control().and_then(|c| c.policy) {
        // rempart never deletes a version: a delete is a delete marker on a versioned bucket.
        report.notes.push(format!(
            "Object Lock ({} for {}): what this prune deletes gets a delete marker; each locked version stays, and is billed, until its lock ends; then the bucket's lifecycle rule for noncurrent versions removes it (docs/copies.md)",
            policy.mode.as_s3(),
            crate::duration::format_duration(policy.immutable_for)
        ));
    }
    // Finish what an interrupted forget started (its record is written, some objects remain).
    let forgotten = crate::repo::forgotten::load(repo)?;
    if !opts.dry_run {
        let completed = crate::repo::forgotten::complete(repo, &forgotten)?;
        if completed > 0 {
            report.notes.push(format!(
                "completed an interrupted forget: deleted {completed} snapshot objects it had left"
            ));
        }
        crate::repo::forgotten::merge(repo, &forgotten)?;
    }

    // The locks before the snapshots: a backup whose lock is gone by now committed (or gave up)
    // before the snapshots are listed, so its snapshot is seen and what it uses is kept; one
    // still running is in this list, and the sweep waits for it if it is older than a mark.
    // (Locks read last, a backup that committed and left between the two listings was neither
    // seen nor waited for, and the sweep deleted packs its snapshot used.)
    // The snapshots before the index: a backup writes its index before its snapshot, so every
    // snapshot listed here has its blobs in an index (or trash) object listed after it, even
    // when backups on other hosts commit meanwhile. (Index first, a snapshot committed in
    // between looked like damage: "not in the index", and the prune refused to run.)
    let listed_locks = list_locks(repo.storage(), repo.keys())?;
    let listed = repo.list_snapshots()?;
    // The live index (without trash), and the index objects it comes from.
    let index_names: Vec<String> = repo.storage().list(Kind::Index)?.into_iter().map(|o| o.name).collect();
    let live = repo.load_index_without_trash()?;
    let trash = load_trash(repo)?;
    // Reading trees may need marked packs (a snapshot written after a mark).
    let mut readable = IndexBuilder::default();
    readable.add_file(Id::default(), IndexFile { supersedes: vec![], packs: live.to_packs(&HashSet::new()) });
    for (tid, t) in &trash {
        readable.add_file(*tid, IndexFile { supersedes: vec![], packs: t.packs.clone() });
    }
    let readable = readable.finish();
    opts.progress.start("reading the snapshots", 0);
    let (snapshots, used) = used_blobs(repo, &readable, listed)?;
    report.snapshots = snapshots;
    report.blobs_used = used.len();

    // Phase 2: sweep trash objects that are old enough and outlived every older backup.
    let locks = listed_locks;
    let skew = chrono::Duration::from_std(CLOCK_SKEW_MARGIN).expect("small");
    let mut rescued: Vec<IndexedPack> = Vec::new();
    let mut to_delete: Vec<IndexedPack> = Vec::new();
    let mut swept: Vec<Id> = Vec::new();
    for (tid, t) in &trash {
        let age = (now - t.marked_at).to_std().unwrap_or_default();
        if age < opts.grace {
            report.trash_waiting += 1;
            continue;
        }
        // A backup may reference a marked pack; a reader (a restore, a mount) may be reading
        // one through an index it loaded before the mark.
        // A host whose clock is ahead writes a start time later than the true one: a backup
        // that says it started up to CLOCK_SKEW_MARGIN after the mark may be older than it.
        let older = |i: &&LockInfo| {
            matches!(i.kind, LockKind::Backup | LockKind::Read)
                && i.started < t.marked_at + skew
                && !(i.pid == std::process::id() && i.hostname == crate::util::hostname())
        };
        for note in
            locks.iter().filter_map(|l| l.info.as_ref()).filter(older).filter_map(|i| i.stale_note(now))
        {
            if !report.notes.contains(&note) {
                tracing::warn!("prune: {note}");
                report.notes.push(note);
            }
        }
        let older_backup =
            locks.iter().filter_map(|l| l.info.as_ref()).filter(older).find(|i| !i.is_stale(now));
        if let Some(b) = older_backup {
            report.trash_waiting += 1;
            report.notes.push(format!("trash {} waits for {}", tid.short(), b.describe()));
            continue;
        }
        for p in &t.packs {
            if live.pack(&p.id).is_some() {
                continue; // indexed again (adopted by a backup): not ours to delete
            }
            if p.blobs.iter().any(|b| used.contains(&b.id) && !live.contains(&b.id)) {
                rescued.push(p.clone());
            } else {
                to_delete.push(p.clone());
            }
        }
        swept.push(*tid);
    }
    report.packs_rescued = rescued.len();

    // Phase 1: mark unused packs; repack sparse ones.
    let trashed: HashSet<Id> = trash.iter().flat_map(|(_, t)| t.packs.iter().map(|p| p.id)).collect();
    let mut per_pack: HashMap<Id, Vec<PackEntry>> = HashMap::new();
    for loc in live.iter() {
        per_pack.entry(loc.pack.id).or_default().push(loc.entry);
    }
    let mut marked: Vec<IndexedPack> = Vec::new();
    let mut repack: Vec<(IndexedPack, Vec<PackEntry>)> = Vec::new();
    for p in live.packs() {
        let entries = per_pack.remove(&p.id).unwrap_or_default();
        let total: u64 = entries.iter().map(|e| u64::from(e.length)).sum();
        let live_entries: Vec<PackEntry> = entries.iter().filter(|e| used.contains(&e.id)).copied().collect();
        let used_bytes: u64 = live_entries.iter().map(|e| u64::from(e.length)).sum();
        let ip = IndexedPack { id: p.id, salt: p.salt, size: p.size, blobs: entries };
        if used_bytes == 0 {
            report.bytes_marked += p.size;
            marked.push(ip);
        } else if total > 0 && (used_bytes as f64) < opts.repack_below * total as f64 {
            report.bytes_repacked += used_bytes;
            repack.push((ip, live_entries));
        }
    }
    // Packs stored but in no index and no trash: left by interrupted backups (or being indexed
    // by one right now, which the sweep checks before deleting).
    for o in repo.storage().list(Kind::Pack)? {
        let Ok(id) = Id::from_hex(&o.name) else { continue };
        if live.pack(&id).is_some() || trashed.contains(&id) {
            continue;
        }
        // Torn or foreign objects have no readable header: marked with no blobs.
        let pack = repo.read_pack_header(&id, o.size).unwrap_or(IndexedPack {
            id,
            salt: [0; 16],
            size: o.size,
            blobs: vec![],
        });
        report.bytes_marked += o.size;
        marked.push(pack);
    }
    report.packs_repacked = repack.len();
    report.packs_marked = marked.len() + repack.len();
    report.packs_deleted = to_delete.len();
    report.bytes_freed = to_delete.iter().map(|p| p.size).sum();
    if opts.dry_run {
        return Ok(report);
    }

    // Repack: copy live blobs into new packs (durable, indexed below).
    opts.progress.start("repacking", report.bytes_repacked);
    let mut writer = BlobWriter::new(repo, &live);
    let mut skip: HashSet<Id> = HashSet::new();
    for (p, entries) in &repack {
        let name = p.id.to_hex();
        for e in entries {
            let env = repo.storage().get_range(
                Kind::Pack,
                &name,
                u64::from(e.offset)..u64::from(e.offset) + u64::from(e.length),
            )?;
            let raw = crate::repo::pack::open_blob(repo.keys(), &p.salt, e, &env)?;
            writer.add_fresh(e.blob_type, e.id, &raw)?;
            opts.progress.add(u64::from(e.length));
        }
        skip.insert(p.id);
    }
    let (new_packs, _) = writer.finish_without_index()?;
    // Trash first: marked packs stay readable through it whatever happens next.
    let mut trash_packs = marked.clone();
    trash_packs.extend(repack.iter().map(|(p, _)| p.clone()));
    if !trash_packs.is_empty() {
        save_trash(repo, &TrashFile { marked_at: now, host: crate::util::hostname(), packs: trash_packs })?;
    }
    skip.extend(marked.iter().map(|p| p.id));
    let mut packs = live.to_packs(&skip);
    packs.extend(new_packs);
    packs.extend(rescued);
    let old: Vec<Id> = index_names.iter().filter_map(|n| Id::from_hex(n).ok()).collect();
    crate::repair::index::replace_index(repo, &old, packs)?;
    // Deletions last.
    opts.progress.start("deleting packs", report.bytes_freed);
    for p in &to_delete {
        repo.storage().delete(Kind::Pack, &p.id.to_hex())?;
        opts.progress.add(p.size);
    }
    for t in &swept {
        repo.storage().delete(Kind::Trash, &t.to_hex())?;
    }
    drop(lock);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::testing::{noise, TempRepo};
    use crate::check::{check, CheckOptions, ReadData};
    use crate::maintenance::forget::{forget, ForgetOptions, ForgetWhat};

    fn now_grace() -> PruneOptions {
        PruneOptions { grace: Duration::ZERO, ..Default::default() }
    }

    fn objects(t: &TempRepo) -> Vec<(Kind, String)> {
        let mut all = Vec::new();
        for kind in [Kind::Pack, Kind::Index, Kind::Snapshot, Kind::Trash] {
            all.extend(t.repo.storage().list(kind).unwrap().into_iter().map(|o| (kind, o.name)));
        }
        all.sort_by(|a, b| a.1.cmp(&b.1));
        all
    }

    fn clean_check(t: &TempRepo) {
        let r = check(&t.repo, &CheckOptions { read_data: ReadData::All, ..Default::default() }).unwrap();
        assert!(r.problems.is_empty(), "{:?}", r.problems);
    }

    /// Two snapshots; the first is forgotten: only its own data may go, in two prunes.
    fn forgotten_first() -> (TempRepo, Id) {
        let t = TempRepo::new();
        let src = t.source("src", &[("a", noise(1, 3_000_000)), ("b", noise(2, 3_000_000))]);
        let first = t.backup(&src);
        std::fs::write(src.join("a"), noise(3, 3_000_000)).unwrap();
        let second = t.backup(&src);
        let what = ForgetWhat::Ids(vec![first.to_hex()]);
        forget(&t.repo, &ForgetOptions { what, job: None, select: Default::default(), dry_run: false })
            .unwrap();
        (t, second)
    }

    #[test]
    fn a_forgotten_snapshots_own_data_is_marked_then_swept_and_the_rest_stays_whole() {
        let (t, _) = forgotten_first();
        let packs_before = t.repo.storage().list(Kind::Pack).unwrap().len();
        let marked = prune(&t.repo, &now_grace()).unwrap();
        assert_eq!(marked.snapshots, 1);
        assert!(marked.packs_marked > 0 && marked.bytes_marked >= 2_000_000, "{marked:?}");
        assert_eq!(marked.packs_deleted, 0, "nothing is deleted in the prune that marks it");
        clean_check(&t);

        let swept = prune(&t.repo, &now_grace()).unwrap();
        assert!(swept.packs_deleted > 0 && swept.bytes_freed >= 2_000_000, "{swept:?}");
        assert!(t.repo.storage().list(Kind::Pack).unwrap().len() < packs_before);
        assert!(t.repo.storage().list(Kind::Trash).unwrap().is_empty());
        clean_check(&t);
    }

    #[test]
    fn the_sweep_waits_for_a_backup_whose_host_clock_runs_ahead() {
        let (t, _) = forgotten_first();
        let marked = prune(&t.repo, &now_grace()).unwrap();
        assert!(marked.packs_marked > 0, "{marked:?}");
        // A backup on another host began before the mark, but that host's clock runs 5
        // minutes ahead: its lock says it started after the mark.
        let ahead = chrono::Utc::now() + chrono::Duration::minutes(5);
        let info = LockInfo {
            kind: LockKind::Backup,
            operation: "backup".into(),
            hostname: "fast-clock".into(),
            username: "ops".into(),
            pid: 1,
            started: ahead,
            time: ahead,
        };
        let name = crate::repo::lock::write_lock(t.repo.storage(), t.repo.keys(), &info).unwrap();
        let waiting = prune(&t.repo, &now_grace()).unwrap();
        assert_eq!(waiting.packs_deleted, 0, "swept under a running backup: {waiting:?}");
        assert!(waiting.notes.iter().any(|n| n.contains("fast-clock")), "{waiting:?}");
        t.repo.storage().delete(Kind::Lock, &name).unwrap();
        let swept = prune(&t.repo, &now_grace()).unwrap();
        assert!(swept.packs_deleted > 0, "{swept:?}");
        clean_check(&t);
    }

    #[test]
    fn a_backup_that_commits_and_leaves_while_a_prune_reads_keeps_its_data() {
        use crate::storage::{BlockingStorage, FaultPlan, FaultyStorage, TriggerAction, TriggerOn};
        // Another host's backup B: its packs and index are stored, its snapshot not yet, its
        // lock (started before any mark) still held. A first prune marks B's packs (nothing
        // uses them yet). A second prune runs; between its listing of the snapshots and the
        // rest, B writes its snapshot and drops its lock. Read the other way round (locks last),
        // the second prune saw neither B's snapshot nor its lock and deleted B's packs.
        let t = TempRepo::new();
        let old = t.source("old", &[("a", noise(1, 1_500_000))]);
        t.backup(&old);
        let started = chrono::Utc::now() - chrono::Duration::seconds(5);
        let new = t.source("new", &[("b", noise(2, 3_000_000))]);
        let b = t.backup(&new);
        let snapshot = t.repo.storage().get(Kind::Snapshot, &b.to_hex()).unwrap();
        t.repo.storage().delete(Kind::Snapshot, &b.to_hex()).unwrap();
        let info = LockInfo {
            kind: LockKind::Backup,
            operation: "backup".into(),
            hostname: "host-b".into(),
            username: "ops".into(),
            pid: 1,
            started,
            time: chrono::Utc::now(),
        };
        let lock = crate::repo::lock::write_lock(t.repo.storage(), t.repo.keys(), &info).unwrap();
        let marked = prune(&t.repo, &now_grace()).unwrap();
        assert!(marked.packs_marked > 0, "{marked:?}");
        let storage = t.repo.storage().clone();
        let commit = TriggerAction::Run(std::sync::Arc::new(move || {
            storage.put(Kind::Snapshot, &b.to_hex(), snapshot.clone()).unwrap();
            storage.delete(Kind::Lock, &lock).unwrap();
        }));
        // Snapshot listings: 1 completes interrupted forgets, 2 is the one the prune works from.
        let faulty = FaultyStorage::new(
            t.repo.storage().inner().clone(),
            FaultPlan::trigger(TriggerOn::AfterList, Kind::Snapshot, 2, commit),
        );
        let racing = t.repo.with_storage(BlockingStorage::new(
            std::sync::Arc::new(faulty),
            t.repo.storage().handle().clone(),
        ));
        prune(&racing, &now_grace()).unwrap();
        clean_check(&t);
        // And once nothing races, B's data stays: its snapshot uses it.
        prune(&t.repo, &now_grace()).unwrap();
        prune(&t.repo, &now_grace()).unwrap();
        clean_check(&t);
    }

    #[test]
    fn a_dry_run_changes_nothing_and_an_unreadable_snapshot_stops_prune() {
        let (t, _) = forgotten_first();
        let before = objects(&t);
        let dry = prune(&t.repo, &PruneOptions { dry_run: true, ..now_grace() }).unwrap();
        assert!(dry.dry_run && dry.packs_marked > 0, "{dry:?}");
        assert_eq!(objects(&t), before);

        // A snapshot that cannot be read might use any pack: prune refuses to guess.
        t.repo
            .storage()
            .put(Kind::Snapshot, &"ab".repeat(32), bytes::Bytes::from_static(b"garbage"))
            .unwrap();
        let e = prune(&t.repo, &now_grace()).unwrap_err().to_string();
        assert!(e.contains("prune will not run while a snapshot cannot be read"), "{e}");
        let mut after = objects(&t);
        after.retain(|(k, n)| !(*k == Kind::Snapshot && *n == "ab".repeat(32)));
        assert_eq!(after, before, "a refused prune deletes nothing");
    }
}
