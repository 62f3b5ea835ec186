//! Deep validation of jobs: what can only be known by looking outside the file.
//!
//! The repository must be reachable (a local folder that can be created, or a bucket that
//! answers), and a repository that already exists needs its passphrase file (a missing one is
//! only created for a repository that does not exist yet). A copy with `immutable_for` needs a
//! bucket with Object Lock, and a warning says when this host's key can delete versions.

use std::time::Duration;

use super::{Job, JobError};
use crate::storage::Kind;

/// The line of the first `key =` in a job file, for messages.
pub fn line_of_key(file: &std::path::Path, key: &str) -> Option<usize> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().position(|l| l.trim_start().starts_with(key) && l.contains('=')).map(|i| i + 1)
}

fn err(job: &Job, key: &str, message: String) -> JobError {
    JobError { file: job.file.clone(), line: line_of_key(&job.file, key), key: Some(key.into()), message }
}

/// Checks the repository and key material of each job.
pub fn check_reachable(jobs: &[Job], handle: &tokio::runtime::Handle) -> Vec<JobError> {
    let mut errors = Vec::new();
    for job in jobs {
        let storage = match crate::jobs::access::job_storage(job, handle) {
            Ok(s) => s,
            Err(e) => {
                errors.push(err(
                    job,
                    "repository",
                    format!("repository '{}' cannot be used: {e}", job.repository),
                ));
                continue;
            }
        };
        let inner = storage.inner().clone();
        let listed = handle.block_on(async move {
            tokio::time::timeout(Duration::from_secs(20), inner.list(Kind::Config)).await
        });
        let exists = match listed {
            Ok(Ok(l)) => !l.is_empty(),
            Ok(Err(e)) => {
                errors.push(err(
                    job,
                    "repository",
                    format!("repository '{}' is unreachable: {e}", job.repository),
                ));
                continue;
            }
            Err(_) => {
                errors.push(err(
                    job,
                    "repository",
                    format!("repository '{}' did not answer within 20 s", job.repository),
                ));
                continue;
            }
        };
        for copy in job.copies.iter().filter(|c| c.object_lock.is_some()) {
            let checked = crate::jobs::access::storage_of(&copy.access(job), handle).and_then(|s| {
                let Some(control) = s.inner().bucket_control() else { return Ok(None) };
                handle.block_on(async {
                    control.check_policy().await?;
                    control.api.can_delete_versions(&control.prefix).await.map(Some)
                })
            });
            match checked {
                Ok(Some(true)) => tracing::warn!(
                    "job '{}': copy '{}' ({}): this host's credentials can delete object versions: once a lock ends, or at once in GOVERNANCE mode with bypass, an attacker holding them can destroy the copy; give the backup host a key without s3:DeleteObjectVersion (docs/copies.md, \"Credentials\")",
                    job.name,
                    copy.name,
                    copy.repository
                ),
                Ok(_) => {}
                Err(e) => errors.push(err(job, "immutable_for", format!("copy '{}': {e}", copy.name))),
            }
        }
        if exists && !job.password_file.exists() {
            errors.push(err(
                job,
                "password_file",
                format!(
                    "passphrase file '{}' is missing, and repository '{}' already exists: restore the file (a new one could not open it)",
                    job.password_file.display(),
                    job.repository
                ),
            ));
        }
    }
    errors
}
