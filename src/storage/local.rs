//! Local-folder backend: object_store's `LocalFileSystem` for reads, listings and deletes,
//! and a durable writer for puts.
//!
//! object_store's local put renames a staged file into place but never fsyncs, so a crash
//! could leave a named object whose data never reached the disk. Puts here follow the classic
//! sequence instead: write a temporary file in the destination folder, fsync it, rename it over
//! the final name, fsync the folder (and the parent of any folder just created). Only then does
//! `put` return, so the caller may write objects that reference it.

use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::ObjectStore;

use super::{Kind, ObjectInfo, Storage};
use crate::error::{Error, Result};

#[derive(Debug)]
pub struct LocalStorage {
    root: PathBuf,
    /// object_store's view of `root`, made once the folder exists: opening a repository
    /// folder that does not exist creates nothing (only a write, such as `init`, does).
    store: std::sync::OnceLock<Arc<LocalFileSystem>>,
}

impl LocalStorage {
    /// A backend rooted at `root`. The folder is not created here: reading a missing folder
    /// finds no objects, and the first write creates it.
    ///
    /// # Errors
    /// `Io` naming the folder when it exists but cannot be used.
    pub fn new(root: &Path) -> Result<LocalStorage> {
        let root = if root.exists() {
            root.canonicalize()
                .map_err(|e| Error::io(format!("cannot open repository folder '{}'", root.display()), e))?
        } else {
            std::path::absolute(root)
                .map_err(|e| Error::io(format!("cannot use repository folder '{}'", root.display()), e))?
        };
        Ok(LocalStorage { root, store: std::sync::OnceLock::new() })
    }

    /// The object store, once the folder exists.
    fn store(&self) -> Result<Option<&Arc<LocalFileSystem>>> {
        if let Some(s) = self.store.get() {
            return Ok(Some(s));
        }
        if !self.root.is_dir() {
            return Ok(None);
        }
        let store = LocalFileSystem::new_with_prefix(&self.root)
            .map_err(|e| Error::invalid(format!("repository folder '{}': {e}", self.root.display())))?;
        Ok(Some(self.store.get_or_init(|| Arc::new(store))))
    }

    fn path(&self, kind: Kind, name: &str) -> StorePath {
        StorePath::from(kind.key(name))
    }

    fn missing(&self, kind: Kind, name: &str) -> Error {
        Error::not_found(format!(
            "{} does not exist in repository '{}'",
            kind.describe(name),
            self.location()
        ))
    }
}

/// Creates the folder of `path` when missing and makes the new entries durable.
fn ensure_dir(root: &Path, dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    let mut d = dir;
    while d != root {
        let parent = d.parent().expect("inside root");
        std::fs::File::open(parent)?.sync_all()?;
        d = parent;
    }
    Ok(())
}

/// Moves a staged file (on the same file system) into place durably: fsync the file, rename
/// it, fsync the folder.
fn move_durable(root: &Path, rel: &str, staged: &Path) -> std::io::Result<()> {
    let path = root.join(rel);
    let dir = path.parent().expect("object keys have a folder or the root");
    ensure_dir(root, dir)?;
    std::fs::File::open(staged)?.sync_all()?;
    std::fs::rename(staged, &path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Writes `data` at `root/rel` with temp file, fsync, rename, fsync of the folder.
fn put_durable(root: &Path, rel: &str, data: Bytes) -> std::io::Result<()> {
    let path = root.join(rel);
    let dir = path.parent().expect("object keys have a folder or the root");
    ensure_dir(root, dir)?;
    let tmp = dir.join(format!(
        ".tmp-{}-{:016x}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("object"),
        rand::random::<u64>()
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(&data)?;
        // The bytes are in the page cache now: free them before waiting for the disk, so a
        // backup holds less memory while packs are being made durable.
        drop(data);
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

pub(super) fn map_store_error(
    op: &'static str,
    kind: Kind,
    name: &str,
    location: &str,
    e: object_store::Error,
) -> Error {
    match e {
        object_store::Error::NotFound { .. } => {
            Error::not_found(format!("{} does not exist in repository '{location}'", kind.describe(name)))
        }
        other => {
            let detail = format!("{other}");
            let lower = detail.to_lowercase();
            let retryable = [
                "error sending request",
                "timed out",
                "timeout",
                "connection",
                "reset",
                " 500",
                " 502",
                " 503",
                " 504",
                "slowdown",
                "internal error",
            ]
            .iter()
            .any(|w| lower.contains(w));
            let object = match (name.is_empty(), kind) {
                (true, Kind::Config) => "config".to_string(),
                (true, _) => format!("{}/", kind.dir()),
                (false, _) => kind.describe(name),
            };
            Error::Storage { op, object: format!("{object} in '{location}'"), detail, retryable }
        }
    }
}

#[async_trait]
impl Storage for LocalStorage {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    async fn put(&self, kind: Kind, name: &str, data: Bytes) -> Result<()> {
        let root = self.root.clone();
        let rel = kind.key(name);
        let what = kind.describe(name);
        tokio::task::spawn_blocking(move || put_durable(&root, &rel, data))
            .await
            .map_err(|e| Error::failed(format!("writer task failed: {e}")))?
            .map_err(|e| Error::io(format!("cannot write {what} in '{}'", self.root.display()), e))
    }

    fn staging_dir(&self) -> Option<PathBuf> {
        // Inside data/ so a put is a rename on the same file system; names starting with a
        // dot are never listed as objects.
        Some(self.root.join("data").join(".staging"))
    }

    async fn put_file(&self, kind: Kind, name: &str, staged: &Path) -> Result<()> {
        let root = self.root.clone();
        let rel = kind.key(name);
        let what = kind.describe(name);
        let staged = staged.to_path_buf();
        tokio::task::spawn_blocking(move || match move_durable(&root, &rel, &staged) {
            // Not on the same file system: copy it the ordinary way.
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EXDEV as i32) => {
                put_durable(&root, &rel, Bytes::from(std::fs::read(&staged)?))
            }
            other => other,
        })
        .await
        .map_err(|e| Error::failed(format!("writer task failed: {e}")))?
        .map_err(|e| Error::io(format!("cannot write {what} in '{}'", self.root.display()), e))
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Bytes> {
        let loc = self.location();
        let Some(store) = self.store()? else { return Err(self.missing(kind, name)) };
        let r = store
            .get(&self.path(kind, name))
            .await
            .map_err(|e| map_store_error("reading", kind, name, &loc, e))?;
        r.bytes().await.map_err(|e| map_store_error("reading", kind, name, &loc, e))
    }

    async fn get_range(&self, kind: Kind, name: &str, range: Range<u64>) -> Result<Bytes> {
        let loc = self.location();
        let path = self.path(kind, name);
        let Some(store) = self.store()? else { return Err(self.missing(kind, name)) };
        match store.get_range(&path, range.clone()).await {
            Ok(b) if b.len() as u64 == range.end - range.start => Ok(b),
            Ok(b) => Err(Error::corrupt(
                kind.describe(name),
                format!("truncated: asked bytes {}..{}, got {}", range.start, range.end, b.len()),
            )),
            Err(object_store::Error::NotFound { .. }) => Err(map_store_error(
                "reading",
                kind,
                name,
                &loc,
                object_store::Error::NotFound { path: path.to_string(), source: "missing".into() },
            )),
            Err(e) => match store.head(&path).await {
                Ok(meta) if meta.size < range.end => Err(Error::corrupt(
                    kind.describe(name),
                    format!(
                        "truncated: {} bytes long, asked bytes {}..{}",
                        meta.size, range.start, range.end
                    ),
                )),
                _ => Err(map_store_error("reading", kind, name, &loc, e)),
            },
        }
    }

    async fn list(&self, kind: Kind) -> Result<Vec<ObjectInfo>> {
        let loc = self.location();
        let Some(store) = self.store()? else { return Ok(vec![]) };
        if kind == Kind::Config {
            return match store.head(&StorePath::from("config")).await {
                Ok(m) => Ok(vec![ObjectInfo { name: "config".into(), size: m.size }]),
                Err(object_store::Error::NotFound { .. }) => Ok(vec![]),
                Err(e) => Err(map_store_error("listing", kind, "", &loc, e)),
            };
        }
        let dir = self.root.join(kind.dir());
        if !dir.exists() {
            return Ok(vec![]);
        }
        let prefix = StorePath::from(kind.dir());
        let metas: Vec<_> = store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| map_store_error("listing", kind, "", &loc, e))?;
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                let name = m.location.filename()?.to_string();
                (!name.starts_with('.') && !name.contains('#')).then_some(ObjectInfo { name, size: m.size })
            })
            .collect())
    }

    async fn delete(&self, kind: Kind, name: &str) -> Result<()> {
        let loc = self.location();
        let Some(store) = self.store()? else { return Ok(()) };
        match store.delete(&self.path(kind, name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(map_store_error("deleting", kind, name, &loc, e)),
        }
    }
}
