//! `rempart copy` against the real binary: local and S3 (Garage) repositories, incremental
//! copies, a copy killed mid-way, and damaged source data.

mod common;

use std::path::{Path, PathBuf};

use common::{damage_first_chunk, random_bytes, restored, same_tree, Env};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A destination repository `URL` with its own passphrase file, created.
fn destination(env: &Env, url: &str) -> PathBuf {
    let pass = env.path().join(format!("dst-{:08x}.pass", rand::random::<u32>()));
    std::fs::write(&pass, "another passphrase\n").unwrap();
    env.ok(&["-r", url, "--password-file", s(&pass), "init"]);
    pass
}

fn copy(env: &Env, to: &str, pass: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--json", "copy", "--to", to, "--to-password-file", s(pass)];
    args.extend_from_slice(extra);
    let out = env.ok(&args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// Restores `latest` of `url` and compares it with `src`.
fn restores_as(env: &Env, url: &str, pass: &Path, src: &Path) {
    let target = env.path().join(format!("r-{:08x}", rand::random::<u32>()));
    env.ok(&["-r", url, "--password-file", s(pass), "restore", "latest", "--target", s(&target)]);
    same_tree(src, &restored(&target, src));
}

#[test]
fn copies_are_incremental_resume_after_a_kill_and_never_carry_damage() {
    let env = Env::new();
    env.ok(&["init"]);
    let src = env.path().join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("big.bin"), random_bytes(1, 5_000_000)).unwrap();
    for i in 0..20 {
        std::fs::write(src.join("d").join(format!("f{i}")), random_bytes(100 + i, 20_000)).unwrap();
    }
    env.ok(&["backup", s(&src)]);
    std::fs::write(src.join("d/f0"), "changed").unwrap();
    env.ok(&["backup", s(&src)]);
    let dst = env.path().join("dst");
    let pass = destination(&env, s(&dst));

    let first = copy(&env, s(&dst), &pass, &[]);
    assert_eq!(first["copied"].as_array().unwrap().len(), 2, "{first}");
    let full = first["bytes_stored"].as_u64().unwrap();
    assert!(full >= 5_400_000, "{first}");
    env.ok(&["-r", s(&dst), "--password-file", s(&pass), "check", "--read-data"]);
    restores_as(&env, s(&dst), &pass, &src);

    // One small change: the next copy sends that and the trees, ≤ 1 % of the first.
    std::fs::write(src.join("d/f1"), "changed too").unwrap();
    env.ok(&["backup", s(&src)]);
    let next = copy(&env, s(&dst), &pass, &["latest"]);
    assert_eq!(next["copied"].as_array().unwrap().len(), 1, "{next}");
    assert!(next["bytes_stored"].as_u64().unwrap() * 100 <= full, "{next} after {full}");
    let again = copy(&env, s(&dst), &pass, &[]);
    assert_eq!(
        (again["copied"].as_array().unwrap().len(), again["bytes_stored"].as_u64()),
        (0, Some(0)),
        "{again}"
    );
    assert_eq!(again["already"].as_array().unwrap().len(), 3);

    // The destination forgets and prunes the first copy: a copy of everything leaves it
    // forgotten; naming it copies it again, and that must not trust the map for data the
    // prune removed.
    let first_src = first["copied"][0][0].as_str().unwrap().to_string();
    let first_copy = first["copied"][0][1].as_str().unwrap().to_string();
    let dst_cmd = |args: &[&str]| {
        let mut a = vec!["-r", s(&dst), "--password-file", s(&pass)];
        a.extend_from_slice(args);
        env.ok(&a)
    };
    dst_cmd(&["forget", &first_copy[..8]]);
    dst_cmd(&["prune", "--grace", "0s"]);
    dst_cmd(&["prune", "--grace", "0s"]);
    let skipped = copy(&env, s(&dst), &pass, &[]);
    assert_eq!(skipped["copied"].as_array().unwrap().len(), 0, "{skipped}");
    assert_eq!(skipped["forgotten_there"][0].as_str(), Some(first_src.as_str()), "{skipped}");
    let back = copy(&env, s(&dst), &pass, &[&first_src[..8]]);
    assert_eq!(back["copied"].as_array().unwrap().len(), 1, "{back}");
    dst_cmd(&["check", "--read-data"]);

    // Data lost in the destination (its biggest pack gone, its index rebuilt): the next copy
    // walks the snapshots it still lists and stores that data again.
    let mut packs: Vec<(u64, PathBuf)> = common::files_in(&dst.join("data"))
        .into_iter()
        .flat_map(|d| common::files_in(&d))
        .map(|p| (std::fs::metadata(&p).unwrap().len(), p))
        .collect();
    packs.sort();
    std::fs::remove_file(&packs.last().unwrap().1).unwrap();
    dst_cmd(&["repair", "index"]);
    let restocked = copy(&env, s(&dst), &pass, &[]);
    assert!(restocked["bytes_stored"].as_u64().unwrap() >= 500_000, "{restocked}");
    dst_cmd(&["check", "--read-data"]);

    // Killed mid-way (slowed down by a bandwidth limit): the destination stays consistent and
    // holds no snapshot of the interrupted copy; the next copy finishes it.
    std::fs::write(src.join("new.bin"), random_bytes(2, 8_000_000)).unwrap();
    env.ok(&["backup", s(&src)]);
    let mut child = env
        .std_cmd()
        .args(["copy", "--to", s(&dst), "--to-password-file", s(&pass), "--limit-upload", "1024"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    child.kill().unwrap();
    child.wait().unwrap();
    let snaps = env.json(&["-r", s(&dst), "--password-file", s(&pass), "snapshots"]);
    assert_eq!(snaps.as_array().unwrap().len(), 3, "no snapshot from the killed copy");
    env.ok(&["-r", s(&dst), "--password-file", s(&pass), "unlock"]);
    env.ok(&["-r", s(&dst), "--password-file", s(&pass), "check"]);
    let resumed = copy(&env, s(&dst), &pass, &[]);
    assert_eq!(resumed["copied"].as_array().unwrap().len(), 1, "{resumed}");
    env.ok(&["-r", s(&dst), "--password-file", s(&pass), "check", "--read-data"]);
    restores_as(&env, s(&dst), &pass, &src);

    // Damaged source data is never copied: the copy fails (exit 4) and commits nothing.
    std::fs::write(src.join("last.bin"), random_bytes(3, 300_000)).unwrap();
    env.ok(&["backup", s(&src)]);
    damage_first_chunk(Path::new(&env.repo), b"test passphrase", &src.join("last.bin"));
    let (code, out, err) = env.run(&["copy", "--to", s(&dst), "--to-password-file", s(&pass)]);
    assert_eq!(code, 4, "{out}{err}");
    let snaps = env.json(&["-r", s(&dst), "--password-file", s(&pass), "snapshots"]);
    assert_eq!(snaps.as_array().unwrap().len(), 4);

    // Usage errors say what is wrong.
    let (code, _, err) =
        env.run(&["copy", "--to", s(&env.path().join("nowhere")), "--to-password-file", s(&pass)]);
    assert_ne!(code, 0);
    assert!(err.contains("nowhere"), "{err}");
    let (code, _, err) = env.run(&["copy", "--to", &env.repo, "--to-password-file", s(&env.password_file)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("same repository"), "{err}");
}

#[test]
fn copies_between_s3_and_a_local_folder_both_ways() {
    let Some(env) = Env::s3() else { return };
    env.ok(&["init"]);
    let src = env.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.bin"), random_bytes(5, 2_000_000)).unwrap();
    std::fs::write(src.join("b.txt"), "on S3").unwrap();
    env.ok(&["backup", s(&src)]);
    // S3 → local.
    let local = env.path().join("local");
    let pass = destination(&env, s(&local));
    let v = copy(&env, s(&local), &pass, &[]);
    assert_eq!(v["copied"].as_array().unwrap().len(), 1, "{v}");
    restores_as(&env, s(&local), &pass, &src);
    // Local → another S3 prefix.
    let s3 = format!("s3://rempart-test/t{:016x}", rand::random::<u64>());
    let pass2 = destination(&env, &s3);
    let out = env.ok(&[
        "--json",
        "-r",
        s(&local),
        "--password-file",
        s(&pass),
        "copy",
        "--to",
        &s3,
        "--to-password-file",
        s(&pass2),
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["copied"].as_array().unwrap().len(), 1, "{v}");
    env.ok(&["-r", &s3, "--password-file", s(&pass2), "check", "--read-data"]);
    restores_as(&env, &s3, &pass2, &src);
}

/// A job with a `[[copy]]` on S3 (its settings in `s3_env_file`, as an operator would keep
/// them): `rempart run JOB` backs up and copies; the primary is lost; the copy alone restores
/// every file, as a scheduled copy would have left it.
#[test]
fn a_job_copies_after_each_backup_and_the_copy_alone_restores_after_the_primary_is_lost() {
    let Some(settings_file) = std::env::var_os("REMPART_TEST_S3_ENV").map(PathBuf::from) else {
        // Without Garage, as the other S3 tests: skipped only when explicitly asked.
        assert!(common::s3_settings().is_none());
        return;
    };
    let jobs = common::Jobs::new(Env::new());
    let env = &jobs.env;
    let src = env.path().join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("big.bin"), random_bytes(21, 3_000_000)).unwrap();
    std::fs::write(src.join("d/small.txt"), "first").unwrap();
    let offsite = format!("s3://rempart-test/t{:016x}", rand::random::<u64>());
    jobs.job(
        "web",
        &format!("\"{}\"", s(&src)),
        &format!(
            "[objectives]\ncopies = 1\n[[copy]]\nname = \"offsite\"\nrepository = \"{offsite}\"\ns3_env_file = \"{}\"\n",
            s(&settings_file)
        ),
    );
    let keys = env.path().join("keys");
    let first = jobs.ok(&["--keys", s(&keys), "run", "web"]);
    assert!(first.contains("backup success") && first.contains("copy success"), "{first}");
    assert!(
        first.contains("copy 'offsite' (") && first.contains("1 snapshots copied, 0 already there"),
        "{first}"
    );
    // The copy's passphrase was created beside the job's keys, mode 0600.
    let pass = keys.join("web-offsite.pass");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&pass).unwrap().permissions().mode() & 0o777, 0o600);

    std::fs::write(src.join("d/small.txt"), "second").unwrap();
    let second = jobs.ok(&["--keys", s(&keys), "run", "web"]);
    assert!(second.contains("1 snapshots copied, 1 already there"), "{second}");

    // The PRA report's 3-2-1 line names the copy, its newest snapshot and the requirement.
    let report = jobs.ok(&["--keys", s(&keys), "report", "--format", "md"]);
    let line = report.lines().find(|l| l.contains("Copies (3-2-1)")).unwrap_or_default();
    assert!(
        line.contains("offsite (s3://")
            && line.contains("newest snapshot 20")
            && line.contains("[1 required]"),
        "{report}"
    );
    assert!(line.contains("never drilled"), "{line}");

    // The primary is lost: the copy, with its own passphrase and the S3 settings, restores.
    std::fs::remove_dir_all(&env.repo).unwrap();
    let target = env.path().join("restored");
    let mut restore = env.std_cmd();
    restore.args(["-r", &offsite, "--password-file", s(&pass), "restore", "latest", "--target", s(&target)]);
    for (k, v) in common::s3_settings().unwrap() {
        restore.env(k, v);
    }
    let out = restore.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    same_tree(&src, &restored(&target, &src));
}

/// A damaged pack heals from a copy, in both directions: the primary from its copy (through
/// the copy's id map), then the copy from the primary on a host that has no map (by walking
/// each snapshot beside its copy). Every healed blob is verified by its id.
#[test]
fn a_damaged_pack_heals_from_a_copy_both_ways() {
    let env = Env::new();
    env.ok(&["init"]);
    let src = env.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("big.bin"), random_bytes(31, 4_000_000)).unwrap();
    std::fs::write(src.join("note.txt"), "keep me").unwrap();
    env.ok(&["backup", s(&src)]);
    let dst = env.path().join("dst");
    let pass = destination(&env, s(&dst));
    copy(&env, s(&dst), &pass, &[]);

    // The primary is damaged: check fails; heal from the copy; check passes; files restore.
    damage_first_chunk(Path::new(&env.repo), b"test passphrase", &src.join("big.bin"));
    assert_eq!(env.run(&["check", "--read-data"]).0, 4);
    let dry = env.json(&["repair", "heal", "--from", s(&dst), "--from-password-file", s(&pass), "--dry-run"]);
    assert_eq!(dry["missing"], 0, "a dry run does not read packs: the damage is not found yet: {dry}");
    let healed =
        env.json(&["repair", "heal", "--from", s(&dst), "--from-password-file", s(&pass), "--read-data"]);
    assert!(healed["missing"].as_u64().unwrap() >= 1, "{healed}");
    assert_eq!(healed["healed"], healed["missing"], "{healed}");
    env.ok(&["check", "--read-data"]);
    let target = env.path().join("r1");
    env.ok(&["restore", "latest", "--target", s(&target)]);
    same_tree(&src, &restored(&target, &src));

    // The copy is damaged, and this host has lost its state (no id map): heal by walking
    // the snapshots side by side.
    damage_first_chunk(&dst, b"another passphrase", &src.join("big.bin"));
    let on_dst = |args: &[&str]| {
        let mut c = env.std_cmd();
        c.env("REMPART_STATE_DIR", env.path().join("fresh-state"));
        c.args(["-r", s(&dst), "--password-file", s(&pass)]).args(args);
        c.output().unwrap()
    };
    assert_eq!(on_dst(&["check", "--read-data"]).status.code(), Some(4));
    let out = on_dst(&[
        "repair",
        "heal",
        "--from",
        &env.repo,
        "--from-password-file",
        s(&env.password_file),
        "--read-data",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("stored again"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(on_dst(&["check", "--read-data"]).status.success());
    restores_as(&env, s(&dst), &pass, &src);

    // Data neither holds stays damaged, and heal says so (exit 4).
    std::fs::write(src.join("only-here.bin"), random_bytes(32, 500_000)).unwrap();
    env.ok(&["backup", s(&src)]);
    damage_first_chunk(Path::new(&env.repo), b"test passphrase", &src.join("only-here.bin"));
    let (code, out, _) =
        env.run(&["repair", "heal", "--from", s(&dst), "--from-password-file", s(&pass), "--read-data"]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("not in") && out.contains("either"), "{out}");
}
