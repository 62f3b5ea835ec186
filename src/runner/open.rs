//! Opening a job's repository, creating it and its key material on first use.
//!
//! A job whose repository does not exist yet gets one: its passphrase file is created (random,
//! mode 0600) when missing, then the repository is initialised with it. A repository that exists
//! but whose passphrase file is missing is an error: creating a new passphrase could never open
//! it.

use crate::cli::context::{create_password_file, read_password_file};
use crate::error::{Error, Result};
use crate::jobs::Job;
use crate::repo::{InitOptions, Repository};
use crate::storage::{BlockingStorage, Kind};

/// The storage of a job's repository (with its S3 settings file, if any).
pub fn job_storage(job: &Job, handle: &tokio::runtime::Handle) -> Result<BlockingStorage> {
    let _g = handle.enter();
    let inner = match job.repository.strip_prefix("s3://") {
        Some(rest) => {
            let settings = crate::storage::S3Settings::from_env_and_file(rest, job.s3_env_file.as_deref())?;
            crate::storage::open_s3(settings)?
        }
        None => crate::storage::open_url(&job.repository)?,
    };
    Ok(BlockingStorage::new(inner, handle.clone()))
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
    let storage = job_storage(job, handle)?;
    if storage.list(Kind::Config)?.is_empty() {
        return Err(Error::not_found(format!(
            "job '{}': there is no repository at '{}' yet (the job's first backup creates it)",
            job.name, job.repository
        )));
    }
    let pass = read_password_file(&job.password_file)?;
    let repo = Repository::open(storage, &pass)?;
    if crate::storage::is_local(&job.repository) {
        Ok(repo)
    } else {
        let dir = crate::state::repo_dir(state_dir, &repo.id()).join("cache");
        Ok(repo.with_cache(dir))
    }
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
    let storage = job_storage(job, handle)?;
    let exists = !storage.list(Kind::Config)?.is_empty();
    if !exists {
        if create_password_file(&job.password_file)? {
            tracing::info!(
                "created passphrase file '{}' (mode 0600): keep a copy offline",
                job.password_file.display()
            );
        }
        let pass = read_password_file(&job.password_file)?;
        match Repository::init(
            storage.clone(),
            &pass,
            &InitOptions { label: format!("job {}", job.name), ..Default::default() },
        ) {
            Ok(_) => tracing::info!("created repository '{}' for job '{}'", job.repository, job.name),
            // Another job sharing the repository created it meanwhile.
            Err(Error::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
    } else if !job.password_file.exists() {
        return Err(Error::invalid(format!(
            "job '{}': repository '{}' exists but its passphrase file '{}' is missing: restore that file (or use the recovery file)",
            job.name,
            job.repository,
            job.password_file.display()
        )));
    }
    let pass = read_password_file(&job.password_file)?;
    let repo = Repository::open(storage, &pass)?;
    if crate::storage::is_local(&job.repository) {
        Ok(repo)
    } else {
        let dir = crate::state::repo_dir(state_dir, &repo.id()).join("cache");
        Ok(repo.with_cache(dir))
    }
}
