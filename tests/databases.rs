//! End-to-end against the real PostgreSQL and MariaDB of this machine, and SQLite: dumps are
//! consistent, streamed, restorable into a new database with identical content (checked by
//! the servers' own checksums), and failing dumps never leave a snapshot.

mod common;

use std::process::Command;

use common::Env;

fn psql(db: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            db,
            "-c",
            sql,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn mariadb(db: Option<&str>, sql: &str) -> String {
    let mut c = Command::new("mariadb");
    c.args([
        "-h",
        "127.0.0.1",
        "-u",
        "root",
        "--default-character-set=utf8mb4",
        "--batch",
        "--skip-column-names",
        "-e",
        sql,
    ]);
    if let Some(db) = db {
        c.arg(db);
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "mariadb {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{:08x}", rand::random::<u32>())
}

fn snapshot_count(env: &Env) -> usize {
    env.json(&["snapshots"]).as_array().unwrap().len()
}

/// Per table: row count and an md5 of all rows computed by PostgreSQL.
fn pg_fingerprint(db: &str) -> Vec<String> {
    let tables = psql(db, "select tablename from pg_tables where schemaname = 'public' order by 1");
    tables
        .lines()
        .map(|t| {
            let r = psql(db, &format!("select count(*) || ' ' || coalesce(md5(string_agg(x::text, '|' order by x::text)), '-') from {t} x"));
            format!("{t}: {r}")
        })
        .collect()
}

#[test]
fn postgres_round_trip_is_identical() {
    let env = Env::new();
    env.init();
    let db = unique("rempart_pg");
    let copy = format!("{db}_copy");
    psql("postgres", &format!("create database {db}"));
    psql(
        &db,
        r#"
        create sequence invoice_no start 1000;
        create table customers (id serial primary key, name text not null, photo bytea, prefs jsonb, born timestamptz, note text);
        create table orders (id bigserial primary key, customer int references customers(id), total numeric(12,2), placed timestamptz default now(), invoice int default nextval('invoice_no'), doc json);
        create index orders_customer on orders(customer);
        create table audit (id serial primary key, msg text, at timestamptz default now());
        create view big_spenders as select c.name, sum(o.total) as spent from customers c join orders o on o.customer = c.id group by c.name;
        create function audit_order() returns trigger language plpgsql as $$ begin insert into audit(msg) values ('order ' || new.id); return new; end $$;
        create trigger orders_audit after insert on orders for each row execute function audit_order();
        insert into customers(name, photo, prefs, born, note)
            select 'Zoë Ñandú ' || g || ' 漢字', decode(md5(g::text), 'hex'), jsonb_build_object('n', g, 'tags', jsonb_build_array('a', 'ü')),
                   timestamptz '2000-01-01 12:00+02' + g * interval '1 day', case when g % 3 = 0 then null else repeat('x', g) end
            from generate_series(1, 500) g;
        insert into customers(name, note) values ('large', repeat('grand texte ', 200000));
        insert into orders(customer, total, doc) select 1 + g % 500, g * 1.25, json_build_object('line', g) from generate_series(1, 3000) g;
        "#,
    );
    let url = format!("postgres://postgres@127.0.0.1:5432/{db}");
    let out = env.json(&["backup", &url]);
    assert_eq!(out["status"], "success", "{out}");
    assert_eq!(out["source"]["kind"], "postgres");
    assert!(out["source"]["server_version"].as_str().unwrap().contains("PostgreSQL"));
    let dumps = out["source"]["dumps"].as_array().unwrap();
    assert!(
        dumps.iter().any(|d| d["database"] == db.as_str() && d["size"].as_u64().unwrap() > 2_000_000),
        "{out}"
    );
    assert!(dumps.iter().any(|d| d["format"] == "pg_dumpall-globals"), "{out}");

    let (code, _, err) =
        env.run(&["restore", "latest", "--to", &format!("postgres://postgres@127.0.0.1:5432/{copy}")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(pg_fingerprint(&db), pg_fingerprint(&copy));
    assert_eq!(
        psql(&copy, "select count(*) from big_spenders"),
        psql(&db, "select count(*) from big_spenders")
    );
    assert_eq!(
        psql(&copy, "select last_value from invoice_no"),
        psql(&db, "select last_value from invoice_no")
    );
    // The trigger and its function came back and work.
    psql(&copy, "insert into orders(customer, total) values (1, 9.99)");
    assert_eq!(
        psql(&copy, "select count(*) from audit"),
        (psql(&db, "select count(*) from audit").parse::<i64>().unwrap() + 1).to_string()
    );
    assert_eq!(psql(&copy, "select count(*) from pg_indexes where indexname = 'orders_customer'"), "1");

    // A target that holds tables is refused, unless forced.
    let (code, _, err) =
        env.run(&["restore", "latest", "--to", &format!("postgres://postgres@127.0.0.1:5432/{copy}")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("already holds") && err.contains("--force"), "{err}");
    env.ok(&["restore", "latest", "--force", "--to", &format!("postgres://postgres@127.0.0.1:5432/{copy}")]);
    assert_eq!(pg_fingerprint(&db), pg_fingerprint(&copy));

    // The dump as a plain file, for people who run pg_restore themselves.
    let dir = env.path().join("files");
    env.ok(&["restore", "latest", "--target", dir.to_str().unwrap()]);
    let listed = Command::new("pg_restore").arg("-l").arg(dir.join(format!("{db}.pgdump"))).output().unwrap();
    assert!(listed.status.success());
    assert!(String::from_utf8_lossy(&listed.stdout).contains("TRIGGER public orders orders_audit"));

    psql("postgres", &format!("drop database {db} with (force)"));
    psql("postgres", &format!("drop database {copy} with (force)"));
}

#[test]
fn failing_postgres_dumps_leave_no_snapshot() {
    let env = Env::new();
    env.init();
    // An unknown database: pg_dump's own message comes through.
    let (code, _, err) = env.run(&["backup", "postgres://postgres@127.0.0.1:5432/rempart_no_such_db"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("pg_dump") && err.contains("does not exist"), "{err}");
    assert_eq!(snapshot_count(&env), 0);

    // A missing tool.
    let (code, _, err) = env
        .cmd()
        .env("REMPART_PG_DUMP", "/nonexistent/pg_dump")
        .args(["backup", "postgres://postgres@127.0.0.1:5432/postgres"])
        .output()
        .map(|o| (o.status.code().unwrap(), String::new(), String::from_utf8_lossy(&o.stderr).into_owned()))
        .unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not found") && err.contains("/nonexistent/pg_dump"), "{err}");
    assert_eq!(snapshot_count(&env), 0);

    // pg_dump killed part-way through a large database.
    let db = unique("rempart_pgkill");
    psql("postgres", &format!("create database {db}"));
    psql(&db, "create table big as select g, md5(g::text) || repeat('y', 200) as v from generate_series(1, 400000) g");
    let wrapper = env.path().join("pg_dump");
    std::fs::write(&wrapper, "#!/bin/sh\n( sleep 0.4; kill -9 $$ ) &\nexec /usr/bin/pg_dump \"$@\"\n")
        .unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = env
        .cmd()
        .env("REMPART_PG_DUMP", &wrapper)
        .args(["backup", &format!("postgres://postgres@127.0.0.1:5432/{db}")])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("killed by signal 9"), "{err}");
    assert_eq!(snapshot_count(&env), 0, "no snapshot from a truncated dump");
    let (code, out, err) = env.run(&["check"]);
    assert_eq!(code, 0, "{out}{err}");
    psql("postgres", &format!("drop database {db} with (force)"));

    // A password in the URL is refused and not echoed.
    let (code, _, err) = env.run(&["backup", "postgres://postgres:Sup3rS3cret@127.0.0.1:5432/postgres"]);
    assert_eq!(code, 2);
    assert!(err.contains("--db-password-file") && !err.contains("Sup3rS3cret"), "{err}");
}

fn maria_fingerprint(db: &str) -> Vec<String> {
    let tables = mariadb(Some(db), "select table_name from information_schema.tables where table_schema = database() and table_type = 'BASE TABLE' order by 1");
    tables
        .lines()
        .map(|t| {
            let count = mariadb(Some(db), &format!("select count(*) from `{t}`"));
            let sum = mariadb(Some(db), &format!("checksum table `{t}` extended"));
            format!("{t}: {count} {}", sum.split_whitespace().last().unwrap_or(""))
        })
        .collect()
}

#[test]
fn mariadb_round_trip_is_identical_and_credentials_stay_secret() {
    let env = Env::new();
    env.init();
    let db = unique("rempart_my");
    let copy = format!("{db}_copy");
    mariadb(None, &format!("create database {db} character set utf8mb4"));
    mariadb(
        Some(&db),
        r#"
        create sequence invoice_no start with 1000;
        create table customers (id int auto_increment primary key, name varchar(200) not null, photo blob, prefs json, born datetime(6), seen timestamp null, note longtext) engine=InnoDB;
        create table orders (id bigint auto_increment primary key, customer int, total decimal(12,2), doc json, index(customer)) engine=InnoDB;
        create table audit (id int auto_increment primary key, msg varchar(100));
        create view big_spenders as select c.name, sum(o.total) as spent from customers c join orders o on o.customer = c.id group by c.name;
        create trigger orders_audit after insert on orders for each row insert into audit(msg) values (concat('order ', new.id));
        create procedure add_customer(in n varchar(200)) insert into customers(name) values (n);
        insert into customers(name, photo, prefs, born, seen, note)
            select concat('Zoë Ñandú ', seq, ' 漢字 🎉'), unhex(md5(seq)), json_object('n', seq), '2000-01-01 12:00:00.123456' + interval seq day,
                   if(seq % 4 = 0, null, '2020-02-02 02:02:02'), if(seq % 3 = 0, null, repeat('x', seq))
            from seq_1_to_500;
        insert into customers(name, note) values ('large', repeat('grand texte ', 200000));
        insert into orders(customer, total, doc) select 1 + seq % 500, seq * 1.25, json_object('line', seq) from seq_1_to_3000;
        "#,
    );
    // A dedicated user with a password, given through a file.
    let pw = "S3cret-Pw-Rempart";
    mariadb(None, &format!("create or replace user 'rempart_t'@'127.0.0.1' identified by '{pw}'; grant all on *.* to 'rempart_t'@'127.0.0.1'"));
    let pwfile = env.path().join("db.pass");
    std::fs::write(&pwfile, format!("{pw}\n")).unwrap();
    let url = format!("mysql://rempart_t@127.0.0.1:3306/{db}");
    let out = env.json(&["backup", &url, "--db-password-file", pwfile.to_str().unwrap()]);
    assert_eq!(out["status"], "success", "{out}");
    assert_eq!(out["source"]["kind"], "mysql");
    assert!(!out.to_string().contains(pw), "the password reached the snapshot summary");
    let snaps = env.json(&["snapshots"]).to_string();
    assert!(!snaps.contains(pw), "the password reached the snapshot");

    let (code, _, err) = env.run(&[
        "restore",
        "latest",
        "--to",
        &format!("mysql://rempart_t@127.0.0.1:3306/{copy}"),
        "--db-password-file",
        pwfile.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(maria_fingerprint(&db), maria_fingerprint(&copy));
    assert_eq!(
        mariadb(Some(&copy), "select count(*) from big_spenders"),
        mariadb(Some(&db), "select count(*) from big_spenders")
    );
    mariadb(
        Some(&copy),
        "call add_customer('via procedure'); insert into orders(customer, total) values (1, 1)",
    );
    assert_eq!(mariadb(Some(&copy), "select count(*) from customers where name = 'via procedure'"), "1");
    assert_eq!(mariadb(Some(&copy), "select count(*) from audit"), "3001", "the trigger came back and fires");
    assert_eq!(mariadb(Some(&copy), "select count(*) from information_schema.tables where table_schema = database() and table_type = 'SEQUENCE'"), "1");

    // Wrong credentials: the client's message, no snapshot, no password in the output.
    std::fs::write(&pwfile, "wrong-password\n").unwrap();
    let before = snapshot_count(&env);
    let (code, _, err) = env.run(&["backup", &url, "--db-password-file", pwfile.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("Access denied"), "{err}");
    assert!(!err.contains("wrong-password"), "{err}");
    assert_eq!(snapshot_count(&env), before);

    mariadb(None, &format!("drop database {db}; drop database {copy}; drop user 'rempart_t'@'127.0.0.1'"));
}

#[test]
fn sqlite_copy_while_writing_is_consistent() {
    let env = Env::new();
    env.init();
    let path = env.path().join("app.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("pragma journal_mode=wal; create table events(id integer primary key, payload text not null, check_sum text not null);").unwrap();
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (path, stop) = (path.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut c = rusqlite::Connection::open(&path).unwrap();
            c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let tx = c.transaction().unwrap();
                for _ in 0..50 {
                    n += 1;
                    let payload = format!("event {n} {}", "z".repeat((n % 500) as usize));
                    let sum = blake3::hash(payload.as_bytes()).to_hex().to_string();
                    tx.execute(
                        "insert into events(id, payload, check_sum) values (?1, ?2, ?3)",
                        rusqlite::params![n as i64, payload, sum],
                    )
                    .unwrap();
                }
                tx.commit().unwrap();
            }
            n
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = env.json(&["backup", &format!("sqlite://{}", path.display())]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert_eq!(out["status"], "success", "{out}");
    assert_eq!(out["source"]["kind"], "sqlite");

    let restored = env.path().join("restored/app.db");
    env.ok(&["restore", "latest", "--to", &format!("sqlite://{}", restored.display())]);
    let c = rusqlite::Connection::open(&restored).unwrap();
    let ok: String = c.query_row("pragma integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(ok, "ok");
    let (count, max): (i64, i64) = c
        .query_row("select count(*), coalesce(max(id), 0) from events", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert!(
        count > 0 && (count as u64) < written,
        "the copy holds a committed state taken mid-way ({count} of {written})"
    );
    assert_eq!(count, max, "no gap: a prefix of the committed transactions");
    assert_eq!(count % 50, 0, "whole transactions only");
    let mut stmt = c.prepare("select payload, check_sum from events").unwrap();
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).unwrap() {
        let (p, s) = row.unwrap();
        assert_eq!(blake3::hash(p.as_bytes()).to_hex().to_string(), s);
    }
    // Restoring over it again is refused.
    let (code, _, err) = env.run(&["restore", "latest", "--to", &format!("sqlite://{}", restored.display())]);
    assert_eq!(code, 2, "{err}");
}
