//! End-to-end for jobs and the daemon: validation messages, the example jobs, hooks,
//! notifications, forget against restic itself, prune beside running backups and prune's
//! repacking, the daemon's schedule, its reload on SIGHUP and its clean stop on SIGTERM.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{random_bytes, restored, same_tree, Env};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A folder of job files plus a keys folder, inside the test environment.
fn jobs_dir(env: &Env, files: &[(&str, String)]) -> PathBuf {
    let dir = env.path().join("jobs");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

fn with_jobs(env: &Env, dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = env.cmd().arg("--jobs").arg(dir).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_example_job_validates() {
    let env = Env::new();
    let (code, out, err) = env.run(&["jobs", "validate", repo_root().join("jobs").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("project-files") && out.contains("postgres-test"), "{out}");
}

#[test]
fn each_kind_of_bad_job_file_gets_its_message() {
    let env = Env::new();
    let src = env.path().join("data");
    std::fs::create_dir_all(&src).unwrap();
    let good = |extra: &str| format!("name = \"j\"\nsources = [\"{}\"]\n{extra}", src.display());
    let cases: Vec<(&str, String, &str, &str)> = vec![
        ("syntax", "name = \"j\"\nsources = [\"/tmp\"\n".into(), ":3", "expected"),
        ("unknown key", good("retention_days = 3\n"), ":3", "retention_days"),
        (
            "impossible cron",
            good("[schedule]\nbackup = \"0 0 31 2 *\"\n"),
            ":4: key 'schedule.backup'",
            "never fires",
        ),
        ("bad cron", good("[schedule]\nbackup = \"0 2 * *\"\n"), ":4: key 'schedule.backup'", "expected 5"),
        (
            "unknown time zone",
            good("[schedule]\nbackup = \"0 2 * * *\"\ntimezone = \"Europe/Atlantis\"\n"),
            ":5: key 'schedule.timezone'",
            "'Europe/Atlantis'",
        ),
        (
            "bad duration",
            good("[objectives]\nrpo = \"26 hours\"\n"),
            ":4: key 'objectives.rpo'",
            "'26 hours'",
        ),
        (
            "missing source",
            "name = \"j\"\nsources = [\"/no/such/folder\"]\n".into(),
            ":2: key 'sources'",
            "'/no/such/folder'",
        ),
        (
            "password in url",
            "name = \"j\"\nsources = [\"postgres://u:pw@h/db\"]\n".into(),
            ":2: key 'sources'",
            "password",
        ),
        (
            "unreachable repository",
            good("repository = \"s3://nobucket/x\"\n"),
            "key 'repository'",
            "unreachable",
        ),
    ];
    for (label, text, place, words) in cases {
        let dir = env.path().join(format!("case-{}", label.replace(' ', "-")));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("j.toml"), text).unwrap();
        let out = env
            .cmd()
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_ACCESS_KEY_ID", "x")
            .env("AWS_SECRET_ACCESS_KEY", "y")
            .args(["jobs", "validate", dir.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{label}: {err}");
        assert!(err.contains("j.toml"), "{label}: file not named: {err}");
        assert!(err.contains(place), "{label}: expected '{place}' in: {err}");
        assert!(err.contains(words), "{label}: expected '{words}' in: {err}");
    }
    // A repository that exists without its passphrase file.
    let dir = env.path().join("case-passphrase");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("j.toml"),
        good(&format!("repository = \"{}\"\npassword_file = \"gone.pass\"\n", env.repo)),
    )
    .unwrap();
    env.init();
    let (code, _, err) = env.run(&["jobs", "validate", dir.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("j.toml:4: key 'password_file'") && err.contains("gone.pass"), "{err}");
    // The daemon refuses to start with an invalid job.
    let (code, _, err) =
        with_jobs(&env, &env.path().join("case-unknown-key"), &["daemon", "--listen", "127.0.0.1:0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("does not start with an invalid job"), "{err}");
}

/// A tiny HTTP server that records request lines and bodies.
fn recorder() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut len = 0;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                if h == "\r\n" || h.is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            s.lock().unwrap().push(format!("{} {}", line.trim(), String::from_utf8_lossy(&body)));
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (addr, seen)
}

#[test]
fn run_records_hooks_and_notifications() {
    let env = Env::new();
    let src = env.path().join("data");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.txt"), b"hello").unwrap();
    let (url, seen) = recorder();
    let marker = env.path().join("after-ran");
    let job = format!(
        "name = \"app\"\nsources = [\"{}\"]\nrepository = \"{}\"\npassword_file = \"../keys/app.pass\"\n\
         [hooks]\nbefore = \"test -d {}\"\nafter = \"echo $REMPART_STATUS > {}\"\ntimeout = \"10s\"\n\
         [notify]\nwebhook = \"{url}/hook\"\non_success = true\nhealthchecks = \"{url}/hc\"\n",
        src.display(),
        env.repo,
        src.display(),
        marker.display()
    );
    let dir = jobs_dir(&env, &[("app.toml", job.clone())]);
    // First run: the repository and its passphrase file are created on first use.
    let (code, out, err) = with_jobs(&env, &dir, &["--json", "run", "app"]);
    assert_eq!(code, 0, "{out}{err}");
    let rec: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rec["status"], "success");
    assert_eq!(rec["trigger"], "manual");
    assert!(env.path().join("keys/app.pass").exists());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(env.path().join("keys/app.pass")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(&marker).unwrap().trim(), "success");
    let calls = seen.lock().unwrap().clone();
    assert!(calls.iter().any(|c| c.starts_with("POST /hc/start")), "{calls:?}");
    assert!(calls.iter().any(|c| c.starts_with("POST /hc ") || c.starts_with("POST /hc HTTP")), "{calls:?}");
    let hook = calls.iter().find(|c| c.starts_with("POST /hook")).expect("webhook");
    assert!(
        hook.contains("\"job\":\"app\"")
            && hook.contains("\"status\":\"success\"")
            && hook.contains("\"snapshot\""),
        "{hook}"
    );
    // The webhook and the result ping carry the run's evidence record: the chain head.
    let body: serde_json::Value = serde_json::from_str(hook.splitn(4, ' ').nth(3).unwrap()).unwrap();
    let (_, exported, _) = with_jobs(&env, &dir, &["evidence", "export"]);
    let last: serde_json::Value = serde_json::from_str(exported.lines().last().unwrap()).unwrap();
    assert_eq!(body["evidence"]["chain_head"], last["hash"], "{body}");
    assert_eq!(body["evidence"]["seq"], 1, "{body}");
    let ping = calls.iter().find(|c| c.starts_with("POST /hc HTTP")).expect("result ping");
    assert!(ping.contains(&format!("chain head {}", last["hash"].as_str().unwrap())), "{ping}");
    // The run is in the catalog.
    let runs = env.cmd().args(["--json", "catalog", "runs"]).output().unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["snapshot"], rec["snapshot"]);

    // A failing before hook cancels the backup: no snapshot, run failed, /fail pinged.
    std::fs::write(dir.join("app.toml"), job.replace(&format!("test -d {}", src.display()), "exit 3"))
        .unwrap();
    seen.lock().unwrap().clear();
    let (code, _, err) = with_jobs(&env, &dir, &["run", "app"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("before hook") && err.contains("was not run"), "{err}");
    let snaps = env
        .cmd()
        .args(["--json", "--password-file"])
        .arg(env.path().join("keys/app.pass"))
        .arg("snapshots")
        .output()
        .unwrap();
    let snaps: serde_json::Value = serde_json::from_slice(&snaps.stdout).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 1, "no snapshot from the cancelled run");
    let calls = seen.lock().unwrap().clone();
    assert!(calls.iter().any(|c| c.starts_with("POST /hc/fail")), "{calls:?}");
    assert!(
        calls.iter().any(|c| c.starts_with("POST /hook") && c.contains("\"status\":\"failed\"")),
        "{calls:?}"
    );
    // The catalog survives its own loss: rebuilt from the repository.
    std::fs::remove_file(env.state_dir.join("catalog.db")).unwrap();
    let (code, out, err) = with_jobs(&env, &dir, &["catalog", "rebuild"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 backup runs recreated"), "{out}");
}

/// Snapshot times for the retention comparison: irregular, over about two years.
fn snapshot_times() -> Vec<chrono::DateTime<chrono::Utc>> {
    let start =
        chrono::DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z").unwrap().with_timezone(&chrono::Utc);
    let mut x: u64 = 12345;
    let mut t = start;
    let mut out = Vec::new();
    for _ in 0..60 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        t += chrono::Duration::minutes((x % (6 * 24 * 60)) as i64 + 7);
        out.push(t);
    }
    out
}

#[test]
fn forget_keeps_what_restic_keeps() {
    if std::process::Command::new("restic").arg("version").output().is_err() {
        panic!("restic is needed to compare retention decisions (scripts/test installs it)");
    }
    let times = snapshot_times();
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("d");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f"), b"x").unwrap();
    // restic with the same snapshot times (TZ=UTC so buckets match).
    let restic_repo = scratch.path().join("restic");
    let run_restic = |args: &[&str]| {
        let out = std::process::Command::new("restic")
            .args(args)
            .env("RESTIC_REPOSITORY", &restic_repo)
            .env("RESTIC_PASSWORD", "pw")
            .env("RESTIC_CACHE_DIR", scratch.path().join("cache"))
            .env("TZ", "UTC")
            .output()
            .unwrap();
        assert!(out.status.success(), "restic {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run_restic(&["init"]);
    for t in &times {
        run_restic(&[
            "backup",
            "-q",
            "--host",
            "h",
            "--time",
            &t.format("%Y-%m-%d %H:%M:%S").to_string(),
            data.to_str().unwrap(),
        ]);
    }
    // rempart with the same times.
    let env = Env::new();
    env.init();
    let (rt, repo) = common::open_repo(&env);
    for t in &times {
        let mut o = rempart::backup::BackupOptions::new(vec![data.clone()]);
        o.time = Some(*t);
        o.hostname = Some("h".into());
        rempart::backup::backup(&repo, &o).unwrap();
    }
    let snaps: Vec<_> = repo.list_snapshots().unwrap().0;
    drop(rt);
    let policies: Vec<(Vec<&str>, rempart::jobs::Retention)> = vec![
        (vec!["--keep-last", "5"], rempart::jobs::Retention { keep_last: Some(5), ..Default::default() }),
        (
            vec!["--keep-daily", "7", "--keep-weekly", "5", "--keep-monthly", "6", "--keep-yearly", "2"],
            rempart::jobs::Retention {
                keep_daily: Some(7),
                keep_weekly: Some(5),
                keep_monthly: Some(6),
                keep_yearly: Some(2),
                ..Default::default()
            },
        ),
        (
            vec!["--keep-hourly", "30", "--keep-last", "3", "--keep-within", "20d"],
            rempart::jobs::Retention {
                keep_hourly: Some(30),
                keep_last: Some(3),
                keep_within: Some("20d".into()),
                ..Default::default()
            },
        ),
        (
            vec!["--keep-weekly", "10"],
            rempart::jobs::Retention { keep_weekly: Some(10), ..Default::default() },
        ),
    ];
    for (flags, policy) in policies {
        let mut args = vec!["forget", "--dry-run", "--json"];
        args.extend_from_slice(&flags);
        let out = run_restic(&args);
        let groups: serde_json::Value = serde_json::from_str(&out).unwrap();
        let mut restic_kept: Vec<String> = groups[0]["keep"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                chrono::DateTime::parse_from_rfc3339(s["time"].as_str().unwrap())
                    .unwrap()
                    .with_timezone(&chrono::Utc)
                    .to_rfc3339()
            })
            .collect();
        restic_kept.sort();
        let decisions = rempart::maintenance::retention::apply(&policy, &snaps, chrono_tz::UTC).unwrap();
        let mut ours: Vec<String> =
            decisions.iter().filter(|d| d.keep).map(|d| d.time.to_rfc3339()).collect();
        ours.sort();
        assert_eq!(ours, restic_kept, "policy {flags:?}");
    }
}

#[test]
fn prune_beside_running_backups_loses_nothing() {
    let env = Env::new();
    env.ok(&["init", "--pack-size-mib", "1"]);
    let scratch = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    for i in 0..4u64 {
        let d = scratch.path().join(format!("d{i}"));
        std::fs::create_dir_all(&d).unwrap();
        for f in 0..8u64 {
            std::fs::write(d.join(format!("f{f}")), random_bytes(i * 100 + f, 400_000)).unwrap();
        }
        dirs.push(d);
    }
    // Some history, then forget most of it so prune has work.
    for d in &dirs[..2] {
        env.ok(&["backup", d.to_str().unwrap()]);
    }
    std::fs::write(dirs[0].join("f0"), random_bytes(999, 400_000)).unwrap();
    env.ok(&["backup", dirs[0].to_str().unwrap()]);
    env.ok(&["forget", "--keep-last", "1"]);
    // Backups of new data run while prune marks and a second prune sweeps (grace 0).
    let children: Vec<_> = dirs[2..].iter().map(|d| env.spawn_backup(d)).collect();
    let (code, out, err) = env.run(&["prune", "--grace", "0s"]);
    assert_eq!(code, 0, "{out}{err}");
    let mut ids = Vec::new();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "backup during prune failed: {}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        ids.push(v["snapshot"].as_str().unwrap().to_string());
    }
    let (code, out, err) = env.run(&["prune", "--grace", "0s"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = env.run(&["check", "--read-data"]);
    assert_eq!(code, 0, "{out}{err}");
    for (i, id) in ids.iter().enumerate() {
        let target = env.path().join(format!("r{i}"));
        env.ok(&["restore", id, "--target", target.to_str().unwrap()]);
        same_tree(&dirs[2 + i], &restored(&target, &dirs[2 + i]));
    }
    // The forgotten data is gone from the storage after the sweep.
    let p = env.json(&["prune", "--dry-run", "--grace", "0s"]);
    assert_eq!(p["packs_marked"], 0, "{p}");
}

#[test]
fn prune_repacks_mostly_unused_packs_and_keeps_what_is_used() {
    let env = Env::new();
    env.ok(&["init", "--pack-size-mib", "1"]);
    let src = env.path().join("data");
    std::fs::create_dir_all(&src).unwrap();
    // Ten incompressible 90 KB files: one data pack of about 900 KB.
    for f in 0..10u64 {
        std::fs::write(src.join(format!("f{f}")), random_bytes(5000 + f, 90_000)).unwrap();
    }
    // One worker: all ten in one pack (with two, how they split between packs is a race).
    env.ok(&["backup", "--workers", "1", src.to_str().unwrap()]);
    // Replace eight of them and forget the first snapshot: its pack keeps 2 of 10 live blobs.
    for f in 0..8u64 {
        std::fs::write(src.join(format!("f{f}")), random_bytes(6000 + f, 90_000)).unwrap();
    }
    env.ok(&["backup", "--workers", "1", src.to_str().unwrap()]);
    env.ok(&["forget", "--keep-last", "1"]);
    let size = |dir: &Path| -> u64 { walkdir(dir).iter().map(|p| std::fs::metadata(p).unwrap().len()).sum() };
    let data_dir = PathBuf::from(&env.repo).join("data");
    let before = size(&data_dir);
    // A dry run says what it would repack and changes nothing.
    let dry = env.json(&["prune", "--dry-run", "--grace", "0s"]);
    assert!(dry["packs_repacked"].as_u64().unwrap() >= 1, "{dry}");
    assert_eq!(size(&data_dir), before);
    // Phase 1 repacks the live blobs into a new pack and marks the old one; phase 2 (a later
    // prune past the grace period) deletes it.
    let first = env.json(&["prune", "--grace", "0s"]);
    assert!(first["packs_repacked"].as_u64().unwrap() >= 1, "{first}");
    let live = 2 * 90_000;
    let repacked = first["bytes_repacked"].as_u64().unwrap();
    assert!(repacked >= live && repacked < 3 * 90_000, "only the live blobs move: {first}");
    let second = env.json(&["prune", "--grace", "0s"]);
    assert!(second["packs_deleted"].as_u64().unwrap() >= 1, "{second}");
    let after = size(&data_dir);
    assert!(after + 6 * 90_000 < before, "space is freed: {before} -> {after}");
    let (code, out, err) = env.run(&["check", "--read-data"]);
    assert_eq!(code, 0, "{out}{err}");
    let target = env.path().join("restored");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    same_tree(&src, &restored(&target, &src));
}

/// Every file under `dir`.
fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn metric(addr: &str, name: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.lines().find(|l| l.starts_with(name)).map(str::to_string)
}

#[test]
fn daemon_runs_on_schedule_and_stops_cleanly_on_sigterm() {
    let env = Env::new();
    let src = env.path().join("data");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..40 {
        std::fs::write(src.join(format!("f{i}")), random_bytes(i, 1_000_000)).unwrap();
    }
    let job = format!(
        "name = \"fast\"\nsources = [\"{}\"]\nrepository = \"{}\"\npassword_file = \"{}\"\n[schedule]\nbackup = \"*/2 * * * * *\"\n",
        src.display(),
        env.repo,
        env.password_file.display()
    );
    let dir = jobs_dir(&env, &[("fast.toml", job)]);
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    // The jobs folder and the listen address come from a configuration file, not flags.
    let config = env.path().join("rempart.toml");
    std::fs::write(&config, format!("jobs_dir = \"jobs\"\n[daemon]\nlisten = \"{addr}\"\ngrace = \"1s\"\n"))
        .unwrap();
    let log = env.path().join("daemon.log");
    let mut daemon = env
        .std_cmd()
        .arg("--config")
        .arg(&config)
        .arg("daemon")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Wait for a first recorded success, then for a backup in progress.
    let started = Instant::now();
    while metric(&addr, "rempart_last_success_timestamp_seconds{job=\"fast\",step=\"backup\"}").is_none() {
        assert!(started.elapsed() < Duration::from_secs(60), "no backup recorded within a minute");
        std::thread::sleep(Duration::from_millis(200));
    }
    // SIGHUP with an invalid job set is refused and the daemon goes on; with a valid one the
    // new job is scheduled.
    let pid = nix::unistd::Pid::from_raw(daemon.id() as i32);
    let hup = || nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    std::fs::write(dir.join("broken.toml"), "name = \"broken\"\nsources = [").unwrap();
    hup();
    while !std::fs::read_to_string(&log).unwrap().contains("reload refused") {
        assert!(started.elapsed() < Duration::from_secs(90), "the invalid reload was not refused");
        std::thread::sleep(Duration::from_millis(100));
    }
    let small = env.path().join("small");
    std::fs::create_dir_all(&small).unwrap();
    std::fs::write(small.join("a"), b"reloaded").unwrap();
    // Its copy follows each of its backups (no schedule of its own).
    let second = format!(
        "name = \"second\"\nsources = [\"{}\"]\nrepository = \"{}\"\npassword_file = \"{}\"\n[schedule]\nbackup = \"*/2 * * * * *\"\n[[copy]]\nrepository = \"{}\"\n",
        small.display(),
        env.repo,
        env.password_file.display(),
        env.path().join("second-copy").display()
    );
    std::fs::remove_file(dir.join("broken.toml")).unwrap();
    std::fs::write(dir.join("second.toml"), second).unwrap();
    assert!(daemon.try_wait().unwrap().is_none(), "an invalid reload does not stop the daemon");
    hup();
    while metric(&addr, "rempart_last_success_timestamp_seconds{job=\"second\",step=\"backup\"}").is_none() {
        assert!(started.elapsed() < Duration::from_secs(90), "the job added by SIGHUP never ran");
        std::thread::sleep(Duration::from_millis(200));
    }
    while metric(&addr, "rempart_copy_last_run_success{job=\"second\",copy=\"copy\"} 1").is_none() {
        assert!(started.elapsed() < Duration::from_secs(90), "no copy followed the backup");
        std::thread::sleep(Duration::from_millis(200));
    }
    // New data so the next backup has work to interrupt.
    for i in 0..40 {
        std::fs::write(src.join(format!("g{i}")), random_bytes(1000 + i, 1_000_000)).unwrap();
    }
    while metric(&addr, "rempart_running{job=\"fast\",step=\"backup\"} 1").is_none() {
        assert!(started.elapsed() < Duration::from_secs(90), "no backup seen running");
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(daemon.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = daemon.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the daemon did not stop within 30 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(0), "the daemon exits 0 after SIGTERM");
    let runs = env.cmd().args(["--json", "catalog", "runs"]).output().unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    let runs = runs.as_array().unwrap();
    assert!(runs.iter().any(|r| r["status"] == "success" && r["trigger"] == "schedule"), "{runs:?}");
    assert!(
        runs.iter()
            .any(|r| r["step"] == "copy" && r["status"] == "success" && r["trigger"] == "after-backup"),
        "{runs:?}"
    );
    assert!(runs.iter().all(|r| r["status"] != "running"), "no run left running: {runs:?}");
    let (code, out, err) = env.run(&["check"]);
    assert_eq!(code, 0, "the repository passes check after the stop: {out}{err}");
    assert!(env.run(&["unlock"]).0 == 0);
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("broken.toml") && log.contains("reloaded 2 jobs"), "{log}");
}

/// GET `path` with an optional bearer token: (status code, body).
fn http_get(addr: &str, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    let auth = token.map(|t| format!("authorization: Bearer {t}\r\n")).unwrap_or_default();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n{auth}connection: close\r\n\r\n").as_bytes())
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((code, body))
}

#[test]
fn the_http_side_wants_its_token_says_why_it_is_not_ready_and_its_metrics_pass_promtool() {
    let env = Env::new();
    let src = env.path().join("data");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), b"a").unwrap();
    let job = |name: &str| {
        format!(
            "name = \"{name}\"\nsources = [\"{}\"]\nrepository = \"{}\"\npassword_file = \"{}\"\n[objectives]\nrpo = \"1d\"\nrto = \"1h\"\n[drill]\nlevel = 3\n",
            src.display(),
            env.repo,
            env.password_file.display()
        )
    };
    // The ready job keeps a copy on another disk, made right after its backup.
    let ready = format!(
        "{}[[copy]]\nname = \"usb\"\nrepository = \"{}\"\n",
        job("ready"),
        env.path().join("usb").display()
    );
    let dir = jobs_dir(&env, &[("ready.toml", ready), ("never.toml", job("never"))]);
    let (code, out, err) = with_jobs(&env, &dir, &["run", "ready"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("copy success of job 'ready'") && out.contains("1 snapshots copied"), "{out}");
    assert_eq!(with_jobs(&env, &dir, &["drill", "ready"]).0, 0);
    let token = "0123456789abcdef0123456789abcdef";
    let token_file = env.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let mut daemon = env
        .std_cmd()
        .arg("--jobs")
        .arg(&dir)
        .args(["daemon", "--listen", &addr, "--grace", "1s", "--token-file"])
        .arg(&token_file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while http_get(&addr, "/healthz", None).is_none() {
        assert!(started.elapsed() < Duration::from_secs(30), "the daemon did not answer");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(http_get(&addr, "/healthz", None).unwrap().0, 200, "liveness needs no token");
    for page in ["/metrics", "/", "/readyz", "/report"] {
        assert_eq!(http_get(&addr, page, None).unwrap().0, 401, "{page} without the token");
        assert_eq!(http_get(&addr, page, Some("wrong-token-wrong-token")).unwrap().0, 401, "{page}");
    }
    let (code, body) = http_get(&addr, "/readyz", Some(token)).unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("job never") && !body.contains("job ready"), "{body}");

    let (code, metrics) = http_get(&addr, "/metrics", Some(token)).unwrap();
    assert_eq!(code, 200);
    for want in [
        "rempart_build_info{version=",
        "rempart_job_verified{job=\"ready\"} 1",
        "rempart_job_not_verified{job=\"never\"} 0",
        "rempart_runs_total{job=\"ready\",step=\"drill\",status=\"success\"} 1",
        "rempart_job_rpo_seconds{job=\"ready\"} 86400",
        "rempart_newest_snapshot_age_seconds{job=\"ready\"}",
        "rempart_last_drill_restore_seconds{job=\"ready\"}",
        "rempart_copy_newest_snapshot_age_seconds{job=\"ready\",copy=\"usb\"}",
        "rempart_copy_last_run_success{job=\"ready\",copy=\"usb\"} 1",
    ] {
        assert!(metrics.contains(want), "{want} missing from:\n{metrics}");
    }
    let (_, page) = http_get(&addr, "/", Some(token)).unwrap();
    assert!(page.contains(">usb</span> newest snapshot"), "the dashboard shows the copy: {page}");
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package, which scripts/test installs)");
    promtool.stdin.take().unwrap().write_all(metrics.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The documented alert rules load, and every rempart metric they use is exported.
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/monitoring");
    let rules = docs.join("rempart-rules.yml");
    let out = std::process::Command::new("promtool").arg("check").arg("rules").arg(&rules).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dashboard = std::fs::read_to_string(docs.join("grafana-dashboard.json")).unwrap();
    let _: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let used = std::fs::read_to_string(&rules).unwrap() + &dashboard;
    for name in
        used.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("rempart_"))
    {
        let exported = metrics.lines().any(|l| l.starts_with(&format!("# TYPE {name} ")));
        assert!(exported, "{name} is used by the docs but not exported");
    }

    // The job that was never drilled goes; after a reload the installation is ready.
    std::fs::remove_file(dir.join("never.toml")).unwrap();
    let pid = nix::unistd::Pid::from_raw(daemon.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    loop {
        let (code, body) = http_get(&addr, "/readyz", Some(token)).unwrap();
        if code == 200 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "never ready: {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(daemon.wait().unwrap().success());
}

#[test]
fn json_logs_are_one_object_per_line_with_the_run_they_belong_to() {
    let env = Env::new();
    let src = env.path().join("data");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), b"a").unwrap();
    let job = format!(
        "name = \"logged\"\nsources = [\"{}\"]\nrepository = \"{}\"\npassword_file = \"{}\"\n",
        src.display(),
        env.repo,
        env.password_file.display()
    );
    let dir = jobs_dir(&env, &[("logged.toml", job)]);
    let (code, _, err) = with_jobs(&env, &dir, &["--log-format", "json", "-v", "run", "logged"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let end = lines.iter().find(|l| l["fields"]["status"] == "success").unwrap_or_else(|| panic!("{err}"));
    assert_eq!(end["span"]["job"], "logged", "{end}");
    assert_eq!(end["span"]["step"], "backup", "{end}");
    assert!(end["span"]["run"].as_str().is_some_and(|r| r.len() == 16), "{end}");
    assert_eq!(end["fields"]["snapshot"].as_str().map(str::len), Some(64), "{end}");
}

#[test]
fn under_systemd_the_daemon_says_ready_feeds_the_watchdog_and_says_stopping() {
    let env = Env::new();
    let dir = jobs_dir(&env, &[]);
    let socket_path = env.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut daemon = env
        .std_cmd()
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .arg("--jobs")
        .arg(&dir)
        .args(["daemon", "--listen", &format!("127.0.0.1:{port}"), "--grace", "1s"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while got.iter().filter(|m: &&String| m.as_str() == "WATCHDOG=1").count() < 3 {
        let n = socket.recv(&mut buf).expect("a notification within 30 s");
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(got[0].starts_with("READY=1\nSTATUS="), "{got:?}");
    let pid = nix::unistd::Pid::from_raw(daemon.id() as i32);
    // A reload is announced (with the monotonic time Type=notify-reload wants), then READY=1.
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    let mut reload = Vec::new();
    while reload.last().map(String::as_str) != Some("READY=1") {
        let n = socket.recv(&mut buf).expect("the reload's notifications within 30 s");
        let m = String::from_utf8_lossy(&buf[..n]).into_owned();
        if m != "WATCHDOG=1" {
            reload.push(m);
        }
    }
    assert!(reload[0].starts_with("RELOADING=1\nMONOTONIC_USEC="), "{reload:?}");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    loop {
        let n = socket.recv(&mut buf).expect("STOPPING=1 within 30 s");
        if &buf[..n] == b"STOPPING=1" {
            break;
        }
    }
    assert!(daemon.wait().unwrap().success());
}

#[test]
fn a_jobs_nice_and_ionice_reach_its_step_and_hooks_only() {
    let env = Env::new();
    let src = env.path().join("data");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.txt"), b"hello").unwrap();
    let seen = env.path().join("priority");
    let job = format!(
        "name = \"low\"\nsources = [\"{}\"]\nrepository = \"{}\"\npassword_file = \"../keys/low.pass\"\n\
         nice = 7\nionice = \"idle\"\n[hooks]\nbefore = \"cut -d' ' -f19 /proc/$$/stat > {s}; ionice -p $$ >> {s}\"\n",
        src.display(),
        env.repo,
        s = seen.display()
    );
    let dir = jobs_dir(&env, &[("low.toml", job.clone())]);
    let (code, out, err) = with_jobs(&env, &dir, &["run", "low"]);
    assert_eq!(code, 0, "{out}{err}");
    let got = std::fs::read_to_string(&seen).unwrap();
    let mut lines = got.lines();
    assert_eq!(lines.next(), Some("7"), "{got}");
    assert_eq!(lines.next(), Some("idle"), "{got}");
    // A bad setting is named with its file and key.
    std::fs::write(dir.join("low.toml"), job.replace("nice = 7", "nice = 40")).unwrap();
    let (code, _, err) = with_jobs(&env, &dir, &["run", "low"]);
    assert_ne!(code, 0);
    assert!(err.contains("nice") && err.contains("expected -20 (highest) to 19 (lowest)"), "{err}");
}

#[test]
fn drills_and_prunes_show_their_progress_and_keep_to_a_jobs_bandwidth_limit() {
    let env = Env::new();
    let src = env.path().join("data");
    std::fs::create_dir_all(&src).unwrap();
    // Small files share packs: removing most of them leaves sparse packs to repack.
    for i in 0..20 {
        std::fs::write(src.join(format!("f{i:02}")), random_bytes(i, 150_000)).unwrap();
    }
    let job = format!(
        "name = \"slow\"\nsources = [\"{}\"]\nrepository = \"{}\"\npassword_file = \"../keys/slow.pass\"\n\
         limit_download = 2048\n[drill]\nlevel = 3\n",
        src.display(),
        env.repo,
    );
    let dir = jobs_dir(&env, &[("slow.toml", job)]);
    let (code, out, err) = with_jobs(&env, &dir, &["run", "slow"]);
    assert_eq!(code, 0, "{out}{err}");
    let with_lines = |args: &[&str]| {
        let out = env
            .cmd()
            .env("REMPART_PROGRESS_INTERVAL", "0.05")
            .arg("--jobs")
            .arg(&dir)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // Level 2 reads the 3 MB once to verify them, at 2 MiB/s (1.4 s): progress lines are due.
    let started = std::time::Instant::now();
    let err = with_lines(&["drill", "slow", "--level", "2"]);
    assert!(started.elapsed() >= Duration::from_secs(1), "the job's download limit holds");
    assert!(
        err.lines().any(|l| l.starts_with("drill [") && l.contains("verifying the snapshot's data")),
        "{err}"
    );
    // Level 3 reads them once more, into the sandbox, verified as they are written (its
    // restore proves level 2: no separate pass before it).
    let started = std::time::Instant::now();
    let err = with_lines(&["drill", "slow"]);
    assert!(started.elapsed() >= Duration::from_secs(1), "the job's download limit holds");
    assert!(
        err.lines().any(|l| l.starts_with("drill [")
            && l.contains("restoring into the sandbox")
            && l.contains(" % ")),
        "{err}"
    );
    // A pack mostly unused after a forget is repacked: its live part is read at the job's limit.
    for i in 5..20 {
        std::fs::remove_file(src.join(format!("f{i:02}"))).unwrap();
    }
    let (code, out, err) = with_jobs(&env, &dir, &["run", "slow"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = with_jobs(&env, &dir, &["forget", "--job", "slow", "--keep-last", "1"]);
    assert_eq!(code, 0, "{out}{err}");
    let err = with_lines(&["prune", "--job", "slow"]);
    assert!(err.lines().any(|l| l.starts_with("prune [") && l.contains("repacking")), "{err}");
}
