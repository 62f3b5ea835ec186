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

/// A fresh environment with an initialised repository and a source folder holding one file.
fn one_file_source() -> (Jobs, std::path::PathBuf) {
    let jobs = Jobs::new(Env::new());
    let src = jobs.env.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), b"a").unwrap();
    jobs.env.init();
    (jobs, src)
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
    let (jobs, src) = one_file_source();
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
    let (jobs, src) = one_file_source();
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

/// A job with one passing drill; returns the jobs folder and the source.
fn drilled_job() -> (Jobs, std::path::PathBuf) {
    let (jobs, src) = one_file_source();
    jobs.job("j", &format!("\"{}\"", src.display()), "[drill]\nlevel = 3\n");
    jobs.ok(&["run", "j"]);
    assert!(jobs.drill(&["j"]).0);
    assert_eq!(status_of(&jobs, "j"), (0, "VERIFIED".into()));
    (jobs, src)
}

fn sql(jobs: &Jobs, q: &str) {
    let db = jobs.env.state_dir.join("catalog.db");
    rusqlite::Connection::open(db).unwrap().execute_batch(q).unwrap();
}

fn key_fingerprint(jobs: &Jobs) -> String {
    let (_, out, _) = jobs.run(&["--json", "evidence", "verify"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v["verdict"]["key_fingerprint"].as_str().unwrap().to_string()
}

#[test]
fn forged_records_in_another_chain_never_make_a_job_verified() {
    for signed_with_local_key in [false, true] {
        let jobs = Jobs::new(Env::new());
        let src = jobs.env.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("a"), b"a").unwrap();
        jobs.env.init();
        jobs.job("j", &format!("\"{}\"", src.display()), "[drill]\nlevel = 2\n");
        jobs.ok(&["run", "j"]);
        // A failing drill makes the job NOT VERIFIED...
        let repo_dir = Path::new(&jobs.env.repo).join("data");
        let renamed = jobs.env.path().join("data-away");
        std::fs::rename(&repo_dir, &renamed).unwrap();
        assert!(!jobs.drill(&["j"]).0);
        std::fs::rename(&renamed, &repo_dir).unwrap();
        assert_eq!(status_of(&jobs, "j"), (7, "NOT VERIFIED".into()));
        // ...and a record forged into another chain claims a passing drill, newer.
        let db = jobs.env.state_dir.join("catalog.db");
        let c = rusqlite::Connection::open(&db).unwrap();
        let (canonical, chain): (String, String) = c
            .query_row("select canonical, chain from evidence where canonical like '%\"step\":\"drill\"%' order by rowid desc limit 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        let repo_id = chain.rsplit_once('/').unwrap().1.to_string();
        let forged_chain = format!("forged-host/{repo_id}");
        let mut v: serde_json::Value = serde_json::from_str(&canonical).unwrap();
        v["outcome"] = "success".into();
        v["errors"] = serde_json::json!([]);
        v["level_reached"] = 4.into();
        v["ended"] = "2099-01-01T00:00:00.000Z".into();
        v["chain"] = forged_chain.clone().into();
        v["seq"] = 1.into();
        v["prev"] = rempart::evidence::ledger::GENESIS.into();
        v["record_id"] = "forged".into();
        let text = rempart::evidence::record::canonical(&v);
        let hash = rempart::evidence::ledger::sha256_hex(&text);
        let sig = if signed_with_local_key {
            let key_hex =
                std::fs::read_to_string(jobs.dir.parent().unwrap().join("keys/evidence.key")).unwrap();
            let mut b = [0u8; 32];
            hex::decode_to_slice(key_hex.trim(), &mut b).unwrap();
            use ed25519_dalek::Signer;
            rempart::evidence::key::b64(
                &ed25519_dalek::SigningKey::from_bytes(&b).sign(text.as_bytes()).to_bytes(),
            )
        } else {
            rempart::evidence::key::b64(&[7u8; 64])
        };
        c.execute(
            "insert into evidence (chain, seq, record_id, canonical, hash, signature) values (?1, 1, 'forged', ?2, ?3, ?4)",
            rusqlite::params![forged_chain, text, hash, sig],
        )
        .unwrap();
        drop(c);
        let (code, state) = status_of(&jobs, "j");
        assert_eq!((code, state.as_str()), (7, "NOT VERIFIED"), "local key: {signed_with_local_key}");
        let (_, out, _) = jobs.run(&["--json", "status"]);
        assert!(out.contains("evidence-tampered"), "{out}");
        let (code, _, err) = jobs.run(&["evidence", "verify"]);
        assert_eq!(code, 4, "{err}");
        assert!(err.contains("forged-host"), "{err}");
    }
}

#[test]
fn verification_never_calls_fewer_records_intact_and_every_reader_agrees() {
    let (jobs, _) = drilled_job();
    // From a folder whose jobs/ does not reach the repository the records came from.
    let elsewhere = Jobs::new(Env::new());
    std::fs::create_dir_all(&elsewhere.dir).unwrap();
    let out = jobs.env.cmd().arg("--jobs").arg(&elsewhere.dir).args(["evidence", "verify"]).output().unwrap();
    let (code, stdout, stderr) = (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(!stdout.contains("is intact"), "{stdout}");
    assert!(stderr.contains("2 of 2 records could not be compared"), "{stderr}");

    // A ledger row deleted: status, the report and verify all say so.
    sql(&jobs, "delete from evidence where seq = 1");
    assert_eq!(status_of(&jobs, "j"), (7, "NOT VERIFIED".into()));
    let (code, _, _) = jobs.run(&["evidence", "verify"]);
    assert_eq!(code, 4);
    let report = jobs.ok(&["report", "--format", "json"]);
    let r: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(r["jobs"][0]["readiness"], "NOT VERIFIED", "{report}");
    assert_eq!(r["evidence"]["verified"], false, "{report}");
    let md = jobs.ok(&["report", "--format", "md"]);
    assert!(md.contains("NOT VERIFIED") && !md.contains("verification: intact"), "{md}");
}

#[test]
fn a_replaced_key_that_re_signed_everything_is_tampering_for_the_report_too() {
    let (jobs, _) = drilled_job();
    let key_path = jobs.dir.parent().unwrap().join("keys/evidence.key");
    let new_key = ed25519_dalek::SigningKey::from_bytes(&[42u8; 32]);
    std::fs::write(&key_path, hex::encode(new_key.to_bytes())).unwrap();
    // Re-sign every record with the new key (hashes and links stay valid).
    let db = jobs.env.state_dir.join("catalog.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    let rows: Vec<(i64, String)> = c
        .prepare("select rowid, canonical from evidence")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    for (rowid, text) in rows {
        use ed25519_dalek::Signer;
        let sig = rempart::evidence::key::b64(&new_key.sign(text.as_bytes()).to_bytes());
        c.execute("update evidence set signature = ?1 where rowid = ?2", rusqlite::params![sig, rowid])
            .unwrap();
    }
    drop(c);
    let (code, out, err) = jobs.run(&["evidence", "verify"]);
    assert_eq!(code, 4, "{out}{err}");
    let md = jobs.ok(&["report", "--format", "md"]);
    assert!(!md.contains("verification: intact"), "the report must not call it intact: {md}");
    assert_eq!(status_of(&jobs, "j").1, "NOT VERIFIED");
}

#[test]
fn an_auditors_export_stands_alone_and_catches_forgery_and_truncation() {
    let (jobs, _) = drilled_job();
    std::thread::sleep(Duration::from_millis(1500));
    jobs.ok(&["run", "j"]);
    assert!(jobs.drill(&["j"]).0);
    let fp = key_fingerprint(&jobs);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/verify-evidence");
    let check = |name: &str, text: &str| -> (bool, bool) {
        let f = jobs.env.path().join(name);
        std::fs::write(&f, text).unwrap();
        let py = std::process::Command::new(&script).arg(&f).arg(&fp).output().unwrap();
        let (code, _, _) =
            jobs.run(&["evidence", "verify-export", f.to_str().unwrap(), "--key-fingerprint", &fp]);
        (py.status.success(), code == 0)
    };
    let full = jobs.ok(&["evidence", "export"]);
    assert_eq!(check("full.jsonl", &full), (true, true));
    // A window: only the last records, anchored on the one before; it verifies on its own.
    let window = jobs.ok(&["evidence", "export", "--since", "1s"]);
    assert!(window.lines().count() < full.lines().count() && window.lines().count() > 1, "{window}");
    assert_eq!(check("window.jsonl", &window), (true, true));
    // The last line cut off.
    let mut cut: Vec<&str> = full.lines().collect();
    cut.pop();
    assert_eq!(check("cut.jsonl", &(cut.join("\n") + "\n")), (false, false));
    // One record appended, signed by a fresh key.
    let last: serde_json::Value = serde_json::from_str(full.lines().last().unwrap()).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(last["canonical"].as_str().unwrap()).unwrap();
    v["seq"] = (v["seq"].as_u64().unwrap() + 1).into();
    v["prev"] = last["hash"].clone();
    v["record_id"] = "appended".into();
    let text = rempart::evidence::record::canonical(&v);
    let attacker = ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]);
    use ed25519_dalek::Signer;
    let line = serde_json::json!({
        "chain": last["chain"], "seq": v["seq"], "record_id": "appended", "canonical": text,
        "hash": rempart::evidence::ledger::sha256_hex(&text), "prev": last["hash"],
        "signature": rempart::evidence::key::b64(&attacker.sign(text.as_bytes()).to_bytes()),
    });
    assert_eq!(check("appended.jsonl", &format!("{full}{line}\n")), (false, false));
    // The whole export re-signed by the attacker (its own key in the header).
    let mut header: serde_json::Value = serde_json::from_str(full.lines().next().unwrap()).unwrap();
    header["public_key_pem"] = rempart::evidence::key::public_pem(&attacker).into();
    let resigned =
        format!("{header}\n{}", full.lines().skip(1).map(|l| format!("{l}\n")).collect::<String>());
    assert_eq!(check("resigned.jsonl", &resigned), (false, false));
    // A whole chain removed (its window and its records): the signed header still names it.
    let mut header: serde_json::Value = serde_json::from_str(full.lines().next().unwrap()).unwrap();
    header["chains"] = serde_json::json!([]);
    assert_eq!(check("no-chain.jsonl", &format!("{header}\n")), (false, false));
    // A window with no record in it: its head is its anchor, and it verifies.
    std::thread::sleep(Duration::from_millis(1100));
    let empty = jobs.ok(&["evidence", "export", "--since", "1s"]);
    assert_eq!(empty.lines().count(), 1, "{empty}");
    assert_eq!(check("empty.jsonl", &empty), (true, true));
    let head = |text: &str| {
        let h: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        (h["chains"][0]["head_seq"].clone(), h["chains"][0]["head_hash"].clone())
    };
    assert_eq!(head(&empty), head(&full), "an empty window states the chain's real head");
}

#[test]
fn a_replacement_host_starts_its_own_chain_and_nothing_cries_wolf() {
    let (jobs, _) = drilled_job();
    let fresh_state = jobs.env.path().join("recovery-host-state");
    let fresh_keys = jobs.env.path().join("recovery-host-keys");
    let recovery = jobs.env.path().join("recovery.json");
    jobs.env.ok(&["key", "export", "-o", recovery.to_str().unwrap()]);
    let on_recovery_host = |args: &[&str]| {
        let out = jobs
            .env
            .cmd()
            .env("REMPART_STATE_DIR", &fresh_state)
            .env("REMPART_KEYS_DIR", &fresh_keys)
            .arg("--jobs")
            .arg(&jobs.dir)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) =
        on_recovery_host(&["--recovery-file", recovery.to_str().unwrap(), "drill", "j", "--cold"]);
    assert_eq!(code, 0, "{out}{err}");
    // Both hosts' ledgers verify: two chains, neither breaks the other.
    let (code, out, err) = jobs.run(&["evidence", "verify"]);
    assert_eq!(code, 0, "original host: {out}{err}");
    assert!(out.contains("not pinned"), "the recovery host's chain is verified but not counted: {out}");
    let (code, out, err) = on_recovery_host(&["evidence", "verify"]);
    assert_eq!(code, 0, "recovery host: {out}{err}");
    // A catalog rebuilt on yet another host brings back both chains and creates nothing.
    let rebuilt = jobs.env.path().join("rebuilt-state");
    jobs.job("missing", &format!("\"{}\"", jobs.env.path().join("src").display()), "");
    let missing_repo = jobs.env.path().join("not-there");
    std::fs::write(
        jobs.dir.join("missing.toml"),
        format!("name = \"missing\"\nsources = [\"/etc/hostname\"]\nrepository = \"{}\"\npassword_file = \"{}\"\n", missing_repo.display(), jobs.env.password_file.display()),
    )
    .unwrap();
    let out = jobs
        .env
        .cmd()
        .env("REMPART_STATE_DIR", &rebuilt)
        .arg("--jobs")
        .arg(&jobs.dir)
        .args(["catalog", "rebuild"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("in 2 chains"), "{text}");
    assert!(!missing_repo.exists(), "catalog rebuild created a repository");
    let _ = jobs.run(&["report", "--format", "json"]);
    assert!(!missing_repo.exists(), "the report created a repository");
}

#[test]
fn a_report_says_what_it_covers_and_lists_every_drill_in_its_language() {
    let (jobs, _) = drilled_job();
    let md = jobs.ok(&["report", "--format", "md", "--since", "90d"]);
    // Monitoring began minutes ago: the report says so, and qualifies its rates.
    let monitoring = md.lines().find(|l| l.contains("**Monitoring**")).unwrap_or_else(|| panic!("{md}"));
    assert!(monitoring.contains("since") && monitoring.contains("(0.0 %)"), "{monitoring}");
    let interval = md.lines().find(|l| l.contains("Drills kept to their interval")).unwrap();
    assert!(interval.contains("over the monitored part only"), "{interval}");
    let rate = md.lines().find(|l| l.contains("Backup success rate") || l.contains("success rate")).unwrap();
    assert!(rate.contains("over the monitored part only"), "{rate}");
    // Every drill of the period, with level, outcome, RTO and RPO, and where it restored.
    assert!(md.contains("### Drills of the period"), "{md}");
    let row =
        md.lines().find(|l| l.starts_with("| 20") && l.contains("| 3 |")).unwrap_or_else(|| panic!("{md}"));
    assert!(
        row.contains("passed") && row.contains("isolated, but on the source's host"),
        "a sandbox on this host is not segregated: {row}"
    );
    let json: serde_json::Value = serde_json::from_str(&jobs.ok(&["report", "--format", "json"])).unwrap();
    assert_eq!(json["jobs"][0]["drills"][0]["segregated"], false);
    assert!(json["jobs"][0]["covered_secs"].as_u64().unwrap() < 3600);
    // French: no English label, no debug text.
    let fr = jobs.ok(&["report", "--format", "md", "--lang", "fr"]);
    for english in [
        "Monitoring",
        "over the monitored",
        "| passed",
        "Drills of the period",
        "not segregated",
        "Some(",
        "os error",
        "never",
    ] {
        assert!(!fr.contains(english), "English or debug text '{english}' in the French report:\n{fr}");
    }
    assert!(fr.contains("Surveillance") && fr.contains("Exercices de la période"), "{fr}");
}

#[test]
fn machine_output_is_only_json_and_exit_codes_survive_a_closed_pipe() {
    let (jobs, src) = drilled_job();
    // A second job, never drilled: status is 7.
    jobs.job("k", &format!("\"{}\"", src.display()), "");
    for args in [
        &["--json", "jobs", "validate"][..],
        &["--json", "status"],
        &["--json", "check"],
        &["--json", "evidence", "verify"],
        &["--json", "report"],
        &["--json", "snapshots"],
    ] {
        let (_, out, err) = jobs.run(args);
        assert!(
            serde_json::from_str::<serde_json::Value>(&out).is_ok(),
            "{args:?}: not only JSON on stdout:\n{out}\n{err}"
        );
    }
    // The reader of stdout goes away before rempart writes: its own status stays.
    for (args, want) in [(&["status"][..], 7), (&["ls", "latest"], 0)] {
        let mut child = jobs
            .env
            .std_cmd()
            .arg("--jobs")
            .arg(&jobs.dir)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let locks = Path::new(&jobs.env.repo).join("locks");
    assert!(std::fs::read_dir(&locks).map(|d| d.count()).unwrap_or(0) == 0, "a lock was left behind");
}

#[test]
fn a_cold_drill_on_a_read_only_repository_keeps_its_record_pending_until_it_can_upload() {
    let (jobs, _) = drilled_job();
    let repo = std::path::PathBuf::from(&jobs.env.repo);
    let ro = common::Mount::read_only(&repo, &repo);
    let (passed, rec) = jobs.drill(&["j", "--cold"]);
    assert!(passed, "{rec}");
    let (code, out, err) = jobs.run(&["evidence", "verify"]);
    assert_eq!(code, 1, "not confirmed while a record waits: {out}{err}");
    assert!(out.contains("pending upload") && !err.contains("TAMPERED"), "{out}{err}");
    drop(ro);
    jobs.ok(&["run", "j"]);
    let out = jobs.ok(&["evidence", "verify"]);
    assert!(out.contains("the ledger is intact"), "{out}");
}

#[test]
fn an_outage_or_a_damaged_key_registration_is_said_and_never_sticks_or_hides() {
    let (jobs, _) = drilled_job();
    // The repository's disk goes away for one run, then comes back.
    let repo = std::path::PathBuf::from(&jobs.env.repo);
    let away = jobs.env.path().join("repo-unmounted");
    std::fs::rename(&repo, &away).unwrap();
    let (code, _, err) = jobs.run(&["drill", "j"]);
    assert_ne!(code, 0, "{err}");
    assert!(!repo.exists(), "a drill must not create a repository where the disk was");
    assert_eq!(status_of(&jobs, "j").1, "NOT VERIFIED");
    std::fs::rename(&away, &repo).unwrap();
    // The failed run is in the ledger, checked locally; it does not leave the ledger "not
    // intact" forever, and the job is not VERIFIED until a drill passes again.
    let (code, out, err) = jobs.run(&["evidence", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(status_of(&jobs, "j").1, "NOT VERIFIED");
    assert!(jobs.drill(&["j"]).0);
    assert_eq!(status_of(&jobs, "j").1, "VERIFIED");

    // One damaged key registration: named, and the job is not VERIFIED (nor "never drilled").
    let keys_dir = repo.join("evidence-keys");
    let reg = std::fs::read_dir(&keys_dir).unwrap().flatten().next().unwrap().path();
    let mut bytes = std::fs::read(&reg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&reg, bytes).unwrap();
    let (code, out, err) = jobs.run(&["evidence", "verify"]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(out.contains("damaged-copy") || err.contains("damaged-copy"), "{out}{err}");
    let (_, out, _) = jobs.run(&["--json", "status"]);
    assert!(out.contains("NOT VERIFIED") && out.contains("evidence-tampered"), "{out}");
}
