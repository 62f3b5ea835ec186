//! The repository: an encrypted, content-addressed store of packs, indexes and snapshots.
//!
//! [`Repository`] opens a storage with a passphrase (or a recovery file), and reads and writes
//! the sealed objects. The backup and restore engines build on it; it knows nothing of jobs,
//! schedules or databases. docs/format.md is the reference for every object's layout.

pub(crate) mod cache;
pub(crate) mod chunker;
pub(crate) mod config;
pub mod copy_map;
pub(crate) mod forgotten;
pub mod index;
pub(crate) mod keyfile;
pub(crate) mod lock;
pub mod pack;
pub(crate) mod snapshot;
pub(crate) mod trash;
pub(crate) mod tree;
pub(crate) mod tree_cache;
pub(crate) mod walk;
pub(crate) mod writer;

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;

use crate::crypto::seal::{open_object, seal_object};
use crate::crypto::Keys;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::storage::{BlockingStorage, Kind};
use config::Config;
use index::{Index, IndexFile};
use keyfile::KeyFile;
use pack::BlobType;
use snapshot::Snapshot;
use tree::Tree;

/// How many objects are fetched at once from a local folder when loading indexes and snapshots.
const FETCH_CONCURRENCY: usize = 16;

/// Snapshots that decoded (oldest first), and errors naming the damaged ones.
pub type SnapshotList = (Vec<(Id, Snapshot)>, Vec<Error>);

/// Snapshots that decoded, damaged snapshot objects by name, and forgotten snapshots whose
/// objects are still stored.
pub type DamagedSnapshotList = (Vec<(Id, Snapshot)>, Vec<(String, Error)>, usize);

/// Options of `rempart init`.
#[derive(Clone, Debug)]
pub struct InitOptions {
    pub compression_level: i32,
    pub pack_size: u32,
    pub label: String,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions { compression_level: 3, pack_size: 16 << 20, label: "initial key".into() }
    }
}

/// What unlocked a repository: one of its key objects, or a recovery file's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenedWith {
    /// The name of the key object.
    KeyObject(String),
    RecoveryFile,
}

impl OpenedWith {
    /// The key object's name, when one unlocked the repository.
    pub fn key_object(&self) -> Option<&str> {
        match self {
            OpenedWith::KeyObject(name) => Some(name),
            OpenedWith::RecoveryFile => None,
        }
    }
}

/// An opened repository.
#[derive(Clone)]
pub struct Repository {
    storage: BlockingStorage,
    keys: Keys,
    config: Arc<Config>,
    /// What unlocked it.
    opened_with: OpenedWith,
    tree_packs: Arc<tree_cache::TreePackCache>,
    /// On-disk cache of index objects, snapshots and tree packs (remote repositories).
    disk_cache: Option<Arc<cache::DiskCache>>,
    /// How commands lock it (`--no-lock`).
    locking: lock::Locking,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Repository({})", self.storage.location())
    }
}

impl Repository {
    /// Creates a repository: a key object wrapping a fresh master key, then the config.
    ///
    /// # Errors
    /// `AlreadyExists` when the location already holds a repository.
    pub fn init(storage: BlockingStorage, passphrase: &[u8], opts: &InitOptions) -> Result<Repository> {
        let config = Config::new(opts.compression_level, opts.pack_size)?;
        if !storage.list(Kind::Config)?.is_empty() {
            return Err(Error::AlreadyExists(format!(
                "a repository already exists at '{}'",
                storage.location()
            )));
        }
        if !storage.list(Kind::Key)?.is_empty() {
            return Err(Error::AlreadyExists(format!(
                "'{}' holds key objects but no config: an earlier init was interrupted; remove the folder or bucket prefix and run init again",
                storage.location()
            )));
        }
        let keys = Keys::generate();
        let key = KeyFile::create(&keys, config.repository_id, passphrase, &opts.label)?;
        let key_bytes = key.to_bytes();
        let key_name = Id::of_bytes(&key_bytes).to_hex();
        storage.put(Kind::Key, &key_name, Bytes::from(key_bytes))?;
        let opened_with = OpenedWith::KeyObject(key_name);
        let sealed = seal_object(&keys, "config", &serde_json::to_vec(&config).expect("serializable"));
        storage.put(Kind::Config, "config", Bytes::from(sealed))?;
        Ok(Repository {
            storage,
            keys,
            config: Arc::new(config),
            opened_with,
            tree_packs: Default::default(),
            disk_cache: None,
            locking: lock::Locking::Normal,
        })
    }

    /// Opens a repository with a passphrase, trying each key object.
    ///
    /// # Errors
    /// `NotFound` when there is no repository, `WrongPassphrase` when no key opens.
    pub fn open(storage: BlockingStorage, passphrase: &[u8]) -> Result<Repository> {
        // The config needs no key to be read, only to be opened: its round trip is paid while
        // the key objects are listed and the passphrase stretched.
        let mut config = Some(storage.prefetch(Kind::Config, "config"));
        let keys = storage.list(Kind::Key)?;
        if keys.is_empty() {
            return Err(if storage.list(Kind::Config)?.is_empty() {
                Error::not_found(format!(
                    "no repository at '{}': run 'rempart init' first, or check -r/--repo",
                    storage.location()
                ))
            } else {
                Error::corrupt(
                    format!("repository '{}'", storage.location()),
                    "it has a config but no key objects; open it with a recovery file (--recovery-file)",
                )
            });
        }
        let mut damaged = Vec::new();
        for obj in &keys {
            let bytes = match storage.get(Kind::Key, &obj.name) {
                Ok(b) => b,
                Err(Error::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            let what = Kind::Key.describe(&obj.name);
            let key = match KeyFile::from_bytes(&bytes, &what) {
                Ok(k) if Id::of_bytes(&bytes).to_hex() == obj.name => k,
                Ok(_) => {
                    damaged.push(format!("{what} (content does not match its name)"));
                    continue;
                }
                Err(e) => {
                    damaged.push(e.to_string());
                    continue;
                }
            };
            match key.unlock(passphrase) {
                Ok(Some(k)) => {
                    let config = config.take().expect("the config is used once").wait();
                    return Self::finish_open(
                        storage,
                        config,
                        k,
                        key.repository_id,
                        OpenedWith::KeyObject(obj.name.clone()),
                    );
                }
                Ok(None) => {}
                // A planted or damaged key object must not stop the others from opening.
                Err(e) => damaged.push(format!("{what}: {e}")),
            }
        }
        if !damaged.is_empty() && damaged.len() == keys.len() {
            return Err(Error::corrupt(
                format!("the key objects of repository '{}'", storage.location()),
                format!(
                    "every key object is damaged ({}); open the repository with the recovery file from 'rempart key export' (--recovery-file)",
                    damaged.join("; ")
                ),
            ));
        }
        let mut msg = format!(
            "wrong passphrase: none of the {} key(s) of repository '{}' opens with it; check --password-file, REMPART_PASSWORD_FILE or REMPART_PASSWORD",
            keys.len(),
            storage.location()
        );
        if !damaged.is_empty() {
            msg.push_str(&format!(
                " (damaged key objects: {}; if yours was damaged, open with the recovery file from 'rempart key export')",
                damaged.join("; ")
            ));
        }
        Err(Error::WrongPassphrase(msg))
    }

    /// Opens with a key from a recovery file instead of the repository's key objects.
    ///
    /// # Errors
    /// `WrongPassphrase` when the passphrase does not open the recovery key, `InvalidInput`
    /// when the recovery file belongs to another repository.
    pub fn open_with_recovery(
        storage: BlockingStorage,
        key: &KeyFile,
        passphrase: &[u8],
    ) -> Result<Repository> {
        // Key objects carry the repository id in clear: a recovery file of another
        // repository is named as such, not as damage.
        for obj in storage.list(Kind::Key)?.iter().take(4) {
            if let Ok(k) = storage.get(Kind::Key, &obj.name).and_then(|b| KeyFile::from_bytes(&b, &obj.name))
            {
                if k.repository_id != key.repository_id {
                    return Err(Error::invalid(format!(
                        "the recovery file belongs to repository {}, but '{}' is repository {}: give the recovery file of this repository",
                        key.repository_id.short(),
                        storage.location(),
                        k.repository_id.short()
                    )));
                }
                break;
            }
        }
        let keys = key.unlock(passphrase)?.ok_or_else(|| {
            Error::WrongPassphrase("wrong passphrase for the recovery file's key".to_string())
        })?;
        let location = storage.location();
        let config = storage.get(Kind::Config, "config");
        Self::finish_open(storage, config, keys, key.repository_id, OpenedWith::RecoveryFile).map_err(|e| match e {
            Error::Corrupt { object, .. } if object == "config" => Error::invalid(format!(
                "the recovery file's key (repository {}) does not open the config of '{location}': the recovery file belongs to another repository, or the config is damaged",
                key.repository_id.short(),
            )),
            e => e,
        })
    }

    /// Opens `config` (the config object as read) with `keys` and checks it belongs with them.
    fn finish_open(
        storage: BlockingStorage,
        config: Result<Bytes>,
        keys: Keys,
        repository_id: Id,
        opened_with: OpenedWith,
    ) -> Result<Repository> {
        let bytes = config.map_err(|e| match e {
            Error::NotFound(_) => Error::corrupt(
                format!("repository '{}'", storage.location()),
                "the config object is missing (the repository was not fully initialised or it was deleted)",
            ),
            e => e,
        })?;
        let plain = open_object(&keys, "config", &bytes, "config")?;
        let config: Config = serde_json::from_slice(&plain).map_err(|e| Error::corrupt("config", e))?;
        config.validate()?;
        if config.repository_id != repository_id {
            return Err(Error::invalid(format!(
                "the key belongs to repository {}, but '{}' is repository {}",
                repository_id.short(),
                storage.location(),
                config.repository_id.short()
            )));
        }
        Ok(Repository {
            storage,
            keys,
            config: Arc::new(config),
            opened_with,
            tree_packs: Default::default(),
            disk_cache: None,
            locking: lock::Locking::Normal,
        })
    }

    /// The same repository (same keys and config) reached through another storage: a
    /// wrapper of the same store (fault injection, throttling) or a copy of it. Caches are not
    /// shared.
    pub fn with_storage(&self, storage: BlockingStorage) -> Repository {
        Repository {
            storage,
            keys: self.keys.clone(),
            config: self.config.clone(),
            opened_with: self.opened_with.clone(),
            tree_packs: Default::default(),
            disk_cache: None,
            locking: self.locking,
        }
    }

    /// Uses `dir` as the on-disk cache of this repository's index objects, snapshots and
    /// tree packs (worth it for remote repositories).
    pub fn with_cache(mut self, dir: std::path::PathBuf) -> Repository {
        self.disk_cache = Some(Arc::new(cache::DiskCache::new(dir)));
        self
    }

    /// Sets how commands on this repository lock it (`--no-lock` for reading commands).
    pub fn with_locking(mut self, locking: lock::Locking) -> Repository {
        self.locking = locking;
        self
    }

    /// Takes a repository lock of `kind` for `operation` (docs/format.md, "Locks").
    ///
    /// # Errors
    /// `Locked` naming the holder of a conflicting lock; storage errors.
    pub fn lock(&self, kind: lock::LockKind, operation: &str) -> Result<lock::LockGuard> {
        lock::LockGuard::acquire_with(&self.storage, &self.keys, kind, operation, self.locking)
    }

    pub fn disk_cache(&self) -> Option<&Arc<cache::DiskCache>> {
        self.disk_cache.as_ref()
    }

    pub fn storage(&self) -> &BlockingStorage {
        &self.storage
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn id(&self) -> Id {
        self.config.repository_id
    }

    /// The key object or the recovery file that unlocked this repository.
    pub fn opened_with(&self) -> &OpenedWith {
        &self.opened_with
    }

    /// Seals and stores an object under the hash of its sealed bytes; returns that name.
    pub fn save_object(&self, kind: Kind, label: &str, plaintext: &[u8]) -> Result<Id> {
        let sealed = seal_object(&self.keys, label, plaintext);
        let id = Id::of_bytes(&sealed);
        self.storage.put(kind, &id.to_hex(), Bytes::from(sealed.clone()))?;
        if let Some(c) = self.cache_for(kind) {
            c.store(kind, &id.to_hex(), &sealed);
        }
        Ok(id)
    }

    /// Loads and opens a content-addressed sealed object, checking its name.
    pub fn load_object(&self, kind: Kind, label: &str, name: &str) -> Result<Vec<u8>> {
        let bytes = self.storage.get(kind, name)?;
        self.open_loaded(kind, label, name, &bytes)
    }

    pub(crate) fn open_loaded(&self, kind: Kind, label: &str, name: &str, bytes: &[u8]) -> Result<Vec<u8>> {
        let what = kind.describe(name);
        if Id::of_bytes(bytes).to_hex() != name {
            return Err(Error::corrupt(what, "content does not hash to its name"));
        }
        open_object(&self.keys, label, bytes, &what)
    }

    /// The cache that applies to objects of `kind`, if any.
    fn cache_for(&self, kind: Kind) -> Option<&cache::DiskCache> {
        matches!(kind, Kind::Index | Kind::Snapshot | Kind::Forgotten | Kind::Evidence | Kind::EvidenceKey)
            .then_some(())
            .and(self.disk_cache.as_deref())
    }

    /// Fetches many objects of one kind concurrently (from the cache when it has them); each
    /// result is paired with its name.
    pub fn fetch_many(&self, kind: Kind, names: Vec<String>) -> Vec<(String, Result<Bytes>)> {
        let mut out = Vec::new();
        let names = match self.cache_for(kind) {
            Some(c) => {
                c.retain(kind, &names.iter().cloned().collect());
                names
                    .into_iter()
                    .filter(|n| match c.load(kind, n) {
                        Some(b) => {
                            out.push((n.clone(), Ok(b)));
                            false
                        }
                        None => true,
                    })
                    .collect()
            }
            None => names,
        };
        let mut fetched = self.fetch_remote(kind, names);
        if let Some(c) = self.cache_for(kind) {
            for (name, b) in &fetched {
                if let Ok(b) = b {
                    c.store(kind, name, b);
                }
            }
        }
        out.append(&mut fetched);
        out
    }

    /// Objects requested at once: `FETCH_CONCURRENCY` from a local folder; from S3 as many as
    /// the request scheduler may ever allow, and it holds those beyond its current limit.
    fn fetch_depth(&self) -> usize {
        self.storage.inner().scheduler_stats().map_or(FETCH_CONCURRENCY, |s| s.max)
    }

    fn fetch_remote(&self, kind: Kind, names: Vec<String>) -> Vec<(String, Result<Bytes>)> {
        self.storage.get_each(kind, names, self.fetch_depth())
    }

    /// Fetches objects concurrently and hands each to `f` on the calling thread as it arrives
    /// (decoding stays off the async executor; at most a few objects wait in memory).
    pub fn fetch_each(
        &self,
        kind: Kind,
        names: Vec<String>,
        mut f: impl FnMut(String, Result<Bytes>) -> Result<()>,
    ) -> Result<()> {
        let mut names = names;
        if let Some(c) = self.cache_for(kind) {
            c.retain(kind, &names.iter().cloned().collect());
            let mut missing = Vec::new();
            for n in names {
                match c.load(kind, &n) {
                    Some(b) => f(n, Ok(b))?,
                    None => missing.push(n),
                }
            }
            names = missing;
        }
        let cache = self.cache_for(kind);
        let mut f = move |name: String, bytes: Result<Bytes>| {
            if let (Some(c), Ok(b)) = (cache, &bytes) {
                c.store(kind, &name, b);
            }
            f(name, bytes)
        };
        let storage = self.storage.inner().clone();
        let depth = self.fetch_depth();
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let task = self.storage.handle().spawn(async move {
            let mut s = futures::stream::iter(names)
                .map(|name| {
                    let storage = storage.clone();
                    async move {
                        let r = storage.get(kind, &name).await;
                        (name, r)
                    }
                })
                .buffer_unordered(depth);
            while let Some(item) = s.next().await {
                if tx.send(item).await.is_err() {
                    break;
                }
            }
        });
        let mut result = Ok(());
        while let Some((name, bytes)) = rx.blocking_recv() {
            if result.is_ok() {
                result = f(name, bytes);
            }
            if result.is_err() {
                break;
            }
        }
        drop(rx);
        task.abort();
        result
    }

    /// The index for reading: index objects plus packs marked for deletion by a prune (still
    /// readable until a later prune sweeps them).
    ///
    /// # Errors
    /// `Corrupt` naming a damaged index or trash object.
    pub fn load_index(&self) -> Result<Index> {
        let trash = trash::load_trash(self)?;
        self.load_index_with(
            trash.into_iter().map(|(id, t)| (id, IndexFile { supersedes: vec![], packs: t.packs })).collect(),
        )
    }

    /// The index without marked packs: what backups dedup against (a marked pack may be
    /// deleted before a backup that would use it finishes).
    pub fn load_index_without_trash(&self) -> Result<Index> {
        self.load_index_with(vec![])
    }

    /// The merged index of the repository, built one index object at a time.
    fn load_index_with(&self, extra: Vec<(Id, IndexFile)>) -> Result<Index> {
        let names = self.storage.list(Kind::Index)?.into_iter().map(|o| o.name).collect();
        let mut builder = index::IndexBuilder::default();
        self.fetch_each(Kind::Index, names, |name, bytes| {
            let bytes = match bytes {
                Ok(b) => b,
                Err(Error::NotFound(_)) => return Ok(()), // superseded and deleted meanwhile
                Err(e) => return Err(e),
            };
            let plain = self.open_loaded(Kind::Index, "index", &name, &bytes)?;
            builder.add_file(Id::from_hex(&name)?, IndexFile::decode(&plain, &Kind::Index.describe(&name))?);
            Ok(())
        })
        .map_err(|e| match e {
            Error::Corrupt { object, detail } => Error::Corrupt {
                object,
                detail: format!("{detail}; run 'rempart repair index' to rebuild the index from the packs"),
            },
            e => e,
        })?;
        for (id, f) in extra {
            builder.add_file(id, f);
        }
        let index = builder.finish();
        if let Some(c) = &self.disk_cache {
            c.retain(Kind::Pack, &index.packs().iter().map(|p| p.id.to_hex()).collect());
        }
        Ok(index)
    }

    /// Stores an index object.
    pub fn save_index(&self, file: &IndexFile) -> Result<Id> {
        self.save_object(Kind::Index, "index", &file.encode())
    }

    /// Every snapshot, oldest first. Damaged snapshot objects are returned as errors in the
    /// second list, so listings can go on and name them. Snapshots named by a forget record are
    /// left out even while their objects remain (docs/format.md, "Forget records").
    ///
    /// # Errors
    /// Storage errors; `Corrupt` naming a damaged forget record.
    pub fn list_snapshots(&self) -> Result<SnapshotList> {
        let forgotten = forgotten::load(self)?;
        let (ok, bad, _) = self.read_snapshots(&forgotten)?;
        Ok((ok, bad.into_iter().map(|(_, e)| e).collect()))
    }

    /// The snapshots that decode (oldest first), the damaged ones with their object names, and
    /// how many forgotten snapshots still have objects (an interrupted forget).
    ///
    /// # Errors
    /// Storage errors.
    pub fn read_snapshots(&self, forgotten: &forgotten::Forgotten) -> Result<DamagedSnapshotList> {
        let (left, names): (Vec<String>, Vec<String>) = self
            .storage
            .list(Kind::Snapshot)?
            .into_iter()
            .map(|o| o.name)
            .partition(|n| Id::from_hex(n).is_ok_and(|id| forgotten.contains(&id)));
        let leftover = left.len();
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        for (name, bytes) in self.fetch_many(Kind::Snapshot, names) {
            let r = bytes.and_then(|b| {
                let plain = self.open_loaded(Kind::Snapshot, "snapshot", &name, &b)?;
                Snapshot::decode(&plain, &Kind::Snapshot.describe(&name))
            });
            match (r, Id::from_hex(&name)) {
                (Ok(s), Ok(id)) => ok.push((id, s)),
                (Err(Error::NotFound(_)), _) => {}
                // A storage that fails to answer is not damage: say so rather than leave the
                // snapshot out (a forget would decide on part of the snapshots).
                (Err(e), _) if !e.is_integrity() => return Err(e),
                (Err(e), _) => bad.push((name, e)),
                (_, Err(_)) => {
                    let e = Error::corrupt(Kind::Snapshot.describe(&name), "name is not an id");
                    bad.push((name, e))
                }
            }
        }
        ok.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        bad.sort_by(|a, b| a.0.cmp(&b.0));
        Ok((ok, bad, leftover))
    }

    /// Loads one snapshot by exact id.
    pub fn load_snapshot(&self, id: &Id) -> Result<Snapshot> {
        let plain = self.load_object(Kind::Snapshot, "snapshot", &id.to_hex())?;
        Snapshot::decode(&plain, &Kind::Snapshot.describe(&id.to_hex()))
    }

    /// Stores a snapshot (after everything it references is durable).
    pub fn save_snapshot(&self, snap: &Snapshot) -> Result<Id> {
        self.save_object(Kind::Snapshot, "snapshot", &snap.encode())
    }

    /// Finds a snapshot by `latest`, a full id or a unique id prefix.
    ///
    /// # Errors
    /// `NotFound` or `InvalidInput` (ambiguous prefix) quoting the given text.
    pub fn find_snapshot(&self, spec: &str) -> Result<(Id, Snapshot)> {
        let forgotten = forgotten::load(self)?;
        let (snaps, damaged, _) = self.read_snapshots(&forgotten)?;
        if spec == "latest" {
            return snaps.into_iter().last().ok_or_else(|| {
                Error::not_found(format!("repository '{}' has no snapshots yet", self.storage.location()))
            });
        }
        if spec.len() < 4 || !spec.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::invalid(format!(
                "'{spec}' is not a snapshot: expected 'latest' or at least 4 hex digits of a snapshot id"
            )));
        }
        let spec_l = spec.to_ascii_lowercase();
        let mut matches: Vec<_> =
            snaps.into_iter().filter(|(id, _)| id.to_hex().starts_with(&spec_l)).collect();
        if matches.is_empty() {
            // A damaged snapshot object is integrity damage, not an unknown id.
            if let Some((_, e)) = damaged.into_iter().find(|(name, _)| name.starts_with(&spec_l)) {
                return Err(match e {
                    Error::Corrupt { object, detail } => Error::Corrupt {
                        object,
                        detail: format!(
                            "{detail}; this snapshot cannot be read: restore another one, and remove it with 'rempart forget {}'",
                            spec_l
                        ),
                    },
                    other => other,
                });
            }
        }
        match matches.len() {
            0 => Err(Error::not_found(format!(
                "no snapshot '{spec}' in repository '{}'; 'rempart snapshots' lists them",
                self.storage.location()
            ))),
            1 => Ok(matches.pop().expect("one")),
            n => Err(Error::invalid(format!(
                "snapshot prefix '{spec}' is ambiguous: {n} snapshots match; give more digits"
            ))),
        }
    }

    /// Reads one blob through the index (decrypted, decompressed, verified).
    ///
    /// # Errors
    /// `Corrupt` when the blob is not indexed, its pack is missing, or its data is damaged.
    pub fn read_blob(&self, index: &Index, id: &Id, blob_type: BlobType) -> Result<Vec<u8>> {
        let loc = index.lookup(id).ok_or_else(|| {
            Error::corrupt(
                format!("{blob_type:?} blob {id}").to_lowercase(),
                "not in the index (missing data)",
            )
        })?;
        let e = loc.entry;
        let name = loc.pack.id.to_hex();
        let (start, end) = (u64::from(e.offset), u64::from(e.offset) + u64::from(e.length));
        if blob_type == BlobType::Tree && loc.pack.size <= tree_cache::MAX_CACHED_PACK {
            let whole = match self.tree_packs.get(&loc.pack.id) {
                Some(b) => b,
                None => {
                    let cached = self.disk_cache.as_ref().and_then(|c| c.load(Kind::Pack, &name));
                    let b = match cached {
                        Some(b) => Ok(b),
                        None => self.storage.get(Kind::Pack, &name).inspect(|b| {
                            if let Some(c) = &self.disk_cache {
                                c.store(Kind::Pack, &name, b);
                            }
                        }),
                    };
                    let b = b.map_err(|err| match err {
                        Error::NotFound(_) => {
                            Error::corrupt(Kind::Pack.describe(&name), format!("missing (holds blob {id})"))
                        }
                        other => other,
                    })?;
                    self.tree_packs.insert(loc.pack.id, b.clone());
                    b
                }
            };
            if end > whole.len() as u64 {
                return Err(Error::corrupt(
                    Kind::Pack.describe(&name),
                    format!("truncated: {} bytes, blob {id} ends at {end}", whole.len()),
                ));
            }
            return pack::open_blob(&self.keys, &loc.pack.salt, &e, &whole[start as usize..end as usize]);
        }
        let envelope = self
            .storage
            .get_range(Kind::Pack, &name, u64::from(e.offset)..u64::from(e.offset) + u64::from(e.length))
            .map_err(|err| match err {
                Error::NotFound(_) => {
                    Error::corrupt(Kind::Pack.describe(&name), format!("missing (holds blob {id})"))
                }
                other => other,
            })?;
        pack::open_blob(&self.keys, &loc.pack.salt, &e, &envelope)
    }

    /// Reads a pack's salt and header with ranged reads (for repair and for adopting packs an
    /// interrupted backup stored but did not index).
    ///
    /// # Errors
    /// `Corrupt` naming the pack when its layout or header is damaged.
    pub fn read_pack_header(&self, id: &Id, size: u64) -> Result<index::IndexedPack> {
        let name = id.to_hex();
        let what = Kind::Pack.describe(&name);
        let min = (pack::PACK_PREFIX + 4 + crate::crypto::seal::BLOB_OVERHEAD) as u64;
        if size < min {
            return Err(Error::corrupt(&what, format!("truncated: {size} bytes")));
        }
        let prefix = self.storage.get_range(Kind::Pack, &name, 0..pack::PACK_PREFIX as u64)?;
        let salt = pack::parse_salt(&prefix, &what)?;
        let tail_len = size.min(64 * 1024);
        let mut tail = self.storage.get_range(Kind::Pack, &name, size - tail_len..size)?;
        let hl = u64::from(u32::from_le_bytes(tail[tail.len() - 4..].try_into().expect("4 bytes")));
        if hl + 4 + pack::PACK_PREFIX as u64 > size {
            return Err(Error::corrupt(&what, format!("header length {hl} does not fit a {size}-byte pack")));
        }
        if hl + 4 > tail_len {
            tail = self.storage.get_range(Kind::Pack, &name, size - 4 - hl..size)?;
        }
        let sealed = &tail[tail.len() - 4 - hl as usize..tail.len() - 4];
        let blobs = pack::parse_header(&self.keys, &salt, sealed, size - 4 - hl, &what)?;
        Ok(index::IndexedPack { id: *id, salt, size, blobs })
    }

    /// Reads and decodes a tree blob.
    pub fn load_tree(&self, index: &Index, id: &Id) -> Result<Tree> {
        let raw = self.read_blob(index, id, BlobType::Tree)?;
        Tree::decode(&raw, &format!("tree {id}"))
    }
}
