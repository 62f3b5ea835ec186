//! End-to-end regressions for proof that must not lie: a drill check that escapes the restored
//! copy, absurd check settings, operator typos signed as failed drills, a second daemon on the
//! same state, a comment that changed readiness, and a run recorded nowhere.

mod common;

use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Env, Jobs, Mount};

fn status_of(jobs: &Jobs, job: &str) -> (i32, String) {
    let (code, out, _) = jobs.run(&["--json", "status"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let state = v
        .as_array()
        .and_then(|a| a.iter().find(|j| j["job"] == job))
        .map(|j| j["state"].as_str().unwrap().to_string())
        .unwrap_or_default();
    (code, state)
}

fn drill_records(jobs: &Jobs) -> usize {
    let out = jobs.ok(&["evidence", "export"]);
    out.lines()
        .filter(|l| l.contains("\"step\":\"drill\"") || l.contains("\\\"step\\\":\\\"drill\\\""))
        .count()
}

#[test]
fn drill_checks_stay_inside_the_restored_copy_and_absurd_settings_are_refused() {
    let jobs = Jobs::new(Env::new());
    let src = jobs.env.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("data.txt"), b"data").unwrap();
    std::os::unix::fs::symlink("/etc", src.join("etc-link")).unwrap();
    jobs.env.init();
    let src_s = src.display().to_string();
    for (check, key) in [
        ("kind = \"file_exists\"\npath = \"/../../../../etc/passwd\"", "drill.checks.path"),
        ("kind = \"spot_check\"\nsample_percent = nan", "drill.checks.sample_percent"),
        (
            "kind = \"spot_check\"\nsample_percent = 10.0\ndata_tolerance_percent = inf",
            "drill.checks.data_tolerance_percent",
        ),
    ] {
        jobs.job("j", &format!("\"{src_s}\""), &format!("[drill]\nlevel = 4\n\n[[drill.checks]]\n{check}\n"));
        let (code, out, err) = jobs.run(&["jobs", "validate"]);
        assert_eq!(code, 2, "{check}: {out}{err}");
        assert!(format!("{out}{err}").contains(key), "{check}: the key is named: {out}{err}");
    }
    // Through a symlink of the restored copy, a check would read the host's own /etc/passwd.
    jobs.job(
        "j",
        &format!("\"{src_s}\""),
        &format!("[drill]\nlevel = 4\n\n[[drill.checks]]\nkind = \"file_exists\"\npath = \"{src_s}/etc-link/passwd\"\n"),
    );
    jobs.ok(&["run", "j"]);
    let (passed, rec) = jobs.drill(&["j"]);
    assert!(!passed, "a check that leaves the restored copy must fail: {rec}");
    assert!(rec.to_string().contains("not followed"), "{rec}");
    jobs.job(
        "j",
        &format!("\"{src_s}\""),
        &format!(
            "[drill]\nlevel = 4\n\n[[drill.checks]]\nkind = \"file_exists\"\npath = \"{src_s}/data.txt\"\n"
        ),
    );
    let (passed, rec) = jobs.drill(&["j"]);
    assert!(passed, "{rec}");
}

#[test]
fn operator_typos_are_usage_errors_and_never_drill_results() {
    let jobs = Jobs::new(Env::new());
    let src = jobs.env.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), b"a").unwrap();
    jobs.env.init();
    jobs.job("j", &format!("\"{}\"", src.display()), "[drill]\nlevel = 2\n");
    jobs.ok(&["run", "j"]);
    let before = drill_records(&jobs);
    let (code, _, err) = jobs.run(&["drill", "j", "--snapshot", "zzzz"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = jobs.run(&["drill", "j", "--snapshot", "abcdef12"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no snapshot 'abcdef12'"), "{err}");
    // A recovery file of another repository is named as such.
    let other = Env::new();
    other.init();
    let rec_file = other.path().join("other-recovery.json");
    other.ok(&["key", "export", "-o", rec_file.to_str().unwrap()]);
    let (code, _, err) = jobs.run(&["--recovery-file", rec_file.to_str().unwrap(), "drill", "j", "--cold"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("belongs to repository") && !err.contains("integrity damage"), "{err}");
    assert_eq!(drill_records(&jobs), before, "a usage error was signed into the ledger");
    assert_eq!(status_of(&jobs, "j").1, "NEEDS VERIFIED");
}

#[test]
fn readiness_follows_the_meaning_of_a_job_not_its_bytes() {
    let jobs = Jobs::new(Env::new());
    let src = jobs.env.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), b"a").unwrap();
    jobs.env.init();
    let sources = format!("\"{}\"", src.display());
    jobs.job("j", &sources, "[drill]\nlevel = 2\n\n[retention]\nkeep_daily = 7\n");
    jobs.ok(&["run", "j"]);
    assert!(jobs.drill(&["j"]).0);
    assert_eq!(status_of(&jobs, "j"), (0, "VERIFIED".into()));
    // A comment and some spacing: the same job.
    jobs.job(
        "j",
        &sources,
        "# reviewed by ops\n[drill]\nlevel   =   2\n\n[retention]\nkeep_daily = 7   # a week\n",
    );
    assert_eq!(status_of(&jobs, "j"), (0, "VERIFIED".into()), "a comment changed readiness");
    // A real change.
    jobs.job("j", &sources, "[drill]\nlevel = 2\n\n[retention]\nkeep_daily = 8\n");
    assert_eq!(status_of(&jobs, "j"), (7, "NEEDS VERIFIED".into()));
}

#[test]
fn one_daemon_per_state_directory() {
    let jobs = Jobs::new(Env::new());
    jobs.env.init();
    let src = jobs.env.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    jobs.job("j", &format!("\"{}\"", src.display()), "");
    let mut first = jobs
        .env
        .std_cmd()
        .arg("--jobs")
        .arg(&jobs.dir)
        .args(["daemon", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(first.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("rempart daemon"), "{line}");
    let started = Instant::now();
    let (code, _, err) = jobs.run(&["daemon", "--listen", "127.0.0.1:0"]);
    assert_eq!(code, 5, "a second daemon must refuse: {err}");
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(first.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    first.wait().unwrap();
}

#[test]
fn a_run_whose_evidence_cannot_be_written_fails() {
    let jobs = Jobs::new(Env::new());
    let state = jobs.env.state_dir.clone();
    let disk = Mount::tmpfs(&state, "3M");
    let src = jobs.env.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), b"a").unwrap();
    jobs.env.init();
    jobs.job("j", &format!("\"{}\"", src.display()), "");
    jobs.ok(&["run", "j"]);
    // Fill the state directory's file system.
    let filler = state.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let block = vec![7u8; 64 * 1024];
    while std::io::Write::write_all(&mut f, &block).is_ok() {}
    drop(f);
    let (code, out, err) = jobs.run(&["run", "j"]);
    assert_eq!(code, 1, "a run recorded nowhere must not succeed\n{out}{err}");
    assert!(err.contains("evidence") || err.contains("catalog"), "{err}");
    drop(disk);
    assert!(Path::new(&jobs.env.repo).exists());
}
