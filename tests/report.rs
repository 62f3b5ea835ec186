//! The PRA report: figures checked against values computed by hand from a known history with a
//! fixed clock; the JSON against its schema; the HTML report and the live dashboard loaded in
//! headless Chromium (screenshots kept in test-artifacts/).

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::Env;
use rempart::catalog::{Catalog, RunRecord};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn run(job: &str, step: &str, status: &str, at: &str, details: serde_json::Value) -> RunRecord {
    RunRecord {
        run_id: format!("{step}-{at}"),
        job: job.into(),
        step: rempart::catalog::Step::parse(step).unwrap(),
        trigger: "schedule".into(),
        host: "h".into(),
        operator: "scheduler".into(),
        repository: "/r".into(),
        started: t(at),
        ended: Some(t(at) + chrono::Duration::minutes(5)),
        outcome: rempart::catalog::RunOutcome {
            status: rempart::catalog::Status::parse(status),
            error: (status != "success").then(|| format!("{step} broke")),
            details: rempart::catalog::StepDetails::decode(
                rempart::catalog::Step::parse(step).unwrap(),
                details,
            ),
            ..Default::default()
        },
        attempts: None,
        definition_hash: None,
    }
}

fn artifacts() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test-artifacts");
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn report_figures_match_a_hand_computed_history() {
    let env = Env::new();
    let jobs_dir = env.path().join("jobs");
    std::fs::create_dir_all(&jobs_dir).unwrap();
    std::fs::write(
        jobs_dir.join("app.toml"),
        format!("name = \"app\"\nsources = [\"{}\"]\n[objectives]\nrpo = \"26h\"\nrto = \"5m\"\n[drill]\nlevel = 3\ninterval = \"7d\"\n", env.path().display()),
    )
    .unwrap();
    let defaults = rempart::jobs::Defaults::new(&jobs_dir, &env.state_dir, None);
    let jobs = rempart::jobs::load_dir(&jobs_dir, &defaults).unwrap();
    let job = &jobs[0];

    let drill = |level: u64, rto_ms: Option<u64>| serde_json::json!({ "level_reached": level, "rto_actual_ms": rto_ms, "target": "sandbox", "segregated": true, "files_verified": 12, "bytes_verified": 3400, "rows_verified": 0 });
    let history = vec![
        run("app", "backup", "success", "2026-10-15T02:00:00Z", serde_json::json!({})),
        run("app", "backup", "success", "2026-11-01T02:00:00Z", serde_json::json!({})),
        run("app", "backup", "success", "2026-11-02T02:00:00Z", serde_json::json!({})),
        run("app", "backup", "failed", "2026-11-03T02:00:00Z", serde_json::json!({})),
        run("app", "backup", "success", "2026-11-04T02:00:00Z", serde_json::json!({})),
        run("app", "drill", "success", "2026-11-05T03:00:00Z", drill(3, Some(120_000))),
        run("app", "backup", "success", "2026-11-10T02:00:00Z", serde_json::json!({})),
        run("app", "backup", "interrupted", "2026-11-12T02:00:00Z", serde_json::json!({})),
        run("app", "drill", "success", "2026-11-15T03:00:00Z", drill(3, Some(400_000))),
        run("app", "check", "success", "2026-11-16T04:00:00Z", serde_json::json!({})),
        run("app", "backup", "success", "2026-11-19T02:00:00Z", serde_json::json!({})),
        run("app", "drill", "failed", "2026-11-19T03:00:00Z", drill(1, None)),
    ];
    // The same drills in the ledger (readiness comes from the ledger).
    let mut catalog = Catalog::open(&env.state_dir).unwrap();
    let key = rempart::evidence::key::load_or_create(&env.path().join("keys")).unwrap();
    for r in &history {
        catalog.record(r).unwrap();
        let record = rempart::evidence::record::EvidenceRecord::from_run(job, r, "repo");
        rempart::evidence::ledger::append(&mut catalog, &key, "h/repo", record).unwrap();
    }
    let runs = catalog.runs(None, t("2000-01-01T00:00:00Z")).unwrap();
    let ledger = rempart::evidence::ledger::entries(&mut catalog, None).unwrap();
    // The audit as the one verification makes it: every record has its repository copy.
    let pem = rempart::evidence::key::public_pem(&key);
    let copies = ledger
        .iter()
        .map(|e| rempart::evidence::ledger::RepoCopy { entry: e.clone(), public_key_pem: pem.clone() })
        .collect();
    let repos =
        vec![rempart::evidence::verify::RepoEvidence { repository_id: "repo".into(), copies, keys: vec![] }];
    let job_repos = HashMap::from([("app".to_string(), Ok("repo".to_string()))]);
    let audit = rempart::evidence::audit::Audit::from_parts(
        ledger.clone(),
        repos,
        vec![],
        job_repos,
        Some(&key.verifying_key()),
        &[],
        &Default::default(),
    );
    assert!(audit.verdict.intact(), "{:?}", audit.verdict.findings);
    let ready: HashMap<String, _> = jobs
        .iter()
        .map(|j| {
            (j.name.clone(), rempart::evidence::readiness::readiness(j, &audit, t("2026-11-20T12:00:00Z")))
        })
        .collect();
    let mut points = HashMap::new();
    points.insert(
        "app".to_string(),
        vec![t("2026-11-10T02:00:00Z"), t("2026-11-04T02:00:00Z"), t("2026-11-19T02:00:00Z")],
    );
    let now = t("2026-11-20T12:00:00Z");
    let report = rempart::report::model::build(
        &jobs,
        &runs,
        &ready,
        &points,
        Default::default(),
        now,
        Duration::from_secs(30 * 86_400),
    );
    let j = &report.jobs[0];

    // Period: 2026-10-21T12:00 to 2026-11-20T12:00.
    assert_eq!(report.period_start, t("2026-10-21T12:00:00Z"));
    // Backups in the period: 7, of which 5 succeeded (the interrupted one counts as failed).
    assert_eq!((j.backups_total, j.backups_ok), (7, 5));
    assert!((j.backup_success_rate.unwrap() - 5.0 / 7.0).abs() < 1e-9);
    // Age of the last success: 11-19 02:00 to 11-20 12:00 = 34 h, beyond the 26 h RPO.
    assert_eq!(j.current_backup_age_secs, Some(34 * 3600));
    assert_eq!(j.rpo_met_now, Some(false));
    // Worst gap: the job existed before the period, so from 10-21 12:00 to 11-01 02:00 =
    // 10 days 14 hours (longer than 11-10 to 11-19, 9 days, and than the others).
    assert_eq!(j.worst_gap_secs, Some(10 * 86_400 + 14 * 3600));
    // RTO: last measured 400 s (the failed drill measured nothing), worst 400 s > 300 s.
    assert_eq!(j.rto_last_secs, Some(400.0));
    assert_eq!(j.rto_worst_secs, Some(400.0));
    // Drills due every 7 days from the start of the period: 10-21 to 11-05 (14 days) and
    // 11-05 to 11-15 (10 days) are overdue; 11-15 to now (5 days) is not.
    assert_eq!(j.drills_overdue, 2);
    // Restore points.
    assert_eq!(j.restore_points, 3);
    assert_eq!(j.oldest_restore_point, Some(t("2026-11-04T02:00:00Z")));
    assert_eq!(j.newest_restore_point, Some(t("2026-11-19T02:00:00Z")));
    // Last check, last drill, readiness.
    assert_eq!(j.last_check, Some(t("2026-11-16T04:00:00Z")));
    assert_eq!(j.last_check_ok, Some(true));
    let last = j.last_drill.as_ref().unwrap();
    assert!(!last.passed && last.level == 1);
    assert_eq!(j.readiness, rempart::evidence::readiness::State::NotVerified);
    assert!(
        matches!(&j.cause, rempart::evidence::readiness::Cause::LastDrillFailed { ended, .. } if ended.starts_with("2026-11-19T03:05")),
        "{:?}",
        j.cause
    );
    assert_eq!(j.failures.len(), 3, "two backups and one drill failed");
    let mut def = j.deficiencies.clone();
    def.sort();
    assert_eq!(def, ["backup-failures", "drill-failed", "rpo-now", "rto-exceeded"]);

    // The JSON validates against the published schema.
    let json_path = env.path().join("report.json");
    std::fs::write(&json_path, rempart::report::render::json(&report)).unwrap();
    let schema = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/report-schema.json");
    let out = Command::new("python3")
        .args(["-c", "import json,sys,jsonschema; jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))); print('valid')"])
        .arg(&json_path)
        .arg(&schema)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "schema validation (python3 jsonschema, installed by scripts/test): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // French wording.
    let fr = rempart::report::render::markdown(&report, rempart::report::i18n::Lang::Fr);
    assert!(
        fr.contains("Rapport de préparation au PRA")
            && fr.contains("NON RESPECTÉ")
            && fr.contains("Écarts et actions")
            && fr.contains("| app | **NOT VERIFIED** | le dernier exercice (2026-11-19T03:05"),
        "{fr}"
    );
    let en = rempart::report::render::markdown(&report, rempart::report::i18n::Lang::En);
    assert!(en.contains("| app | **NOT VERIFIED** | the last drill (2026-11-19T03:05"), "{en}");
}

fn chromium(args: &[&str], url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1600",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium (installed by scripts/test)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn html_report_and_dashboard_render_in_chromium() {
    let env = Env::new();
    let src = env.path().join("site");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("index.html"), b"<p>hi</p>").unwrap();
    let jobs_dir = env.path().join("jobs");
    std::fs::create_dir_all(&jobs_dir).unwrap();
    std::fs::write(
        jobs_dir.join("site.toml"),
        format!(
            "name = \"site\"\nsources = [\"{}\"]\nrepository = \"{}\"\npassword_file = \"{}\"\n[objectives]\nrpo = \"1d\"\nrto = \"10m\"\n[drill]\nlevel = 3\n",
            src.display(),
            env.repo,
            env.password_file.display()
        ),
    )
    .unwrap();
    let rp = |args: &[&str]| {
        let out = env.cmd().arg("--jobs").arg(&jobs_dir).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    env.init();
    rp(&["run", "site"]);
    rp(&["run", "site", "--step", "check"]);
    rp(&["drill", "site"]);
    let html = artifacts().join("report.html");
    rp(&["report", "-o", html.to_str().unwrap()]);
    let dom = chromium(&["--dump-dom"], &format!("file://{}", html.display()));
    for needle in [
        "id=\"summary\"",
        "class=\"summary-row\"",
        "VERIFIED",
        "class=\"timeline\"",
        "class=\"rto-trend\"",
        "class=\"backup ok\"",
        "class=\"drill ok\"",
        "id=\"evidence\"",
        "intact",
        "id=\"deficiencies\"",
    ] {
        assert!(dom.contains(needle), "report DOM lacks {needle}");
    }
    for external in ["src=\"http", "href=\"http", "url(http", "<link", "<script src"] {
        assert!(!dom.contains(external), "the report loads no external asset ({external})");
    }
    chromium(
        &[&format!("--screenshot={}", artifacts().join("report.png").display())],
        &format!("file://{}", html.display()),
    );
    assert!(artifacts().join("report.png").metadata().unwrap().len() > 10_000);

    // The dashboard of a running daemon.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let mut daemon = env
        .std_cmd()
        .arg("--jobs")
        .arg(&jobs_dir)
        .args(["daemon", "--listen", &format!("127.0.0.1:{port}")])
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "daemon did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    let dom = chromium(&["--dump-dom"], &format!("{base}/"));
    for needle in ["id=\"jobs\"", "data-job=\"site\"", "VERIFIED", "backup", "/job/site"] {
        assert!(dom.contains(needle), "dashboard DOM lacks {needle}: {dom}");
    }
    chromium(
        &[&format!("--screenshot={}", artifacts().join("dashboard.png").display())],
        &format!("{base}/"),
    );
    let job = chromium(&["--dump-dom"], &format!("{base}/job/site"));
    assert!(
        job.contains("class=\"timeline\"") && job.contains("class=\"rto-trend\""),
        "job page lacks its charts"
    );
    let report = chromium(&["--dump-dom"], &format!("{base}/report"));
    assert!(report.contains("id=\"summary\""), "/report lacks the report");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(daemon.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    assert_eq!(daemon.wait().unwrap().code(), Some(0));
}
