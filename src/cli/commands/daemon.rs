//! `rempart daemon`: flags win over the configuration file's `[daemon]` table, which wins over
//! the defaults (127.0.0.1:8420, 2 runs at once, 60 s of grace).

use crate::cli::args::DaemonArgs;
use crate::cli::context::Context;
use crate::daemon::{DaemonOptions, Signal};
use crate::error::{Error, ExitStatus, Result};

const DEFAULT_LISTEN: std::net::SocketAddr =
    std::net::SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 8420));
const DEFAULT_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

pub fn run(ctx: &Context, a: DaemonArgs) -> Result<ExitStatus> {
    let configured = &ctx.settings.daemon;
    let grace = match &a.grace {
        Some(g) => crate::jobs::duration::parse_duration(g)
            .map_err(|e| Error::invalid(format!("--grace '{g}': {e}")))?,
        None => configured.grace.unwrap_or(DEFAULT_GRACE),
    };
    let token = match a.token_file.as_ref().or(configured.token_file.as_ref()) {
        Some(f) => Some(read_token(f)?),
        None => None,
    };
    let listen = a.listen.or(configured.listen).unwrap_or(DEFAULT_LISTEN);
    if !listen.ip().is_loopback() && token.is_none() {
        eprintln!(
            "warning: the dashboard and metrics listen on {listen}, beyond this host, with no token: anyone who reaches it reads every job's status and reports; set --token-file (or [daemon] token_file)"
        );
        tracing::warn!("HTTP on a non-loopback address ({listen}) without a token");
    }
    let opts = DaemonOptions {
        jobs_dir: ctx.jobs_dir.clone(),
        keys_dir: ctx.global.keys.clone(),
        listen,
        max_concurrent: a.max_concurrent.map(usize::from).or(configured.max_concurrent).unwrap_or(2),
        grace,
        token,
    };
    let rctx = ctx.run_context("scheduler".into());
    ctx.runtime.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let mut term = signal(SignalKind::terminate()).map_err(|e| Error::failed(format!("signals: {e}")))?;
        let mut int = signal(SignalKind::interrupt()).map_err(|e| Error::failed(format!("signals: {e}")))?;
        let mut hup = signal(SignalKind::hangup()).map_err(|e| Error::failed(format!("signals: {e}")))?;
        tokio::spawn(async move {
            loop {
                let s = tokio::select! {
                    _ = term.recv() => Signal::Shutdown,
                    _ = int.recv() => Signal::Shutdown,
                    _ = hup.recv() => Signal::Reload,
                };
                let stop = matches!(s, Signal::Shutdown);
                if tx.send(s).await.is_err() || stop {
                    break;
                }
            }
        });
        crate::daemon::run(opts, rctx, rx).await
    })?;
    Ok(ExitStatus::Success)
}

/// The bearer token: the first line of `file`, at least 16 characters.
fn read_token(file: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Error::invalid(format!("token file '{}' cannot be read: {e}", file.display())))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.len() < 16 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(format!(
            "token file '{}': expected a token of at least 16 characters without spaces on its first line (for example: openssl rand -hex 32)",
            file.display()
        )));
    }
    Ok(token)
}
