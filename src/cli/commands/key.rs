//! `rempart key list | add | remove | export`

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use bytes::Bytes;

use crate::cli::args::KeyCommand;
use crate::cli::context::{prompt_new, read_password_file, Context};
use crate::error::{Error, ExitStatus, Result};
use crate::id::Id;
use crate::repo::keyfile::{KeyFile, RecoveryFile};
use crate::repo::lock::LockKind;
use crate::repo::OpenedWith;
use crate::storage::Kind;

pub fn run(ctx: &Context, cmd: KeyCommand) -> Result<ExitStatus> {
    let repo = ctx.open()?;
    match cmd {
        KeyCommand::List => {
            let mut rows = Vec::new();
            for obj in repo.storage().list(Kind::Key)? {
                let bytes = repo.storage().get(Kind::Key, &obj.name)?;
                let what = Kind::Key.describe(&obj.name);
                let row = match KeyFile::from_bytes(&bytes, &what)
                    .and_then(|k| k.meta(repo.keys()).map(|m| (k, m)))
                {
                    Ok((k, m)) => serde_json::json!({
                        "id": obj.name,
                        "current": *repo.opened_with() == OpenedWith::KeyObject(obj.name.clone()),
                        "label": m.label,
                        "username": m.username,
                        "hostname": m.hostname,
                        "created": m.created,
                        "kdf": format!("{} m={}KiB t={} p={}", k.kdf.algorithm, k.kdf.memory_kib, k.kdf.iterations, k.kdf.parallelism),
                    }),
                    Err(e) => serde_json::json!({ "id": obj.name, "error": e.to_string() }),
                };
                rows.push(row);
            }
            if ctx.global.json {
                crate::cli::print_json(&rows);
            } else {
                for r in &rows {
                    let id = r["id"].as_str().unwrap_or_default();
                    if let Some(e) = r.get("error") {
                        crate::outln!(
                            "  {} DAMAGED: {}",
                            &id[..8.min(id.len())],
                            e.as_str().unwrap_or_default()
                        );
                        continue;
                    }
                    crate::outln!(
                        "{} {} {}@{} created {} label '{}' ({})",
                        if r["current"].as_bool() == Some(true) { "*" } else { " " },
                        &id[..8.min(id.len())],
                        r["username"].as_str().unwrap_or_default(),
                        r["hostname"].as_str().unwrap_or_default(),
                        r["created"].as_str().unwrap_or_default(),
                        r["label"].as_str().unwrap_or_default(),
                        r["kdf"].as_str().unwrap_or_default()
                    );
                }
            }
        }
        KeyCommand::Add(a) => {
            let pass = match &a.new_password_file {
                Some(f) => read_password_file(f)?,
                None => prompt_new("New passphrase: ")?,
            };
            let key = KeyFile::create(repo.keys(), repo.id(), &pass, &a.label)?;
            let bytes = key.to_bytes();
            let name = Id::of_bytes(&bytes).to_hex();
            repo.storage().put(Kind::Key, &name, Bytes::from(bytes))?;
            if ctx.global.json {
                crate::cli::print_json(&serde_json::json!({ "added": name }));
            } else if !ctx.global.quiet {
                crate::outln!("added key {}", &name[..8]);
            }
        }
        KeyCommand::Remove(a) => {
            let _lock = repo.lock(LockKind::Exclusive, "key remove")?;
            let keys = repo.storage().list(Kind::Key)?;
            let matches: Vec<_> =
                keys.iter().filter(|k| k.name.starts_with(&a.id.to_ascii_lowercase())).collect();
            let target = match matches.as_slice() {
                [one] => one.name.clone(),
                [] => {
                    return Err(Error::not_found(format!(
                        "no key '{}': 'rempart key list' shows the ids",
                        a.id
                    )))
                }
                _ => {
                    return Err(Error::invalid(format!(
                        "key prefix '{}' is ambiguous; give more digits",
                        a.id
                    )))
                }
            };
            if *repo.opened_with() == OpenedWith::KeyObject(target.clone()) {
                return Err(Error::invalid(format!(
                    "key '{}' is the one that opened the repository: open it with another passphrase to remove this one",
                    a.id
                )));
            }
            repo.storage().delete(Kind::Key, &target)?;
            if !ctx.global.quiet {
                crate::outln!("removed key {}", &target[..8]);
            }
        }
        KeyCommand::Export(a) => {
            let key = match repo.opened_with() {
                OpenedWith::RecoveryFile => {
                    crate::repo::keyfile::RecoveryFile::load(
                        ctx.global.recovery_file.as_deref().expect("opened with one"),
                    )?
                    .key
                }
                OpenedWith::KeyObject(name) => {
                    let bytes = repo.storage().get(Kind::Key, name)?;
                    KeyFile::from_bytes(&bytes, &Kind::Key.describe(name))?
                }
            };
            let text = serde_json::to_string_pretty(&RecoveryFile::new(key)).expect("serializable");
            if a.output.as_os_str() == "-" {
                crate::outln!("{text}");
            } else {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(a.force)
                    .create_new(!a.force)
                    .truncate(true)
                    .mode(0o600)
                    .open(&a.output)
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::AlreadyExists => Error::invalid(format!(
                            "'{}' exists: it may be the recovery file of another repository; give another file, or --force to replace it",
                            a.output.display()
                        )),
                        _ => Error::io(format!("cannot write recovery file '{}'", a.output.display()), e),
                    })?;
                writeln!(f, "{text}").and_then(|_| f.sync_all()).map_err(|e| {
                    Error::io(format!("cannot write recovery file '{}'", a.output.display()), e)
                })?;
                if !ctx.global.quiet {
                    crate::outln!(
                        "wrote recovery file '{}' for repository {}: keep it offline, apart from the passphrase",
                        a.output.display(),
                        repo.id().short()
                    );
                }
            }
        }
    }
    Ok(ExitStatus::Success)
}
