//! Immutability on S3 Object Lock: the policy a repository is written with, and the upkeep
//! that keeps every live object locked.
//!
//! With a policy (`immutable_for` in a `[[copy]]`, or `REMPART_IMMUTABLE_FOR` in the S3
//! settings), every object but lock objects is written with a retain-until date of now +
//! `immutable_for` + `lock_refresh`. [`keep_locked`] runs before a copy or a backup writes and
//! on `rempart immutable extend`: when the last complete extension is older than half of
//! `lock_refresh`, it extends every live object to the same date. So, as long as a copy or an
//! extension runs at least every `lock_refresh / 2`, every live object, and therefore every
//! pack a new snapshot dedups against, stays locked until at least now + `immutable_for`.
//!
//! The `config` object is extended last: its retain-until date minus `immutable_for` and
//! `lock_refresh` is the time of the last complete extension (no extra object, nothing to
//! forge that would shorten a lock: the server refuses a shorter COMPLIANCE date).
//! Lock objects are written without retention, so the delete markers and noncurrent versions
//! left by their removal can be expired by a lifecycle rule (docs/copies.md).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};

use super::s3_api::{BucketProtection, LockMode, Retention, S3Api};
use super::{Kind, Storage};
use crate::error::{Error, Result};

/// How objects are locked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LockPolicy {
    pub mode: LockMode,
    /// Each live object stays locked at least this long from any moment.
    pub immutable_for: Duration,
    /// How often the locks are extended (a copy or `immutable extend` does it when due).
    pub refresh: Duration,
}

/// The default `lock_refresh`.
pub const DEFAULT_LOCK_REFRESH: Duration = Duration::from_secs(7 * 86_400);

impl LockPolicy {
    /// The retain-until date of an object written or extended at `now`.
    pub fn retain_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::from_std(self.immutable_for + self.refresh).unwrap_or(chrono::Duration::MAX)
    }

    /// The policy the settings `mode`, `immutable_for` and `refresh` describe; `None` without
    /// `immutable_for`.
    ///
    /// # Errors
    /// A sentence naming the bad setting.
    pub fn from_settings(
        mode: Option<&str>,
        immutable_for: Option<&str>,
        refresh: Option<&str>,
    ) -> std::result::Result<Option<LockPolicy>, String> {
        let Some(immutable_for) = immutable_for else {
            if mode.is_some() {
                return Err(
                    "an Object Lock mode is set without immutable_for (how long each object stays locked)"
                        .into(),
                );
            }
            return Ok(None);
        };
        let immutable_for = crate::duration::parse_duration(immutable_for)?;
        let refresh =
            refresh.map(crate::duration::parse_duration).transpose()?.unwrap_or(DEFAULT_LOCK_REFRESH);
        if immutable_for.is_zero() || refresh.is_zero() {
            return Err("immutable_for and lock_refresh must be longer than zero".into());
        }
        let mode = mode.map(LockMode::parse).transpose()?.unwrap_or(LockMode::Compliance);
        Ok(Some(LockPolicy { mode, immutable_for, refresh }))
    }
}

/// The signed-request side of an S3 repository: its bucket's protection, the retention of its
/// objects, and the policy it writes with.
#[derive(Debug)]
pub struct BucketControl {
    pub api: S3Api,
    /// The repository prefix inside the bucket ("" for the whole bucket).
    pub prefix: String,
    pub policy: Option<LockPolicy>,
    /// Set once the bucket was seen to have Object Lock (checked before the first locked write).
    checked: tokio::sync::OnceCell<()>,
    location: String,
}

impl BucketControl {
    pub fn new(api: S3Api, prefix: String, policy: Option<LockPolicy>, location: String) -> BucketControl {
        BucketControl { api, prefix, policy, checked: tokio::sync::OnceCell::new(), location }
    }

    /// The full key of an object, exactly as object_store stores it (its path rules encode
    /// some characters of a prefix into the key itself).
    pub fn key(&self, kind: Kind, name: &str) -> String {
        let raw = if self.prefix.is_empty() {
            kind.key(name)
        } else {
            format!("{}/{}", self.prefix, kind.key(name))
        };
        object_store::path::Path::from(raw).as_ref().to_string()
    }

    /// Refuses a policy on a bucket without Object Lock (asked once per process).
    ///
    /// # Errors
    /// `InvalidInput` naming the repository when the bucket has no Object Lock.
    pub async fn check_policy(&self) -> Result<()> {
        if self.policy.is_none() {
            return Ok(());
        }
        self.checked
            .get_or_try_init(|| async {
                let p = self.api.protection().await?;
                if p.object_lock && p.versioning == "Enabled" {
                    Ok(())
                } else {
                    Err(Error::invalid(format!(
                        "repository '{}': immutable_for is set but its bucket has no Object Lock (versioning: {}, object lock: {}); a bucket gets Object Lock only when it is created with it (aws s3api create-bucket --object-lock-enabled-for-bucket); remove immutable_for to write without locks",
                        self.location,
                        if p.versioning.is_empty() { "never enabled" } else { &p.versioning },
                        if p.object_lock { "enabled" } else { "not enabled" }
                    )))
                }
            })
            .await
            .copied()
    }

    /// Writes an object (with retention unless it is a lock object) in one signed request.
    ///
    /// # Errors
    /// Those of [`BucketControl::check_policy`] and of the PUT.
    pub async fn put(&self, kind: Kind, name: &str, data: bytes::Bytes) -> Result<()> {
        self.check_policy().await?;
        let retention = match (self.policy, kind) {
            (Some(p), k) if k != Kind::Lock => {
                Some(Retention { mode: p.mode, until: p.retain_until(Utc::now()) })
            }
            _ => None,
        };
        self.api.put(&self.key(kind, name), data, retention).await.map(|_| ())
    }

    pub async fn protection(&self) -> Result<BucketProtection> {
        self.api.protection().await
    }
}

/// What [`keep_locked`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LockUpkeep {
    /// Objects whose retention was extended (0 when no extension was due).
    pub extended: usize,
    /// The retain-until date every live object has at least, when known.
    pub locked_until: Option<DateTime<Utc>>,
}

/// Extends the retention of every live object when due (or always with `force`); see the
/// module documentation. A no-op without a lock policy.
///
/// # Errors
/// The storage errors of listing and extending; a partial extension is finished by the next.
pub async fn keep_locked(storage: &dyn Storage, force: bool) -> Result<LockUpkeep> {
    let Some(control) = storage.bucket_control() else {
        return Ok(LockUpkeep::default());
    };
    let Some(policy) = control.policy else {
        return Ok(LockUpkeep::default());
    };
    control.check_policy().await?;
    let now = Utc::now();
    let config_key = control.key(Kind::Config, "config");
    let current = match control.api.retention(&config_key, None).await {
        Ok(r) => r.map(|r| r.until),
        Err(Error::NotFound(_)) => return Ok(LockUpkeep::default()),
        Err(e) => return Err(e),
    };
    // The config's date is the last complete extension + immutable_for + refresh: the next is
    // due once half of refresh has gone by since. A date beyond what this policy would set
    // (the policy was shortened) says nothing about the last extension: every write then
    // extends, until that date is within reach again.
    let span =
        chrono::Duration::from_std(policy.immutable_for + policy.refresh).unwrap_or(chrono::Duration::MAX);
    let half = chrono::Duration::from_std(policy.refresh / 2).unwrap_or(chrono::Duration::MAX);
    let until = policy.retain_until(now);
    if let Some(c) = current.filter(|c| *c > until + chrono::Duration::minutes(5)) {
        tracing::warn!(
            "{}: the config object is locked until {c}, beyond now + immutable_for + lock_refresh ({until}): was the policy shortened? Every write extends every lock until then",
            storage.location()
        );
    } else if !force && current.is_some_and(|c| c - span + half > now) {
        return Ok(LockUpkeep { extended: 0, locked_until: current });
    }
    let retention = Retention { mode: policy.mode, until };
    let mut extended = 0;
    for kind in Kind::ALL {
        if matches!(kind, Kind::Lock | Kind::Config) {
            continue;
        }
        let objects = storage.list(kind).await?;
        let control = &control;
        let n = futures::stream::iter(
            objects
                .into_iter()
                .map(|o| async move { extend(control, &control.key(kind, &o.name), retention).await }),
        )
        .buffer_unordered(16)
        .try_fold(0usize, |n, ()| async move { Ok(n + 1) })
        .await?;
        extended += n;
    }
    extend(&control, &config_key, retention).await?;
    tracing::info!("{}: {} objects locked until {until}", storage.location(), extended + 1);
    Ok(LockUpkeep { extended: extended + 1, locked_until: Some(until) })
}

/// Sets `key`'s retention to `retention`; an object already locked as long or longer (written
/// meanwhile by another host, or under a longer policy) is left as it is: the server refuses
/// to shorten a lock.
async fn extend(control: &BucketControl, key: &str, retention: Retention) -> Result<()> {
    match control.api.put_retention(key, None, retention, false).await {
        Ok(()) => Ok(()),
        Err(e) if super::s3_api::is_access_denied(&e) => match control.api.retention(key, None).await {
            Ok(Some(r)) if r.until >= retention.until => Ok(()),
            Err(Error::NotFound(_)) => Ok(()),
            _ => Err(e),
        },
        // Deleted since it was listed (a prune elsewhere): nothing to keep.
        Err(Error::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The Object Lock state of a storage for `snapshots` and `status`: `None` for a storage that
/// is not S3 (or has no static credentials to ask with).
///
/// # Errors
/// The storage errors of asking the bucket.
pub async fn describe(storage: &dyn Storage) -> Result<Option<(BucketProtection, Option<LockPolicy>)>> {
    match storage.bucket_control() {
        Some(c) => Ok(Some((c.protection().await?, c.policy))),
        None => Ok(None),
    }
}

/// The shared handle wrappers pass on.
pub type SharedControl = Arc<BucketControl>;
