//! `rempart repair index | snapshots | heal`

use crate::cli::args::RepairCommand;
use crate::cli::context::Context;
use crate::error::{ExitStatus, Result};
use crate::repair::{repair_index, repair_snapshots};

pub fn run(ctx: &Context, cmd: RepairCommand) -> Result<ExitStatus> {
    let repo = ctx.open()?;
    match cmd {
        RepairCommand::Index(a) => {
            let r = repair_index(&repo, a.dry_run, a.read_data)?;
            if ctx.global.json {
                crate::cli::print_json(&r);
                return Ok(ExitStatus::Success);
            }
            let verb = if a.dry_run { "would index" } else { "indexed" };
            crate::outln!("{verb} {} packs holding {} blobs", r.packs_indexed, r.blobs_indexed);
            for p in &r.packs_added {
                crate::outln!("  added {p} (was not indexed)");
            }
            for p in &r.packs_dropped {
                crate::outln!("  dropped {p} (no longer exists: snapshots using it stay damaged)");
            }
            for (p, e) in &r.packs_unreadable {
                crate::outln!("  left out {p}: {e}");
            }
            if a.read_data {
                crate::outln!("read and verified {} packs", r.packs_read);
            }
            for (id, pack, why) in &r.blobs_dropped {
                crate::outln!("  damaged blob {} in {pack}: {why}", &id[..8.min(id.len())]);
            }
            for p in &r.packs_salvaged {
                crate::outln!("  salvaged {p}: readable blobs copied to new packs, the pack deleted");
            }
            if !r.blobs_dropped.is_empty() {
                crate::outln!(
                    "{} damaged blobs {} the index: back up the same sources again to store them anew, then 'rempart check' names what stays lost",
                    r.blobs_dropped.len(),
                    if a.dry_run { "would leave" } else { "left" }
                );
            }
            if a.dry_run {
                crate::outln!(
                    "would replace {} index objects (dry run: nothing changed)",
                    r.old_index_objects.len()
                );
            } else {
                crate::outln!(
                    "replaced {} index objects with {}",
                    r.old_index_objects.len(),
                    r.new_index_objects.len()
                );
            }
        }
        RepairCommand::Heal(a) => {
            let other = ctx.open_other(&a.from, &a.from_password_file)?;
            let r = crate::repair::heal::heal(&repo, &other, &ctx.state_dir(), a.read_data, a.dry_run)?;
            if ctx.global.json {
                crate::cli::print_json(&r);
            } else if !ctx.global.quiet {
                if let Some(i) = &r.index {
                    crate::outln!(
                        "index rebuilt: {} packs dropped (gone), {} salvaged, {} damaged blobs left it",
                        i.packs_dropped.len(),
                        i.packs_salvaged.len(),
                        i.blobs_dropped.len()
                    );
                }
                crate::outln!(
                    "{} data blobs the snapshots use were missing; {} {} from {} ({}), each verified by its id",
                    r.missing,
                    r.healed,
                    if a.dry_run { "would be stored again" } else { "stored again" },
                    a.from,
                    crate::util::human_bytes(r.healed_bytes)
                );
                if !r.not_found.is_empty() {
                    crate::outln!(
                        "{} blobs are not in {} either: 'rempart check' names the files that stay damaged; 'repair snapshots' removes them",
                        r.not_found.len(),
                        a.from
                    );
                }
                if !r.unreadable_trees.is_empty() {
                    crate::outln!(
                        "{} trees cannot be read (not healed from a copy): see 'repair snapshots'",
                        r.unreadable_trees.len()
                    );
                }
            }
            let whole = r.not_found.is_empty() && r.unreadable_trees.is_empty();
            return Ok(if whole { ExitStatus::Success } else { ExitStatus::Integrity });
        }
        RepairCommand::Snapshots(a) => {
            let r = repair_snapshots(&repo, a.dry_run, a.forget, a.read_data)?;
            if ctx.global.json {
                crate::cli::print_json(&r);
                return Ok(ExitStatus::Success);
            }
            for p in &r.packs_salvaged {
                crate::outln!("salvaged {p}: readable blobs copied to new packs, the pack deleted");
            }
            for f in &r.forget_records_removed {
                crate::outln!(
                    "{f} cannot be read: {}",
                    if a.dry_run { "would be removed" } else { "removed" }
                );
            }
            if r.snapshots.is_empty() && r.unreadable_snapshots.is_empty() {
                crate::outln!("no snapshot references unreadable data");
            }
            for name in &r.unreadable_snapshots {
                crate::outln!(
                    "snapshot object {} cannot be read: {}",
                    &name[..8.min(name.len())],
                    if a.dry_run { "would be forgotten" } else { "forgotten" }
                );
            }
            let register = crate::state::SnapshotRegister::open(&ctx.state_dir(), &repo.id());
            for s in &r.snapshots {
                match (&s.repaired, a.dry_run) {
                    (_, true) => {
                        crate::outln!("snapshot {} would lose {} paths:", s.original, s.removed.len())
                    }
                    (Some(new), false) => {
                        crate::outln!(
                            "snapshot {} repaired as {}, without {} paths:",
                            s.original,
                            new,
                            s.removed.len()
                        )
                    }
                    (None, false) => {}
                }
                for p in &s.removed {
                    crate::outln!("  {p}");
                }
                if let Some(id) = &s.repaired_id {
                    register.added(id)?;
                }
                if s.forgotten {
                    register.removed(&s.original_id)?;
                    crate::outln!("  original {} deleted (--forget)", s.original);
                }
            }
            if a.dry_run {
                crate::outln!("dry run: nothing changed");
            }
        }
    }
    Ok(ExitStatus::Success)
}
