//! End-to-end: exit codes and error messages that name the bad input; keys and recovery.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::Env;

#[test]
fn wrong_passphrase_is_a_clear_error_with_its_own_exit_code() {
    let env = Env::new();
    env.init();
    std::fs::write(&env.password_file, "not the passphrase\n").unwrap();
    let (code, _, err) = env.run(&["snapshots"]);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("wrong passphrase"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn errors_quote_the_bad_input() {
    let env = Env::new();
    let (code, _, err) = env.run(&["snapshots"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("no repository at '{}'", std::path::Path::new(&env.repo).display())),
        "{err}"
    );
    env.init();
    let (code, _, err) = env.run(&["init"]);
    assert_ne!(code, 0);
    assert!(err.contains("already exists"), "{err}");

    let (code, _, err) = env.run(&["backup", "/definitely/not/here"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("'/definitely/not/here'"), "{err}");

    let (code, _, err) = env.run(&["backup", "--exclude", "a[", env.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("'a['"), "{err}");

    let (code, _, err) = env.run(&["restore", "deadbeef", "--target", "/tmp/x"]);
    assert_ne!(code, 0);
    assert!(err.contains("'deadbeef'"), "{err}");

    let (code, _, err) = env.run(&["ls", "zz"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("'zz'"), "{err}");

    let (code, _, err) = env.run(&["--password-file", "/no/such/pass", "snapshots"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("'/no/such/pass'"), "{err}");

    let (code, _, err) = env.run(&["-r", "ftp://host/x", "snapshots"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("'ftp://host/x'"), "{err}");

    let (code, _, err) = env.run(&["init", "--compression", "40"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("40"), "{err}");
}

/// Root reads everything, so the unreadable file is read by an unprivileged user.
#[test]
fn unreadable_file_makes_a_partial_snapshot() {
    let env = Env::new();
    std::fs::set_permissions(env.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&env.password_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let src = env.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("readable"), b"fine").unwrap();
    std::fs::write(src.join("locked"), b"no access").unwrap();
    std::fs::set_permissions(src.join("locked"), std::fs::Permissions::from_mode(0o000)).unwrap();
    let run_as_nobody = |args: &[&str]| {
        let c = env.cmd();
        let bin = c.get_program().to_owned();
        let mut setpriv = std::process::Command::new("setpriv");
        setpriv.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).arg(bin).args(args);
        for (k, v) in c.get_envs() {
            if let Some(v) = v {
                setpriv.env(k, v);
            }
        }
        setpriv.env("HOME", env.path());
        let out = setpriv.output().expect("setpriv");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = run_as_nobody(&["init"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run_as_nobody(&["--json", "backup", src.to_str().unwrap()]);
    assert_eq!(code, 3, "partial exit code expected\n{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], "partial");
    let errors = v["summary"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{v}");
    assert_eq!(errors[0]["path"], src.join("locked").display().to_string());
    assert!(errors[0]["error"].as_str().unwrap().contains("Permission denied"), "{v}");
    assert_eq!(v["summary"]["files_new"], 1);
}

#[test]
fn keys_can_be_added_listed_removed_and_exported() {
    let env = Env::new();
    env.init();
    let src = env.path().join("d");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), b"data").unwrap();
    env.ok(&["backup", src.to_str().unwrap()]);

    let second = env.path().join("second.pass");
    std::fs::write(&second, "another passphrase\n").unwrap();
    env.ok(&["key", "add", "--new-password-file", second.to_str().unwrap(), "--label", "ops team"]);
    let keys = env.json(&["key", "list"]);
    assert_eq!(keys.as_array().unwrap().len(), 2);
    assert!(keys.as_array().unwrap().iter().any(|k| k["label"] == "ops team"));

    // The new passphrase opens the repository.
    let (code, _, err) = env.run(&["--password-file", second.to_str().unwrap(), "snapshots"]);
    assert_eq!(code, 0, "{err}");

    // The current key cannot remove itself; the other one can.
    let current = keys.as_array().unwrap().iter().find(|k| k["current"] == true).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, _, err) = env.run(&["key", "remove", &current[..12]]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("opened the repository"), "{err}");

    // Recovery file: survives the loss of every key object.
    let recovery = env.path().join("recovery.json");
    env.ok(&["key", "export", "-o", recovery.to_str().unwrap()]);
    let mode = std::fs::metadata(&recovery).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // An existing file is not replaced unless asked.
    let (code, _, err) = env.run(&["key", "export", "-o", recovery.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--force"), "{err}");
    env.ok(&["key", "export", "-o", recovery.to_str().unwrap(), "--force"]);
    for k in std::fs::read_dir(std::path::Path::new(&env.repo).join("keys")).unwrap() {
        std::fs::write(k.unwrap().path(), b"{ damaged").unwrap();
    }
    let (code, _, err) = env.run(&["snapshots"]);
    assert_ne!(code, 0);
    assert!(err.contains("damaged key objects") || err.contains("recovery"), "{err}");
    let out = env.ok(&["--recovery-file", recovery.to_str().unwrap(), "snapshots"]);
    assert!(out.contains("1 snapshots"), "{out}");
    let target = env.path().join("out");
    env.ok(&[
        "--recovery-file",
        recovery.to_str().unwrap(),
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(target.join(src.strip_prefix("/").unwrap()).join("f")).unwrap(), b"data");
}
