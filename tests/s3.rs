//! End-to-end against a real S3 server (Garage, started by scripts/test): the round trip, a
//! killed backup, a damaged object, concurrent backups, and the local cache.

mod common;

use std::path::Path;
use std::time::Instant;

use common::{random_bytes, restored, same_tree, Env};

fn make_source(dir: &Path, files: u64, size: usize, seed: u64) {
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    for i in 0..files {
        std::fs::write(dir.join(format!("f{i:03}.bin")), random_bytes(seed * 1000 + i, size)).unwrap();
    }
    std::fs::write(dir.join("sub/notes.txt"), "notes\n".repeat(1000)).unwrap();
    std::os::unix::fs::symlink("notes.txt", dir.join("sub/link")).unwrap();
}

#[test]
fn s3_round_trip_incremental_and_cold_restore() {
    let Some(env) = Env::s3() else { return };
    let src = env.path().join("src");
    make_source(&src, 12, 700_000, 1);
    env.ok(&["init", "--pack-size-mib", "2"]);
    let first = env.json(&["backup", src.to_str().unwrap()]);
    assert_eq!(first["status"], "success");
    let second = env.json(&["backup", src.to_str().unwrap()]);
    assert_eq!(second["summary"]["bytes_read"], 0);
    assert_eq!(second["summary"]["data_blobs_added"], 0);
    let target = env.path().join("out");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    same_tree(&src, &restored(&target, &src));
    let (code, out, err) = env.run(&["check", "--read-data"]);
    assert_eq!(code, 0, "{out}{err}");
    // A replacement machine: no state directory at all.
    std::fs::remove_dir_all(&env.state_dir).unwrap();
    let cold = env.path().join("cold");
    env.ok(&["restore", "latest", "--target", cold.to_str().unwrap()]);
    same_tree(&src, &restored(&cold, &src));
}

#[test]
fn s3_cache_damage_is_detected_and_rebuilt() {
    let Some(env) = Env::s3() else { return };
    let src = env.path().join("src");
    make_source(&src, 3, 100_000, 2);
    env.init();
    env.ok(&["backup", src.to_str().unwrap()]);
    // Damage every cached file, delete a folder of them.
    let mut damaged = 0;
    let mut stack = vec![env.state_dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.components().any(|c| c.as_os_str() == "cache") {
                std::fs::write(&p, b"garbage").unwrap();
                damaged += 1;
            }
        }
    }
    assert!(damaged >= 3, "index, snapshot and tree pack are cached ({damaged} files)");
    let (code, out, err) = env.run(&["ls", "latest"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("damaged"), "the damaged cache is reported: {err}");
    assert!(out.contains("notes.txt"));
    // Rebuilt: the next command finds an intact cache and says nothing.
    let (code, _, err) = env.run(&["ls", "latest"]);
    assert_eq!(code, 0);
    assert!(!err.contains("damaged"), "{err}");
}

#[test]
fn s3_killed_backup_loses_nothing_and_is_reused() {
    let Some(env) = Env::s3() else { return };
    let src = env.path().join("src");
    make_source(&src, 30, 1_000_000, 3);
    env.ok(&["init", "--pack-size-mib", "1"]);
    let small = env.path().join("small");
    make_source(&small, 1, 1000, 4);
    let earlier = env.json(&["backup", small.to_str().unwrap()])["snapshot"].as_str().unwrap().to_string();
    let probe = Env::s3().unwrap();
    probe.ok(&["init", "--pack-size-mib", "1"]);
    let started = Instant::now();
    let fresh = probe.json(&["backup", src.to_str().unwrap()])["summary"]["bytes_added"].as_u64().unwrap();
    let full = started.elapsed();

    let mut child = env.std_cmd().args(["backup", "-q", src.to_str().unwrap()]).spawn().unwrap();
    std::thread::sleep(full.mul_f64(0.6));
    let killed = child.try_wait().unwrap().is_none();
    if killed {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    }
    child.wait().unwrap();
    assert!(killed, "the backup finished before it could be killed");
    let (code, out, err) = env.run(&["check"]);
    assert_eq!(code, 0, "{out}{err}");
    let target = env.path().join("earlier");
    env.ok(&["restore", &earlier, "--target", target.to_str().unwrap()]);
    same_tree(&small, &restored(&target, &small));
    let next = env.json(&["backup", src.to_str().unwrap()]);
    let added = next["summary"]["bytes_added"].as_u64().unwrap();
    assert!(added < fresh, "after the kill the backup added {added}, a fresh one {fresh}");
    let target = env.path().join("final");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    same_tree(&src, &restored(&target, &src));
}

#[test]
fn s3_damaged_object_is_named() {
    let Some(env) = Env::s3() else { return };
    let src = env.path().join("src");
    make_source(&src, 4, 300_000, 5);
    env.init();
    env.ok(&["backup", src.to_str().unwrap()]);
    // Overwrite one data pack in the bucket with a copy that has one byte flipped.
    let prefix = env.repo.trim_start_matches("s3://rempart-test/").to_string();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let _g = rt.enter();
    let s = common::s3_storage(&prefix).unwrap();
    let packs = rt.block_on(s.list(rempart::storage::Kind::Pack)).unwrap();
    let biggest = packs.iter().max_by_key(|p| p.size).unwrap().name.clone();
    let mut bytes = rt.block_on(s.get(rempart::storage::Kind::Pack, &biggest)).unwrap().to_vec();
    bytes[1000] ^= 0x40;
    rt.block_on(s.put(rempart::storage::Kind::Pack, &biggest, bytes.into())).unwrap();
    let (code, out, err) = env.run(&["check", "--read-data"]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(err.contains(&biggest), "damaged pack not named: {err}");
    assert!(err.contains(".bin"), "affected files not named: {err}");
    // A restore fetches ranges ahead of its writing threads: the damaged range spoils only the
    // files it holds, which are named and never left under their real name; the rest is exact.
    let target = env.path().join("out");
    let (code, out, err) = env.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(out.contains("DAMAGED") && out.contains(".bin"), "{out}");
    let dest = restored(&target, &src);
    let mut intact = 0;
    for e in std::fs::read_dir(&src).unwrap() {
        let name = e.unwrap().file_name();
        let (original, copy) = (src.join(&name), dest.join(&name));
        if copy.exists() && original.is_file() {
            assert_eq!(std::fs::read(&original).unwrap(), std::fs::read(&copy).unwrap(), "{name:?}");
            intact += 1;
        } else if original.is_file() {
            assert!(out.contains(&*name.to_string_lossy()), "{name:?} is missing and not named: {out}");
        }
    }
    assert!(intact >= 1, "files of the other packs are restored");
}

#[test]
fn s3_concurrent_backups_all_restore() {
    let Some(env) = Env::s3() else { return };
    env.ok(&["init", "--pack-size-mib", "1"]);
    let shared = random_bytes(9, 1_500_000);
    let sources: Vec<_> = (0..3)
        .map(|i| {
            let d = env.path().join(format!("client{i}"));
            make_source(&d, 5, 600_000, 10 + i);
            std::fs::write(d.join("shared.bin"), &shared).unwrap();
            d
        })
        .collect();
    let children: Vec<_> = sources.iter().map(|d| env.spawn_backup(d)).collect();
    let mut ids = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        ids.push(v["snapshot"].as_str().unwrap().to_string());
    }
    let snaps = env.json(&["snapshots"]);
    let spans: Vec<(chrono::DateTime<chrono::FixedOffset>, f64)> = snaps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                chrono::DateTime::parse_from_rfc3339(s["time"].as_str().unwrap()).unwrap(),
                s["summary"]["duration_secs"].as_f64().unwrap(),
            )
        })
        .collect();
    let latest_start = spans.iter().map(|s| s.0).max().unwrap();
    let earliest_end =
        spans.iter().map(|s| s.0 + chrono::Duration::milliseconds((s.1 * 1000.0) as i64)).min().unwrap();
    assert!(latest_start < earliest_end, "the backups did not overlap: {spans:?}");
    let (code, out, err) = env.run(&["check", "--read-data"]);
    assert_eq!(code, 0, "{out}{err}");
    for (i, id) in ids.iter().enumerate() {
        let target = env.path().join(format!("r{i}"));
        env.ok(&["restore", id, "--target", target.to_str().unwrap()]);
        same_tree(&sources[i], &restored(&target, &sources[i]));
    }
}

/// From S3 a restore's batches grow from 1,000 files and overlap: the next batch fetches while
/// the one before is still written. 6,500 files make three batches that share packs (the
/// same content in every batch) and a hard-link group across them; all come back exact.
#[test]
fn s3_restore_of_several_overlapping_batches_is_exact() {
    let Some(env) = Env::s3() else { return };
    env.ok(&["init", "--pack-size-mib", "1"]);
    let src = env.path().join("many");
    let shared = random_bytes(77, 3_000);
    for d in 0..13u64 {
        let dir = src.join(format!("d{d:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..500u64 {
            let body =
                if f % 50 == 0 { shared.clone() } else { random_bytes(d * 1000 + f, (f as usize % 7) * 700) };
            std::fs::write(dir.join(format!("f{f:03}")), body).unwrap();
        }
    }
    std::fs::write(src.join("d00/big.bin"), random_bytes(5, 3_000_000)).unwrap();
    std::fs::hard_link(src.join("d00/big.bin"), src.join("d12/big-link.bin")).unwrap();
    env.ok(&["backup", src.to_str().unwrap()]);
    let target = env.path().join("out");
    let done = env.json(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(done["result"]["files"], 6_502, "{done}");
    assert_eq!(done["result"]["damaged"].as_array().map(Vec::len), Some(0), "{done}");
    same_tree(&src, &restored(&target, &src));
    use std::os::unix::fs::MetadataExt;
    let dest = restored(&target, &src);
    let (a, b) =
        (dest.join("d00/big.bin").metadata().unwrap(), dest.join("d12/big-link.bin").metadata().unwrap());
    assert_eq!((a.dev(), a.ino()), (b.dev(), b.ino()), "the hard link is restored as a link");
}
