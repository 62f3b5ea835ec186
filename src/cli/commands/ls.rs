//! `rempart ls`

use serde::Serialize;

use crate::cli::args::LsArgs;
use crate::cli::context::Context;
use crate::error::{ExitStatus, Result};
use crate::repo::lock::LockKind;
use crate::repo::tree::NodeKind;
use crate::repo::walk::{show, show_escaped, walk, WalkItem};

#[derive(Serialize)]
struct Entry {
    path: String,
    kind: String,
    mode: String,
    user: String,
    group: String,
    size: u64,
    mtime: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    link_target: Option<String>,
}

pub fn run(ctx: &Context, a: LsArgs) -> Result<ExitStatus> {
    let repo = ctx.open()?;
    let _lock = repo.lock(LockKind::Read, "ls")?;
    let (id, snap) = repo.find_snapshot(&a.snapshot)?;
    let index = repo.load_index()?;
    let prefix = a.path.as_deref().map(|p| {
        let t = p.trim_end_matches('/');
        if t.starts_with('/') {
            t.to_string()
        } else {
            format!("/{t}")
        }
    });
    let mut damaged = Vec::new();
    let mut entries = Vec::new();
    let mut found = prefix.is_none();
    walk(&repo, &index, &snap.tree, &mut |item| match item {
        WalkItem::Damaged { path, error, .. } => {
            damaged.push(format!("{}: {error}", show(path)));
            Ok(false)
        }
        WalkItem::Entry { path, node } => {
            let p = show(path);
            if let Some(pre) = &prefix {
                let under = p == *pre || p.starts_with(&format!("{pre}/"));
                let above = pre.starts_with(&format!("{p}/"));
                if !under {
                    return Ok(above);
                }
                found = true;
            }
            let shown = show_escaped(path);
            let e = Entry {
                path: p,
                kind: format!("{:?}", node.kind).to_lowercase(),
                mode: format!("{}{:04o}", node.kind.letter(), node.mode),
                user: if node.user.is_empty() { node.uid.to_string() } else { node.user.clone() },
                group: if node.group.is_empty() { node.gid.to_string() } else { node.group.clone() },
                size: node.size,
                mtime: node.mtime.to_datetime().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                link_target: (node.kind == NodeKind::Symlink).then(|| show(&node.link_target)),
            };
            if ctx.global.json {
                entries.push(e);
            } else if a.long {
                crate::outln!(
                    "{} {:>8} {:>8} {:>12} {} {}{}",
                    e.mode,
                    e.user,
                    e.group,
                    e.size,
                    node.mtime.to_datetime().format("%Y-%m-%d %H:%M:%S"),
                    shown,
                    if node.kind == NodeKind::Symlink {
                        format!(" -> {}", show_escaped(&node.link_target))
                    } else {
                        String::new()
                    }
                );
            } else {
                crate::outln!("{shown}");
            }
            Ok(true)
        }
    })?;
    if ctx.global.json {
        crate::cli::print_json(
            &serde_json::json!({ "snapshot": id.to_hex(), "entries": entries, "damaged": damaged }),
        );
    }
    if !found {
        return Err(crate::Error::not_found(format!(
            "path '{}' is not in snapshot {}",
            a.path.unwrap_or_default(),
            id.short()
        )));
    }
    for d in &damaged {
        eprintln!("damaged: {d}");
    }
    Ok(if damaged.is_empty() { ExitStatus::Success } else { ExitStatus::Integrity })
}
