//! `[[copy]]` sections of a job: the second repositories (off-site, other media, another
//! provider) its snapshots and evidence are copied to, for a 3-2-1 plan.
//!
//! A copy has no retention of its own on the backup host: what the job forgets stays in the
//! copy until it is pruned there, from another host if the copy is meant to survive this one.
//! Without `schedule.copy` the copy step runs right after each backup that stored a snapshot.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::access::RepoAccess;
use super::spec::Ctx;
use super::{Defaults, Job};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCopy {
    name: Option<Spanned<String>>,
    repository: Spanned<String>,
    password_file: Option<Spanned<String>>,
    s3_env_file: Option<Spanned<String>>,
    limit_upload: Option<u64>,
    limit_download: Option<u64>,
    /// S3 Object Lock: how long each object stays locked, the mode, how often locks are extended.
    immutable_for: Option<Spanned<String>>,
    lock_mode: Option<Spanned<String>>,
    lock_refresh: Option<Spanned<String>>,
}

/// One repository a job's snapshots are copied to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CopyTarget {
    /// Unique within the job; names the copy in runs, metrics and the dashboard.
    pub name: String,
    /// A local path or `s3://...`.
    pub repository: String,
    /// Its passphrase (created with the repository by the first copy when missing).
    pub password_file: PathBuf,
    pub s3_env_file: Option<PathBuf>,
    /// Bandwidth limits to and from the copy, KiB/s.
    pub limit_upload: Option<u64>,
    pub limit_download: Option<u64>,
    /// Objects are written locked (S3 Object Lock) with this policy.
    pub object_lock: Option<crate::storage::LockPolicy>,
}

impl CopyTarget {
    /// How to reach the copy's repository.
    pub fn access<'a>(&'a self, job: &Job) -> RepoAccess<'a> {
        RepoAccess {
            owner: format!("copy '{}' of job '{}'", self.name, job.name),
            label: format!("copy {} of job {}", self.name, job.name),
            repository: &self.repository,
            password_file: &self.password_file,
            s3_env_file: self.s3_env_file.as_deref(),
            limit_upload: self.limit_upload,
            limit_download: self.limit_download,
            object_lock: self.object_lock,
        }
    }
}

/// Validates the `[[copy]]` sections of job `job_name`, whose own repository is `repository`.
pub(super) fn parse(
    cx: &mut Ctx<'_>,
    raw: &[RawCopy],
    schedule: Option<&Spanned<String>>,
    job_name: &str,
    repository: &str,
    defaults: &Defaults,
) -> Vec<CopyTarget> {
    if let (Some(s), true) = (schedule, raw.is_empty()) {
        cx.err(s, "schedule.copy", "there is no [[copy]] section: add one, or remove schedule.copy");
    }
    let mut out: Vec<CopyTarget> = Vec::new();
    for (i, c) in raw.iter().enumerate() {
        let name = match &c.name {
            Some(n) => {
                let v = n.get_ref();
                if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                    cx.err(
                        n,
                        "copy.name",
                        format!("'{v}' is not a copy name: use letters, digits, '-' and '_'"),
                    );
                }
                if out.iter().any(|o| &o.name == v) {
                    cx.err(
                        n,
                        "copy.name",
                        format!("'{v}' names two [[copy]] sections: names must be unique"),
                    );
                }
                v.clone()
            }
            None if raw.len() == 1 => "copy".to_string(),
            None => {
                cx.err(
                    &c.repository,
                    "copy.name",
                    format!("[[copy]] number {} has no name: with several copies, name each", i + 1),
                );
                String::new()
            }
        };
        let target = cx.repository(&c.repository, "copy.repository");
        if target == repository {
            cx.err(
                &c.repository,
                "copy.repository",
                format!("'{target}' is the job's own repository: a copy must go to another one"),
            );
        }
        if out.iter().any(|o| o.repository == target) {
            cx.err(&c.repository, "copy.repository", format!("'{target}' is named by two [[copy]] sections"));
        }
        let password_file = match &c.password_file {
            Some(p) => cx.path(p.get_ref()),
            None => defaults.keys_dir.join(format!("{job_name}-{name}.pass")),
        };
        let object_lock = match crate::storage::LockPolicy::from_settings(
            c.lock_mode.as_ref().map(|s| s.get_ref().as_str()),
            c.immutable_for.as_ref().map(|s| s.get_ref().as_str()),
            c.lock_refresh.as_ref().map(|s| s.get_ref().as_str()),
        ) {
            Ok(Some(p)) if !target.starts_with("s3://") => {
                cx.err(
                    c.immutable_for.as_ref().unwrap_or(&c.repository),
                    "copy.immutable_for",
                    format!("'{target}' is not an S3 repository: Object Lock needs an S3 bucket created with it (make a local copy immutable with the file system or the media instead)"),
                );
                Some(p)
            }
            Ok(p) => p,
            Err(e) => {
                let at = c
                    .immutable_for
                    .as_ref()
                    .or(c.lock_mode.as_ref())
                    .or(c.lock_refresh.as_ref())
                    .unwrap_or(&c.repository);
                cx.err(at, "copy.immutable_for", e);
                None
            }
        };
        out.push(CopyTarget {
            name,
            repository: target,
            password_file,
            s3_env_file: c.s3_env_file.as_ref().map(|p| cx.path(p.get_ref())),
            limit_upload: c.limit_upload,
            limit_download: c.limit_download,
            object_lock,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::jobs::spec::parse_job;

    #[test]
    fn copies_are_read_with_defaults_and_bad_ones_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("j.toml");
        let defaults = crate::jobs::Defaults::new(dir.path(), dir.path(), Some(&dir.path().join("keys")));
        let text = "name = \"j\"\nsources = [\"/\"]\nrepository = \"/srv/repo\"\n[[copy]]\nrepository = \"s3://b/p\"\ns3_env_file = \"s3.env\"\n";
        let job = parse_job(&file, text, &defaults).unwrap();
        assert_eq!(job.copies.len(), 1);
        let c = &job.copies[0];
        assert_eq!((c.name.as_str(), c.repository.as_str()), ("copy", "s3://b/p"));
        assert_eq!(c.password_file, dir.path().join("keys/j-copy.pass"));
        assert_eq!(c.s3_env_file.as_deref(), Some(dir.path().join("s3.env").as_path()));
        assert!(job.copies_after_backup());
        let scheduled = text.replace("[[copy]]", "[schedule]\ncopy = \"0 4 * * *\"\n[[copy]]");
        assert!(!parse_job(&file, &scheduled, &defaults).unwrap().copies_after_backup());

        let errors = |text: &str| -> Vec<String> {
            parse_job(&file, text, &defaults).unwrap_err().iter().map(|e| e.to_string()).collect()
        };
        let own = errors(&text.replace("s3://b/p", "/srv/repo"));
        assert!(own.iter().any(|e| e.contains("copy.repository") && e.contains("own repository")), "{own:?}");
        let two = format!("{text}[[copy]]\nrepository = \"/mnt/usb\"\n");
        assert!(errors(&two).iter().any(|e| e.contains("copy.name") && e.contains("name each")));
        let same = format!("{text}name = \"a\"\n[[copy]]\nname = \"a\"\nrepository = \"/mnt/usb\"\n");
        assert!(errors(&same).iter().any(|e| e.contains("names must be unique")), "{:?}", errors(&same));
        let lonely = "name = \"j\"\nsources = [\"/\"]\n[schedule]\ncopy = \"0 4 * * *\"\n";
        assert!(errors(lonely).iter().any(|e| e.contains("schedule.copy") && e.contains("no [[copy]]")));
        let too_many = text.replace("[[copy]]", "[objectives]\ncopies = 2\n[[copy]]");
        assert!(
            errors(&too_many)
                .iter()
                .any(|e| e.contains("objectives.copies") && e.contains("2 copies required")),
            "{:?}",
            errors(&too_many)
        );
        let locked = parse_job(
            &file,
            &format!("{text}immutable_for = \"30d\"\nlock_mode = \"governance\"\n"),
            &defaults,
        )
        .unwrap();
        let policy = locked.copies[0].object_lock.unwrap();
        assert_eq!(
            (policy.mode, policy.immutable_for.as_secs()),
            (crate::storage::s3_api::LockMode::Governance, 30 * 86_400)
        );
        assert_eq!(policy.refresh, crate::storage::object_lock::DEFAULT_LOCK_REFRESH);
        let local_lock =
            errors(&format!("{}immutable_for = \"30d\"\n", text.replace("s3://b/p", "/mnt/usb")));
        assert!(
            local_lock.iter().any(|e| e.contains("copy.immutable_for") && e.contains("not an S3 repository")),
            "{local_lock:?}"
        );
        let bad_mode = errors(&format!("{text}immutable_for = \"30d\"\nlock_mode = \"forever\"\n"));
        assert!(bad_mode.iter().any(|e| e.contains("compliance or governance")), "{bad_mode:?}");
        let mode_alone = errors(&format!("{text}lock_mode = \"compliance\"\n"));
        assert!(mode_alone.iter().any(|e| e.contains("without immutable_for")), "{mode_alone:?}");
        let unproven = errors(&text.replace("[[copy]]", "[objectives]\nimmutable = true\n[[copy]]"));
        assert!(
            unproven.iter().any(|e| e.contains("objectives.immutable") && e.contains("immutable_for")),
            "{unproven:?}"
        );
        let local_only = text.replace("s3://b/p", "/mnt/usb");
        let no_s3 =
            errors(&local_only.replace("[[copy]]", "[schedule]\nransomware = \"0 5 * * 0\"\n[[copy]]"));
        assert!(no_s3.iter().any(|e| e.contains("schedule.ransomware") && e.contains("has 0")), "{no_s3:?}");
        let scheduled = text.replace("[[copy]]", "[schedule]\nransomware = \"0 5 * * 0\"\n[[copy]]");
        let job = parse_job(&file, &scheduled, &defaults).unwrap();
        assert!(job.schedule(crate::jobs::Step::Ransomware).is_some());
        let unknown = format!("{text}retention = 3\n");
        assert!(errors(&unknown).iter().any(|e| e.contains("retention")), "{:?}", errors(&unknown));
    }
}
