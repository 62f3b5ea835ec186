//! S3 Object Lock and recovery "as of" against a real S3 server that enforces locks and keeps
//! versions: moto's standalone server, which scripts/test installs from PyPI and starts through
//! tests/moto_server.py (moto with the one rule of AWS it lacks: a COMPLIANCE lock cannot be
//! shortened). What the server holds is read with boto3 (tests/s3_admin.py), not through
//! rempart's own S3 code.

mod common;

use std::path::{Path, PathBuf};

use common::{random_bytes, restored, same_tree, Env, Jobs};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The moto settings file scripts/test writes (`REMPART_TEST_MOTO_ENV`); like the Garage tests,
/// never skipped silently.
fn moto_env() -> Option<PathBuf> {
    match std::env::var("REMPART_TEST_MOTO_ENV") {
        Ok(p) => Some(PathBuf::from(p)),
        Err(_) if std::env::var("REMPART_SKIP_S3").is_ok_and(|v| v == "1") && std::env::var("CI").is_err() => {
            eprintln!("Object Lock tests SKIPPED (REMPART_SKIP_S3=1)");
            None
        }
        Err(_) => panic!(
            "the Object Lock tests need the moto server that scripts/test starts (REMPART_TEST_MOTO_ENV); run scripts/test, or set REMPART_SKIP_S3=1 to skip them explicitly outside CI"
        ),
    }
}

/// Runs tests/s3_admin.py; returns its stdout.
fn admin(moto: &Path, args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/s3_admin.py");
    let out = std::process::Command::new("python3").arg(script).arg(moto).args(args).output().unwrap();
    assert!(out.status.success(), "s3_admin {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn bucket(moto: &Path, lock: bool) -> String {
    let name = format!("rempart-{:08x}", rand::random::<u32>());
    let mut args = vec!["create-bucket", name.as_str()];
    if lock {
        args.push("--lock");
    }
    admin(moto, &args);
    name
}

/// The current objects under `prefix` with their retention, as the server reports them.
fn objects(moto: &Path, bucket: &str, prefix: &str) -> Vec<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(&admin(moto, &["objects", bucket, prefix]))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn until(o: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(o["until"].as_str().unwrap_or_else(|| panic!("no retention: {o}")))
        .unwrap()
        .with_timezone(&chrono::Utc)
}

#[test]
fn an_immutable_copy_is_locked_outlives_an_attacker_and_restores_as_of_before() {
    let Some(moto) = moto_env() else { return };
    let bucket = bucket(&moto, true);
    let env = Env::new();
    let src = env.path().join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("big.bin"), random_bytes(7, 3_000_000)).unwrap();
    for i in 0..10 {
        std::fs::write(src.join("d").join(format!("f{i}")), random_bytes(70 + i, 10_000)).unwrap();
    }
    let url = format!("s3://{bucket}/vault");
    let jobs = Jobs::new(env);
    jobs.job(
        "web",
        &format!("\"{}\"", s(&src)),
        &format!(
            "[objectives]\nimmutable = true\n[[copy]]\nname = \"vault\"\nrepository = \"{url}\"\ns3_env_file = \"{}\"\nimmutable_for = \"30d\"\nlock_mode = \"compliance\"\n",
            s(&moto)
        ),
    );
    // jobs validate: the bucket holds locks; moto has no permissions, so the host's key can
    // delete versions, which it warns about.
    let (code, out, err) = jobs.run(&["jobs", "validate"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("can delete object versions"), "{err}");
    let before = chrono::Utc::now();
    jobs.ok(&["run", "web"]);

    // Every object but lock objects is locked in COMPLIANCE mode for 30 days + lock_refresh.
    let held = objects(&moto, &bucket, "vault/");
    let locked: Vec<_> =
        held.iter().filter(|o| !o["key"].as_str().unwrap().starts_with("vault/locks/")).collect();
    assert!(locked.len() >= 6, "{held:?}");
    for o in &locked {
        assert_eq!(o["mode"], "COMPLIANCE", "{o}");
        assert!(until(o) >= before + chrono::Duration::days(37), "{o}");
    }
    let copy_cmd = |args: &[&str]| {
        let pass = jobs.env.path().join("keys/web-vault.pass");
        let mut c = jobs.env.cmd();
        c.env("REMPART_S3_ENV_FILE", &moto).args(["-r", &url, "--password-file", s(&pass)]).args(args);
        let out = c.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = copy_cmd(&["snapshots"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("bucket: Object Lock, every live object locked until"), "{out}");
    let (code, out, err) = copy_cmd(&["--json", "immutable", "status"]);
    assert_eq!(code, 0, "{out}{err}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (status["versioning"].as_str(), status["object_lock"].as_bool()),
        (Some("Enabled"), Some(true)),
        "{status}"
    );

    // A copy into the locked repository without a lock policy (no REMPART_IMMUTABLE_FOR) is
    // refused before it writes anything: its objects would not be locked.
    std::fs::write(src.join("d/f0"), "changed").unwrap();
    jobs.env.ok(&["backup", s(&src)]);
    std::fs::write(src.join("d/f0"), random_bytes(70, 10_000)).unwrap();
    let pass = jobs.env.path().join("keys/web-vault.pass");
    let out = jobs
        .env
        .cmd()
        .env("REMPART_S3_ENV_FILE", &moto)
        .args(["copy", "--to", &url, "--to-password-file", s(&pass)])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no lock policy is set here"), "{err}");
    assert_eq!(
        objects(&moto, &bucket, "vault/")
            .iter()
            .filter(|o| !o["key"].as_str().unwrap().starts_with("vault/locks/"))
            .count(),
        locked.len()
    );

    // Maintenance extends every live object's lock (here forced, with a longer refresh).
    let extend_start = chrono::Utc::now();
    let mut c = jobs.env.cmd();
    c.env("REMPART_S3_ENV_FILE", &moto)
        .env("REMPART_IMMUTABLE_FOR", "30d")
        .env("REMPART_LOCK_REFRESH", "20d")
        .args(["-r", &url, "--json", "immutable", "extend", "--force"]);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let upkeep: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(upkeep["extended"].as_u64(), Some(locked.len() as u64), "{upkeep}");
    for o in objects(&moto, &bucket, "vault/")
        .iter()
        .filter(|o| !o["key"].as_str().unwrap().starts_with("vault/locks/"))
    {
        assert!(until(o) >= extend_start + chrono::Duration::days(50), "not extended: {o}");
    }
    // Back to the shorter default refresh: every object is already locked longer, which the
    // server refuses to shorten; the upkeep sees that and succeeds (a shortened policy, or
    // another host's newer object, must not stop backups and copies).
    let out = jobs
        .env
        .cmd()
        .env("REMPART_S3_ENV_FILE", &moto)
        .env("REMPART_IMMUTABLE_FOR", "30d")
        .args(["-r", &url, "--json", "immutable", "extend", "--force"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Readiness: a restore drill passes, but [objectives] immutable is not met until a
    // ransomware drill passes.
    let (restore_drill, rec) = jobs.drill(&["web"]);
    assert!(restore_drill, "{rec}");
    let (code, status, err) = jobs.run(&["--json", "status"]);
    assert_eq!(code, 7, "{status}{err}");
    assert!(status.contains("immutability-unproven"), "{status}{err}");

    // The ransomware drill attacks a canary beside the copy, never the copy. The server
    // (tests/moto_server.py: moto, with AWS's rule that a COMPLIANCE lock cannot be shortened)
    // refuses every version delete and every shortening: the drill passes.
    let (passed, rec) = jobs.drill(&["web", "--ransomware"]);
    let d = &rec["details"];
    let rw = &d["ransomware"];
    eprintln!("ransomware drill: {rec}");
    assert!(rw["canary"].as_str().unwrap().starts_with(&format!("{url}-ransomware-canary/")), "{rec}");
    assert!(rw["objects"].as_u64().unwrap() >= 5, "{rec}");
    assert_eq!(rw["versions_deleted"], 0, "{rec}");
    assert_eq!(rw["version_delete_refused"], rw["objects"], "{rec}");
    assert_eq!(rw["retention_shortened"], 0, "{rec}");
    assert_eq!(rw["retention_shorten_refused"], rw["objects"], "{rec}");
    assert!(rw["overwritten"].as_u64() > Some(0) && rw["deleted"].as_u64() > Some(0), "{rec}");
    assert_eq!(rw["restored_as_of"], true, "{rec}");
    assert_eq!(rw["copy_objects"].as_u64(), Some(locked.len() as u64), "{rec}");
    assert_eq!(rw["copy_objects_locked_beyond_rpo"], rw["copy_objects"], "{rec}");
    assert_eq!(d["copy"], "vault");
    assert!(passed, "{rec}");
    let (code, status, err) = jobs.run(&["--json", "status"]);
    assert_eq!(code, 0, "VERIFIED with its immutability proven: {status}{err}");

    // The PRA report's 3-2-1 line says the copy is immutable (detected) and how its
    // ransomware drill went.
    let report = jobs.ok(&["report", "--format", "md"]);
    let line = report.lines().find(|l| l.contains("Copies (3-2-1)")).unwrap_or_default();
    assert!(line.contains("vault") && line.contains("immutable (Object Lock) until"), "{report}");
    assert!(line.contains("ransomware drill passed"), "{line}");

    // The copy itself was not touched (it gained the drill's evidence records, locked too).
    let after = objects(&moto, &bucket, "vault/");
    for o in &locked {
        assert!(
            after.iter().any(|a| a["key"] == o["key"] && a["version_id"] == o["version_id"]),
            "{o} changed"
        );
    }
    let record = after.iter().find(|a| {
        a["key"].as_str().unwrap().starts_with("vault/evidence/")
            && !locked.iter().any(|o| o["key"] == a["key"])
    });
    assert_eq!(record.map(|r| r["mode"].clone()), Some(serde_json::json!("COMPLIANCE")), "{after:?}");
    let locked: Vec<_> =
        after.iter().filter(|o| !o["key"].as_str().unwrap().starts_with("vault/locks/")).collect();

    // The attacker holds the host's credentials: overwrites every object, deletes every
    // object, then tries to delete every version.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let moment = chrono::Utc::now();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let attack: serde_json::Value =
        serde_json::from_str(&admin(&moto, &["attack", &bucket, "vault/"])).unwrap();
    eprintln!("attack on the locked bucket: {attack}");
    assert!(attack["deleted"].as_u64().unwrap() >= locked.len() as u64, "{attack}");
    // Every locked version survived; only the attacker's own (unlocked) versions could go.
    assert!(attack["versions_delete_refused"].as_u64().unwrap() >= locked.len() as u64, "{attack}");
    let (code, out, err) = copy_cmd(&["snapshots"]);
    assert_ne!(code, 0, "the repository as it is now is gone: {out}{err}");

    // As of the moment before the attack, the copy is whole: listed, checked, restored.
    let at = moment.to_rfc3339();
    let (code, out, err) = copy_cmd(&["--as-of", &at, "snapshots"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("1 snapshots") && out.contains("bucket: Object Lock enabled; read from object versions"),
        "{out}"
    );
    // A cold drill of the copy as it was before the attack passes and says so.
    let (drilled, rec) = jobs.drill(&["web", "--copy", "vault", "--cold", "--as-of", &at]);
    assert!(drilled, "{rec}");
    assert_eq!(
        rec["details"]["as_of"].as_str().map(|t| t[..19].to_string()),
        Some(at[..19].to_string()),
        "{rec}"
    );
    let (code, _, err) = jobs.run(&["drill", "web", "--as-of", &at]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("needs --cold"), "{err}");
    let (code, out, err) = copy_cmd(&["--as-of", &at, "check", "--read-data"]);
    assert_eq!(code, 0, "{out}{err}");
    let target = jobs.env.path().join("restored");
    let (code, out, err) = copy_cmd(&["--as-of", &at, "restore", "latest", "--target", s(&target)]);
    assert_eq!(code, 0, "{out}{err}");
    same_tree(&src, &restored(&target, &src));
    // The past cannot be written.
    let (code, _, err) = copy_cmd(&["--as-of", &at, "forget", "latest"]);
    assert_ne!(code, 0);
    assert!(err.contains("as of") && err.contains("cannot be written"), "{err}");
}

#[test]
fn the_ransomware_drill_fails_where_the_attacker_wins() {
    let Some(moto) = moto_env() else { return };
    let plain = bucket(&moto, false);
    let env = Env::new();
    let src = env.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), random_bytes(3, 50_000)).unwrap();
    let jobs = Jobs::new(env);
    jobs.job(
        "web",
        &format!("\"{}\"", s(&src)),
        &format!("[[copy]]\nrepository = \"s3://{plain}/vault\"\ns3_env_file = \"{}\"\n", s(&moto)),
    );
    jobs.ok(&["run", "web"]);
    // As the daemon runs it on schedule.ransomware: the ransomware step.
    let (code, out, err) = jobs.run(&["--json", "run", "web", "--step", "ransomware"]);
    let rec: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    eprintln!("ransomware drill on an unlocked bucket: {rec}");
    assert_ne!(code, 0, "{rec}");
    assert_eq!((rec["step"].as_str(), rec["status"].as_str()), (Some("ransomware"), Some("failed")), "{rec}");
    let rw = &rec["details"]["ransomware"];
    assert_eq!(rw["bucket_object_lock"], false, "{rec}");
    assert!(rw["versions_deleted"].as_u64().unwrap() > 0, "the attacker wins here: {rec}");
    assert_eq!(rw["restored_as_of"], false, "{rec}");
    let report = jobs.ok(&["report", "--format", "md"]);
    let line = report.lines().find(|l| l.contains("Copies (3-2-1)")).unwrap_or_default();
    assert!(line.contains("not immutable") && line.contains("ransomware drill FAILED"), "{line}");
    // The record is in the ledger: a failed drill of the copy.
    let (_, status, err) = jobs.run(&["--json", "status"]);
    assert!(status.contains("\"web\""), "{status}{err}");
}

#[test]
fn locks_are_refused_where_the_bucket_cannot_hold_them() {
    let Some(moto) = moto_env() else { return };
    let plain = bucket(&moto, false);
    let env = Env::new();
    let src = env.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), "a").unwrap();
    let jobs = Jobs::new(env);
    jobs.job(
        "web",
        &format!("\"{}\"", s(&src)),
        &format!(
            "[[copy]]\nrepository = \"s3://{plain}/vault\"\ns3_env_file = \"{}\"\nimmutable_for = \"30d\"\n",
            s(&moto)
        ),
    );
    let (code, out, err) = jobs.run(&["jobs", "validate"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("immutable_for") && err.contains("has no Object Lock"), "{err}");
    let (code, out, err) = jobs.run(&["run", "web"]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        format!("{out}{err}").contains("has no Object Lock") && format!("{out}{err}").contains("s3://"),
        "{out}{err}"
    );
    // Nothing was written unlocked on the way.
    assert!(objects(&moto, &plain, "vault/").is_empty());

    // --as-of needs object versions: a local repository says what to do instead.
    let (code, _, err) = jobs.env.run(&["--as-of", "2026-01-01T00:00:00Z", "snapshots"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--as-of") && err.contains("local folder"), "{err}");
    let (code, _, err) = jobs.env.run(&["--as-of", "yesterday", "snapshots"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("'yesterday' is not a time"), "{err}");
}

#[test]
fn the_daemon_runs_the_ransomware_drill_on_its_schedule() {
    let Some(moto) = moto_env() else { return };
    let bucket = bucket(&moto, true);
    let env = Env::new();
    let src = env.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), random_bytes(9, 20_000)).unwrap();
    let jobs = Jobs::new(env);
    jobs.job(
        "web",
        &format!("\"{}\"", s(&src)),
        &format!(
            "[objectives]\nimmutable = true\n[schedule]\nransomware = \"*/4 * * * * *\"\ndrill = \"*/4 * * * * *\"\n[[copy]]\nname = \"vault\"\nrepository = \"s3://{bucket}/vault\"\ns3_env_file = \"{}\"\nimmutable_for = \"2d\"\n",
            s(&moto)
        ),
    );
    // The copy exists before the daemon starts (a drill before it would fail, rightly).
    jobs.ok(&["run", "web"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut daemon = jobs
        .env
        .std_cmd()
        .arg("--jobs")
        .arg(&jobs.dir)
        .args(["daemon", "--listen", &format!("127.0.0.1:{port}"), "--grace", "1s"])
        .stderr(std::fs::File::create(jobs.env.path().join("daemon.log")).unwrap())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let scheduled = |runs: &serde_json::Value, step: &str| {
        runs.as_array().and_then(|a| {
            a.iter()
                .find(|r| r["step"] == step && r["trigger"] == "schedule" && r["status"] != "running")
                .cloned()
        })
    };
    // Both the restore drill and the ransomware drill run on their schedules.
    let drill = loop {
        let out = jobs.env.cmd().args(["--json", "catalog", "runs"]).output().unwrap();
        let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if let (Some(d), Some(_)) = (scheduled(&runs, "ransomware"), scheduled(&runs, "drill")) {
            break d;
        }
        if started.elapsed() > std::time::Duration::from_secs(90) {
            let _ = daemon.kill();
            panic!(
                "no scheduled ransomware drill within 90 s: {}",
                std::fs::read_to_string(jobs.env.path().join("daemon.log")).unwrap()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(daemon.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    assert_eq!(daemon.wait().unwrap().code(), Some(0));
    let rw = &drill["details"]["ransomware"];
    assert_eq!(drill["status"], "success", "{drill}");
    assert_eq!(rw["restored_as_of"], true, "{drill}");
    assert_eq!(drill["details"]["copy"], "vault", "{drill}");
    // The job is VERIFIED, and its 3-2-1 line says the copy is immutable and proven so.
    let (code, status, err) = jobs.run(&["--json", "status"]);
    assert_eq!(code, 0, "{status}{err}");
    let report = jobs.ok(&["report", "--format", "md"]);
    let line = report.lines().find(|l| l.contains("Copies (3-2-1)")).unwrap_or_default();
    assert!(
        line.contains("immutable (Object Lock) until") && line.contains("ransomware drill passed"),
        "{report}"
    );
}
