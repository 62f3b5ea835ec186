//! The operator's inspection and snapshot tools against the real binary: find, diff, stats,
//! dump, tag, and how names are shown.

mod common;

use std::path::Path;

use common::{flip_byte, open_repo, random_bytes, Env};

fn setup() -> (Env, std::path::PathBuf) {
    let env = Env::new();
    let src = env.path().join("src");
    std::fs::create_dir_all(src.join("etc/app")).unwrap();
    std::fs::write(src.join("etc/app/main.conf"), "a = 1\n").unwrap();
    std::fs::write(src.join("etc/other.conf"), "b = 2\n").unwrap();
    std::fs::write(src.join("data.bin"), random_bytes(3, 2_500_000)).unwrap();
    std::fs::write(src.join("gone.txt"), "soon removed\n").unwrap();
    std::fs::write(src.join("becomes-dir"), "a file first\n").unwrap();
    std::os::unix::fs::symlink("etc/other.conf", src.join("link")).unwrap();
    env.ok(&["init", "--pack-size-mib", "1"]);
    (env, src)
}

/// Every regular file below `dir`.
fn files_below(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let t = e.file_type().unwrap();
        if t.is_dir() {
            out.extend(files_below(&e.path()));
        } else if t.is_file() {
            out.push(e.path());
        }
    }
    out.sort();
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn find_diff_and_stats_tell_what_snapshots_hold() {
    let (env, src) = setup();
    let first = env.json(&["backup", s(&src)])["snapshot"].as_str().unwrap().to_string();
    std::fs::write(src.join("etc/app/main.conf"), "a = 2\n").unwrap();
    std::fs::remove_file(src.join("gone.txt")).unwrap();
    std::fs::write(src.join("new.conf"), "c = 3\n").unwrap();
    std::fs::remove_file(src.join("becomes-dir")).unwrap();
    std::fs::create_dir(src.join("becomes-dir")).unwrap();
    std::fs::write(src.join("becomes-dir/inside"), "x").unwrap();
    let mut perm = std::fs::metadata(src.join("etc/other.conf")).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o600);
    std::fs::set_permissions(src.join("etc/other.conf"), perm).unwrap();
    let second = env.json(&["backup", s(&src)])["snapshot"].as_str().unwrap().to_string();

    // find: names anywhere, or whole paths; --path limits; each snapshot that holds a match.
    let v = env.json(&["find", "*.conf"]);
    assert_eq!(v["matches"], 5, "{v}");
    let v = env.json(&["find", "*.conf", "--path", s(&src.join("etc/app"))]);
    assert_eq!(v["matches"], 2, "{v}");
    let pattern = format!("{}/etc/**/*.conf", s(&src));
    let v = env.json(&["find", &pattern, "--snapshot", &second[..8]]);
    assert_eq!(v["matches"], 2, "{v}");
    let (code, _, err) = env.run(&["find", "[unclosed"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("[unclosed"), "{err}");

    // diff: every kind of change, once.
    let v = env.json(&["diff", &first[..8], &second[..8]]);
    let change = |path: &str| -> String {
        let full = format!("{}/{path}", s(&src));
        let c = v["changes"].as_array().unwrap().iter().find(|c| c["path"] == full.as_str());
        c.map(|c| c["change"].as_str().unwrap().to_string()).unwrap_or_default()
    };
    assert_eq!(change("etc/app/main.conf"), "M", "{v}");
    assert_eq!(change("gone.txt"), "-");
    assert_eq!(change("new.conf"), "+");
    assert_eq!(change("becomes-dir"), "T");
    assert_eq!(change("becomes-dir/inside"), "+");
    assert_eq!(change("etc/other.conf"), "U");
    assert_eq!(change("data.bin"), "", "an unchanged file is not listed");
    assert_eq!(v["stats"]["removed"], 1);
    let text = env.ok(&["diff", &first[..8], &second[..8]]);
    assert!(text.contains("U  ") && text.contains("(mode"), "{text}");

    // stats: the big file is stored once for both snapshots.
    let v = env.json(&["stats"]);
    let t = &v["total"];
    assert_eq!(t["snapshots"], 2);
    assert!(t["restore_size"].as_u64().unwrap() > 5_000_000, "{v}");
    assert!(t["raw_size"].as_u64().unwrap() < 2_600_000, "deduplicated: {v}");
    assert!(t["dedup_ratio"].as_f64().unwrap() > 1.9, "{v}");
    assert_eq!(v["repository"]["unused_blobs"], 0);
    let one = env.json(&["stats", &first[..8]]);
    assert!(one["repository"]["unused_blobs"].as_u64().unwrap() > 0, "{one}");
}

#[test]
fn dump_streams_verified_bytes_and_stops_at_damage() {
    let (env, src) = setup();
    env.ok(&["backup", s(&src)]);
    let out = env.cmd().args(["dump", "latest", s(&src.join("data.bin"))]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, std::fs::read(src.join("data.bin")).unwrap());
    // A folder as tar, extracted with the system's tar.
    let tar = env.cmd().args(["dump", "latest", s(&src), "--archive", "tar"]).output().unwrap();
    assert!(tar.status.success(), "{}", String::from_utf8_lossy(&tar.stderr));
    let x = env.path().join("x");
    std::fs::create_dir_all(&x).unwrap();
    let mut child = std::process::Command::new("tar")
        .args(["-x", "-C", s(&x)])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &tar.stdout).unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    assert_eq!(std::fs::read(x.join("src/data.bin")).unwrap(), std::fs::read(src.join("data.bin")).unwrap());
    assert_eq!(std::fs::read_link(x.join("src/link")).unwrap(), Path::new("etc/other.conf"));
    let (code, _, err) = env.run(&["dump", "latest", s(&src)]);
    assert_eq!(code, 2, "a folder without --archive is a usage error: {err}");

    // Damage in the middle of the big file: the dump stops, exit 4, and never writes zeros.
    let (_rt, repo) = open_repo(&env);
    let index = repo.load_index().unwrap();
    let (_, snap) = repo.find_snapshot("latest").unwrap();
    let node =
        rempart::restore::find_path(&repo, &index, &snap.tree, s(&src.join("data.bin"))).unwrap().unwrap();
    let loc = index.lookup(&node.content[node.content.len() / 2]).unwrap();
    let h = loc.pack.id.to_hex();
    flip_byte(&Path::new(&env.repo).join("data").join(&h[..2]).join(&h), u64::from(loc.entry.offset) + 50);
    let out = env.cmd().args(["dump", "latest", s(&src.join("data.bin"))]).output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    let truth = std::fs::read(src.join("data.bin")).unwrap();
    assert!(out.stdout.len() < truth.len() && truth.starts_with(&out.stdout), "a prefix of the truth");
}

#[test]
fn tags_change_without_losing_the_snapshot_and_names_are_escaped() {
    let (env, src) = setup();
    std::fs::write(src.join("two\nlines\x1b[31m"), "x").unwrap();
    env.ok(&["backup", s(&src), "--tag", "daily"]);
    let v = env.json(&["tag", "latest", "--add", "keep", "--remove", "daily"]);
    assert_eq!(v[0]["tags"], serde_json::json!(["keep"]));
    let snaps = env.json(&["snapshots"]);
    assert_eq!(snaps.as_array().unwrap().len(), 1, "{snaps}");
    assert_eq!(snaps[0]["tags"], serde_json::json!(["keep"]));
    env.ok(&["tag", "latest", "--set", "a", "--set", "b"]);
    assert_eq!(env.json(&["snapshots"])[0]["tags"], serde_json::json!(["a", "b"]));
    let (code, _, err) = env.run(&["tag", "latest", "--add", "a,b"]);
    assert_eq!(code, 2, "{err}");
    env.ok(&["check", "--read-data"]);
    // The retagged snapshot restores like the original.
    let target = env.path().join("t");
    env.ok(&["restore", "latest", "--target", s(&target)]);

    let out = env.ok(&["ls", "latest"]);
    assert!(out.contains("two\\nlines\\x1b[31m"), "{out}");
    assert!(!out.contains('\x1b'), "no raw escape sequence reaches the terminal");
    let v = env.json(&["ls", "latest"]);
    let mtime = v["entries"][0]["mtime"].as_str().unwrap();
    assert!(mtime.ends_with('Z') || mtime.contains('+'), "RFC 3339 with offset: {mtime}");
}

#[test]
fn restore_takes_globs_excludes_and_dry_runs() {
    let (env, src) = setup();
    env.ok(&["backup", s(&src)]);
    // A dry run counts and writes nothing.
    let target = env.path().join("dry");
    let v = env.json(&["restore", "latest", "--target", s(&target), "--dry-run", "--exclude", "*.bin"]);
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["result"]["files"], 4, "{v}");
    assert!(!target.exists(), "a dry run creates nothing");
    // A glob include takes the matches and what is below them; folders above only as needed.
    let target = env.path().join("conf");
    let glob = format!("{}/etc/**/*.conf", s(&src));
    env.ok(&["restore", "latest", "--target", s(&target), "--include", &glob]);
    let got = files_below(&target);
    let rel: Vec<String> =
        got.iter().map(|p| p.strip_prefix(&target).unwrap().display().to_string()).collect();
    assert_eq!(rel.len(), 2, "{rel:?}");
    assert!(rel.iter().all(|r| r.ends_with(".conf")), "{rel:?}");
    // Excludes win over includes, by name or by whole path.
    let target = env.path().join("ex");
    let etc = format!("{}/etc", s(&src));
    let app = format!("{}/etc/app", s(&src));
    env.ok(&["restore", "latest", "--target", s(&target), "--include", &etc, "--exclude", &app]);
    let got = files_below(&target);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].ends_with("etc/other.conf"));
    let (code, _, err) = env.run(&["restore", "latest", "--target", s(&target), "--include", "/nowhere/*.x"]);
    assert_ne!(code, 0);
    assert!(err.contains("nothing in the snapshot matches"), "{err}");
}

#[test]
fn completions_complete_commands_and_flags_and_man_pages_cover_every_command() {
    let env = Env::new();
    let script = env.ok(&["completions", "bash"]);
    let file = env.path().join("rempart.bash");
    std::fs::write(&file, script).unwrap();
    let complete = |words: &str| {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source '{}'; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
                 COMP_LINE='{words}'; COMP_POINT=${{#COMP_LINE}}; \
                 _rempart rempart \"${{COMP_WORDS[-1]}}\" \"${{COMP_WORDS[-2]}}\"; echo \"${{COMPREPLY[@]}}\"",
                file.display()
            ))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(complete("rempart sn"), "snapshots");
    assert_eq!(complete("rempart restore --inc"), "--include");
    for shell in ["zsh", "fish"] {
        assert!(env.ok(&["completions", shell]).contains("snapshots"), "{shell}");
    }
    let (code, _, err) = env.run(&["completions", "tcsh"]);
    assert_eq!(code, 2, "an unknown shell is a usage error: {err}");
    assert!(err.contains("bash, zsh, fish"), "{err}");

    let dir = env.path().join("man/man1");
    let out = env.ok(&["man", s(&dir)]);
    let commands = env.ok(&["--help"]);
    let pages: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(out.contains(&format!("wrote {} manual pages", pages.len())), "{out}");
    for name in ["rempart.1", "rempart-backup.1", "rempart-drill.1", "rempart-man.1"] {
        assert!(pages.iter().any(|p| p == name), "{name} in {pages:?}");
    }
    let backup = std::fs::read_to_string(dir.join("rempart-backup.1")).unwrap();
    assert!(backup.starts_with(".ie") || backup.contains(".TH rempart-backup"), "{backup}");
    assert!(backup.contains("exclude"), "the flags are documented: {backup}");
    assert!(commands.contains("completions") && commands.contains("man"), "{commands}");
}

#[test]
fn forget_rules_apply_to_the_chosen_host_tags_paths_and_groups() {
    let (env, src) = setup();
    let other = env.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("x"), "x").unwrap();
    for tag in ["db", "db", "web", "db", "web"] {
        env.ok(&["backup", s(&src), "--tag", tag]);
    }
    env.ok(&["backup", s(&src), "--tag", "db", "--host", "elsewhere"]);
    env.ok(&["backup", s(&other), "--tag", "db"]);
    let tags_left = |env: &Env| -> Vec<String> {
        let v = env.json(&["snapshots"]);
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| format!("{}:{}", s["hostname"].as_str().unwrap(), s["tags"][0].as_str().unwrap()))
            .collect()
    };
    assert_eq!(tags_left(&env).len(), 7);
    // Only this host's db snapshots of `src` are in scope: two of the three go.
    let host = env.json(&["snapshots"])[0]["hostname"].as_str().unwrap().to_string();
    let v = env.json(&["forget", "--keep-last", "1", "--tag", "db", "--host", &host, "--path", s(&src)]);
    assert_eq!(v["removed"].as_array().unwrap().len(), 2, "{v}");
    let left = tags_left(&env);
    assert_eq!(left.iter().filter(|t| t.ends_with(":web")).count(), 2, "{left:?}");
    assert_eq!(left.iter().filter(|t| t.starts_with("elsewhere:")).count(), 1, "{left:?}");
    assert_eq!(left.len(), 5, "{left:?}");
    // Grouped by tags only, one of each tag is kept whatever the host and paths.
    let out = env.ok(&["forget", "--keep-last", "1", "--group-by", "tags", "--dry-run"]);
    assert!(out.contains("tags db:") && out.contains("tags web:"), "{out}");
    assert!(out.contains("2 kept, 3 would be removed"), "{out}");
    // One group of everything.
    env.ok(&["forget", "--keep-last", "1", "--group-by", ""]);
    assert_eq!(tags_left(&env).len(), 1);
    env.ok(&["check", "--read-data"]);

    let (code, _, err) = env.run(&["forget", "--keep-last", "1", "--group-by", "owner"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("'owner' is not something to group by"), "{err}");
    let (code, _, err) = env.run(&["forget", "latest", "--host", "x"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--host, --tag and --path choose what --keep-* rules apply to"), "{err}");
}

#[test]
fn restore_overwrite_policies_and_delete_make_the_target_equal_to_the_snapshot() {
    let (env, src) = setup();
    env.ok(&["backup", s(&src)]);
    let target = env.path().join("t");
    env.ok(&["restore", "latest", "--target", s(&target)]);
    let root = target.join(src.strip_prefix("/").unwrap());
    let conf = root.join("etc/other.conf");
    let set_mtime = |p: &Path, secs: i64| {
        let t = nix::sys::time::TimeSpec::new(secs, 0);
        nix::sys::stat::utimensat(None, p, &t, &t, nix::sys::stat::UtimensatFlags::NoFollowSymlink).unwrap();
    };
    // Edited after the restore, with an old modification time.
    std::fs::write(&conf, "b = 3\n").unwrap();
    set_mtime(&conf, 1_000_000);
    let restore = |extra: &[&str]| {
        let mut args = vec!["restore", "latest", "--target", s(&target)];
        args.extend_from_slice(extra);
        env.json(&args)
    };
    let v = restore(&["--overwrite", "never"]);
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "b = 3\n", "never replaces");
    assert_eq!(v["result"]["files"], 0, "{v}");
    assert_eq!(v["result"]["skipped"], 6, "5 files and the symlink: {v}");
    // if-changed rewrites only the edited file: the others match the backup's hash.
    let v = restore(&["--overwrite", "if-changed"]);
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "b = 2\n");
    assert_eq!((v["result"]["files"].as_u64(), v["result"]["skipped"].as_u64()), (Some(1), Some(5)), "{v}");
    // if-newer keeps a file edited after the snapshot, and replaces an older one.
    std::fs::write(&conf, "b = 4\n").unwrap();
    let v = restore(&["--overwrite", "if-newer"]);
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "b = 4\n", "newer than the snapshot: kept {v}");
    set_mtime(&conf, 1_000_000);
    restore(&["--overwrite", "if-newer"]);
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "b = 2\n", "older: replaced");

    // --delete removes what the snapshot does not hold, only within the selection.
    std::fs::write(root.join("etc/app/stray.conf"), "x").unwrap();
    std::fs::create_dir_all(root.join("etc/newdir/deep")).unwrap();
    std::fs::write(root.join("etc/newdir/deep/f"), "x").unwrap();
    std::fs::write(root.join("extra.txt"), "x").unwrap();
    std::fs::write(root.join("skip.tmp"), "x").unwrap();
    let etc = format!("{}/etc", s(&src));
    let v = restore(&["--delete", "--dry-run", "--include", &etc]);
    let would: Vec<&str> =
        v["result"]["deleted"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
    assert_eq!(would.len(), 2, "{v}");
    assert!(
        would.iter().any(|d| d.ends_with("etc/app/stray.conf"))
            && would.iter().any(|d| d.ends_with("etc/newdir"))
    );
    assert!(root.join("etc/app/stray.conf").exists(), "a dry run deletes nothing");
    restore(&["--delete", "--include", &etc, "--overwrite", "if-changed"]);
    assert!(!root.join("etc/app/stray.conf").exists() && !root.join("etc/newdir").exists());
    assert!(root.join("extra.txt").exists(), "outside --include: untouched");
    restore(&["--delete", "--exclude", "*.tmp"]);
    assert!(!root.join("extra.txt").exists());
    assert!(root.join("skip.tmp").exists(), "excluded: untouched");
    // The target now equals the snapshot, but for the excluded file.
    let mut got: Vec<String> =
        files_below(&root).iter().map(|p| p.strip_prefix(&root).unwrap().display().to_string()).collect();
    got.retain(|p| p != "skip.tmp");
    assert_eq!(got, ["becomes-dir", "data.bin", "etc/app/main.conf", "etc/other.conf", "gone.txt"]);

    // Damage never replaces the file in place, and --delete never removes it.
    std::fs::write(&conf, "b = 9\n").unwrap();
    let (_rt, repo) = open_repo(&env);
    let index = repo.load_index().unwrap();
    let (_, snap) = repo.find_snapshot("latest").unwrap();
    let node = rempart::restore::find_path(&repo, &index, &snap.tree, s(&src.join("etc/other.conf")))
        .unwrap()
        .unwrap();
    let loc = index.lookup(&node.content[0]).unwrap();
    let h = loc.pack.id.to_hex();
    flip_byte(&Path::new(&env.repo).join("data").join(&h[..2]).join(&h), u64::from(loc.entry.offset) + 20);
    let (code, out, _) = env.run(&["restore", "latest", "--target", s(&target), "--delete"]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("DAMAGED") && out.contains("other.conf"), "{out}");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "b = 9\n", "the file in place stays: {out}");
    assert!(!root.join("etc/.other.conf.rempart-partial").exists(), "{out}");
}

#[test]
fn backup_inputs_lists_markers_sizes_and_stdin() {
    let (env, src) = setup();
    // A cache folder (valid tag), a fake tag, a marker, a big file.
    let cache = src.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(cache.join("CACHEDIR.TAG"), "Signature: 8a477f597d28d172789f06886806bc55\n").unwrap();
    std::fs::write(cache.join("blob"), "cached").unwrap();
    let fake = src.join("fake");
    std::fs::create_dir_all(&fake).unwrap();
    std::fs::write(fake.join("CACHEDIR.TAG"), "not a tag").unwrap();
    std::fs::write(fake.join("kept"), "x").unwrap();
    let private = src.join("private");
    std::fs::create_dir_all(&private).unwrap();
    std::fs::write(private.join(".nobackup"), "").unwrap();
    std::fs::write(private.join("secret"), "x").unwrap();
    let patterns = env.path().join("excludes.txt");
    std::fs::write(&patterns, "# build output\n*.conf\n\n").unwrap();
    let list = env.path().join("list");
    std::fs::write(&list, format!("{}\n# not this\n{}\n", s(&src.join("etc")), s(&src.join("cache"))))
        .unwrap();
    let v = env.json(&[
        "backup",
        s(&src),
        "--exclude-caches",
        "--exclude-if-present",
        ".nobackup",
        "--exclude-larger-than",
        "1M",
        "--exclude-file",
        s(&patterns),
    ]);
    assert_eq!(v["status"], "success", "{v}");
    let names: Vec<String> = env
        .ok(&["ls", "latest"])
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect();
    let has = |p: &str| names.iter().any(|n| n.ends_with(p));
    assert!(has("cache/CACHEDIR.TAG") && !has("cache/blob"), "a tagged cache keeps its tag only: {names:?}");
    assert!(has("fake/kept"), "a tag without the signature excludes nothing: {names:?}");
    assert!(has("private/.nobackup") && !has("private/secret"), "{names:?}");
    assert!(!has("data.bin"), "larger than 1M: {names:?}");
    assert!(!has("main.conf") && !has("other.conf"), "patterns from the file: {names:?}");
    assert!(has("gone.txt"));

    // --files-from: the listed paths (comments skipped), and NUL-separated with -0.
    let v = env.json(&["backup", "--files-from", s(&list)]);
    assert_eq!(
        v["summary"]["files_new"].as_u64().unwrap() + v["summary"]["files_unmodified"].as_u64().unwrap(),
        4,
        "{v}"
    );
    std::fs::write(&list, format!("{}\0{}\0", s(&src.join("gone.txt")), s(&src.join("becomes-dir"))))
        .unwrap();
    let snap = env.json(&["backup", "--files-from", s(&list), "-0"]);
    assert_eq!(snap["status"], "success");
    let all = env.json(&["snapshots"]);
    let newest = all.as_array().unwrap().iter().find(|x| x["id"] == snap["snapshot"]).unwrap();
    assert_eq!(newest["paths"].as_array().unwrap().len(), 2, "{newest}");
    std::fs::write(&list, "# nothing\n").unwrap();
    let (code, _, err) = env.run(&["backup", "--files-from", s(&list)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("lists no path"), "{err}");
    let (code, _, err) = env.run(&["backup", s(&src), "--exclude-larger-than", "lots"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("'lots' is not a size"), "{err}");

    // --stdin: one file, restored byte for byte.
    let data = random_bytes(9, 300_000);
    let mut child = env
        .std_cmd()
        .args(["--json", "backup", "--stdin", "--stdin-filename", "db.sql"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &data).unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["source"]["kind"], "stdin", "{v}");
    let dumped = env.cmd().args(["dump", "latest", "/db.sql"]).output().unwrap();
    assert_eq!(dumped.stdout, data);
    let (code, _, err) = env.run(&["backup", "--stdin", "--stdin-filename", "a/b"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("expected a plain file name"), "{err}");
    let (code, _, err) = env.run(&["backup", "--stdin", s(&src)]);
    assert_eq!(code, 2, "--stdin with paths: {err}");
}

#[test]
fn bandwidth_limits_hold_the_rate_down() {
    let env = Env::new();
    env.ok(&["init"]);
    let src = env.path().join("big");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("random"), random_bytes(21, 10 << 20)).unwrap();
    // 10 MiB at 1024 KiB/s: at least 9 s (a lower bound only; the machine may be slower).
    let started = std::time::Instant::now();
    env.ok(&["backup", s(&src), "--limit-upload", "1024"]);
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_secs(9), "uploaded 10 MiB in {took:?}");
    let started = std::time::Instant::now();
    let target = env.path().join("t");
    env.ok(&["restore", "latest", "--target", s(&target), "--limit-download", "4096"]);
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_secs(2), "downloaded 10 MiB at 4 MiB/s in {took:?}");
    assert_eq!(
        std::fs::read(target.join(src.strip_prefix("/").unwrap()).join("random")).unwrap().len(),
        10 << 20
    );
}

#[test]
fn progress_lines_off_a_terminal_and_verbose_file_lists() {
    let (env, src) = setup();
    let status_lines = |args: &[&str]| {
        let out = env.cmd().env("REMPART_PROGRESS_INTERVAL", "0.05").args(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // -v lists what is new; a status line with share, rate and ETA (the run is slowed down so
    // that at least one line is due).
    let (out, err) = status_lines(&["-v", "backup", s(&src), "--limit-upload", "4096"]);
    for name in ["etc/app/main.conf", "data.bin", "gone.txt"] {
        assert!(out.lines().any(|l| l.starts_with("new ") && l.contains(name)), "{name}: {out}");
    }
    let line =
        err.lines().find(|l| l.starts_with("backup [")).unwrap_or_else(|| panic!("a status line: {err}"));
    assert!(line.contains(" % ") && line.contains("/s, ETA ") && line.contains("files"), "{line}");
    // Then only what changed, and -vv names the unchanged files too.
    std::fs::write(src.join("gone.txt"), "changed\n").unwrap();
    let (out, _) = status_lines(&["-v", "backup", s(&src)]);
    let listed: Vec<&str> =
        out.lines().filter(|l| l.starts_with("new ") || l.starts_with("modified ")).collect();
    assert_eq!(listed.len(), 1, "{out}");
    assert!(listed[0].starts_with("modified") && listed[0].contains("gone.txt"), "{out}");
    let (out, _) = status_lines(&["-vv", "backup", s(&src)]);
    assert_eq!(out.lines().filter(|l| l.starts_with("unchanged ")).count(), 5, "{out}");
    // --json keeps stdout to the one JSON document.
    let (out, _) = status_lines(&["-v", "--json", "backup", s(&src)]);
    serde_json::from_str::<serde_json::Value>(&out).unwrap();
    // check --read-data and restore report too.
    let (_, err) = status_lines(&["check", "--read-data", "--limit-download", "4096"]);
    assert!(err.lines().any(|l| l.starts_with("check [") && l.contains("packs verified")), "{err}");
    let target = env.path().join("t");
    let (_, err) = status_lines(&["restore", "latest", "--target", s(&target), "--limit-download", "4096"]);
    assert!(err.lines().any(|l| l.starts_with("restore [") && l.contains("ETA")), "{err}");
}

/// `rempart mount` in the background; returns once the mount answers.
fn mounted(env: &Env, at: &Path) -> std::process::Child {
    std::fs::create_dir_all(at).unwrap();
    let mut child = env
        .std_cmd()
        .args(["mount", s(at)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if at.join("latest").symlink_metadata().is_ok() {
            return child;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    panic!("the mount did not come up within 10 s: {}", String::from_utf8_lossy(&out.stderr));
}

fn is_mounted(at: &Path) -> bool {
    std::fs::read_to_string("/proc/mounts").unwrap().lines().any(|l| l.split(' ').nth(1) == Some(s(at)))
}

fn stop(child: std::process::Child) -> String {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn mount_shows_every_snapshot_holds_off_prune_and_never_reads_zeros() {
    let (env, src) = setup();
    let first =
        env.json(&["backup", s(&src), "--tag", "first"])["snapshot"].as_str().unwrap()[..8].to_string();
    let old = std::fs::read(src.join("data.bin")).unwrap();
    std::fs::write(src.join("data.bin"), random_bytes(4, 2_000_000)).unwrap();
    let second = env.json(&["backup", s(&src)])["snapshot"].as_str().unwrap()[..8].to_string();
    let mnt = env.path().join("mnt");
    let child = mounted(&env, &mnt);
    assert!(is_mounted(&mnt));
    let inside = |snap: &str| mnt.join("snapshots").join(snap).join(src.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read_link(mnt.join("latest")).unwrap(), Path::new(&format!("snapshots/{second}")));
    assert_eq!(
        std::fs::read_link(mnt.join("tags/first/latest")).unwrap(),
        Path::new(&format!("../../snapshots/{first}"))
    );
    let host = env.json(&["snapshots"])[0]["hostname"].as_str().unwrap().to_string();
    assert!(mnt.join("hosts").join(&host).join(&second).symlink_metadata().is_ok());
    // The second snapshot reads back as the source is now, file by file, with its metadata.
    let mut got: Vec<_> = files_below(&inside(&second))
        .iter()
        .map(|p| p.strip_prefix(inside(&second)).unwrap().to_path_buf())
        .collect();
    got.sort();
    assert_eq!(got.len(), 5, "{got:?}");
    for rel in &got {
        assert_eq!(
            std::fs::read(inside(&second).join(rel)).unwrap(),
            std::fs::read(src.join(rel)).unwrap(),
            "{rel:?}"
        );
    }
    assert_eq!(std::fs::read_link(inside(&second).join("link")).unwrap(), Path::new("etc/other.conf"));
    let m = std::fs::metadata(inside(&second).join("etc/other.conf")).unwrap();
    let orig = std::fs::metadata(src.join("etc/other.conf")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((m.mode(), m.mtime(), m.size()), (orig.mode(), orig.mtime(), orig.size()));
    assert!(std::fs::write(inside(&second).join("gone.txt"), "x").is_err(), "read-only");

    // The first snapshot forgotten and pruned twice while mounted: the mount's read lock holds
    // the sweep off, so its data still reads.
    env.ok(&["forget", &first]);
    env.ok(&["prune", "--grace", "0s"]);
    let out = env.ok(&["prune", "--grace", "0s"]);
    assert!(out.contains("waits for"), "{out}");
    assert_eq!(std::fs::read(inside(&first).join("data.bin")).unwrap(), old);
    stop(child);
    assert!(!is_mounted(&mnt), "SIGTERM unmounts");
    env.ok(&["prune", "--grace", "0s"]);
    env.ok(&["check", "--read-data"]);

    // Damage reads as EIO, never as zeros; the rest still reads.
    let (_rt, repo) = open_repo(&env);
    let index = repo.load_index().unwrap();
    let (_, snap) = repo.find_snapshot("latest").unwrap();
    let node =
        rempart::restore::find_path(&repo, &index, &snap.tree, s(&src.join("data.bin"))).unwrap().unwrap();
    let loc = index.lookup(&node.content[0]).unwrap();
    let h = loc.pack.id.to_hex();
    flip_byte(&Path::new(&env.repo).join("data").join(&h[..2]).join(&h), u64::from(loc.entry.offset) + 50);
    let child = mounted(&env, &mnt);
    let err = std::fs::read(inside(&second).join("data.bin")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(5), "EIO: {err}");
    assert_eq!(
        std::fs::read(inside(&second).join("gone.txt")).unwrap(),
        std::fs::read(src.join("gone.txt")).unwrap()
    );
    // Unmounted from outside: the command ends by itself.
    assert!(std::process::Command::new("umount").arg(&mnt).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("Unmount failed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn restore_delete_never_reaches_the_repository_links_or_unread_folders() {
    let (env, src) = setup();
    std::fs::hard_link(src.join("gone.txt"), src.join("gone-link.txt")).unwrap();
    env.ok(&["backup", s(&src)]);
    // Restored with --delete into the folder that holds the repository and the state
    // directory: both survive, and the repository still checks.
    let stray = env.path().join("stray.txt");
    std::fs::write(&stray, "not in the snapshot").unwrap();
    let v = env.json(&["restore", "latest", "--target", s(env.path()), "--delete"]);
    assert!(!stray.exists(), "{v}");
    assert!(Path::new(&env.repo).join("config").exists() && env.state_dir.exists(), "{v}");
    // (The passphrase file lay there too, outside the snapshot: --delete rightly took it.)
    assert!(!env.password_file.exists());
    std::fs::write(&env.password_file, "test passphrase\n").unwrap();
    env.ok(&["check", "--read-data"]);

    // --delete into the repository (or the state directory) is refused before anything.
    let (code, _, err) = env.run(&["restore", "latest", "--target", &env.repo, "--delete"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("refused"), "{err}");
    env.ok(&["check"]);

    // A symlink in the target where the snapshot has a folder is replaced, never followed.
    let target = env.path().join("t");
    let outside = env.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let root = target.join(src.strip_prefix("/").unwrap());
    std::fs::create_dir_all(&root).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("etc")).unwrap();
    env.ok(&["restore", "latest", "--target", s(&target)]);
    assert!(std::fs::read_dir(&outside).unwrap().next().is_none(), "nothing written through the link");
    assert!(
        root.join("etc/other.conf").exists() && !root.join("etc").symlink_metadata().unwrap().is_symlink()
    );

    // The same for the folders above a partial restore.
    std::fs::remove_dir_all(root.join("etc")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("etc")).unwrap();
    let app = format!("{}/etc/app/main.conf", s(&src));
    env.ok(&["restore", "latest", "--target", s(&target), "--include", &app]);
    assert!(std::fs::read_dir(&outside).unwrap().next().is_none(), "nothing written through the link");
    assert!(root.join("etc/app/main.conf").exists());
    // A file where the snapshot has a folder stays with --overwrite never.
    std::fs::remove_dir_all(root.join("etc/app")).unwrap();
    std::fs::write(root.join("etc/app"), "a file").unwrap();
    env.ok(&["restore", "latest", "--target", s(&target), "--overwrite", "never"]);
    assert_eq!(std::fs::read_to_string(root.join("etc/app")).unwrap(), "a file");
    env.ok(&["restore", "latest", "--target", s(&target)]);
    assert!(root.join("etc/app/main.conf").exists(), "--overwrite always replaces it");

    // A folder standing where the snapshot has a file, left by --overwrite never, is not
    // emptied by --delete.
    std::fs::remove_file(root.join("gone.txt")).unwrap();
    std::fs::create_dir_all(root.join("gone.txt")).unwrap();
    std::fs::write(root.join("gone.txt/mine"), "keep me").unwrap();
    env.ok(&["restore", "latest", "--target", s(&target), "--overwrite", "never", "--delete"]);
    assert!(root.join("gone.txt/mine").exists());

    // A hard link whose first path cannot be restored keeps what it held and is named damaged.
    std::fs::write(root.join("gone-link.txt"), "local").unwrap();
    let (_rt, repo) = open_repo(&env);
    let index = repo.load_index().unwrap();
    let (_, snap) = repo.find_snapshot("latest").unwrap();
    let node =
        rempart::restore::find_path(&repo, &index, &snap.tree, s(&src.join("gone.txt"))).unwrap().unwrap();
    let loc = index.lookup(&node.content[0]).unwrap();
    let h = loc.pack.id.to_hex();
    let pack = Path::new(&env.repo).join("data").join(&h[..2]).join(&h);
    flip_byte(&pack, u64::from(loc.entry.offset) + 10);
    std::fs::remove_dir_all(root.join("gone.txt")).unwrap();
    let (code, out, _) = env.run(&["restore", "latest", "--target", s(&target)]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("gone-link.txt") && out.contains("hard link of"), "{out}");
    assert_eq!(std::fs::read_to_string(root.join("gone-link.txt")).unwrap(), "local");

    // A folder whose tree cannot be read: --delete removes nothing at all.
    std::fs::write(root.join("extra"), "x").unwrap();
    let trees: Vec<_> = std::fs::read_dir(Path::new(&env.repo).join("data"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| *p != pack && std::fs::metadata(p).unwrap().len() < 100_000)
        .collect();
    for t in &trees {
        flip_byte(t, 40);
    }
    let (code, out, err) = env.run(&["restore", "latest", "--target", s(&target), "--delete"]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(root.join("extra").exists(), "{out}{err}");
    assert!(err.contains("--delete removed nothing"), "{err}");
}
