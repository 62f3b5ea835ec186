//! A fleet on the 3-node Garage cluster that scripts/test starts: several hosts, each in its
//! own network namespace behind its own fault-injecting proxy, share one repository.
//!
//! - four hosts back up overlapping data at the same time, beside two prunes; every snapshot
//!   restores exactly, `check --read-data` passes, the data they share is stored once, and
//!   `report --fleet` names every host (VERIFIED once their keys are pinned, not before);
//! - a node SIGKILLed in the middle of a backup, a restore and a drill: each completes through
//!   the remaining quorum;
//! - a host's link with 100 ms of round trip, resets, stalled connections and a 15-second
//!   partition: each run completes; a partition longer than the retry window fails cleanly,
//!   naming the storage and the cause, and leaves no snapshot.
//!
//! The tests take the cluster in turn (one of them kills its nodes).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use common::netns::{finish, Cluster, Host};
use common::{random_bytes, restored, same_tree};

static CLUSTER: Mutex<()> = Mutex::new(());

/// The cluster, for this test alone, with its three nodes up.
fn take_cluster() -> Option<(Cluster, std::sync::MutexGuard<'static, ()>)> {
    let cluster = Cluster::from_env()?;
    let turn = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    cluster.revive_dead_nodes();
    Some((cluster, turn))
}

fn repo_url() -> String {
    format!("s3://rempart-fleet/f{:016x}", rand::random::<u64>())
}

/// `files` files of `size` bytes under `dir`, their content from `seed` (the same seed makes
/// the same bytes on every host).
fn write_files(dir: &Path, seed: u64, files: u64, size: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..files {
        std::fs::write(dir.join(format!("f{i:02}.bin")), random_bytes(seed * 100 + i, size)).unwrap();
    }
}

fn run_record(out: &str, host: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{host}: not JSON ({e}): {out}"))
}

/// Restores snapshot `id` on `host` and compares it with `expected` (a copy of the source as
/// it was backed up).
fn restores_exactly(host: &Host, id: &str, source: &Path, expected: &Path) {
    let target = host.env.path().join(format!("restore-{id}"));
    host.ok(&["restore", id, "--target", target.to_str().unwrap()]);
    same_tree(expected, &restored(&target, source));
}

fn keep(host: &Host, source: &Path, name: &str) -> PathBuf {
    let to = host.env.path().join("expected").join(name);
    common::copy_dir(source, &to);
    to
}

#[test]
fn four_hosts_share_one_repository_beside_two_prunes_and_the_fleet_report_names_them() {
    let Some((cluster, _turn)) = take_cluster() else { return };
    let repo = repo_url();
    let admin = Host::new(&cluster, "admin", &repo, &[]);
    // Small packs, so data only a forgotten snapshot used fills whole packs the sweep deletes.
    admin.ok(&["init", "--pack-size-mib", "1"]);
    let hosts: Vec<Host> = (1..=4).map(|i| Host::new(&cluster, &format!("web{i}"), &repo, &[])).collect();
    let mut sources = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let data = h.env.path().join("data");
        write_files(&data.join("shared"), 1, 8, 1 << 20); // the same 8 MiB on every host
        write_files(&data.join("own"), 10 + i as u64, 2, 1 << 20); // 2 MiB of its own
        h.job("site", &[&data], "[drill]\nlevel = 3\ninterval = \"7d\"\n");
        sources.push(data);
    }
    // Round 1: the first host alone, then the three others at once: they store only their own.
    let first = run_record(&hosts[0].ok(&["--json", "run", "site"]), "web1");
    assert_eq!(first["status"], "success", "{first}");
    let first_added = first["bytes_added"].as_u64().unwrap();
    assert!(first_added > 9 << 20, "the first host stores everything: {first}");
    let runs: Vec<_> = hosts[1..].iter().map(|h| h.spawn(&["--json", "run", "site"])).collect();
    let mut expected: Vec<Vec<(String, PathBuf)>> = vec![Vec::new(); 4];
    expected[0].push((first["snapshot"].as_str().unwrap().to_string(), keep(&hosts[0], &sources[0], "r1")));
    let mut others_added = 0;
    for (i, child) in runs.into_iter().enumerate() {
        let h = &hosts[i + 1];
        let (code, out, err) = finish(child);
        assert_eq!(code, 0, "{}: {out}{err}", h.name);
        let rec = run_record(&out, &h.name);
        let added = rec["bytes_added"].as_u64().unwrap();
        assert!(added < 3 << 20, "{}: the shared 8 MiB were stored again ({added} bytes added)", h.name);
        others_added += added;
        expected[i + 1].push((rec["snapshot"].as_str().unwrap().to_string(), keep(h, &sources[i + 1], "r1")));
    }
    let read = 4 * (10u64 << 20);
    let stored = first_added + others_added;
    eprintln!(
        "cross-host deduplication: 4 hosts read {} MiB, the repository stored {} MiB ({:.1}x)",
        read >> 20,
        stored >> 20,
        read as f64 / stored as f64
    );
    assert!(stored < read / 2, "{stored} of {read} bytes stored");

    // Round 2: every host at once, each with new data of its own and new shared data, beside
    // a prune. Then web1's first snapshot is forgotten, and in round 3 the hosts back up again
    // while the administrative host prunes with no grace, twice, then twice more once they are
    // done: the sweep really happens, beside and after the backups.
    // web1 drops one of its own files: after its first snapshot is forgotten, no snapshot uses
    // that data any more.
    std::fs::remove_file(sources[0].join("own/f01.bin")).unwrap();
    for round in 2..=3u64 {
        for (i, s) in sources.iter().enumerate() {
            write_files(&s.join(format!("new{round}")), 20 * round + i as u64, 1, 1 << 20);
            write_files(&s.join(format!("shared{round}")), round, 2, 1 << 20);
        }
        let runs: Vec<_> = hosts.iter().map(|h| h.spawn(&["--json", "run", "site"])).collect();
        admin.ok(&["prune", "--grace", "0s"]);
        admin.ok(&["prune", "--grace", "0s"]);
        for (i, child) in runs.into_iter().enumerate() {
            let h = &hosts[i];
            let (code, out, err) = finish(child);
            assert_eq!(code, 0, "{}: {out}{err}", h.name);
            let rec = run_record(&out, &h.name);
            let name = format!("r{round}");
            expected[i].push((rec["snapshot"].as_str().unwrap().to_string(), keep(h, &sources[i], &name)));
        }
        if round == 2 {
            admin.ok(&["forget", "--keep-last", "1", "--host", "web1"]);
        }
    }
    let swept: u64 =
        (0..2).map(|_| admin.json(&["prune", "--grace", "0s"])["packs_deleted"].as_u64().unwrap()).sum();
    assert!(swept > 0, "the sweep deleted nothing: the test did not prune for real");
    // web1's first snapshot was forgotten; every other snapshot restores exactly.
    let listed = admin.json(&["snapshots"]);
    let ids: Vec<String> =
        listed.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 11, "{listed}");
    for (i, h) in hosts.iter().enumerate() {
        for (id, copy) in &expected[i] {
            if ids.iter().any(|x| x.starts_with(id.as_str()) || id.starts_with(x.as_str())) {
                restores_exactly(h, id, &sources[i], copy);
            } else {
                assert_eq!((i, copy.file_name().unwrap().to_str().unwrap()), (0, "r1"), "{id} is gone");
            }
        }
    }
    let (code, out, err) = admin.run(&["check", "--read-data"]);
    assert_eq!(code, 0, "check after the fleet's backups and prunes: {out}{err}");

    // Each host drills its job; the fleet report, from the repository alone, names every host.
    let mut fingerprints = Vec::new();
    for h in &hosts {
        let rec = h.json(&["drill", "site"]);
        assert_eq!(rec["status"], "success", "{}: {rec}", h.name);
        let v = h.json(&["evidence", "verify"]);
        fingerprints.push(v["verdict"]["key_fingerprint"].as_str().unwrap().to_string());
    }
    let auditor = Host::new(&cluster, "auditor", &repo, &[]);
    let unpinned = auditor.json(&["report", "--fleet"]);
    let hosts_seen: Vec<&str> =
        unpinned["hosts"].as_array().unwrap().iter().map(|h| h["host"].as_str().unwrap()).collect();
    assert_eq!(hosts_seen, ["web1", "web2", "web3", "web4"], "{unpinned}");
    for h in unpinned["hosts"].as_array().unwrap() {
        assert_eq!(h["jobs"][0]["readiness"], "NEEDS VERIFIED", "an unpinned key never counts: {h}");
        assert_eq!(h["jobs"][0]["cause"]["code"], "key-not-pinned", "{h}");
    }
    let mut args = vec!["report", "--fleet"];
    for fp in &fingerprints {
        args.extend(["--pin", fp.as_str()]);
    }
    let pinned = auditor.json(&args);
    let anchor = auditor.env.path().join("fleet-before.json");
    std::fs::write(&anchor, pinned.to_string()).unwrap();
    for h in pinned["hosts"].as_array().unwrap() {
        let job = &h["jobs"][0];
        assert_eq!(job["readiness"], "VERIFIED", "{h}");
        assert_eq!(job["last_drill_passed"], true, "{h}");
        assert!(job["last_backup"].is_string() && job["restore_points"].as_u64().unwrap() >= 1, "{h}");
        assert!(h["findings"].as_array().unwrap().is_empty(), "{h}");
    }
    let mut md_args = args.clone();
    md_args.extend(["--format", "md", "--lang", "fr"]);
    let md = auditor.ok(&md_args);
    for h in &hosts {
        assert!(md.contains(&format!("| {} | site | VERIFIED |", h.name)), "{md}");
    }
    assert!(md.contains("Rapport de préparation PRA / PCA de la flotte"), "{md}");

    // Someone who can delete objects removes the newest evidence record (web4's drill): from
    // the repository alone nothing shows it, but the earlier report anchors every chain.
    let prefix = repo.trim_start_matches("s3://rempart-fleet/");
    let admin_tool = |cmd: &str, what: &str| {
        let out = std::process::Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/s3_admin.py"))
            .arg(cluster.dir.join("s3.env"))
            .args([cmd, "rempart-fleet", &format!("{prefix}/{what}")])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    // Damaged instead of deleted: it could be any chain's record, so no host is VERIFIED.
    admin_tool("damage-newest", "evidence/");
    // An auditor with an empty cache (the first one holds the authentic copy in its cache).
    let fresh_auditor = Host::new(&cluster, "auditor2", &repo, &[]);
    let damaged = fresh_auditor.json(&args);
    for h in damaged["hosts"].as_array().unwrap() {
        assert_eq!(h["jobs"][0]["readiness"], "NOT VERIFIED", "{h}");
        assert!(h["findings"].to_string().contains("cannot be read"), "{h}");
    }
    admin_tool("delete-newest", "evidence/");
    let mut anchored = args.clone();
    let anchor_arg = anchor.to_str().unwrap().to_string();
    anchored.extend(["--previous", anchor_arg.as_str()]);
    let after = auditor.json(&anchored);
    for h in after["hosts"].as_array().unwrap() {
        let findings = h["findings"].to_string();
        if h["host"] == "web4" {
            assert!(findings.contains("records deleted"), "{h}");
            assert_eq!(h["jobs"][0]["readiness"], "NOT VERIFIED", "{h}");
        } else {
            assert_eq!(h["jobs"][0]["readiness"], "VERIFIED", "only web4 lost a record: {h}");
        }
    }
    // Every evidence object gone: each pinned key without a chain is a finding.
    admin_tool("delete-all", "evidence/");
    let gone = auditor.json(&args);
    let findings = gone["hosts"].to_string();
    assert_eq!(findings.matches("no evidence chain of pinned key").count(), 4, "{gone}");
    let gone = auditor.json(&anchored);
    assert_eq!(gone["hosts"].to_string().matches("chain deleted").count(), 4, "{gone}");
}

#[test]
fn a_node_killed_mid_backup_restore_and_drill_loses_nothing() {
    let Some((cluster, _turn)) = take_cluster() else { return };
    let repo = repo_url();
    let h = Host::new(&cluster, "db1", &repo, &[("REMPART_S3_REQUEST_TIMEOUT", "10s")]);
    h.ok(&["init", "--pack-size-mib", "4"]);
    let data = h.env.path().join("data");
    write_files(&data, 3, 48, 1 << 20);
    h.job("files", &[&data], "[drill]\nlevel = 3\n");
    // Backup: node 2 dies once the backup is uploading, and stays down.
    let mut child = h.spawn(&["--json", "run", "files"]);
    h.wait_for_traffic("up_bytes", 4 << 20);
    cluster.kill_node(2);
    assert!(child.try_wait().unwrap().is_none(), "the backup ended before the node died: nothing proven");
    let (code, out, err) = finish(child);
    assert_eq!(code, 0, "a backup must complete with 1 of 3 nodes down: {out}{err}");
    let rec = run_record(&out, "db1");
    let snap = rec["snapshot"].as_str().unwrap().to_string();
    // Restore with the node still down; then node 3 dies in the middle of a second restore
    // while node 2 comes back.
    restores_exactly(&h, &snap, &data, &data);
    cluster.start_node(2);
    let target = h.env.path().join("restore-2");
    let mut child = h.spawn(&["restore", &snap, "--target", target.to_str().unwrap()]);
    h.wait_for_traffic("down_bytes", 4 << 20);
    cluster.kill_node(3);
    assert!(child.try_wait().unwrap().is_none(), "the restore ended before the node died: nothing proven");
    let (code, out, err) = finish(child);
    assert_eq!(code, 0, "a restore must complete with 1 of 3 nodes down: {out}{err}");
    same_tree(&data, &restored(&target, &data));
    cluster.start_node(3);
    // Drill: node 1 dies in the middle of it.
    let mut child = h.spawn(&["--json", "drill", "files"]);
    h.wait_for_traffic("down_bytes", 4 << 20);
    cluster.kill_node(1);
    assert!(child.try_wait().unwrap().is_none(), "the drill ended before the node died: nothing proven");
    let (code, out, err) = finish(child);
    assert_eq!(code, 0, "a drill must pass with 1 of 3 nodes down: {out}{err}");
    assert_eq!(run_record(&out, "db1")["status"], "success", "{out}");
    cluster.start_node(1);
    let (code, out, err) = h.run(&["check", "--read-data"]);
    assert_eq!(code, 0, "nothing lost: {out}{err}");
}

#[test]
fn latency_resets_stalls_and_partitions_on_the_link_lose_nothing() {
    let Some((cluster, _turn)) = take_cluster() else { return };
    let repo = repo_url();
    let timeouts = [("REMPART_S3_REQUEST_TIMEOUT", "4s"), ("REMPART_S3_RETRY_FOR", "60s")];
    let h = Host::new(&cluster, "app1", &repo, &timeouts);
    h.ok(&["init", "--pack-size-mib", "2"]);
    let data = h.env.path().join("data");
    let mut round = 0u64;
    let mut next_round = |h: &Host| {
        round += 1;
        write_files(&data.join(format!("r{round}")), 40 + round, 6, 1 << 20);
        h.spawn(&["--json", "backup", data.to_str().unwrap()])
    };
    let mut snapshots = Vec::new();
    let mut done = |h: &Host, child, what: &str| -> String {
        let (code, out, err) = finish(child);
        assert_eq!(code, 0, "{what}: {out}{err}");
        let id = run_record(&out, "app1")["snapshot"].as_str().unwrap().to_string();
        snapshots.push((id.clone(), keep(h, &data, &id)));
        err
    };
    // 100 ms of round trip (50 ms each way).
    h.fault("delay 50");
    let child = next_round(&h);
    done(&h, child, "a backup over a 100 ms link");
    h.fault("heal");
    // Dropped connections: one in three reset after its first bytes; and every open
    // connection reset at once, twice.
    h.fault("reset-every 3");
    let child = next_round(&h);
    std::thread::sleep(Duration::from_millis(700));
    h.fault("reset");
    std::thread::sleep(Duration::from_millis(700));
    h.fault("reset");
    let err = done(&h, child, "a backup through resets");
    assert!(err.contains("retry"), "retries are logged: {err}");
    h.fault("heal");
    // Stalled connections: frozen for good, neither closed nor answered.
    let child = next_round(&h);
    std::thread::sleep(Duration::from_millis(700));
    let stats = h.fault("stall");
    done(&h, child, "a backup through stalled connections");
    eprintln!("proxy after the stall: {stats}");
    // A 15-second partition in the middle of a backup.
    let child = next_round(&h);
    std::thread::sleep(Duration::from_millis(700));
    h.link(false);
    std::thread::sleep(Duration::from_secs(15));
    h.link(true);
    done(&h, child, "a backup through a 15-second partition");
    // A partition longer than the retry window: the backup fails cleanly and says why.
    let short = [("REMPART_S3_REQUEST_TIMEOUT", "3s"), ("REMPART_S3_RETRY_FOR", "8s")];
    let cut = Host::new(&cluster, "app1", &repo, &short);
    let before = h.json(&["snapshots"]).as_array().unwrap().len();
    write_files(&data.join("cut"), 99, 6, 1 << 20);
    let child = cut.spawn(&["backup", data.to_str().unwrap()]);
    cut.wait_for_traffic("up_bytes", 1 << 20);
    cut.link(false);
    let (code, out, err) = finish(child);
    cut.link(true);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("s3://rempart-fleet/"), "the message names the storage: {err}");
    assert!(
        err.contains("unreach")
            || err.contains("connect")
            || err.contains("timed out")
            || err.contains("timeout"),
        "the message names the cause: {err}"
    );
    assert_eq!(h.json(&["snapshots"]).as_array().unwrap().len(), before, "no snapshot from the failed run");
    // Nothing lost: every snapshot restores exactly, and the repository checks clean.
    for (id, copy) in &snapshots {
        restores_exactly(&h, id, &data, copy);
    }
    let (code, out, err) = h.run(&["check", "--read-data"]);
    assert_eq!(code, 0, "{out}{err}");
}
