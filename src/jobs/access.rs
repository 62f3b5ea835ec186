//! The floor every job step stands on: the context a step runs in (state and key folders,
//! clock, cancellation, runtime) and opening a job's repository, in one place.
//!
//! Opening never creates anything unless the caller asks to initialise: only a backup (and
//! `rempart init`) creates a repository, through [`open_job_repository`], which makes the job's
//! passphrase file (random, mode 0600) when missing and initialises the repository with it. A
//! repository that exists but whose passphrase file is missing is an error: a new passphrase
//! could never open it. Status, reports, audits, catalog rebuilds, drills, checks, prunes and
//! forgets use [`open_existing_job_repository`].

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::jobs::Job;
use crate::repo::{InitOptions, Repository};
use crate::storage::{BlockingStorage, Kind};

/// Where a repository is and what opens it: a job's own, or one of the job's copies
/// (`[[copy]]`). Every step opens repositories through this, so both behave alike.
pub struct RepoAccess<'a> {
    /// Who owns it, for messages: "job 'web'", "copy 'offsite' of job 'web'".
    pub owner: String,
    /// The label a new repository gets.
    pub label: String,
    /// A local path or `s3://...`.
    pub repository: &'a str,
    pub password_file: &'a Path,
    pub s3_env_file: Option<&'a Path>,
    /// Bandwidth limits, KiB/s.
    pub limit_upload: Option<u64>,
    pub limit_download: Option<u64>,
    /// Write objects locked (S3 Object Lock); the S3 settings file's REMPART_IMMUTABLE_FOR
    /// applies when this is `None`.
    pub object_lock: Option<crate::storage::LockPolicy>,
}

impl Job {
    /// How to reach the job's own repository.
    pub fn access(&self) -> RepoAccess<'_> {
        RepoAccess {
            owner: format!("job '{}'", self.name),
            label: format!("job {}", self.name),
            repository: &self.repository,
            password_file: &self.password_file,
            s3_env_file: self.s3_env_file.as_deref(),
            limit_upload: self.limit_upload,
            limit_download: self.limit_download,
            object_lock: None,
        }
    }
}

/// The storage of a job's repository (with its S3 settings file, if any).
pub fn job_storage(job: &Job, handle: &tokio::runtime::Handle) -> Result<BlockingStorage> {
    storage_of(&job.access(), handle)
}

/// The storage `access` names (with its S3 settings file, if any), paced by its limits.
pub fn storage_of(access: &RepoAccess<'_>, handle: &tokio::runtime::Handle) -> Result<BlockingStorage> {
    let _g = handle.enter();
    let inner = match access.repository.strip_prefix("s3://") {
        Some(rest) => {
            let mut settings = crate::storage::S3Settings::from_env_and_file(rest, access.s3_env_file)?;
            if access.object_lock.is_some() {
                settings.object_lock = access.object_lock;
            }
            crate::storage::open_s3(settings)?
        }
        None => crate::storage::open_url(access.repository)?,
    };
    let inner = crate::storage::throttle(inner, access.limit_upload, access.limit_download);
    Ok(BlockingStorage::new(inner, handle.clone()))
}

/// What unlocks a repository.
pub enum Unlock<'a> {
    /// Tries every key object with this passphrase.
    Passphrase(&'a [u8]),
    /// A recovery file's key and the passphrase it was exported under.
    RecoveryFile { key: &'a crate::repo::keyfile::KeyFile, passphrase: &'a [u8] },
}

/// Opens the repository in `storage` (found at `url`); a remote one gets its local cache of
/// index objects, snapshots and tree packs in `state_dir`. The one place a repository is
/// unlocked, for jobs and for the command line alike.
///
/// # Errors
/// The errors of [`Repository::open`] and [`Repository::open_with_recovery`].
pub fn open_repository(
    storage: BlockingStorage,
    url: &str,
    unlock: &Unlock<'_>,
    state_dir: &Path,
) -> Result<Repository> {
    let repo = match unlock {
        Unlock::Passphrase(pass) => Repository::open(storage, pass)?,
        Unlock::RecoveryFile { key, passphrase } => Repository::open_with_recovery(storage, key, passphrase)?,
    };
    if crate::storage::is_local(url) {
        Ok(repo)
    } else {
        let cache = crate::state::repo_dir(state_dir, &repo.id()).join("cache");
        Ok(repo.with_cache(cache))
    }
}

/// Opens the repository of `job` when it exists; creates nothing (status, reports, audits,
/// catalog rebuilds and cold drills read; only a backup or `init` creates a repository).
///
/// # Errors
/// `NotFound` naming the job and the repository when there is none; the errors of opening.
pub fn open_existing_job_repository(
    job: &Job,
    state_dir: &std::path::Path,
    handle: &tokio::runtime::Handle,
) -> Result<Repository> {
    open_existing(&job.access(), state_dir, handle)
}

/// [`open_existing_job_repository`] of any [`RepoAccess`].
///
/// # Errors
/// `NotFound` naming the owner and the repository when there is none; the errors of opening.
pub fn open_existing(
    access: &RepoAccess<'_>,
    state_dir: &std::path::Path,
    handle: &tokio::runtime::Handle,
) -> Result<Repository> {
    let storage = storage_of(access, handle)?;
    if storage.list(Kind::Config)?.is_empty() {
        return Err(Error::not_found(format!(
            "{}: there is no repository at '{}' yet (the job's first backup creates it)",
            access.owner, access.repository
        )));
    }
    let pass = read_password_file(access.password_file)?;
    open_repository(storage, access.repository, &Unlock::Passphrase(&pass), state_dir)
}

/// Opens (or, the first time, creates) the repository of `job`.
///
/// # Errors
/// `InvalidInput` when the repository exists but its passphrase file does not; the errors of
/// opening a repository otherwise.
pub fn open_job_repository(
    job: &Job,
    state_dir: &std::path::Path,
    handle: &tokio::runtime::Handle,
) -> Result<Repository> {
    open_or_create(&job.access(), state_dir, handle)
}

/// [`open_job_repository`] of any [`RepoAccess`].
///
/// # Errors
/// As [`open_job_repository`].
pub fn open_or_create(
    access: &RepoAccess<'_>,
    state_dir: &std::path::Path,
    handle: &tokio::runtime::Handle,
) -> Result<Repository> {
    let storage = storage_of(access, handle)?;
    let exists = !storage.list(Kind::Config)?.is_empty();
    if !exists {
        if create_password_file(access.password_file)? {
            tracing::info!(
                "created passphrase file '{}' (mode 0600): keep a copy offline",
                access.password_file.display()
            );
        }
        let pass = read_password_file(access.password_file)?;
        match Repository::init(
            storage.clone(),
            &pass,
            &InitOptions { label: access.label.clone(), ..Default::default() },
        ) {
            Ok(_) => tracing::info!("created repository '{}' for {}", access.repository, access.owner),
            // Another job sharing the repository created it meanwhile.
            Err(Error::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
    } else if !access.password_file.exists() {
        return Err(Error::invalid(format!(
            "{}: repository '{}' exists but its passphrase file '{}' is missing: restore that file (or use the recovery file)",
            access.owner,
            access.repository,
            access.password_file.display()
        )));
    }
    let pass = read_password_file(access.password_file)?;
    open_repository(storage, access.repository, &Unlock::Passphrase(&pass), state_dir)
}

/// Reads a passphrase file: its first line, without the line ending.
///
/// # Errors
/// `InvalidInput` naming the file when it is missing, unreadable or empty.
pub fn read_password_file(file: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let bytes = Zeroizing::new(std::fs::read(file).map_err(|e| {
        Error::invalid(format!(
            "password file '{}' cannot be read: {e}; expected a file holding the passphrase on its first line",
            file.display()
        ))
    })?);
    let line: Vec<u8> = bytes.split(|&b| b == b'\n').next().unwrap_or(&[]).to_vec();
    let line = Zeroizing::new(line.strip_suffix(b"\r").map(<[u8]>::to_vec).unwrap_or(line));
    if line.is_empty() {
        return Err(Error::invalid(format!(
            "password file '{}' is empty: expected the passphrase on its first line",
            file.display()
        )));
    }
    Ok(line)
}

/// Creates a password file with a random passphrase (mode 0600) when it does not exist.
///
/// # Errors
/// `Io` naming the file.
pub fn create_password_file(file: &Path) -> Result<bool> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if file.exists() {
        return Ok(false);
    }
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("cannot create folder '{}'", dir.display()), e))?;
    }
    let mut bytes = [0u8; 24];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    let pass = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .map_err(|e| Error::io(format!("cannot create password file '{}'", file.display()), e))?;
    writeln!(f, "{pass}")
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(format!("cannot write password file '{}'", file.display()), e))?;
    Ok(true)
}

/// What runs need from their surroundings (time and shutdown are injected).
#[derive(Clone)]
pub struct RunContext {
    pub state_dir: PathBuf,
    /// Key material: passphrase files and the evidence signing key.
    pub keys_dir: PathBuf,
    pub handle: tokio::runtime::Handle,
    /// Set when the run must stop (daemon shutdown past its grace period, SIGINT).
    pub cancel: Arc<AtomicBool>,
    /// `scheduler` for the daemon, the user's name for manual runs.
    pub operator: String,
    pub now: fn() -> DateTime<Utc>,
    /// Delays between attempts after a transient failure.
    pub backoff: Vec<Duration>,
    /// Other installations' evidence keys whose records count for readiness here.
    pub pinned_keys: Vec<String>,
    /// Where the running step stands, for progress displays.
    pub progress: Arc<crate::jobs::progress::StepProgress>,
}

impl RunContext {
    pub fn new(
        state_dir: PathBuf,
        keys_dir: PathBuf,
        handle: tokio::runtime::Handle,
        operator: String,
    ) -> RunContext {
        RunContext {
            state_dir,
            keys_dir,
            handle,
            cancel: Arc::new(AtomicBool::new(false)),
            operator,
            now: Utc::now,
            backoff: vec![Duration::from_secs(30), Duration::from_secs(120), Duration::from_secs(600)],
            pinned_keys: Vec::new(),
            progress: Arc::default(),
        }
    }
}
