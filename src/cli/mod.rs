//! The command-line interface: parses arguments, runs the command, prints, maps exit codes.
//!
//! Each command lives in `commands/` and returns the [`ExitStatus`] it ends with; errors are
//! printed once here, with the chain of causes, and mapped to their exit code.

pub mod args;
pub mod commands;
pub mod context;
pub mod progress;
pub mod select;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Parser;

use crate::error::{Error, ExitStatus, Result};
use args::{Cli, Command};
use context::Context;

/// Entry point of the `rempart` binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { ExitStatus::Usage } else { ExitStatus::Success };
            let _ = e.print();
            return ExitCode::from(code.code());
        }
    };
    init_tracing(&cli.global, matches!(cli.command, Command::Daemon(_)));
    let status = match run(cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}", format_error(&e));
            e.exit_code()
        }
    };
    // Output that could not be written (a full disk under a redirect) fails the command.
    let status =
        if STDOUT_FAILED.load(Ordering::Relaxed) { status.worst(ExitStatus::Failure) } else { status };
    ExitCode::from(status.code())
}

fn format_error(e: &Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        src = s.source();
    }
    msg
}

fn init_tracing(g: &args::GlobalArgs, daemon: bool) {
    let default = match (g.quiet, g.verbose) {
        (true, _) => "error",
        // The daemon reports every run it starts and ends.
        (false, 0) if daemon => "info",
        (false, 0) => "warn",
        (false, 1) => "info",
        _ => "debug",
    };
    // Storage retries are always told (unless --quiet): a run that succeeded only after
    // retrying says so, and a failing one shows how long it tried.
    let default =
        if g.quiet { default.to_string() } else { format!("{default},object_store::client::retry=info") };
    let filter = tracing_subscriber::EnvFilter::try_from_env("REMPART_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    let _ = if g.log_format == "json" {
        // One object per line; the fields of the run's span (job, step, run) come along.
        builder.json().with_current_span(true).with_span_list(false).try_init()
    } else {
        // Colours only on a terminal: journald and log files get plain text.
        builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init()
    };
}

/// A flag set by SIGINT or SIGTERM, for commands that stop cleanly.
pub fn cancel_on_signal(ctx: &Context) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    ctx.runtime.spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::warn!("signal received: stopping cleanly (data stored so far stays indexed)");
        f.store(true, Ordering::Relaxed);
    });
    flag
}

fn run(cli: Cli) -> Result<ExitStatus> {
    let ctx = Context::new(cli.global)?;
    match cli.command {
        Command::Init(a) => commands::init::run(&ctx, a),
        Command::Backup(a) => commands::backup::run(&ctx, a),
        Command::Snapshots(a) => commands::snapshots::run(&ctx, a),
        Command::Ls(a) => commands::ls::run(&ctx, a),
        Command::Find(a) => commands::find::run(&ctx, a),
        Command::Diff(a) => commands::diff::run(&ctx, a),
        Command::Stats(a) => commands::stats::run(&ctx, a),
        Command::Dump(a) => commands::dump::run(&ctx, a),
        Command::Tag(a) => commands::tag::run(&ctx, a),
        Command::Restore(a) => commands::restore::run(&ctx, a),
        Command::Key(k) => commands::key::run(&ctx, k),
        Command::Unlock(a) => commands::unlock::run(&ctx, a),
        Command::Immutable(c) => commands::immutable::run(&ctx, c),
        Command::Check(a) => commands::check::run(&ctx, a),
        Command::Jobs(c) => commands::jobs::run(&ctx, c),
        Command::Run(a) => commands::run::run(&ctx, a),
        Command::Daemon(a) => commands::daemon::run(&ctx, a),
        Command::Drill(a) => commands::drill::run(&ctx, a),
        Command::Status => commands::evidence::status(&ctx),
        Command::Report(a) => commands::report::run(&ctx, a),
        Command::Evidence(c) => commands::evidence::run(&ctx, c),
        Command::Forget(a) => commands::maintenance::forget(&ctx, a),
        Command::Prune(a) => commands::maintenance::prune(&ctx, a),
        Command::Catalog(c) => commands::catalog::run(&ctx, c),
        Command::Repair(r) => commands::repair::run(&ctx, r),
        Command::Copy(a) => commands::copy::run(&ctx, a),
        Command::Mount { mountpoint } => commands::mount::run(&ctx, &mountpoint),
        Command::Completions { shell } => commands::docs::completions(&shell),
        Command::Man { dir } => commands::docs::man(&dir),
    }
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(v: &T) {
    crate::outln!("{}", serde_json::to_string_pretty(v).expect("serializable"));
}

/// `println!` that goes quiet when stdout is a closed pipe (`rempart ls | head`): the command
/// still finishes, releases its locks and exits with its own status.
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if !$crate::cli::stdout_closed() {
            if let Err(e) = writeln!(std::io::stdout(), $($t)*) {
                $crate::cli::stdout_failed(e)
            }
        }
    }};
}

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);

/// True once a write found stdout closed by its reader.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// Writes `text` to stdout as it is (no newline added), going quiet on a closed pipe.
pub fn out(text: &str) {
    use std::io::Write as _;
    if !stdout_closed() {
        if let Err(e) = std::io::stdout().write_all(text.as_bytes()).and_then(|()| std::io::stdout().flush())
        {
            stdout_failed(e)
        }
    }
}

/// What to do when stdout cannot be written: output stops either way, and the command goes on
/// to its end (releasing its locks); a closed pipe is not an error (the reader had enough),
/// anything else makes the command fail.
pub fn stdout_failed(e: std::io::Error) {
    STDOUT_CLOSED.store(true, Ordering::Relaxed);
    if e.kind() != std::io::ErrorKind::BrokenPipe {
        eprintln!("error: cannot write to standard output: {e}");
        STDOUT_FAILED.store(true, Ordering::Relaxed);
    }
}
