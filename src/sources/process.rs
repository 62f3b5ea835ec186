//! Running the engines' own tools: dumps streamed from stdout, errors with their stderr.
//!
//! A dump that exits non-zero, is killed by a signal or cannot start fails the backup, and
//! the message carries the tool's own stderr (restic issue 4251 is what happens otherwise: a
//! snapshot saved from a truncated dump).

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdout, Command, Stdio};

use crate::error::{Error, Result};

/// Keep at most this much of a tool's stderr for the error message.
const STDERR_KEEP: usize = 8 * 1024;

fn spawn_error(tool: &str, cmd: &Command, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::failed(format!(
            "{tool} not found (looked for '{}'): install it (PostgreSQL: postgresql-client; MariaDB: mariadb-client), \
             or point REMPART_{} at it",
            cmd.get_program().to_string_lossy(),
            tool.to_ascii_uppercase().replace('-', "_")
        ))
    } else {
        Error::failed(format!("cannot start {tool}: {e}"))
    }
}

fn describe_status(status: std::process::ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with code {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        _ => "ended abnormally".into(),
    }
}

/// Reads a tool's stderr on a thread (so it never blocks on a full pipe), keeping the tail.
fn collect_stderr(mut err: std::process::ChildStderr) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        let start = buf.len().saturating_sub(STDERR_KEEP);
        String::from_utf8_lossy(&buf[start..]).trim().to_string()
    })
}

/// A running dump tool whose stdout the caller reads.
pub struct DumpProcess {
    child: Option<Child>,
    stderr: Option<std::thread::JoinHandle<String>>,
    tool: String,
}

impl DumpProcess {
    /// Starts `cmd` with stdout piped to the caller and stderr collected.
    ///
    /// # Errors
    /// `Failed` naming the tool when it cannot start (not installed, not executable).
    pub fn spawn(mut cmd: Command, tool: &str) -> Result<(DumpProcess, ChildStdout)> {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| spawn_error(tool, &cmd, e))?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = collect_stderr(child.stderr.take().expect("piped"));
        Ok((DumpProcess { child: Some(child), stderr: Some(stderr), tool: tool.to_string() }, stdout))
    }

    /// Waits for the tool and turns anything but a clean exit into an error.
    ///
    /// # Errors
    /// `Failed` with the exit status and the tool's stderr.
    pub fn finish(mut self) -> Result<()> {
        let status = self
            .child
            .take()
            .expect("not finished")
            .wait()
            .map_err(|e| Error::failed(format!("waiting for {}: {e}", self.tool)))?;
        let stderr = self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default();
        if status.success() {
            if !stderr.is_empty() {
                tracing::info!("{} said: {stderr}", self.tool);
            }
            return Ok(());
        }
        Err(Error::failed(format!(
            "{} {}; no snapshot was saved from its output. {}: {}",
            self.tool,
            describe_status(status),
            self.tool,
            if stderr.is_empty() { "(no error output)".to_string() } else { stderr }
        )))
    }
}

impl Drop for DumpProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs a short command and returns its stdout.
///
/// # Errors
/// `Failed` with the status and stderr when it fails.
pub fn run_capture(mut cmd: Command, tool: &str) -> Result<String> {
    cmd.stdin(Stdio::null());
    let out = cmd.output().map_err(|e| spawn_error(tool, &cmd, e))?;
    if !out.status.success() {
        return Err(Error::failed(format!(
            "{tool} {}: {}",
            describe_status(out.status),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command that reads `input` on stdin (a restore), streaming it.
///
/// # Errors
/// `Failed` with the status and stderr, or the error of the input.
pub fn run_with_input(mut cmd: Command, tool: &str, input: &mut dyn Read) -> Result<()> {
    cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| spawn_error(tool, &cmd, e))?;
    let stderr = collect_stderr(child.stderr.take().expect("piped"));
    let mut stdin = child.stdin.take().expect("piped");
    let copied = std::io::copy(input, &mut stdin);
    drop(stdin);
    let status = child.wait().map_err(|e| Error::failed(format!("waiting for {tool}: {e}")))?;
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        return Err(Error::failed(format!("{tool} {}: {stderr}", describe_status(status))));
    }
    match copied {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            Err(Error::corrupt("dump in the snapshot", e.to_string()))
        }
        Err(e) => Err(Error::failed(format!("feeding {tool}: {e}; {stderr}"))),
    }
}
