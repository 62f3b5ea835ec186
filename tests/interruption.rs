//! Interruptions lose nothing: injected storage faults at chosen points, and kill -9 of a real
//! backup at random moments. After each: check passes, earlier snapshots restore, and the next
//! backup succeeds while adding less than a fresh backup would (it reuses what was stored).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{random_bytes, restored, same_tree, Env};
use rempart::backup::{backup, BackupOptions};
use rempart::storage::{BlockingStorage, Fault, FaultMode, FaultPlan, FaultyStorage, Kind};

fn make_source(dir: &Path, files: u64, size: usize, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..files {
        std::fs::write(dir.join(format!("f{i:03}.bin")), random_bytes(seed * 1000 + i, size)).unwrap();
    }
}

fn bytes_added(v: &serde_json::Value) -> u64 {
    v["summary"]["bytes_added"].as_u64().unwrap()
}

/// Backs up `src` into a fresh repository: what a backup with nothing to reuse adds.
fn fresh_cost(src: &Path) -> u64 {
    let env = Env::new();
    env.ok(&["init", "--pack-size-mib", "1"]);
    bytes_added(&env.json(&["backup", src.to_str().unwrap()]))
}

#[test]
fn injected_faults_at_each_point_lose_nothing() {
    let scratch = tempfile::tempdir().unwrap();
    let first = scratch.path().join("first");
    let second = scratch.path().join("second");
    make_source(&first, 3, 200_000, 1);
    make_source(&second, 8, 900_000, 2);
    let fresh = fresh_cost(&second);

    let points = [
        ("after the first pack", Fault { kind: Kind::Pack, nth: 2, mode: FaultMode::Fail }),
        ("in the middle of a pack", Fault { kind: Kind::Pack, nth: 3, mode: FaultMode::Torn }),
        ("while writing the index", Fault { kind: Kind::Index, nth: 1, mode: FaultMode::Fail }),
        ("just before the snapshot", Fault { kind: Kind::Snapshot, nth: 1, mode: FaultMode::Fail }),
    ];
    for (label, fault) in points {
        let env = Env::new();
        env.ok(&["init", "--pack-size-mib", "1"]);
        let earlier =
            env.json(&["backup", first.to_str().unwrap()])["snapshot"].as_str().unwrap().to_string();

        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let faulty = Arc::new(FaultyStorage::new(
            rempart::storage::open_url(&env.repo).unwrap(),
            FaultPlan::puts(vec![fault]),
        ));
        let storage = BlockingStorage::new(faulty.clone(), rt.handle().clone());
        let repo = rempart::repo::Repository::open(storage, b"test passphrase").unwrap();
        let result = backup(&repo, &BackupOptions::new(vec![second.clone()]));
        assert!(result.is_err(), "{label}: the injected fault must fail the backup");
        assert_eq!(faulty.fired().len(), 1, "{label}: fault fired once");
        drop(repo);
        drop(rt);

        let (code, out, err) = env.run(&["check", "--read-data"]);
        assert_eq!(code, 0, "{label}: check after the fault\n{out}\n{err}");
        let snaps = env.json(&["snapshots"]);
        assert_eq!(snaps.as_array().unwrap().len(), 1, "{label}: no snapshot from the failed backup");
        let target = env.path().join("restore-earlier");
        env.ok(&["restore", &earlier, "--target", target.to_str().unwrap()]);
        same_tree(&first, &restored(&target, &first));

        let next = env.json(&["backup", second.to_str().unwrap()]);
        let added = bytes_added(&next);
        assert!(added < fresh, "{label}: next backup added {added} bytes, a fresh one adds {fresh}");
        let target = env.path().join("restore-next");
        env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
        same_tree(&second, &restored(&target, &second));
        let (code, out, err) = env.run(&["check", "--read-data"]);
        assert_eq!(code, 0, "{label}: final check\n{out}\n{err}");
    }
}

#[test]
fn kill_9_at_random_moments_loses_nothing() {
    let scratch = tempfile::tempdir().unwrap();
    let first = scratch.path().join("first");
    let big = scratch.path().join("big");
    make_source(&first, 2, 100_000, 3);
    // Each killed backup gets new data, so each one is interrupted while storing.
    for part in 0..5 {
        make_source(&big.join(format!("part{part}")), 20, 1_000_000, 10 + part);
    }
    let fresh = fresh_cost(&big);
    let env = Env::new();
    env.ok(&["init", "--pack-size-mib", "1"]);
    let earlier = env.json(&["backup", first.to_str().unwrap()])["snapshot"].as_str().unwrap().to_string();

    // How long an uninterrupted backup of one part takes.
    let probe = Env::new();
    probe.ok(&["init", "--pack-size-mib", "1"]);
    let started = Instant::now();
    probe.ok(&["backup", "-q", big.join("part0").to_str().unwrap()]);
    let full = started.elapsed();

    // Kill moments drawn from a fixed seed across the backup's duration.
    let mut x: u64 = 0x5eed;
    let mut kills = 0;
    for part in 0..5 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let frac = 0.2 + (x % 60) as f64 / 100.0;
        let delay = full.mul_f64(frac);
        let mut child = env
            .std_cmd()
            .args(["backup", "-q", big.join(format!("part{part}")).to_str().unwrap()])
            .spawn_mut();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
            kills += 1;
        }
        child.wait().unwrap();

        let (code, out, err) = env.run(&["check"]);
        assert_eq!(code, 0, "check after kill at {delay:?}\n{out}\n{err}");
        let target = env.path().join(format!("earlier-{kills}"));
        env.ok(&["restore", &earlier, "--target", target.to_str().unwrap()]);
        same_tree(&first, &restored(&target, &first));
    }
    assert!(kills >= 3, "only {kills} of 5 backups were still running when killed");

    let next = env.json(&["backup", big.to_str().unwrap()]);
    assert!(
        bytes_added(&next) < fresh,
        "after {kills} kills the backup added {} bytes, a fresh one {fresh}",
        bytes_added(&next)
    );
    let target = env.path().join("final");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    same_tree(&big, &restored(&target, &big));
    let (code, out, err) = env.run(&["check", "--read-data"]);
    assert_eq!(code, 0, "{out}\n{err}");
}

/// `Command::spawn` on the std command assert_cmd builds.
trait SpawnMut {
    fn spawn_mut(&mut self) -> std::process::Child;
}

impl SpawnMut for std::process::Command {
    fn spawn_mut(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap()
    }
}

#[test]
fn concurrent_backups_overlap_and_all_restore() {
    for clients in [2usize, 8] {
        let env = Env::new();
        env.ok(&["init", "--pack-size-mib", "1"]);
        let scratch = tempfile::tempdir().unwrap();
        let shared = random_bytes(77, 2_000_000);
        let sources: Vec<_> = (0..clients)
            .map(|i| {
                let d = scratch.path().join(format!("client{i}"));
                make_source(&d, 6, 700_000, 100 + i as u64);
                std::fs::write(d.join("shared.bin"), &shared).unwrap();
                d
            })
            .collect();
        let children: Vec<_> = sources.iter().map(|d| env.spawn_backup(d)).collect();
        let mut intervals = Vec::new();
        let mut ids = Vec::new();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            ids.push(v["snapshot"].as_str().unwrap().to_string());
        }
        for s in env.json(&["snapshots"]).as_array().unwrap() {
            let start = chrono::DateTime::parse_from_rfc3339(s["time"].as_str().unwrap()).unwrap();
            let secs = s["summary"]["duration_secs"].as_f64().unwrap();
            let end = start + chrono::Duration::milliseconds((secs * 1000.0) as i64);
            intervals.push((start, end));
        }
        assert_eq!(intervals.len(), clients);
        let latest_start = intervals.iter().map(|i| i.0).max().unwrap();
        let earliest_end = intervals.iter().map(|i| i.1).min().unwrap();
        assert!(latest_start < earliest_end, "{clients} backups did not all overlap: {intervals:?}");
        let (code, out, err) = env.run(&["check", "--read-data"]);
        assert_eq!(code, 0, "{out}\n{err}");
        for (i, id) in ids.iter().enumerate() {
            let target = env.path().join(format!("r{i}"));
            env.ok(&["restore", id, "--target", target.to_str().unwrap()]);
            same_tree(&sources[i], &restored(&target, &sources[i]));
        }
        let _ = Duration::ZERO;
    }
}
