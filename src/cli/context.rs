//! What every command needs: the runtime, the repository location and the passphrase.

use std::io::IsTerminal;
use std::path::PathBuf;

use zeroize::Zeroizing;

pub use crate::jobs::access::{create_password_file, read_password_file};

use super::args::GlobalArgs;
use crate::error::{Error, Result};
use crate::repo::keyfile::RecoveryFile;
use crate::repo::Repository;
use crate::storage::BlockingStorage;

pub struct Context {
    /// The global flags, with what the configuration file supplies filled in.
    pub global: GlobalArgs,
    /// The folder of job files: --jobs, REMPART_JOBS_DIR, the configuration file, or `jobs`.
    pub jobs_dir: PathBuf,
    /// The configuration file's settings (all empty without one).
    pub settings: crate::settings::Settings,
    pub runtime: tokio::runtime::Runtime,
}

impl Context {
    /// # Errors
    /// `Invalid` for a bad configuration file; `Failed` when the async runtime cannot start.
    pub fn new(mut global: GlobalArgs) -> Result<Context> {
        let settings = match &global.config {
            Some(file) => crate::settings::load(file)?,
            None => crate::settings::Settings::default(),
        };
        if global.state_dir.is_none() {
            global.state_dir.clone_from(&settings.state_dir);
        }
        if global.keys.is_none() {
            global.keys.clone_from(&settings.keys_dir);
        }
        let jobs_dir =
            global.jobs.clone().or_else(|| settings.jobs_dir.clone()).unwrap_or_else(|| "jobs".into());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("rempart-io")
            .build()
            .map_err(|e| Error::failed(format!("cannot start the async runtime: {e}")))?;
        Ok(Context { global, jobs_dir, settings, runtime })
    }

    pub fn repo_url(&self) -> Result<String> {
        self.global.repo.clone().filter(|r| !r.is_empty()).ok_or_else(|| {
            Error::invalid(
                "no repository given: use -r/--repo PATH|s3://BUCKET/PREFIX or set REMPART_REPOSITORY",
            )
        })
    }

    pub fn storage(&self) -> Result<BlockingStorage> {
        let url = self.repo_url()?;
        let _guard = self.runtime.enter();
        let opened = match self.global.as_of {
            None => crate::storage::open_url(&url)?,
            Some(at) => {
                let env_file = std::env::var_os("REMPART_S3_ENV_FILE").map(PathBuf::from);
                crate::storage::open_url_as_of(&url, env_file.as_deref(), at)?
            }
        };
        let inner = crate::storage::throttle(opened, self.global.limit_upload, self.global.limit_download);
        Ok(BlockingStorage::new(inner, self.runtime.handle().clone()))
    }

    /// A second repository (`copy --to`, `repair heal --from`), paced by the global limits.
    ///
    /// # Errors
    /// `NotFound` naming `url` when there is no repository there; the errors of opening.
    pub fn open_other(&self, url: &str, password_file: &std::path::Path) -> Result<Repository> {
        let storage = {
            let _guard = self.runtime.enter();
            let inner = crate::storage::throttle(
                crate::storage::open_url(url)?,
                self.global.limit_upload,
                self.global.limit_download,
            );
            BlockingStorage::new(inner, self.runtime.handle().clone())
        };
        let pass = crate::jobs::access::read_password_file(password_file)?;
        let repo = Repository::open(storage, &pass).map_err(|e| match e {
            Error::NotFound(m) => {
                Error::not_found(format!("'{url}': {m}; create it first with 'rempart -r {url} init'"))
            }
            e => e,
        })?;
        Ok(repo.with_locking(self.locking()))
    }

    /// The jobs of the jobs folder, validated (file errors only; see `jobs validate`).
    pub fn jobs(&self) -> Result<Vec<crate::jobs::Job>> {
        let defaults =
            crate::jobs::Defaults::new(&self.jobs_dir, &self.state_dir(), self.global.keys.as_deref());
        crate::jobs::load_dir(&self.jobs_dir, &defaults).map_err(|e| {
            crate::jobs::invalid_jobs(&e, "fix them, then run again; 'rempart jobs validate' lists them")
        })
    }

    /// One job by name.
    pub fn job(&self, name: &str) -> Result<crate::jobs::Job> {
        let jobs = self.jobs()?;
        crate::jobs::find(&jobs, name).cloned().ok_or_else(|| {
            Error::not_found(format!(
                "no job '{name}' in '{}' (jobs there: {})",
                self.jobs_dir.display(),
                jobs.iter().map(|j| j.name.as_str()).collect::<Vec<_>>().join(", ")
            ))
        })
    }

    /// The repository of a job (which must exist: forget and prune create nothing) or of -r/--repo.
    pub fn open_for(&self, job: Option<&str>) -> Result<(Repository, Option<crate::jobs::Job>)> {
        match job {
            Some(name) => {
                let job = self.job(name)?;
                let repo = crate::jobs::access::open_existing_job_repository(
                    &job,
                    &self.state_dir(),
                    self.runtime.handle(),
                )?
                .with_locking(self.locking());
                Ok((repo, Some(job)))
            }
            None => Ok((self.open()?, None)),
        }
    }

    /// A context for running job steps from this command.
    pub fn run_context(&self, operator: String) -> crate::runner::RunContext {
        let keys = crate::jobs::Defaults::new(&self.jobs_dir, &self.state_dir(), self.global.keys.as_deref())
            .keys_dir;
        let mut ctx =
            crate::runner::RunContext::new(self.state_dir(), keys, self.runtime.handle().clone(), operator);
        ctx.pinned_keys.clone_from(&self.settings.pinned_keys);
        ctx
    }

    /// How this command locks repositories (`--no-lock`).
    pub fn locking(&self) -> crate::repo::lock::Locking {
        if self.global.no_lock {
            crate::repo::lock::Locking::Off
        } else {
            crate::repo::lock::Locking::Normal
        }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.global.state_dir.clone().unwrap_or_else(crate::state::default_dir)
    }

    /// The passphrase from --password-file, REMPART_PASSWORD_FILE, REMPART_PASSWORD, or a prompt.
    pub fn passphrase(&self) -> Result<Zeroizing<Vec<u8>>> {
        if let Some(file) = &self.global.password_file {
            return read_password_file(file);
        }
        if let Ok(p) = std::env::var("REMPART_PASSWORD") {
            if !p.is_empty() {
                return Ok(Zeroizing::new(p.into_bytes()));
            }
        }
        prompt("Repository passphrase: ")
    }

    /// Opens the repository (with the recovery file when one is given). A remote repository
    /// gets its local cache in the state directory.
    pub fn open(&self) -> Result<Repository> {
        use crate::jobs::access::{open_repository, Unlock};
        let storage = self.storage()?;
        let pass = self.passphrase()?;
        let recovery = self.global.recovery_file.as_deref().map(RecoveryFile::load).transpose()?;
        let unlock = match &recovery {
            Some(r) => Unlock::RecoveryFile { key: &r.key, passphrase: &pass },
            None => Unlock::Passphrase(&pass),
        };
        if self.global.as_of.is_some() {
            // No cache: it holds objects as they are now, which may be what an attacker wrote.
            let repo = match unlock {
                Unlock::Passphrase(p) => Repository::open(storage, p)?,
                Unlock::RecoveryFile { key, passphrase } => {
                    Repository::open_with_recovery(storage, key, passphrase)?
                }
            };
            return Ok(repo.with_locking(self.locking()));
        }
        Ok(open_repository(storage, &self.repo_url()?, &unlock, &self.state_dir())?
            .with_locking(self.locking()))
    }
}

fn prompt(label: &str) -> Result<Zeroizing<Vec<u8>>> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::invalid(
            "no passphrase given: use --password-file FILE, REMPART_PASSWORD_FILE or REMPART_PASSWORD (no terminal to ask on)",
        ));
    }
    let p = rpassword::prompt_password(label)
        .map_err(|e| Error::io("cannot read the passphrase from the terminal", e))?;
    Ok(Zeroizing::new(p.into_bytes()))
}

/// Asks for a new passphrase twice on the terminal.
pub fn prompt_new(label: &str) -> Result<Zeroizing<Vec<u8>>> {
    let a = prompt(label)?;
    let b = prompt("Repeat it: ")?;
    if *a != *b {
        return Err(Error::invalid("the two passphrases differ"));
    }
    Ok(a)
}
