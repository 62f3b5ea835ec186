//! Test hosts in network namespaces, each behind its own fault-injecting proxy, and the 3-node
//! Garage cluster that scripts/test starts (`REMPART_TEST_CLUSTER_DIR`).
//!
//! A host is a namespace with a veth pair (its own address, 10.X.Y.2; the root side 10.X.Y.1),
//! its own host name (`unshare --uts`), state directory and keys. It reaches the cluster only
//! through its proxy (tests/fault_proxy.py), which listens on the root side of its veth and
//! forwards to whichever node answers: latency, resets and stalls are set on the proxy, a
//! partition by setting the veth down. The kernel here has no netem qdisc.

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::Env;

/// The cluster's folder (node configurations and pids) and S3 settings.
pub struct Cluster {
    pub dir: PathBuf,
    pub settings: Vec<(String, String)>,
}

impl Cluster {
    /// The cluster scripts/test started; `None` only when `REMPART_SKIP_S3=1` outside CI.
    pub fn from_env() -> Option<Cluster> {
        match std::env::var("REMPART_TEST_CLUSTER_DIR") {
            Ok(dir) => {
                let dir = PathBuf::from(dir);
                let text = std::fs::read_to_string(dir.join("s3.env"))
                    .unwrap_or_else(|e| panic!("cannot read the cluster's settings in {}: {e}", dir.display()));
                let settings = text
                    .lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .collect();
                Some(Cluster { dir, settings })
            }
            Err(_) if std::env::var("REMPART_SKIP_S3").is_ok_and(|v| v == "1") && std::env::var("CI").is_err() => {
                eprintln!("cluster tests SKIPPED (REMPART_SKIP_S3=1)");
                None
            }
            Err(_) => panic!(
                "the fleet tests need the 3-node Garage cluster that scripts/test starts (REMPART_TEST_CLUSTER_DIR); run scripts/test, or set REMPART_SKIP_S3=1 to skip them explicitly outside CI"
            ),
        }
    }

    /// Starts the nodes that are down (a test that failed after killing one left it down).
    /// Call it while holding the cluster: two tests reviving a node at once start it twice.
    pub fn revive_dead_nodes(&self) {
        for n in 1..=3 {
            if std::net::TcpStream::connect(format!("127.0.0.{n}:3910")).is_err() {
                self.start_node(n);
            }
        }
    }

    /// The S3 address of every node (`127.0.0.N:3910`).
    pub fn endpoints(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("endpoints")).unwrap().lines().map(String::from).collect()
    }

    /// SIGKILLs node `n` (1-3).
    pub fn kill_node(&self, n: u32) {
        // By its command line, not its pid file: that names the last start, which may have
        // lost the race for the ports to one still running.
        let conf = self.dir.join(format!("node{n}/garage.toml"));
        let out = Command::new("pgrep")
            .arg("-f")
            .arg(format!("garage -c {} server", conf.display()))
            .output()
            .unwrap();
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let pid: i32 = pid.parse().unwrap();
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(format!("127.0.0.{n}:3910")).is_ok() {
            assert!(Instant::now() < deadline, "node {n} still answers after SIGKILL");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts node `n` again with its data as it was, and waits until it answers.
    pub fn start_node(&self, n: u32) {
        let conf = self.dir.join(format!("node{n}/garage.toml"));
        let log = std::fs::File::create(self.dir.join(format!("node{n}/server.log"))).unwrap();
        let child = Command::new("garage")
            .arg("-c")
            .arg(&conf)
            .arg("server")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start garage (scripts/test installs it)");
        std::fs::write(self.dir.join(format!("node{n}/pid")), child.id().to_string()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(format!("127.0.0.{n}:3910")).is_err() {
            assert!(Instant::now() < deadline, "node {n} did not come back");
            std::thread::sleep(Duration::from_millis(100));
        }
        // It counts once the other nodes see it again (`garage status` lists no failed node):
        // killing another node before that would leave one of three, below the quorum.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let healthy = (1..=3).filter(|m| *m != n).any(|m| {
                let conf = self.dir.join(format!("node{m}/garage.toml"));
                Command::new("garage").arg("-c").arg(&conf).arg("status").output().is_ok_and(|o| {
                    o.status.success() && !String::from_utf8_lossy(&o.stdout).contains("FAILED")
                })
            });
            if healthy {
                break;
            }
            assert!(Instant::now() < deadline, "node {n} did not rejoin the cluster");
            std::thread::sleep(Duration::from_millis(250));
        }
        // The child is reaped by scripts/test's cleanup, not by this process.
        std::mem::forget(child);
    }
}

static SLOT: AtomicU32 = AtomicU32::new(1);

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// One test host: a namespace, its proxy to the cluster, and a scratch environment (state,
/// keys, job files) whose repository is on the cluster.
pub struct Host {
    pub name: String,
    pub ns: String,
    veth: String,
    pub gateway: String,
    proxy: Child,
    pub env: Env,
    pub jobs_dir: PathBuf,
}

impl Host {
    /// A host named `name` whose repository is `repo` (`s3://rempart-fleet/PREFIX`), with
    /// `extra` environment (S3 timeouts, say).
    pub fn new(cluster: &Cluster, name: &str, repo: &str, extra: &[(&str, &str)]) -> Host {
        let slot = SLOT.fetch_add(1, Ordering::SeqCst);
        let tag = std::process::id() % 10_000;
        let ns = format!("rpf{tag}-{slot}");
        let veth = format!("rpf{tag}v{slot}");
        let peer = format!("rpf{tag}p{slot}");
        let net = format!("10.{}.{}", 100 + tag % 100, slot);
        let gateway = format!("{net}.1");
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        let _ = Command::new("ip").args(["link", "del", &veth]).output();
        sh(&["ip", "netns", "add", &ns]);
        sh(&["ip", "link", "add", &veth, "type", "veth", "peer", "name", &peer]);
        sh(&["ip", "link", "set", &peer, "netns", &ns]);
        sh(&["ip", "addr", "add", &format!("{gateway}/30"), "dev", &veth]);
        sh(&["ip", "link", "set", &veth, "up"]);
        sh(&["ip", "netns", "exec", &ns, "ip", "addr", "add", &format!("{net}.2/30"), "dev", &peer]);
        sh(&["ip", "netns", "exec", &ns, "ip", "link", "set", &peer, "up"]);
        sh(&["ip", "netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fault_proxy.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script).args([
            "--listen",
            &format!("{gateway}:3910"),
            "--control",
            &format!("{gateway}:3919"),
        ]);
        for e in cluster.endpoints() {
            cmd.args(["--upstream", &e]);
        }
        let mut proxy = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(proxy.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the fault proxy did not start");
        let dir = tempfile::Builder::new().prefix(&format!("rempart-host-{name}-")).tempdir().unwrap();
        let mut env = Env::with_repo(dir, repo.to_string());
        env.extra_env = cluster
            .settings
            .iter()
            .map(|(k, v)| {
                let v = if k == "AWS_ENDPOINT_URL" { format!("http://{gateway}:3910") } else { v.clone() };
                (k.clone(), v)
            })
            .collect();
        for (k, v) in extra {
            env.extra_env.push((k.to_string(), v.to_string()));
        }
        let jobs_dir = env.path().join("jobs");
        std::fs::create_dir_all(&jobs_dir).unwrap();
        Host { name: name.into(), ns, veth, gateway, proxy, env, jobs_dir }
    }

    /// Writes job `job` of this host (the host's repository and passphrase).
    pub fn job(&self, job: &str, sources: &[&Path], extra: &str) {
        let sources: Vec<String> = sources.iter().map(|s| format!("\"{}\"", s.display())).collect();
        super::write_job(&self.jobs_dir, &self.env, job, &sources.join(", "), extra);
    }

    /// rempart, run inside the namespace under the host's own name, with `--jobs`.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, "unshare", "--uts", "sh", "-c", "hostname \"$0\" && exec \"$@\""])
            .arg(&self.name)
            .arg(assert_cmd::cargo::cargo_bin("rempart"))
            .arg("--jobs")
            .arg(&self.jobs_dir);
        self.env.apply(&mut c);
        c
    }

    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.cmd().args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(
            code, 0,
            "{}: rempart {args:?} failed with {code}\nstdout:\n{out}\nstderr:\n{err}",
            self.name
        );
        out
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{}: not JSON ({e}): {out}", self.name))
    }

    /// Starts rempart without waiting (stdout and stderr captured).
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.cmd().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    }

    /// Sends one command to the host's proxy (`delay 50`, `reset`, `stall`, `heal`, `stats`).
    pub fn fault(&self, command: &str) -> String {
        let mut s = std::net::TcpStream::connect(format!("{}:3919", self.gateway)).unwrap();
        s.write_all(format!("{command}\n").as_bytes()).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(!answer.starts_with("error"), "proxy: {command}: {answer}");
        answer.trim().to_string()
    }

    /// Waits until `bytes` more bytes went through the proxy in `direction` (`up_bytes`,
    /// `down_bytes`) than when called: the command in flight is really transferring.
    pub fn wait_for_traffic(&self, direction: &str, bytes: u64) {
        let read = |h: &Host| -> u64 {
            h.fault("stats")
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{direction}=")).map(|v| v.parse().unwrap()))
                .unwrap()
        };
        let start = read(self);
        let deadline = Instant::now() + Duration::from_secs(120);
        while read(self) < start + bytes {
            assert!(Instant::now() < deadline, "{}: no {direction} traffic", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Cuts (false) or restores (true) the host's link: a partition.
    pub fn link(&self, up: bool) {
        sh(&["ip", "link", "set", &self.veth, if up { "up" } else { "down" }]);
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.proxy.kill();
        let _ = self.proxy.wait();
        let _ = Command::new("ip").args(["link", "del", &self.veth]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

/// Waits for `child` and returns (exit code, stdout, stderr).
pub fn finish(child: Child) -> (i32, String, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
