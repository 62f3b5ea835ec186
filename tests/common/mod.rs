//! Helpers shared by the end-to-end tests: a scratch repository and the real binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub mod netns;

/// A scratch folder with a repository path, a password file and a state directory.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub repo: String,
    pub password_file: PathBuf,
    pub state_dir: PathBuf,
    /// Extra environment for the binary (S3 settings).
    pub extra_env: Vec<(String, String)>,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new().prefix("rempart-test-").tempdir().expect("tempdir");
        let repo = dir.path().join("repo").display().to_string();
        Env::with_repo(dir, repo)
    }

    pub fn with_repo(dir: tempfile::TempDir, repo: String) -> Env {
        let password_file = dir.path().join("pass");
        std::fs::write(&password_file, "test passphrase\n").unwrap();
        let state_dir = dir.path().join("state");
        Env { dir, repo, password_file, state_dir, extra_env: Vec::new() }
    }

    /// An environment whose repository is a fresh prefix of the test bucket on the Garage
    /// server that scripts/test starts; `None` only when S3 tests are explicitly skipped.
    pub fn s3() -> Option<Env> {
        let settings = s3_settings()?;
        let dir = tempfile::Builder::new().prefix("rempart-s3-test-").tempdir().expect("tempdir");
        let prefix = format!("t{:016x}", rand::random::<u64>());
        let mut env = Env::with_repo(dir, format!("s3://rempart-test/{prefix}"));
        env.extra_env = settings;
        Some(env)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The real binary with this environment's repository and passphrase.
    pub fn cmd(&self) -> Command {
        Command::from_std(self.std_cmd())
    }

    /// The same as a plain `std::process::Command`, for tests that spawn and kill.
    pub fn std_cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("rempart"));
        self.apply(&mut c);
        c
    }

    /// Gives `c` this environment (and nothing else of the test process's).
    pub fn apply(&self, c: &mut std::process::Command) {
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("REMPART_REPOSITORY", &self.repo)
            .env("REMPART_PASSWORD_FILE", &self.password_file)
            .env("REMPART_STATE_DIR", &self.state_dir)
            .env("REMPART_KDF_MEMORY_KIB", "8192");
        for (k, v) in &self.extra_env {
            c.env(k, v);
        }
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
        assert_eq!(code, 0, "rempart {args:?} failed with {code}\nstdout:\n{out}\nstderr:\n{err}");
        out
    }

    /// Runs with `--json` and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    /// Starts `rempart --json backup DIR` without waiting, stdout and stderr captured (for
    /// backups that must overlap with something else).
    pub fn spawn_backup(&self, dir: &Path) -> std::process::Child {
        self.std_cmd()
            .arg("--json")
            .arg("backup")
            .arg(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    pub fn init(&self) {
        self.ok(&["init"]);
    }
}

/// The AWS_* settings of the test Garage server (from `REMPART_TEST_S3_ENV`, which
/// scripts/test sets). Without it the S3 tests fail, unless `REMPART_SKIP_S3=1` says to skip
/// them: they are never skipped silently.
pub fn s3_settings() -> Option<Vec<(String, String)>> {
    match std::env::var("REMPART_TEST_S3_ENV") {
        Ok(path) => {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read S3 settings '{path}': {e}"));
            Some(
                text.lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .collect(),
            )
        }
        Err(_) if std::env::var("REMPART_SKIP_S3").is_ok_and(|v| v == "1") && std::env::var("CI").is_err() => {
            eprintln!("S3 tests SKIPPED (REMPART_SKIP_S3=1)");
            None
        }
        Err(_) => panic!(
            "the S3 tests need the Garage server that scripts/test starts (REMPART_TEST_S3_ENV); run scripts/test, or set REMPART_SKIP_S3=1 to skip them explicitly outside CI"
        ),
    }
}

/// Opens an S3 storage with the test settings and a fresh prefix.
pub fn s3_storage(prefix: &str) -> Option<std::sync::Arc<dyn rempart::storage::Storage>> {
    let settings = s3_settings()?;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), settings.iter().map(|(k, v)| format!("{k}={v}\n")).collect::<String>())
        .unwrap();
    let s =
        rempart::storage::S3Settings::from_env_and_file(&format!("rempart-test/{prefix}"), Some(file.path()))
            .unwrap();
    Some(rempart::storage::open_s3(s).unwrap())
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

/// Opens the environment's repository through the library (for tests that look inside it).
pub fn open_repo(env: &Env) -> (tokio::runtime::Runtime, rempart::repo::Repository) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let storage = rempart::storage::BlockingStorage::new(
        rempart::storage::open_url(&env.repo).unwrap(),
        rt.handle().clone(),
    );
    let repo = rempart::repo::Repository::open(storage, b"test passphrase").unwrap();
    (rt, repo)
}

/// The pack holding the first chunk of `file` as the latest snapshot of the local repository
/// `repo_dir` (opened with `passphrase`) stores it, and the chunk's offset in that pack.
pub fn first_chunk_of(repo_dir: &Path, passphrase: &[u8], file: &Path) -> (PathBuf, u64) {
    // BlockingStorage needs worker threads to drive its requests.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let storage = rempart::storage::BlockingStorage::new(
        rempart::storage::open_url(repo_dir.to_str().unwrap()).unwrap(),
        rt.handle().clone(),
    );
    let repo = rempart::repo::Repository::open(storage, passphrase).unwrap();
    let index = repo.load_index().unwrap();
    let (_, snap) = repo.find_snapshot("latest").unwrap();
    let node =
        rempart::restore::find_path(&repo, &index, &snap.tree, file.to_str().unwrap()).unwrap().unwrap();
    let loc = index.lookup(&node.content[0]).unwrap();
    let h = loc.pack.id.to_hex();
    (repo_dir.join("data").join(&h[..2]).join(&h), u64::from(loc.entry.offset))
}

/// Flips a byte inside the first chunk of `file` (see [`first_chunk_of`]); returns the pack.
pub fn damage_first_chunk(repo_dir: &Path, passphrase: &[u8], file: &Path) -> PathBuf {
    let (pack, offset) = first_chunk_of(repo_dir, passphrase, file);
    flip_byte(&pack, offset + 30);
    pack
}

/// Copies a folder tree (to clone a pristine repository for each damage case).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        let t = e.file_type().unwrap();
        if t.is_dir() {
            copy_dir(&e.path(), &dest);
        } else if t.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), &dest).unwrap();
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// Flips one bit of a file at `offset`.
pub fn flip_byte(path: &Path, offset: u64) {
    let mut b = std::fs::read(path).unwrap();
    let i = (offset as usize).min(b.len() - 1);
    b[i] ^= 0x20;
    std::fs::write(path, b).unwrap();
}

/// Cuts a file to half its length.
pub fn truncate_half(path: &Path) {
    let len = std::fs::metadata(path).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(path).unwrap().set_len(len / 2).unwrap();
}

/// The single file in a folder of the repository (keys/, index/, snapshots/).
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

/// Where `restore --target TARGET` puts the folder `src` (restores keep absolute paths).
pub fn restored(target: &Path, src: &Path) -> PathBuf {
    target.join(src.strip_prefix("/").unwrap())
}

/// Asserts that two folders hold the same entries and contents (`diff -r`, links compared as
/// links).
pub fn same_tree(a: &Path, b: &Path) {
    let out =
        std::process::Command::new("diff").arg("-r").arg("--no-dereference").arg(a).arg(b).output().unwrap();
    assert!(
        out.status.success(),
        "{} and {} differ: {}",
        a.display(),
        b.display(),
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A file system this test mounted (tmpfs, a read-only bind mount); unmounted on drop. The
/// suite runs as root (scripts/test and CI do); without root the mount fails loudly.
pub struct Mount(pub PathBuf);

impl Mount {
    /// A tmpfs of `size` (like "40M") at `at`.
    pub fn tmpfs(at: &Path, size: &str) -> Mount {
        std::fs::create_dir_all(at).unwrap();
        run_mount(&["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", at.to_str().unwrap()]);
        Mount(at.to_path_buf())
    }

    /// `from` seen read-only at `at`.
    pub fn read_only(from: &Path, at: &Path) -> Mount {
        std::fs::create_dir_all(at).unwrap();
        run_mount(&["--bind", from.to_str().unwrap(), at.to_str().unwrap()]);
        run_mount(&["-o", "remount,ro,bind", at.to_str().unwrap()]);
        Mount(at.to_path_buf())
    }

    /// Gives a tmpfs a new size (growing it frees the "disk").
    pub fn resize(&self, size: &str) {
        run_mount(&["-o", &format!("remount,size={size}"), self.0.to_str().unwrap()]);
    }
}

fn run_mount(args: &[&str]) {
    let out = std::process::Command::new("mount").args(args).output().expect("run mount");
    assert!(
        out.status.success(),
        "mount {args:?} failed (these tests need root, as scripts/test runs them): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// psql on the test server.
pub fn psql(db: &str, sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args(["-X", "-At", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-c", sql])
        .output()
        .unwrap();
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn mariadb(sql: &str) -> String {
    let out = std::process::Command::new("mariadb")
        .args(["-h", "127.0.0.1", "-u", "root", "--batch", "--skip-column-names", "-e", sql])
        .output()
        .unwrap();
    assert!(out.status.success(), "mariadb {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Writes job `name` into `dir` with `env`'s repository and passphrase; `sources` is the TOML
/// list's content (`"\"/a\", \"/b\""`).
pub fn write_job(dir: &Path, env: &Env, name: &str, sources: &str, extra: &str) {
    let text = format!(
        "name = \"{name}\"\nsources = [{sources}]\nrepository = \"{}\"\npassword_file = \"{}\"\n{extra}",
        env.repo,
        env.password_file.display()
    );
    std::fs::write(dir.join(format!("{name}.toml")), text).unwrap();
}

/// A folder of job files that use an environment's repository and passphrase.
pub struct Jobs {
    pub env: Env,
    pub dir: PathBuf,
}

impl Jobs {
    pub fn new(env: Env) -> Jobs {
        let dir = env.path().join("jobs");
        std::fs::create_dir_all(&dir).unwrap();
        Jobs { env, dir }
    }

    /// Writes a job using the test repository and passphrase.
    pub fn job(&self, name: &str, sources: &str, extra: &str) {
        write_job(&self.dir, &self.env, name, sources, extra);
    }

    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.env.cmd().arg("--jobs").arg(&self.dir).args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "{args:?}: {out}{err}");
        out
    }

    /// Runs a drill; returns (passed, details).
    pub fn drill(&self, args: &[&str]) -> (bool, serde_json::Value) {
        let mut a = vec!["--json", "drill"];
        a.extend_from_slice(args);
        let (code, out, err) = self.run(&a);
        let rec: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
        assert_eq!(code == 0, rec["status"] == "success", "{out}{err}");
        (rec["status"] == "success", rec)
    }
}
