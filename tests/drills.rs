//! End-to-end drills and evidence: every level on files, PostgreSQL, MariaDB and SQLite; drills
//! that must fail do and say why; the ledger catches tampering done in the SQLite file (even a
//! chain re-signed with the local key); a cold drill from S3; nothing left behind by a drill
//! killed mid-way.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{mariadb, psql, random_bytes, Env, Jobs};

fn pack_of(env: &Env, node_path: &str) -> PathBuf {
    let (rt, repo) = common::open_repo(env);
    let index = repo.load_index().unwrap();
    let (_, snap) = repo.find_snapshot("latest").unwrap();
    let node = rempart::restore::find_path(&repo, &index, &snap.tree, node_path).unwrap().unwrap();
    let loc = index.lookup(&node.content[0]).unwrap();
    drop(rt);
    let h = loc.pack.id.to_hex();
    Path::new(&env.repo).join("data").join(&h[..2]).join(&h)
}

#[test]
fn file_drills_pass_at_every_level_and_fail_for_the_right_reasons() {
    let j = Jobs::new(Env::new());
    let src = j.env.path().join("site");
    std::fs::create_dir_all(src.join("pages")).unwrap();
    for i in 0..30u64 {
        std::fs::write(src.join(format!("pages/p{i}.html")), random_bytes(i, 20_000 + i as usize)).unwrap();
    }
    std::fs::write(src.join("index.html"), b"<h1>home</h1>").unwrap();
    j.env.init();
    let checks = format!(
        "[objectives]\nrto = \"10m\"\nrpo = \"1d\"\n[drill]\nlevel = 4\n[[drill.checks]]\nkind = \"file_exists\"\npath = \"{}/index.html\"\n\
         [[drill.checks]]\nkind = \"spot_check\"\nsample_percent = 50\n",
        src.display()
    );
    j.job("site", &format!("\"{}\"", src.display()), &checks);
    // Before any drill: NEEDS VERIFIED, exit code 7.
    j.ok(&["run", "site"]);
    let (code, out, _) = j.run(&["status"]);
    assert_eq!(code, 7, "{out}");
    assert!(out.contains("NEEDS VERIFIED") && out.contains("never drilled"), "{out}");
    for level in 1..=4 {
        let (passed, rec) = j.drill(&["site", "--level", &level.to_string()]);
        assert!(passed, "level {level}: {rec}");
        assert_eq!(rec["details"]["level_reached"], level, "{rec}");
        // Level 2 is its own pass below level 3; from level 3 the restore proves it (the data
        // is read once, so the drill's recovery time is the restore's).
        let data = &rec["details"]["checks"][1]["detail"];
        if level >= 2 {
            assert_eq!(rec["details"]["checks"][1]["level"], 2, "{rec}");
            assert_eq!(data.as_str().unwrap().contains("by the restore"), level >= 3, "level {level}: {rec}");
        }
    }
    let (_, rec) = j.drill(&["site"]);
    let d = &rec["details"];
    assert_eq!(d["files_verified"], 31);
    // The restore went into a fresh sandbox folder under the state directory.
    let target = d["target"].as_str().unwrap();
    assert!(target.starts_with(&format!("{}/drills/", j.env.state_dir.display())), "{d}");
    // Isolated in a sandbox, but on this host: not segregated (that takes another host).
    assert_eq!(d["segregated"], false, "{d}");
    assert_eq!(d["rto_met"], true);
    assert_eq!(d["rpo_met"], true);
    assert!(d["cleanup"][0].as_str().unwrap().contains("removed"), "{d}");
    let (code, out, _) = j.run(&["status"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("VERIFIED") && !out.contains("NOT"), "{out}");

    // The source drifts beyond tolerance (spot check, 0 % data tolerance).
    for i in 0..30u64 {
        std::fs::write(src.join(format!("pages/p{i}.html")), random_bytes(500 + i, 100)).unwrap();
    }
    let (passed, rec) = j.drill(&["site"]);
    assert!(!passed);
    assert!(
        rec["error"].as_str().unwrap().contains("spot check")
            && rec["error"].as_str().unwrap().contains("differ"),
        "{rec}"
    );
    let (code, out, _) = j.run(&["status"]);
    assert_eq!(code, 7);
    assert!(out.contains("NOT VERIFIED"), "{out}");

    // An RTO shorter than the restore took.
    j.job("site", &format!("\"{}\"", src.display()), "[objectives]\nrto = \"0s\"\n[drill]\nlevel = 3\n");
    let (passed, rec) = j.drill(&["site"]);
    assert!(!passed);
    assert!(rec["error"].as_str().unwrap().contains("RTO"), "{rec}");
    assert_eq!(rec["details"]["rto_met"], false);

    // A damaged pack fails the data level; a deleted one fails the structure level.
    j.job("site", &format!("\"{}\"", src.display()), "[drill]\nlevel = 3\n");
    j.ok(&["run", "site"]);
    let pack = pack_of(&j.env, &format!("{}/pages/p3.html", src.display()));
    common::flip_byte(&pack, 200);
    let (passed, rec) = j.drill(&["site"]);
    assert!(!passed);
    assert!(rec["error"].as_str().unwrap().contains("damaged data"), "{rec}");
    assert_eq!(rec["details"]["level_reached"], 1);
    std::fs::remove_file(&pack).unwrap();
    let (passed, rec) = j.drill(&["site"]);
    assert!(!passed);
    assert!(rec["error"].as_str().unwrap().contains("missing"), "{rec}");
    assert_eq!(rec["details"]["level_reached"], 0);
    // No sandbox is left behind by any of these.
    let drills = j.env.state_dir.join("drills");
    let left: Vec<_> =
        std::fs::read_dir(&drills).map(|r| r.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn database_drills_pass_and_a_broken_expectation_fails() {
    let j = Jobs::new(Env::new());
    j.env.init();
    let pg = format!("rempart_dr_{:08x}", rand::random::<u32>());
    psql("postgres", &format!("create database {pg}"));
    psql(&pg, "create table orders(id serial primary key, total numeric); insert into orders(total) select g from generate_series(1, 500) g;");
    let my = format!("rempart_dr_{:08x}", rand::random::<u32>());
    mariadb(&format!("create database {my}; create table {my}.items(id int primary key, name varchar(20)); insert into {my}.items values (1, 'a'), (2, 'b');"));
    let sqlite = j.env.path().join("app.db");
    rusqlite::Connection::open(&sqlite)
        .unwrap()
        .execute_batch("create table t(x); insert into t values (1), (2), (3);")
        .unwrap();

    j.job("pg", &format!("\"postgres://postgres@127.0.0.1:5432/{pg}\""), "[drill]\nlevel = 4\n[[drill.checks]]\nkind = \"sql\"\nquery = \"select count(*) from orders\"\nexpect_at_least = 500\n");
    j.job("my", &format!("\"mysql://root@127.0.0.1:3306/{my}\""), "[drill]\nlevel = 4\n[[drill.checks]]\nkind = \"sql\"\nquery = \"select name from items where id = 2\"\nexpect = \"b\"\n");
    j.job("lite", &format!("\"sqlite://{}\"", sqlite.display()), "[drill]\nlevel = 4\n[[drill.checks]]\nkind = \"sql\"\nquery = \"select sum(x) from t\"\nexpect = \"6\"\n");
    for name in ["pg", "my", "lite"] {
        j.ok(&["run", name]);
        let (passed, rec) = j.drill(&[name]);
        assert!(passed, "{name}: {rec}");
        let d = &rec["details"];
        assert_eq!(d["level_reached"], 4, "{name}: {d}");
        assert!(d["rows_verified"].as_u64().unwrap() >= 2, "{name}: {d}");
        let engine = d["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"].as_str().unwrap().starts_with("engine checks"))
            .unwrap();
        assert_eq!(engine["passed"], true, "{name}: {engine}");
        assert!(d["cleanup_ok"] == true, "{name}: {d}");
    }
    // Scratch databases are gone.
    assert_eq!(
        psql("postgres", "select count(*) from pg_database where datname like 'rempart_drill_%'"),
        "0"
    );
    assert_eq!(
        mariadb("select count(*) from information_schema.schemata where schema_name like 'rempart_drill_%'"),
        "0"
    );
    // The source database is untouched by drills; the scratch one was used.
    assert_eq!(psql(&pg, "select count(*) from orders"), "500");

    // A query whose expected result no longer holds.
    j.job("pg", &format!("\"postgres://postgres@127.0.0.1:5432/{pg}\""), "[drill]\nlevel = 4\n[[drill.checks]]\nkind = \"sql\"\nquery = \"select count(*) from orders\"\nexpect_at_least = 1000\n");
    let (passed, rec) = j.drill(&["pg"]);
    assert!(!passed);
    let e = rec["error"].as_str().unwrap();
    assert!(e.contains("validation failed") && e.contains("at least 1000") && e.contains("'500'"), "{e}");
    assert_eq!(
        psql("postgres", "select count(*) from pg_database where datname like 'rempart_drill_%'"),
        "0"
    );

    psql("postgres", &format!("drop database {pg} with (force)"));
    mariadb(&format!("drop database {my}"));
}

/// Replaces the canonical text of ledger rows (as an attacker editing the SQLite file would).
fn ledger_rows(state: &Path) -> Vec<(i64, String, i64, String, String, String)> {
    let c = rusqlite::Connection::open(state.join("catalog.db")).unwrap();
    let mut s =
        c.prepare("select rowid, chain, seq, canonical, hash, signature from evidence order by seq").unwrap();
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

#[test]
fn evidence_verify_catches_every_kind_of_tampering() {
    let j = Jobs::new(Env::new());
    let src = j.env.path().join("d");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"data").unwrap();
    j.env.init();
    j.job("e", &format!("\"{}\"", src.display()), "[drill]\nlevel = 2\n");
    for _ in 0..3 {
        j.ok(&["run", "e"]);
    }
    j.ok(&["drill", "e"]);
    j.ok(&["run", "e", "--step", "check"]);
    let out = j.ok(&["evidence", "verify"]);
    assert!(
        out.contains("checked all 5 local records and 5 repository copies") && out.contains("intact"),
        "{out}"
    );
    let db = j.env.state_dir.join("catalog.db");
    let pristine = std::fs::read(&db).unwrap();
    let restore_db = || {
        std::fs::write(&db, &pristine).unwrap();
        let _ = std::fs::remove_file(j.env.state_dir.join("catalog.db-wal"));
        let _ = std::fs::remove_file(j.env.state_dir.join("catalog.db-shm"));
    };
    let sql = |q: &str| rusqlite::Connection::open(&db).unwrap().execute_batch(q).unwrap();
    let expect = |kind: &str, seq: &str| {
        let (code, _, err) = j.run(&["evidence", "verify"]);
        assert_eq!(code, 4, "{kind}: {err}");
        assert!(err.contains(&format!(": {kind}:")) && err.contains(seq), "expected {kind} at {seq}: {err}");
    };
    let _ = std::fs::remove_file(j.env.state_dir.join("catalog.db-wal"));

    // Edited: outcome changed in place.
    sql("update evidence set canonical = replace(canonical, '\"outcome\":\"success\"', '\"outcome\":\"failed\"') where seq = 2");
    expect("edited", "record 2");
    restore_db();
    // Deleted.
    sql("delete from evidence where seq = 3");
    expect("deleted", "record 3");
    restore_db();
    // Reordered: two records swap places.
    sql("update evidence set seq = 99 where seq = 2; update evidence set seq = 2 where seq = 3; update evidence set seq = 3 where seq = 99;");
    expect("reordered", "record 2");
    restore_db();
    // Inserted: a copy of a record with a new id.
    sql("insert into evidence (chain, seq, record_id, canonical, hash, signature) select chain, 6, 'forged', replace(canonical, record_id, 'forged'), hash, signature from evidence where seq = 5");
    expect("inserted", "record 6");
    restore_db();
    // Rebuilt and re-signed with the local key: every hash, link and signature valid locally.
    let key_hex = std::fs::read_to_string(j.dir.parent().unwrap().join("keys/evidence.key")).unwrap();
    let mut key_bytes = [0u8; 32];
    hex::decode_to_slice(key_hex.trim(), &mut key_bytes).unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&key_bytes);
    let rows = ledger_rows(&j.env.state_dir);
    let c = rusqlite::Connection::open(&db).unwrap();
    let mut prev = rempart::evidence::ledger::GENESIS.to_string();
    for (rowid, _, seq, canonical, _, _) in rows {
        let mut v: serde_json::Value = serde_json::from_str(&canonical).unwrap();
        if seq == 2 {
            v["outcome"] = "failed".into();
        }
        v["prev"] = prev.clone().into();
        let text = rempart::evidence::record::canonical(&v);
        let hash = rempart::evidence::ledger::sha256_hex(&text);
        use ed25519_dalek::Signer;
        let sig = rempart::evidence::key::b64(&key.sign(text.as_bytes()).to_bytes());
        c.execute(
            "update evidence set canonical = ?1, hash = ?2, signature = ?3 where rowid = ?4",
            rusqlite::params![text, hash, sig, rowid],
        )
        .unwrap();
        prev = hash;
    }
    drop(c);
    let (code, _, err) = j.run(&["evidence", "verify"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains(": re-signed:") && err.contains("record 2"), "{err}");
    assert!(
        !err.contains("bad-signature") && !err.contains("broken-link"),
        "locally the rebuilt chain is valid: {err}"
    );
    restore_db();

    // The ledger comes back on a new host from the repository copies.
    std::fs::remove_file(&db).unwrap();
    let out = j.ok(&["catalog", "rebuild"]);
    assert!(out.contains("5 evidence records restored"), "{out}");
    let out = j.ok(&["evidence", "verify"]);
    assert!(out.contains("intact"), "{out}");
    // An export a third party can check (docs/evidence.md): every line has what it needs.
    let export = j.ok(&["evidence", "export"]);
    assert_eq!(export.lines().count(), 6, "a header and 5 records");
    let first: serde_json::Value = serde_json::from_str(export.lines().next().unwrap()).unwrap();
    assert!(first["public_key_pem"].as_str().unwrap().contains("BEGIN PUBLIC KEY"));
    let fp = first["key_fingerprint"].as_str().unwrap().to_string();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/verify-evidence");
    let f = j.env.path().join("export.jsonl");
    std::fs::write(&f, &export).unwrap();
    let out = Command::new(&script).arg(&f).arg(&fp).output().unwrap();
    assert!(
        out.status.success(),
        "third-party script: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let tampered = export.replacen("success", "failed", 1);
    std::fs::write(&f, tampered).unwrap();
    let out = Command::new(&script).arg(&f).arg(&fp).output().unwrap();
    assert!(!out.status.success(), "the script must catch an edited export");
}

#[test]
fn cold_drill_from_s3_with_an_empty_state_directory() {
    let Some(env) = Env::s3() else { return };
    let j = Jobs::new(env);
    let src = j.env.path().join("d");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..5u64 {
        std::fs::write(src.join(format!("f{i}")), random_bytes(i, 50_000)).unwrap();
    }
    let s3env = j.env.path().join("s3.env");
    std::fs::write(&s3env, j.env.extra_env.iter().map(|(k, v)| format!("{k}={v}\n")).collect::<String>())
        .unwrap();
    j.job(
        "cold",
        &format!("\"{}\"", src.display()),
        &format!("s3_env_file = \"{}\"\n[drill]\nlevel = 3\n", s3env.display()),
    );
    j.ok(&["run", "cold"]);
    let recovery = j.env.path().join("recovery.json");
    let out = j
        .env
        .cmd()
        .env("REMPART_S3_ENV_FILE", &s3env)
        .args(["key", "export", "-o", recovery.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A replacement machine: nothing but the URL, the recovery file and the passphrase.
    std::fs::remove_dir_all(&j.env.state_dir).unwrap();
    let fresh = j.env.path().join("new-host-state");
    let out = j
        .env
        .cmd()
        .env("REMPART_STATE_DIR", &fresh)
        .arg("--jobs")
        .arg(&j.dir)
        .args(["--json", "--recovery-file", recovery.to_str().unwrap(), "drill", "cold", "--cold"])
        .output()
        .unwrap();
    let rec: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(rec["status"], "success", "{rec}");
    assert_eq!(rec["details"]["cold"], true);
    assert_eq!(rec["details"]["level_reached"], 3);
}

#[test]
fn nothing_is_left_after_a_drill_killed_mid_way_and_the_next_daemon_start() {
    let j = Jobs::new(Env::new());
    j.env.init();
    let pg = format!("rempart_dk_{:08x}", rand::random::<u32>());
    psql("postgres", &format!("create database {pg}"));
    psql(&pg, "create table big as select g, md5(g::text) || repeat('z', 300) as v from generate_series(1, 300000) g");
    j.job("pgk", &format!("\"postgres://postgres@127.0.0.1:5432/{pg}\""), "[drill]\nlevel = 3\n");
    let src = j.env.path().join("files");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..40u64 {
        std::fs::write(src.join(format!("f{i}")), random_bytes(i, 1_500_000)).unwrap();
    }
    j.job("fk", &format!("\"{}\"", src.display()), "[drill]\nlevel = 3\n");
    j.ok(&["run", "pgk"]);
    j.ok(&["run", "fk"]);
    let count_scratch = || {
        psql("postgres", "select count(*) from pg_database where datname like 'rempart_drill_%'")
            .parse::<u32>()
            .unwrap()
    };
    let drills = j.env.state_dir.join("drills");
    let sandboxes =
        || std::fs::read_dir(&drills).map(|r| r.flatten().filter(|e| e.path().is_dir()).count()).unwrap_or(0);

    // Kill a database drill once its scratch database exists, then a file drill once its
    // sandbox does; after each, the next daemon start removes what the killed drill left.
    let leftovers = || count_scratch() + sandboxes() as u32;
    for (job, created) in [
        ("pgk", &(|| count_scratch() > 0) as &dyn Fn() -> bool),
        ("fk", &(|| sandboxes() > 0) as &dyn Fn() -> bool),
    ] {
        let mut child = j
            .env
            .std_cmd()
            .arg("--jobs")
            .arg(&j.dir)
            .args(["drill", job])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while !created() {
            assert!(started.elapsed() < Duration::from_secs(60), "{job}: the drill never created its target");
            assert!(child.try_wait().unwrap().is_none(), "{job}: the drill ended before it could be killed");
            std::thread::sleep(Duration::from_millis(10));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(leftovers() > 0, "{job}: the kill left its target behind, as a crash would");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut daemon = j
            .env
            .std_cmd()
            .arg("--jobs")
            .arg(&j.dir)
            .args(["daemon", "--listen", &format!("127.0.0.1:{port}")])
            .spawn()
            .unwrap();
        let started = Instant::now();
        while leftovers() > 0 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{job}: the daemon did not clean the leftovers"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(daemon.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        assert_eq!(daemon.wait().unwrap().code(), Some(0));
    }
    psql("postgres", &format!("drop database {pg} with (force)"));
}
