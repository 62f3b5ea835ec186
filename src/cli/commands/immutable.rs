//! `rempart immutable status|extend`: what an S3 repository's bucket enforces, and the
//! upkeep of its Object Lock retention (storage::object_lock).

use crate::cli::args::ImmutableCommand;
use crate::cli::context::Context;
use crate::error::{Error, ExitStatus, Result};
use crate::storage::object_lock::{describe, keep_locked};
use crate::storage::Kind;

pub fn run(ctx: &Context, c: ImmutableCommand) -> Result<ExitStatus> {
    let storage = ctx.storage()?;
    let inner = storage.inner().clone();
    let not_s3 = || {
        Error::invalid(format!(
            "repository '{}': Object Lock is an S3 feature (and needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
            storage.location()
        ))
    };
    match c {
        ImmutableCommand::Status => {
            let (protection, policy) =
                storage.handle().block_on(describe(inner.as_ref()))?.ok_or_else(not_s3)?;
            let control = inner.bucket_control().ok_or_else(not_s3)?;
            let config =
                storage.handle().block_on(control.api.retention(&control.key(Kind::Config, "config"), None));
            let config = match config {
                Ok(r) => r,
                Err(Error::NotFound(_)) => None,
                Err(e) => return Err(e),
            };
            let can_delete = storage.handle().block_on(control.api.can_delete_versions(&control.prefix))?;
            if ctx.global.json {
                crate::cli::print_json(&serde_json::json!({
                    "repository": storage.location(),
                    "credentials_can_delete_versions": can_delete,
                    "versioning": protection.versioning,
                    "object_lock": protection.object_lock,
                    "default_retention": protection.default_retention,
                    "policy": policy.map(|p| serde_json::json!({
                        "mode": p.mode,
                        "immutable_for_seconds": p.immutable_for.as_secs(),
                        "lock_refresh_seconds": p.refresh.as_secs(),
                    })),
                    "config_locked_until": config.map(|r| r.until.to_rfc3339()),
                    "config_lock_mode": config.map(|r| r.mode),
                }));
            } else {
                crate::outln!("repository:      {}", storage.location());
                crate::outln!(
                    "versioning:      {}",
                    if protection.versioning.is_empty() { "never enabled" } else { &protection.versioning }
                );
                crate::outln!(
                    "object lock:     {}{}",
                    if protection.object_lock { "enabled" } else { "not enabled (objects can be deleted)" },
                    protection
                        .default_retention
                        .map(|d| format!(", default retention {d}"))
                        .unwrap_or_default()
                );
                match policy {
                    Some(p) => crate::outln!(
                        "written with:    {} for {} (+ lock_refresh {})",
                        p.mode.as_s3(),
                        crate::duration::format_duration(p.immutable_for),
                        crate::duration::format_duration(p.refresh)
                    ),
                    None => crate::outln!("written with:    no retention (REMPART_IMMUTABLE_FOR not set)"),
                }
                crate::outln!(
                    "credentials:     {}",
                    if can_delete {
                        "CAN delete object versions (probed): the backup host should hold a key without s3:DeleteObjectVersion"
                    } else {
                        "cannot delete object versions (probed)"
                    }
                );
                match config {
                    Some(r) => crate::outln!(
                        "locked until:    {} ({}, the config object)",
                        r.until.to_rfc3339(),
                        r.mode.as_s3()
                    ),
                    None => crate::outln!("locked until:    the config object has no retention"),
                }
            }
            Ok(ExitStatus::Success)
        }
        ImmutableCommand::Extend { force } => {
            let control = inner.bucket_control().ok_or_else(not_s3)?;
            if control.policy.is_none() {
                return Err(Error::invalid(format!(
                    "repository '{}': no lock policy: set REMPART_IMMUTABLE_FOR (and REMPART_OBJECT_LOCK_MODE, REMPART_LOCK_REFRESH) in the environment or the S3 settings file",
                    storage.location()
                )));
            }
            let upkeep = storage.handle().block_on(keep_locked(inner.as_ref(), force))?;
            if ctx.global.json {
                crate::cli::print_json(&upkeep);
            } else if upkeep.extended == 0 {
                crate::outln!(
                    "not due: every live object is locked until at least {}",
                    upkeep.locked_until.map(|t| t.to_rfc3339()).unwrap_or_else(|| "?".into())
                );
            } else {
                crate::outln!(
                    "{} objects locked until {}",
                    upkeep.extended,
                    upkeep.locked_until.map(|t| t.to_rfc3339()).unwrap_or_default()
                );
            }
            Ok(ExitStatus::Success)
        }
    }
}
