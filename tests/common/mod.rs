//! Helpers shared by the end-to-end tests: a scratch repository and the real binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// A scratch folder with a repository path, a password file and a state directory.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub repo: String,
    pub password_file: PathBuf,
    pub state_dir: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("rempart-test-")
            .tempdir()
            .expect("tempdir");
        let repo = dir.path().join("repo").display().to_string();
        Env::with_repo(dir, repo)
    }

    pub fn with_repo(dir: tempfile::TempDir, repo: String) -> Env {
        let password_file = dir.path().join("pass");
        std::fs::write(&password_file, "test passphrase\n").unwrap();
        let state_dir = dir.path().join("state");
        Env {
            dir,
            repo,
            password_file,
            state_dir,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The real binary with this environment's repository and passphrase.
    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("rempart").expect("binary built");
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("REMPART_REPOSITORY", &self.repo)
            .env("REMPART_PASSWORD_FILE", &self.password_file)
            .env("REMPART_STATE_DIR", &self.state_dir)
            .env("REMPART_KDF_MEMORY_KIB", "8192");
        for (k, v) in std::env::vars() {
            if k.starts_with("AWS_") || k == "REMPART_S3_ENV_FILE" {
                c.env(k, v);
            }
        }
        c
    }

    /// Runs the binary with `args`; returns (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.cmd().args(args).output().expect("run rempart");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(
            code, 0,
            "rempart {args:?} failed with {code}\nstdout:\n{out}\nstderr:\n{err}"
        );
        out
    }

    /// Runs with `--json` and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    pub fn init(&self) {
        self.ok(&["init"]);
    }
}

/// Deterministic pseudo-random bytes (xorshift), incompressible enough for size tests.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}
