//! Hook commands around a backup (for instance to quiesce an application).
//!
//! A hook runs with `sh -c`, with `REMPART_JOB`, `REMPART_STEP` and `REMPART_STATUS` in its
//! environment, and is killed when it outlives its timeout. A failing `before` hook cancels the
//! step (nothing is backed up from an application that could not be quiesced); the `after`
//! hook always runs, and its failure marks the run failed while the snapshot stays valid.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::jobs::{Job, Step};

/// Runs a hook; `Err` names the hook, its status or timeout, and its output.
pub fn run_hook(
    which: &str,
    cmd: &str,
    job: &Job,
    step: Step,
    status: &str,
    timeout: Duration,
) -> Result<()> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(job.file.parent().unwrap_or(std::path::Path::new("/")))
        .env("REMPART_JOB", &job.name)
        .env("REMPART_STEP", step.name())
        .env("REMPART_STATUS", status)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::failed(format!("{which} hook '{cmd}' cannot start: {e}")))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                let out =
                    child.wait_with_output().map_err(|e| Error::failed(format!("{which} hook: {e}")))?;
                if st.success() {
                    return Ok(());
                }
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                return Err(Error::failed(format!("{which} hook '{cmd}' failed ({st}): {}", text.trim())));
            }
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::failed(format!(
                    "{which} hook '{cmd}' timed out after {timeout:?} and was killed"
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(Error::failed(format!("{which} hook: {e}"))),
        }
    }
}
