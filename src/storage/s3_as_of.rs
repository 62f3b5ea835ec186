//! An S3 repository as it was at a past moment (`--as-of TIME`), read from object versions.
//!
//! On a versioned bucket, deleting an object only adds a delete marker and overwriting it only
//! adds a version: what the repository held at TIME is, for every key, its newest version or
//! delete marker written at or before TIME. This storage lists the versions once, on first
//! use, and then answers `list` and `get` from that view, reading the chosen version of each
//! object. It cannot be written: reading commands go on without a lock object (as on a
//! read-only mount), and anything that would change the repository is refused. A version
//! that a lifecycle rule expired since is gone from the view: the `--as-of` horizon is the
//! noncurrent-version expiry (docs/copies.md).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::object_lock::BucketControl;
use super::s3::{location_of, S3Settings};
use super::s3_api::{ObjectVersion, S3Api};
use super::{Kind, ObjectInfo, Storage};
use crate::error::{Error, Result};

/// Opens `settings`' repository as it was at `at`.
///
/// # Errors
/// `InvalidInput` without static credentials (see [`S3Api::new`]).
pub fn open_s3_as_of(settings: S3Settings, at: DateTime<Utc>) -> Result<Arc<dyn Storage>> {
    let location = location_of(&settings);
    let api = S3Api::new(&settings)?;
    Ok(Arc::new(AsOfStorage {
        control: Arc::new(BucketControl::new(api, settings.prefix.clone(), None, location.clone())),
        at,
        location,
        view: tokio::sync::OnceCell::new(),
    }))
}

/// A key's chosen version.
#[derive(Clone, Debug)]
struct Chosen {
    version_id: String,
    size: u64,
}

#[derive(Debug)]
struct AsOfStorage {
    control: Arc<BucketControl>,
    at: DateTime<Utc>,
    location: String,
    /// Full key to the version it had at `at` (absent keys are not in the map).
    view: tokio::sync::OnceCell<HashMap<String, Chosen>>,
}

/// For every key, its newest entry written at or before `at`; keys whose entry is a delete
/// marker (or that did not exist yet) are left out. `versions` lists each key's entries newest
/// first, as S3 does.
fn view_at(versions: Vec<ObjectVersion>, at: DateTime<Utc>) -> HashMap<String, Chosen> {
    let mut seen = std::collections::HashSet::new();
    let mut view = HashMap::new();
    for v in versions {
        if v.last_modified > at || seen.contains(&v.key) {
            continue;
        }
        seen.insert(v.key.clone());
        if !v.delete_marker {
            view.insert(v.key, Chosen { version_id: v.version_id, size: v.size });
        }
    }
    view
}

impl AsOfStorage {
    async fn view(&self) -> Result<&HashMap<String, Chosen>> {
        self.view
            .get_or_try_init(|| async {
                let prefix = if self.control.prefix.is_empty() {
                    String::new()
                } else {
                    format!("{}/", self.control.prefix)
                };
                // Without versioning a deleted object is gone and an overwritten one has only
                // its new bytes: the "past" would be today's state, so it is refused.
                let protection = self.control.api.protection().await?;
                match protection.versioning.as_str() {
                    "Enabled" => {}
                    "Suspended" => tracing::warn!(
                        "'{}': versioning is suspended on this bucket: what was overwritten or deleted since then is not kept, so the view as of {} may lack it",
                        self.location,
                        self.at
                    ),
                    _ => {
                        return Err(Error::invalid(format!(
                            "'{}': --as-of reads object versions, and this bucket never had versioning enabled: there is no past to read",
                            self.location
                        )))
                    }
                }
                let versions = self.control.api.list_versions(&prefix).await?;
                if versions.is_empty() {
                    return Err(Error::not_found(format!(
                        "'{}': no object versions at all (is it a versioned bucket, and the right prefix?)",
                        self.location
                    )));
                }
                Ok(view_at(versions, self.at))
            })
            .await
    }

    async fn chosen(&self, kind: Kind, name: &str) -> Result<(String, Chosen)> {
        let key = self.control.key(kind, name);
        match self.view().await?.get(&key) {
            Some(c) => Ok((key, c.clone())),
            None => Err(Error::not_found(format!("{} did not exist at {}", kind.describe(name), self.at))),
        }
    }

    fn read_only(&self) -> Error {
        Error::Io {
            context: format!(
                "repository '{}' is opened as of {}: it cannot be written",
                self.location, self.at
            ),
            source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, "read-only view of the past"),
        }
    }
}

#[async_trait]
impl Storage for AsOfStorage {
    fn location(&self) -> String {
        format!("{} as of {}", self.location, self.at.to_rfc3339())
    }

    fn bucket_control(&self) -> Option<Arc<BucketControl>> {
        Some(self.control.clone())
    }

    fn is_view_of_the_past(&self) -> bool {
        true
    }

    async fn put(&self, _kind: Kind, _name: &str, _data: Bytes) -> Result<()> {
        Err(self.read_only())
    }

    async fn put_file(&self, _kind: Kind, _name: &str, _path: &std::path::Path) -> Result<()> {
        Err(self.read_only())
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Bytes> {
        let (key, c) = self.chosen(kind, name).await?;
        self.control.api.get_version(&key, &c.version_id, None).await
    }

    async fn get_range(&self, kind: Kind, name: &str, range: Range<u64>) -> Result<Bytes> {
        let (key, c) = self.chosen(kind, name).await?;
        if range.end > c.size {
            return Err(Error::corrupt(
                kind.describe(name),
                format!("truncated: {} bytes long, asked bytes {}..{}", c.size, range.start, range.end),
            ));
        }
        self.control.api.get_version(&key, &c.version_id, Some(range)).await
    }

    async fn list(&self, kind: Kind) -> Result<Vec<ObjectInfo>> {
        let view = self.view().await?;
        if kind == Kind::Config {
            let key = self.control.key(Kind::Config, "config");
            return Ok(view
                .get(&key)
                .map(|c| ObjectInfo { name: "config".into(), size: c.size })
                .into_iter()
                .collect());
        }
        let dir = if self.control.prefix.is_empty() {
            format!("{}/", kind.dir())
        } else {
            format!("{}/{}/", self.control.prefix, kind.dir())
        };
        Ok(view
            .iter()
            .filter(|(k, _)| k.starts_with(&dir))
            .filter_map(|(k, c)| {
                let name = k.rsplit('/').next()?;
                (!name.is_empty()).then(|| ObjectInfo { name: name.to_string(), size: c.size })
            })
            .collect())
    }

    async fn delete(&self, _kind: Kind, _name: &str) -> Result<()> {
        Err(self.read_only())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(key: &str, id: &str, secs: i64, marker: bool) -> ObjectVersion {
        ObjectVersion {
            key: key.into(),
            version_id: id.into(),
            last_modified: DateTime::from_timestamp(secs, 0).unwrap(),
            size: 10,
            delete_marker: marker,
        }
    }

    #[test]
    fn the_view_holds_each_key_as_it_was_at_the_moment() {
        let versions = vec![
            // Deleted after the moment: present as it was.
            v("r/a", "del", 300, true),
            v("r/a", "a1", 100, false),
            // Overwritten after the moment: the older version.
            v("r/b", "b2", 250, false),
            v("r/b", "b1", 150, false),
            // Deleted before the moment: absent.
            v("r/c", "cdel", 180, true),
            v("r/c", "c1", 120, false),
            // Written after the moment: absent.
            v("r/d", "d1", 201, false),
            // Written exactly at the moment: present.
            v("r/e", "e1", 200, false),
        ];
        let view = view_at(versions, DateTime::from_timestamp(200, 0).unwrap());
        let mut keys: Vec<_> = view.iter().map(|(k, c)| format!("{k}={}", c.version_id)).collect();
        keys.sort();
        assert_eq!(keys, ["r/a=a1", "r/b=b1", "r/e=e1"]);
    }
}
