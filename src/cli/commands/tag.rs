//! `rempart tag`

use crate::cli::args::TagArgs;
use crate::cli::context::Context;
use crate::error::{ExitStatus, Result};
use crate::maintenance::tag::{tag, TagChange};

pub fn run(ctx: &Context, a: TagArgs) -> Result<ExitStatus> {
    let repo = ctx.open()?;
    let mut ids = Vec::new();
    for spec in &a.snapshots {
        ids.push(repo.find_snapshot(spec)?.0);
    }
    let set = (!a.set.is_empty()).then(|| a.set.into_iter().filter(|t| !t.is_empty()).collect());
    let change = TagChange { add: a.add, remove: a.remove, set };
    let done = tag(&repo, &ids, &change)?;
    let register = crate::state::SnapshotRegister::open(&ctx.state_dir(), &repo.id());
    for r in &done {
        if let Some(new) = &r.new_id {
            register.added(new)?;
            register.removed(&r.original_id)?;
        }
    }
    if ctx.global.json {
        crate::cli::print_json(&done);
    } else if !ctx.global.quiet {
        for r in &done {
            match &r.snapshot {
                Some(new) => {
                    crate::outln!("{} -> {}  tags: {}", &r.original[..8], &new[..8], r.tags.join(","))
                }
                None => crate::outln!("{} unchanged  tags: {}", &r.original[..8], r.tags.join(",")),
            }
        }
    }
    Ok(ExitStatus::Success)
}
