//! `rempart daemon`

use crate::cli::args::DaemonArgs;
use crate::cli::context::Context;
use crate::daemon::{DaemonOptions, Signal};
use crate::error::{Error, ExitStatus, Result};

pub fn run(ctx: &Context, a: DaemonArgs) -> Result<ExitStatus> {
    let grace = crate::jobs::duration::parse_duration(&a.grace).map_err(Error::invalid)?;
    let opts = DaemonOptions {
        jobs_dir: ctx.global.jobs.clone(),
        keys_dir: ctx.global.keys.clone(),
        listen: a.listen,
        max_concurrent: a.max_concurrent,
        grace,
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
