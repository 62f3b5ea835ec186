//! Drills that run at the same time inside one daemon own their targets: neither cleans up the
//! other's scratch database (the bug: both carried the daemon's process id, so the second drill
//! to start dropped the first one's database, which was then recorded as PASSED with 0 tables).
//! And a drill whose scratch database is dropped by someone else mid-restore fails, because it
//! compares what was restored with what the dump holds, table by table.

mod common;

use std::io::BufRead;
use std::time::{Duration, Instant};

use common::{mariadb, psql, Env, Jobs};

type DrillRow = (String, chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>, String, u64);

fn newest_drills(jobs: &Jobs) -> Vec<DrillRow> {
    let c = rusqlite::Connection::open(jobs.env.state_dir.join("catalog.db")).unwrap();
    let mut s = c
        .prepare("select job, started, ended, status, details from runs where step = 'drill' and started > '2001' and ended is not null and status != 'running'")
        .unwrap();
    let rows = s
        .query_map([], |r| {
            let t = |i: usize| -> rusqlite::Result<chrono::DateTime<chrono::Utc>> {
                let v: String = r.get(i)?;
                Ok(chrono::DateTime::parse_from_rfc3339(&v).unwrap().with_timezone(&chrono::Utc))
            };
            let details: String = r.get(4)?;
            let d: serde_json::Value = serde_json::from_str(&details).unwrap_or_default();
            Ok((r.get(0)?, t(1)?, t(2)?, r.get(3)?, d["rows_verified"].as_u64().unwrap_or(0)))
        })
        .unwrap();
    rows.map(|r| r.unwrap()).collect()
}

#[test]
fn overlapping_drills_in_one_daemon_both_pass_and_a_dropped_scratch_database_fails() {
    let jobs = Jobs::new(Env::new());
    jobs.env.init();
    let tag = format!("{:08x}", rand::random::<u32>());
    let pg = format!("rempart_ov_{tag}");
    psql("postgres", &format!("create database {pg}"));
    psql(&pg, "create table big as select g, md5(g::text) || repeat('x', 200) as v from generate_series(1, 250000) g");
    psql(
        &pg,
        "create table small (id int primary key, note text); insert into small values (1, 'a'), (2, 'b')",
    );
    let my = format!("rempart_ov_{tag}");
    mariadb(&format!("create database {my}"));
    mariadb(&format!(
        "create table {my}.big (id int primary key, v varchar(250)); insert into {my}.big select seq, repeat('y', 200) from {my}.seq_1_to_150000"
    ));
    let schedule = "[schedule]\ndrill = \"0 0 1 1 *\"\n\n[drill]\nlevel = 3\n";
    jobs.job("pg", &format!("\"postgres://postgres@127.0.0.1:5432/{pg}\""), schedule);
    jobs.job("my", &format!("\"mysql://root@127.0.0.1:3306/{my}\""), schedule);
    jobs.ok(&["run", "pg"]);
    jobs.ok(&["run", "my"]);
    assert!(jobs.drill(&["pg"]).0);
    assert!(jobs.drill(&["my"]).0);
    let db = jobs.env.state_dir.join("catalog.db");
    for round in 0..10 {
        // Every drill so far is made to look years old: the daemon catches both up at start.
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute("update runs set started = '2000-01-01T00:00:00+00:00' where step = 'drill'", [])
            .unwrap();
        let mut daemon = jobs
            .env
            .std_cmd()
            .arg("--jobs")
            .arg(&jobs.dir)
            .args(["daemon", "--listen", "127.0.0.1:0", "--max-concurrent", "2"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(daemon.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let started = Instant::now();
        let drills = loop {
            let d = newest_drills(&jobs);
            if d.len() >= 2 {
                break d;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "round {round}: drills did not finish: {d:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(daemon.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        daemon.wait().unwrap();
        assert!(drills.iter().all(|d| d.3 == "success"), "round {round}: {drills:?}");
        // Each restored every row: neither drill lost its scratch database to the other.
        assert!(drills.iter().all(|d| d.4 >= 150_000), "round {round}: {drills:?}");
        // Both started while the other ran: the overlap covers most of the shorter drill (its
        // length depends on the machine, so the bound is relative, not a fixed number of seconds).
        let overlap = drills.iter().map(|d| d.2).min().unwrap() - drills.iter().map(|d| d.1).max().unwrap();
        let shortest = drills.iter().map(|d| d.2 - d.1).min().unwrap();
        assert!(
            overlap * 4 >= shortest * 3 && overlap >= chrono::Duration::milliseconds(500),
            "round {round}: the drills overlapped only {overlap} of {shortest}: {drills:?}"
        );
    }
    // Someone else drops the scratch database while a drill restores into it.
    let drill = jobs
        .env
        .std_cmd()
        .arg("--jobs")
        .arg(&jobs.dir)
        .args(["--json", "drill", "my"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let scratch = mariadb(
            "select schema_name from information_schema.schemata where schema_name like 'rempart_drill_%'",
        );
        if let Some(name) = scratch.lines().next().filter(|n| !n.is_empty()) {
            std::thread::sleep(Duration::from_millis(300));
            mariadb(&format!("drop database if exists `{name}`"));
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no scratch database appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = drill.wait_with_output().unwrap();
    let rec = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "a drill whose restore was dropped must fail: {rec}");
    assert!(!rec.contains("\"status\":\"success\""), "{rec}");
    psql("postgres", &format!("drop database {pg}"));
    mariadb(&format!("drop database {my}"));
}
