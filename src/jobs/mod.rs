//! Job files: what to back up, where, when, how long to keep it, and how to prove it restores.
//!
//! A job is a TOML file in the jobs folder (docs/jobs.md lists every key). Parsing is strict:
//! an unknown key, a bad cron expression, an unknown time zone or a bad duration is an error
//! naming the file, the line and the key, and saying what is expected. Relative paths resolve
//! against the job file's folder. [`load_dir`] reads every `*.toml` of a folder.

pub(crate) mod access;
pub mod copies;
pub(crate) use crate::duration;
pub mod priority;
pub mod progress;
pub(crate) mod schedule;
pub(crate) mod spec;
pub(crate) mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::id::Id;
pub use schedule::CronSchedule;
pub use spec::{DrillCheck, DrillSpec, Hooks, Notify, Retention};

/// The steps a job runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Backup,
    Check,
    Prune,
    Drill,
    /// Copies the job's snapshots and evidence into its `[[copy]]` repositories.
    Copy,
    /// The ransomware drill of the job's S3 copy (drill::ransomware).
    Ransomware,
}

impl Step {
    pub const ALL: [Step; 6] =
        [Step::Backup, Step::Check, Step::Prune, Step::Drill, Step::Copy, Step::Ransomware];

    pub fn name(self) -> &'static str {
        match self {
            Step::Backup => "backup",
            Step::Check => "check",
            Step::Prune => "prune",
            Step::Drill => "drill",
            Step::Copy => "copy",
            Step::Ransomware => "ransomware",
        }
    }

    pub fn parse(s: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|st| st.name() == s)
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One problem in a job file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(k) = &self.key {
            write!(f, ": key '{k}'")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Where a job's data comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Source {
    Paths(Vec<PathBuf>),
    Database(String),
}

/// A validated job.
#[derive(Clone, Debug, Serialize)]
pub struct Job {
    pub name: String,
    pub file: PathBuf,
    pub sources: Vec<Source>,
    pub exclude: Vec<String>,
    /// Leave out the contents of folders with a valid CACHEDIR.TAG.
    pub exclude_caches: bool,
    /// Marker files (`NAME[:HEADER]`) whose folder is kept with the marker alone.
    pub exclude_if_present: Vec<String>,
    /// Leave out regular files larger than this many bytes.
    pub exclude_larger_than: Option<u64>,
    /// Bandwidth limits to and from the repository, KiB/s.
    pub limit_upload: Option<u64>,
    pub limit_download: Option<u64>,
    /// CPU and I/O priority of the job's steps.
    pub priority: crate::jobs::priority::Priority,
    pub tags: Vec<String>,
    pub host: Option<String>,
    pub one_file_system: bool,
    /// A local path or `s3://...`.
    pub repository: String,
    pub password_file: PathBuf,
    pub s3_env_file: Option<PathBuf>,
    pub db_password_file: Option<PathBuf>,
    #[serde(skip)]
    pub schedules: Vec<(Step, CronSchedule)>,
    pub timezone: String,
    /// `check --read-data-subset` for scheduled checks (`N/M` rotates automatically).
    pub check_read_data: Option<String>,
    pub retention: Retention,
    pub rpo: Option<Duration>,
    pub rto: Option<Duration>,
    pub hooks: Hooks,
    pub notify: Notify,
    pub drill: DrillSpec,
    /// Second repositories the job's snapshots are copied to (3-2-1).
    pub copies: Vec<copies::CopyTarget>,
    /// `[objectives] copies`: how many copies must hold a fresh snapshot for VERIFIED.
    pub required_copies: u32,
    /// `[objectives] immutable`: VERIFIED also needs a passing ransomware drill of the job's
    /// S3 copy within the drill interval.
    pub require_immutable: bool,
    pub run_at_start: bool,
    pub catch_up: bool,
    pub retries: u32,
    /// BLAKE3 of the job's meaning: its TOML parsed and written back as JSON with sorted keys,
    /// so comments, spacing and key order do not count. Evidence records which definition a
    /// run used; readiness lapses when it changes.
    pub definition_hash: Id,
    /// BLAKE3 of the file's bytes, what records written before the normalised hash carry:
    /// readiness accepts either, so upgrading rempart does not make every job NEEDS VERIFIED.
    pub legacy_definition_hash: Id,
}

impl Job {
    pub fn schedule(&self, step: Step) -> Option<&CronSchedule> {
        self.schedules.iter().find(|(s, _)| *s == step).map(|(_, c)| c)
    }

    /// True when a copy runs right after each backup (copies without a schedule of their own).
    pub fn copies_after_backup(&self) -> bool {
        !self.copies.is_empty() && self.schedule(Step::Copy).is_none()
    }
}

/// Paths the jobs of a folder default to.
#[derive(Clone, Debug)]
pub struct Defaults {
    /// The embedded default repository (under the state directory).
    pub repository: PathBuf,
    /// Key material: `keys/` beside the jobs folder unless configured.
    pub keys_dir: PathBuf,
}

impl Defaults {
    pub fn new(jobs_dir: &Path, state_dir: &Path, keys_dir: Option<&Path>) -> Defaults {
        let keys = keys_dir.map(Path::to_path_buf).unwrap_or_else(|| {
            let abs = crate::backup::walker::absolute(jobs_dir).unwrap_or_else(|_| jobs_dir.to_path_buf());
            abs.parent().map(|p| p.join("keys")).unwrap_or_else(|| PathBuf::from("keys"))
        });
        Defaults { repository: state_dir.join("repository"), keys_dir: keys }
    }
}

/// Reads and validates every `*.toml` job file of `dir` (sorted by name).
///
/// # Errors
/// Every problem found, each naming its file, line and key.
pub fn load_dir(dir: &Path, defaults: &Defaults) -> Result<Vec<Job>, Vec<JobError>> {
    let rd = std::fs::read_dir(dir).map_err(|e| {
        vec![JobError {
            file: dir.to_path_buf(),
            line: None,
            key: None,
            message: format!("cannot read the jobs folder: {e}"),
        }]
    })?;
    let mut files: Vec<PathBuf> =
        rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect();
    files.sort();
    let mut jobs = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match spec::load_file(&f, defaults) {
            Ok(j) => jobs.push(j),
            Err(mut e) => errors.append(&mut e),
        }
    }
    let mut seen = std::collections::HashMap::new();
    for j in &jobs {
        if let Some(other) = seen.insert(j.name.clone(), j.file.clone()) {
            errors.push(JobError {
                file: j.file.clone(),
                line: None,
                key: Some("name".into()),
                message: format!(
                    "job name '{}' is also used by {}: names must be unique",
                    j.name,
                    other.display()
                ),
            });
        }
    }
    if errors.is_empty() {
        Ok(jobs)
    } else {
        Err(errors)
    }
}

/// Finds a job by name.
pub fn find<'a>(jobs: &'a [Job], name: &str) -> Option<&'a Job> {
    jobs.iter().find(|j| j.name == name)
}

/// One error listing every problem of every job file; `consequence` says what is refused.
pub fn invalid_jobs(errs: &[JobError], consequence: &str) -> crate::error::Error {
    crate::error::Error::invalid(format!(
        "invalid job files ({consequence}):\n  {}",
        errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n  ")
    ))
}
