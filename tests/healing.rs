//! End-to-end regressions for integrity under faults (one test per case found by attacking
//! rempart): a full repository disk, check after a prune set data aside, an interrupted
//! forget, repair that heals, read-only repositories, damaged restores, absurd durations and
//! damaged snapshot objects. Each failed on the code before its fix.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{copy_dir, flip_byte, open_repo, random_bytes, restored, same_tree, Env, Mount};
use rempart::storage::{BlockingStorage, FaultPlan, FaultyStorage, Kind, TriggerAction, TriggerOn};

fn make_source(dir: &Path, files: u64, size: usize, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..files {
        std::fs::write(dir.join(format!("f{i:03}.bin")), random_bytes(seed * 1000 + i, size)).unwrap();
    }
}

fn snapshot_ids(env: &Env) -> Vec<String> {
    let v = env.json(&["snapshots"]);
    v.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect()
}

fn restore_exact(env: &Env, snapshot: &str, src: &Path, expected: &Path) {
    let target = env.path().join(format!("restore-{snapshot}"));
    let _ = std::fs::remove_dir_all(&target);
    env.ok(&["restore", snapshot, "--target", target.to_str().unwrap()]);
    same_tree(&restored(&target, src), expected);
    std::fs::remove_dir_all(&target).unwrap();
}

#[test]
fn a_full_repository_disk_fails_the_backup_names_the_repository_and_loses_nothing() {
    let env = Env::new();
    let disk = Mount::tmpfs(Path::new(&env.repo), "40M");
    let src = env.path().join("src");
    make_source(&src, 15, 5_000_000, 1);
    env.ok(&["init", "--pack-size-mib", "4"]);
    for attempt in 0..2 {
        let (code, out, err) = env.run(&["backup", src.to_str().unwrap()]);
        assert_eq!(
            code, 1,
            "attempt {attempt}: a full repository disk is a failure, not a partial backup\n{out}\n{err}"
        );
        assert!(err.contains(&env.repo) && err.contains("No space left on device"), "{err}");
        assert!(!err.contains("skipped"), "repository errors are not skipped source files: {err}");
        assert!(err.contains("no snapshot"), "{err}");
        assert!(snapshot_ids(&env).is_empty(), "no snapshot may exist after a failed backup");
        let (code, out, err) = env.run(&["check", "--read-data"]);
        assert_eq!(code, 0, "what was stored before the disk filled is whole\n{out}\n{err}");
    }
    // Room again: the next backup reuses what was stored, and restores exactly.
    disk.resize("200M");
    let v = env.json(&["backup", src.to_str().unwrap()]);
    assert_eq!(v["status"], "success");
    assert!(v["summary"]["bytes_added"].as_u64().unwrap() < 75_000_000, "nothing reused: {v}");
    env.ok(&["check", "--read-data"]);
    restore_exact(&env, "latest", &src, &src);
}

#[test]
fn check_and_repair_see_data_a_prune_set_aside_while_a_backup_was_running() {
    let env = Env::new();
    let src = env.path().join("src");
    make_source(&src, 6, 400_000, 2);
    env.ok(&["init", "--pack-size-mib", "1"]);
    let first = env.json(&["backup", src.to_str().unwrap()])["snapshot"].as_str().unwrap().to_string();
    // A second backup of the same data loads the index (every blob is there), then, just
    // before its snapshot is written, another process forgets the first snapshot and prunes:
    // the blobs both snapshots use go to the trash, and the backup commits referencing them.
    let (rt, plain) = open_repo(&env);
    let pruner = plain.clone();
    let first_id = rempart::Id::from_hex(&first).unwrap();
    let action = TriggerAction::Run(Arc::new(move || {
        let f = rempart::maintenance::forget::ForgetOptions {
            what: rempart::maintenance::forget::ForgetWhat::Ids(vec![first_id.to_hex()]),
            job: None,
            select: Default::default(),
            dry_run: false,
        };
        rempart::maintenance::forget::forget(&pruner, &f).unwrap();
        let r = rempart::maintenance::prune::prune(&pruner, &Default::default()).unwrap();
        assert!(r.packs_marked > 0, "the prune marked nothing: {r:?}");
    }));
    let faulty = Arc::new(FaultyStorage::new(
        rempart::storage::open_url(&env.repo).unwrap(),
        FaultPlan::trigger(TriggerOn::Put, Kind::Snapshot, 1, action),
    ));
    let repo = plain.with_storage(BlockingStorage::new(faulty, rt.handle().clone()));
    let mut opts = rempart::backup::BackupOptions::new(vec![src.clone()]);
    opts.parent = rempart::backup::ParentChoice::None;
    let second = rempart::backup::backup(&repo, &opts).unwrap();
    // Every chunk is reused (only trees of folders whose times moved, like /tmp, are new).
    assert!(second.snapshot.summary.data_blobs_added == 0, "the second backup reused every chunk");
    drop(repo);
    let (code, out, err) = env.run(&["check", "--read-data"]);
    assert_eq!(code, 0, "check must read through the trash\n{out}\n{err}");
    let (code, out, err) = env.run(&["repair", "snapshots", "--forget"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("no snapshot references unreadable data"), "repair must leave it alone: {out}");
    restore_exact(&env, &second.snapshot_id.to_hex(), &src, &src);
}

#[test]
fn a_backup_committed_by_another_host_while_prune_or_check_reads_is_not_damage() {
    // Found by the fleet test (four hosts backing up beside a prune): prune listed the index,
    // another host's backup committed (index, then snapshot), then prune listed the snapshots
    // and took the new one's trees for damage ("not in the index") and refused to run; check
    // did the same. Both now read the snapshots before the index.
    let env = Env::new();
    let src = env.path().join("src");
    make_source(&src, 3, 300_000, 7);
    env.ok(&["init", "--pack-size-mib", "1"]);
    env.ok(&["backup", src.to_str().unwrap()]);
    let (rt, plain) = open_repo(&env);
    for (round, step) in ["prune", "check"].into_iter().enumerate() {
        let other = env.path().join(format!("other-{step}"));
        make_source(&other, 2, 200_000, 20 + round as u64);
        let backup_env_repo = env.repo.clone();
        let pass = env.password_file.clone();
        let state = env.path().join(format!("state-of-another-host-{step}"));
        let bin = assert_cmd::cargo::cargo_bin("rempart");
        let action = TriggerAction::Run(Arc::new(move || {
            let out = std::process::Command::new(&bin)
                .args(["backup", other.to_str().unwrap()])
                .env("REMPART_REPOSITORY", &backup_env_repo)
                .env("REMPART_PASSWORD_FILE", &pass)
                .env("REMPART_STATE_DIR", &state)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }));
        let faulty = Arc::new(FaultyStorage::new(
            rempart::storage::open_url(&env.repo).unwrap(),
            // Prune lists the index twice (its names, then to load it): the window was after
            // the second; check lists it once.
            FaultPlan::trigger(
                TriggerOn::AfterList,
                Kind::Index,
                if step == "prune" { 2 } else { 1 },
                action,
            ),
        ));
        let repo = plain.with_storage(BlockingStorage::new(faulty, rt.handle().clone()));
        if step == "prune" {
            let opts = rempart::maintenance::prune::PruneOptions {
                grace: std::time::Duration::ZERO,
                ..Default::default()
            };
            rempart::maintenance::prune::prune(&repo, &opts)
                .unwrap_or_else(|e| panic!("prune took a backup committed meanwhile for damage: {e}"));
        } else {
            let report = rempart::check::check(&repo, &Default::default()).unwrap();
            assert!(
                report.problems.is_empty(),
                "check took a backup committed meanwhile for damage: {:#?}",
                report.problems
            );
        }
    }
    // Every snapshot is whole: the prune set nothing of the new ones aside for good.
    env.ok(&["prune", "--grace", "0s"]);
    let (code, out, err) = env.run(&["check", "--read-data"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(snapshot_ids(&env).len(), 3);
}

#[test]
fn a_forget_killed_between_its_record_and_its_deletions_is_not_damage_and_is_completed() {
    let env = Env::new();
    let src = env.path().join("src");
    make_source(&src, 3, 100_000, 3);
    env.ok(&["init"]);
    env.ok(&["backup", src.to_str().unwrap()]);
    std::fs::write(src.join("new.txt"), b"second").unwrap();
    env.ok(&["backup", src.to_str().unwrap()]);
    env.ok(&["backup", src.to_str().unwrap(), "--force"]);
    // Killed just before deleting the second of the two snapshot objects it forgets.
    let (rt, plain) = open_repo(&env);
    let faulty = Arc::new(FaultyStorage::new(
        rempart::storage::open_url(&env.repo).unwrap(),
        FaultPlan::trigger(TriggerOn::Delete, Kind::Snapshot, 2, TriggerAction::Kill),
    ));
    let repo = plain.with_storage(BlockingStorage::new(faulty, rt.handle().clone()));
    let policy = rempart::jobs::Retention { keep_last: Some(1), ..Default::default() };
    let f = rempart::maintenance::forget::ForgetOptions {
        what: rempart::maintenance::forget::ForgetWhat::Policy { policy, tz: chrono_tz::UTC },
        job: None,
        select: Default::default(),
        dry_run: false,
    };
    assert!(rempart::maintenance::forget::forget(&repo, &f).is_err());
    drop(repo);
    env.ok(&["unlock", "--remove-all"]);
    assert_eq!(snapshot_ids(&env).len(), 1, "both forgotten snapshots are gone for readers");
    // This host recorded writing all three: check must not call the forgotten ones deleted.
    let (code, out, err) = env.run(&["check"]);
    assert_eq!(code, 0, "an interrupted forget is not damage\n{out}\n{err}");
    assert!(out.contains("a forget was interrupted") && out.contains("rempart forget"), "{out}");
    let out = env.ok(&["forget", "--keep-last", "1"]);
    assert!(out.contains("completed an interrupted forget"), "{out}");
    let (code, out, _) = env.run(&["check"]);
    assert_eq!(code, 0);
    assert!(!out.contains("interrupted"), "{out}");
    assert_eq!(std::fs::read_dir(Path::new(&env.repo).join("snapshots")).unwrap().count(), 1);
}

/// The data pack holding the first chunk of `file` in the latest snapshot.
fn pack_of(env: &Env, file: &Path) -> std::path::PathBuf {
    common::first_chunk_of(Path::new(&env.repo), b"test passphrase", file).0
}

#[test]
fn repair_heals_a_damaged_pack_and_damaged_snapshot_objects_can_be_removed() {
    let base = Env::new();
    let src = base.path().join("src");
    make_source(&src, 6, 700_000, 4);
    base.ok(&["init", "--pack-size-mib", "1"]);
    let first = base.json(&["backup", src.to_str().unwrap()])["snapshot"].as_str().unwrap().to_string();
    let pack = pack_of(&base, &src.join("f002.bin"));
    let len = std::fs::metadata(&pack).unwrap().len();
    flip_byte(&pack, len / 3);

    for recipe in
        [&["repair", "index", "--read-data"][..], &["repair", "snapshots", "--read-data", "--forget"][..]]
    {
        let env = Env::new();
        copy_dir(Path::new(&base.repo), Path::new(&env.repo));
        let (code, _, err) = env.run(&["check", "--read-data"]);
        assert_eq!(code, 4, "{err}");
        assert!(err.contains(&first[..8]), "check names the damaged snapshot: {err}");
        let out = env.ok(recipe);
        assert!(out.contains("salvaged"), "{recipe:?}: {out}");
        // The next backup of the same files stores the damaged chunk again...
        let v = env.json(&["backup", src.to_str().unwrap()]);
        assert!(
            v["summary"]["bytes_added"].as_u64().unwrap() > 0,
            "{recipe:?}: the damaged chunk was reused: {v}"
        );
        // ...and the repository is whole again.
        let (code, out, err) = env.run(&["check", "--read-data"]);
        assert_eq!(code, 0, "{recipe:?}\n{out}\n{err}");
        restore_exact(&env, "latest", &src, &src);
        if recipe[1] == "index" {
            // The first snapshot references the chunk that is stored again: whole too.
            restore_exact(&env, &first, &src, &src);
        }
    }

    // A snapshot object that cannot be decrypted: named by check, removable by id.
    for way in ["forget", "repair"] {
        let env = Env::new();
        copy_dir(Path::new(&base.repo), Path::new(&env.repo));
        env.ok(&["repair", "index", "--read-data"]);
        let snap_file = Path::new(&env.repo).join("snapshots").join(&first);
        flip_byte(&snap_file, 40);
        let (code, out, err) =
            env.run(&["restore", &first[..8], "--target", env.path().join("r").to_str().unwrap()]);
        assert_eq!(code, 4, "a damaged snapshot object is integrity damage, not 'no snapshot'\n{out}\n{err}");
        let (code, _, err) = env.run(&["check"]);
        assert_eq!(code, 4);
        assert!(err.contains(&format!("rempart forget {}", &first[..8])), "{err}");
        match way {
            "forget" => {
                env.ok(&["forget", &first[..8]]);
            }
            _ => {
                let out = env.ok(&["repair", "snapshots", "--forget"]);
                assert!(out.contains("cannot be read") && out.contains("forgotten"), "{out}");
            }
        }
        let (code, out, err) = env.run(&["check"]);
        assert_eq!(code, 0, "{way}\n{out}\n{err}");
    }
}

#[test]
fn reading_commands_work_on_a_read_only_repository() {
    let env = Env::new();
    let src = env.path().join("src");
    make_source(&src, 2, 50_000, 5);
    env.ok(&["init"]);
    env.ok(&["backup", src.to_str().unwrap()]);
    let ro_path = env.path().join("ro");
    let _ro = Mount::read_only(Path::new(&env.repo), &ro_path);
    let ro = ro_path.to_str().unwrap();
    let target = env.path().join("target");
    for args in [
        vec!["snapshots"],
        vec!["ls", "latest"],
        vec!["check", "--read-data"],
        vec!["restore", "latest", "--target", target.to_str().unwrap()],
    ] {
        let mut full = vec!["-r", ro];
        full.extend(args.iter());
        let (code, out, err) = env.run(&full);
        assert_eq!(code, 0, "{args:?} on a read-only repository\n{out}\n{err}");
        if args[0] != "snapshots" {
            assert!(err.contains("without a lock"), "{args:?}: the risk is said: {err}");
        }
    }
    same_tree(&restored(&target, &src), &src);
    // Writing commands say what is wrong.
    let (code, _, err) = env.run(&["-r", ro, "backup", src.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("Read-only file system"), "{err}");
    // --no-lock on a writable repository: no lock object; refused for writers.
    env.ok(&["--no-lock", "check"]);
    let (code, _, err) = env.run(&["--no-lock", "forget", "--keep-last", "1"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn a_damaged_file_is_restored_under_a_name_that_says_so_and_named_on_stdout() {
    let env = Env::new();
    let src = env.path().join("src");
    make_source(&src, 1, 3_000_000, 6);
    std::fs::write(src.join("intact.txt"), b"fine").unwrap();
    env.ok(&["init", "--pack-size-mib", "1"]);
    env.ok(&["backup", src.to_str().unwrap()]);
    let pack = pack_of(&env, &src.join("f000.bin"));
    flip_byte(&pack, 100);
    let target = env.path().join("target");
    let (code, out, _) = env.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(code, 4);
    let dest = restored(&target, &src);
    assert!(out.contains("1 paths DAMAGED") && out.contains("f000.bin"), "stdout names it: {out}");
    assert!(!out.contains("; every file verified"), "{out}");
    assert!(!dest.join("f000.bin").exists(), "a damaged file must not look intact under its real name");
    let kept = dest.join("f000.bin.rempart-damaged");
    let meta = std::fs::metadata(&kept).expect("kept under a name that says so");
    let original = std::fs::metadata(src.join("f000.bin")).unwrap();
    assert_ne!(meta.modified().unwrap(), original.modified().unwrap(), "not with the backed-up mtime");
    assert_eq!(std::fs::read(dest.join("intact.txt")).unwrap(), b"fine");
    let leftovers: Vec<_> = std::fs::read_dir(&dest)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("rempart-partial"))
        .collect();
    assert!(leftovers.is_empty(), "no partial files left");
}

#[test]
fn absurd_durations_are_refused_without_panics_and_missing_repositories_are_not_created() {
    let env = Env::new();
    env.ok(&["init"]);
    for d in ["100000000w", "999999999999999999w", "18446744073709551615w"] {
        let (code, _, err) = env.run(&["forget", "--keep-within", d, "--dry-run"]);
        assert_eq!(code, 2, "{d}: {err}");
        assert!(err.contains(d) && err.contains("too long"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let jobs = env.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    let missing_repo = env.path().join("nowhere/repo");
    std::fs::write(
        jobs.join("j.toml"),
        format!(
            "name = \"j\"\nrepository = \"{}\"\nsources = [\"/etc/hostname\"]\n\n[retention]\nkeep_within = \"999999999999999999w\"\n",
            missing_repo.display()
        ),
    )
    .unwrap();
    let (code, out, err) = env.run(&["--jobs", jobs.to_str().unwrap(), "jobs", "validate"]);
    assert_eq!(code, 2, "{out}\n{err}");
    let all = format!("{out}{err}");
    assert!(all.contains("j.toml:6") && all.contains("keep_within"), "file:line:key: {all}");
    let (code, _, err) = env.run(&["-r", env.path().join("missing").to_str().unwrap(), "snapshots"]);
    assert_ne!(code, 0);
    assert!(err.contains("no repository"), "{err}");
    assert!(!env.path().join("missing").exists(), "a reading command created the repository folder");
    assert!(!env.path().join("nowhere").exists(), "jobs validate created a folder");
}

#[test]
fn a_full_target_disk_never_leaves_a_truncated_file_under_its_real_name() {
    let env = Env::new();
    let src = env.path().join("src");
    make_source(&src, 6, 1_500_000, 7);
    env.ok(&["init"]);
    env.ok(&["backup", src.to_str().unwrap()]);
    let target = env.path().join("small-disk");
    let _disk = Mount::tmpfs(&target, "5M");
    let (code, out, err) = env.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_ne!(code, 0, "a full target disk must not be a success\n{out}{err}");
    let dest = restored(&target, &src);
    for e in std::fs::read_dir(&dest).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(real) = name.strip_suffix(".rempart-damaged") {
            assert!(out.contains(real), "a damaged file is named on stdout: {out}");
            continue;
        }
        assert!(!name.contains("rempart-partial"), "partial file left: {name}");
        // Anything under a real name is whole.
        assert_eq!(
            std::fs::read(e.path()).unwrap(),
            std::fs::read(src.join(&name)).unwrap(),
            "{name} is truncated"
        );
    }
}

#[test]
fn files_with_the_longest_names_restore_under_their_names() {
    let env = Env::new();
    let src = env.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let name = "n".repeat(255);
    std::fs::write(src.join(&name), b"longest name").unwrap();
    env.ok(&["init"]);
    env.ok(&["backup", src.to_str().unwrap()]);
    let target = env.path().join("target");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    same_tree(&restored(&target, &src), &src);
}

#[test]
fn a_damaged_forget_record_is_named_blocks_nothing_and_is_repaired() {
    let env = Env::new();
    let src = env.path().join("src");
    make_source(&src, 2, 10_000, 9);
    env.ok(&["init"]);
    let first = env.json(&["backup", src.to_str().unwrap()])["snapshot"].as_str().unwrap().to_string();
    env.ok(&["backup", src.to_str().unwrap()]);
    env.ok(&["forget", &first[..8]]);
    let record =
        std::fs::read_dir(Path::new(&env.repo).join("forgotten")).unwrap().flatten().next().unwrap().path();
    flip_byte(&record, 40);
    let (code, out, err) = env.run(&["check"]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(format!("{out}{err}").contains("repair snapshots"), "{out}{err}");
    // Nothing else is blocked by it.
    env.ok(&["snapshots"]);
    env.ok(&["backup", src.to_str().unwrap()]);
    env.ok(&["forget", "--keep-last", "2"]);
    env.ok(&["prune"]);
    let out = env.ok(&["repair", "snapshots"]);
    assert!(out.contains("cannot be read: removed"), "{out}");
    env.ok(&["check", "--read-data"]);
}
