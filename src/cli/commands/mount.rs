//! `rempart mount MOUNTPOINT`

use std::path::Path;

use crate::cli::context::Context;
use crate::error::{ExitStatus, Result};

pub fn run(ctx: &Context, mountpoint: &Path) -> Result<ExitStatus> {
    let repo = ctx.open()?;
    let stop = crate::cli::cancel_on_signal(ctx);
    let quiet = ctx.global.quiet;
    crate::inspect::mount::mount(&repo, mountpoint, &stop, |n| {
        if !quiet {
            crate::outln!(
                "{n} snapshots mounted read-only at {} (snapshots/, hosts/, tags/, latest); Ctrl-C or 'umount {}' to stop",
                mountpoint.display(),
                mountpoint.display()
            );
        }
    })?;
    Ok(ExitStatus::Success)
}
