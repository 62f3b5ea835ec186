//! Deterministic fault injection: a backup, a forget and a prune fail at *every* storage
//! operation in turn, in three ways (an I/O error, a disk that fills up and stays full, a kill
//! after which nothing reaches the storage). After each run, and again after the operation is
//! run once more without faults:
//!
//! - `check --read-data` finds no damage (notes about interrupted work are allowed);
//! - every snapshot listed restores byte for byte to the source it was taken from (the oracle
//!   for "silently wrong": no snapshot may exist that restores to something else);
//! - snapshots the operation must not touch are still there;
//! - the retried operation succeeds and does what it should.
//!
//! Random kills can pass by luck; this walks every index.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{copy_dir, random_bytes, same_tree};
use rempart::backup::{backup, BackupOptions};
use rempart::check::{check, CheckOptions, ReadData};
use rempart::maintenance::forget::{forget, ForgetOptions, ForgetWhat};
use rempart::maintenance::prune::{prune, PruneOptions};
use rempart::repo::{InitOptions, Repository};
use rempart::restore::{restore, RestoreOptions};
use rempart::storage::{BlockingStorage, FaultPlan, FaultyStorage, Kind, OpFaultMode};

const MODES: [OpFaultMode; 3] = [OpFaultMode::Io, OpFaultMode::NoSpace, OpFaultMode::Kill];

/// The scratch folder: the live source (`src`), the reference copies of each version
/// (`v1`, `v2`, `v3`), and repositories.
struct Lab {
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    /// Opened once on the first repository (every repository here is a copy of it).
    repo: Repository,
    /// What check reads after each run. Restoring every snapshot already reads and verifies
    /// every blob that matters, so the default reads no more; `REMPART_FAULTS_READ_DATA=1`
    /// also reads every pack.
    read_data: ReadData,
}

impl Lab {
    fn new() -> Lab {
        std::env::set_var("REMPART_KDF_MEMORY_KIB", "1024");
        // On tmpfs when there is one: every put fsyncs, and this test makes thousands.
        let shm = Path::new("/dev/shm");
        let builder = tempfile::Builder::new().prefix("rempart-faults-").clone();
        let dir = if shm.is_dir() { builder.tempdir_in(shm) } else { builder.tempdir() }.unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        for v in 1..=3 {
            make_version(&dir.path().join(format!("v{v}")), v);
        }
        let storage = BlockingStorage::new(
            rempart::storage::open_local(&dir.path().join("repo0")).unwrap(),
            rt.handle().clone(),
        );
        let repo =
            Repository::init(storage, b"pw", &InitOptions { pack_size: 1 << 20, ..Default::default() })
                .unwrap();
        let read_data = match std::env::var("REMPART_FAULTS_READ_DATA").as_deref() {
            Ok("1") => ReadData::All,
            _ => ReadData::None,
        };
        Lab { dir, rt, repo, read_data }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The repository in folder `name`, through plain storage.
    fn open(&self, name: &str) -> Repository {
        let s = rempart::storage::open_local(&self.path(name)).unwrap();
        self.repo.with_storage(BlockingStorage::new(s, self.rt.handle().clone()))
    }

    /// The repository in folder `name`, through storage that fails as `plan` says.
    fn open_faulty(&self, name: &str, plan: FaultPlan) -> (Repository, Arc<FaultyStorage>) {
        let s = Arc::new(FaultyStorage::new(rempart::storage::open_local(&self.path(name)).unwrap(), plan));
        (self.repo.with_storage(BlockingStorage::new(s.clone(), self.rt.handle().clone())), s)
    }

    /// Makes the live source folder hold version `v`.
    fn set_source(&self, v: u32) {
        let src = self.path("src");
        let _ = std::fs::remove_dir_all(&src);
        copy_dir(&self.path(&format!("v{v}")), &src);
    }

    fn backup(&self, repo: &Repository, v: u32) -> rempart::Result<rempart::Id> {
        self.set_source(v);
        let mut opts = BackupOptions::new(vec![self.path("src")]);
        opts.tags = vec![format!("v{v}")];
        opts.workers = Some(2);
        backup(repo, &opts).map(|r| r.snapshot_id)
    }

    /// Asserts that the repository in `name` is whole: no damage, and every snapshot restores
    /// to the version its tag names. Returns the tags of the snapshots present.
    fn assert_whole(&self, name: &str, what: &str) -> HashSet<String> {
        let repo = self.open(name);
        // A killed process leaves its lock; 'rempart unlock' would remove it once it is gone.
        for l in repo.storage().list(Kind::Lock).unwrap() {
            repo.storage().delete(Kind::Lock, &l.name).unwrap();
        }
        let report = check(&repo, &CheckOptions { read_data: self.read_data.clone(), ..Default::default() })
            .unwrap_or_else(|e| panic!("{what}: check failed to run: {e}"));
        assert!(report.problems.is_empty(), "{what}: check found damage: {:#?}", report.problems);
        let (snaps, damaged) = repo.list_snapshots().unwrap();
        assert!(damaged.is_empty(), "{what}: damaged snapshots {damaged:?}");
        let mut tags = HashSet::new();
        for (id, snap) in snaps {
            let tag = snap.tags.first().cloned().unwrap_or_default();
            let target = self.path(&format!("restore-{}", id.short()));
            let _ = std::fs::remove_dir_all(&target);
            let r = restore(&repo, &snap, &RestoreOptions::new(target.clone()))
                .unwrap_or_else(|e| panic!("{what}: restore of {} failed: {e}", id.short()));
            assert!(r.damaged.is_empty(), "{what}: {} restored damaged: {:?}", id.short(), r.damaged);
            same_tree(&common::restored(&target, &self.path("src")), &self.path(&tag));
            std::fs::remove_dir_all(&target).unwrap();
            assert!(tags.insert(tag.clone()), "{what}: two snapshots of {tag}");
        }
        tags
    }

    fn fresh_copy(&self, from: &str, to: &str) {
        let _ = std::fs::remove_dir_all(self.path(to));
        copy_dir(&self.path(from), &self.path(to));
    }
}

/// Version `v` of the source: shared, changed, added and removed files, a multi-chunk file,
/// a folder and a symlink, so that each version dedups against the one before.
fn make_version(dir: &Path, v: u32) {
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("same.bin"), random_bytes(1, 300_000)).unwrap();
    std::fs::write(dir.join("copy-of-same.bin"), random_bytes(1, 300_000)).unwrap();
    std::fs::write(dir.join("changes.bin"), random_bytes(100 + u64::from(v), 400_000)).unwrap();
    std::fs::write(dir.join("big.bin"), random_bytes(7 + u64::from(v / 3), 1_800_000)).unwrap();
    std::fs::write(dir.join(format!("only-v{v}.bin")), random_bytes(200 + u64::from(v), 250_000)).unwrap();
    std::fs::write(dir.join("sub/small.txt"), format!("version {v}\n")).unwrap();
    std::fs::write(dir.join("sub/empty"), b"").unwrap();
    std::os::unix::fs::symlink("../same.bin", dir.join("sub/link")).unwrap();
}

/// Runs `op` once cleanly on a copy of `pristine` to count its storage operations, then once
/// per operation index and mode with that operation failing; checks the invariants after each
/// and after a retry without faults. Returns how many faulty runs were made.
fn every_index(
    lab: &Lab,
    pristine: &str,
    label: &str,
    op: &dyn Fn(&Repository) -> rempart::Result<()>,
    after: &dyn Fn(&HashSet<String>, bool, &str),
    retry_after_success: bool,
) -> usize {
    lab.fresh_copy(pristine, "count");
    let (repo, faulty) = lab.open_faulty("count", FaultPlan::default());
    op(&repo).unwrap_or_else(|e| panic!("{label}: the clean run failed: {e}"));
    let total = faulty.operations();
    assert!(total > 5, "{label}: only {total} storage operations?");
    let mut runs = 0;
    for at in 1..=total + 1 {
        for mode in MODES {
            let what = format!("{label}, {mode:?} at operation {at} of {total}");
            lab.fresh_copy(pristine, "work");
            let (repo, faulty) = lab.open_faulty("work", FaultPlan::op(at, mode));
            let result = op(&repo);
            drop(repo);
            assert!(at <= total || !faulty.tripped(), "{what}: more operations than the clean run");
            let tags = lab.assert_whole("work", &what);
            after(&tags, result.is_ok(), &what);
            if result.is_ok() && !retry_after_success {
                runs += 1;
                continue;
            }
            // The retry without faults completes what the failed run started.
            op(&lab.open("work")).unwrap_or_else(|e| panic!("{what}: the retry failed: {e}"));
            let tags = lab.assert_whole("work", &format!("{what}, after the retry"));
            after(&tags, true, &format!("{what}, after the retry"));
            runs += 1;
        }
    }
    runs
}

#[test]
fn a_backup_forget_or_prune_failing_at_any_storage_operation_loses_nothing() {
    let lab = Lab::new();
    let base = lab.open("repo0");
    lab.backup(&base, 1).unwrap();

    // Backup of v2 next to v1.
    let runs_backup = every_index(
        &lab,
        "repo0",
        "backup",
        &|repo| lab.backup(repo, 2).map(|_| ()),
        &|tags, ok, what| {
            assert!(tags.contains("v1"), "{what}: the earlier snapshot is gone");
            if ok {
                assert!(tags.contains("v2"), "{what}: backup succeeded but its snapshot is missing");
            }
        },
        false,
    );

    // Forget v1 (keep the last one).
    lab.backup(&base, 2).unwrap();
    lab.fresh_copy("repo0", "forget0");
    let policy = rempart::jobs::Retention { keep_last: Some(1), ..Default::default() };
    let forget_opts = ForgetOptions {
        what: ForgetWhat::Policy { policy, tz: chrono_tz::UTC },
        job: None,
        select: Default::default(),
        dry_run: false,
    };
    let runs_forget = every_index(
        &lab,
        "forget0",
        "forget",
        &|repo| forget(repo, &forget_opts).map(|_| ()),
        &|tags, ok, what| {
            assert!(tags.contains("v2"), "{what}: the kept snapshot is gone");
            if ok {
                assert!(!tags.contains("v1"), "{what}: forget succeeded but v1 is still listed");
            }
        },
        true,
    );

    // Prune: sweeps what an earlier prune marked (v1's data) and marks what v2 alone used.
    let prune_opts = PruneOptions { grace: Duration::ZERO, ..Default::default() };
    let p = lab.open("forget0");
    forget(&p, &forget_opts).unwrap();
    prune(&p, &prune_opts).unwrap();
    lab.backup(&p, 3).unwrap();
    forget(&p, &forget_opts).unwrap();
    let runs_prune = every_index(
        &lab,
        "forget0",
        "prune",
        &|repo| prune(repo, &prune_opts).map(|_| ()),
        &|tags, _, what| {
            assert_eq!(tags, &HashSet::from(["v3".to_string()]), "{what}: snapshots changed");
        },
        true,
    );
    eprintln!("faulty runs: backup {runs_backup}, forget {runs_forget}, prune {runs_prune}");
}
