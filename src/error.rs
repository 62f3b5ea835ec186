//! The public error set and the exit codes it maps to.
//!
//! Every module returns [`Error`]; the variants are the small public set that callers (the CLI,
//! the scheduler) decide on: invalid input, not found, already exists, integrity damage, wrong
//! passphrase, locked, and storage or I/O failures marked retryable or permanent. Messages name
//! the bad input and say what is expected, so the CLI can print them as they are.

use std::fmt;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in the granularity callers act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller gave something that cannot work: a bad path, flag, pattern or file.
    #[error("{0}")]
    InvalidInput(String),
    /// A named object (snapshot, file, key, job) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Something that must be created already exists (a repository, a key file).
    #[error("{0}")]
    AlreadyExists(String),
    /// Stored data failed an integrity check: a bad tag, a wrong hash, a truncated object.
    /// Never used for I/O trouble: this one means the data itself is damaged or tampered with.
    #[error("integrity damage in {object}: {detail}")]
    Corrupt { object: String, detail: String },
    /// No key object of the repository opens with the given passphrase.
    #[error("{0}")]
    WrongPassphrase(String),
    /// Another process holds a lock that conflicts with the requested operation.
    #[error("{0}")]
    Locked(String),
    /// The storage backend failed. `retryable` is true for timeouts, resets and 5xx answers.
    #[error("storage error while {op} {object}: {detail}")]
    Storage { op: &'static str, object: String, detail: String, retryable: bool },
    /// A local file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The operation was stopped by a signal or a shutdown request before it finished.
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// A failure that fits none of the above (an external tool, an internal invariant).
    #[error("{0}")]
    Failed(String),
}

impl From<std::io::Error> for Error {
    fn from(source: std::io::Error) -> Self {
        Error::Io { context: "read failed".into(), source }
    }
}

impl Error {
    /// Wraps an I/O error with a sentence naming what was being done and to which path.
    pub fn io(context: impl fmt::Display, source: std::io::Error) -> Self {
        Error::Io { context: context.to_string(), source }
    }

    /// Integrity damage in the named object.
    pub fn corrupt(object: impl fmt::Display, detail: impl fmt::Display) -> Self {
        Error::Corrupt { object: object.to_string(), detail: detail.to_string() }
    }

    pub fn invalid(msg: impl fmt::Display) -> Self {
        Error::InvalidInput(msg.to_string())
    }

    pub fn not_found(msg: impl fmt::Display) -> Self {
        Error::NotFound(msg.to_string())
    }

    pub fn failed(msg: impl fmt::Display) -> Self {
        Error::Failed(msg.to_string())
    }

    /// True when trying again later may succeed (the scheduler retries these with backoff).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Storage { retryable, .. } => *retryable,
            Error::Locked(_) => true,
            Error::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
            ),
            _ => false,
        }
    }

    /// True when the storage refused a write because it cannot be written at all: a read-only
    /// file system (EROFS), a folder without write permission, or S3 credentials without the
    /// right to write (403). Reading commands then go on without a lock.
    pub fn is_read_only(&self) -> bool {
        match self {
            Error::Io { source, .. } => {
                source.raw_os_error() == Some(nix::errno::Errno::EROFS as i32)
                    || source.kind() == std::io::ErrorKind::PermissionDenied
            }
            Error::Storage { detail, .. } => {
                let d = detail.to_lowercase();
                d.contains("read-only file system")
                    || d.contains("accessdenied")
                    || d.contains("access denied")
                    || d.contains("403")
                    || d.contains("permission denied")
            }
            _ => false,
        }
    }

    /// True for integrity damage (bad tag, wrong hash, truncated or missing referenced data).
    pub fn is_integrity(&self) -> bool {
        matches!(self, Error::Corrupt { .. })
    }

    /// The process exit code for this error (see docs/cli.md).
    pub fn exit_code(&self) -> ExitStatus {
        match self {
            Error::InvalidInput(_) => ExitStatus::Usage,
            Error::Corrupt { .. } => ExitStatus::Integrity,
            Error::Locked(_) => ExitStatus::Locked,
            Error::WrongPassphrase(_) => ExitStatus::WrongPassphrase,
            Error::Interrupted(_) => ExitStatus::Interrupted,
            _ => ExitStatus::Failure,
        }
    }
}

/// The exit codes of every command; the table in docs/cli.md is the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitStatus {
    /// 0: everything asked was done.
    Success = 0,
    /// 1: the command failed; nothing was changed beyond what the message says.
    Failure = 1,
    /// 2: the command line or an input file is wrong.
    Usage = 2,
    /// 3: done, but some entries were skipped (unreadable files); the summary lists them.
    Partial = 3,
    /// 4: integrity damage was found: corrupt, truncated or missing objects.
    Integrity = 4,
    /// 5: the repository is locked by another process.
    Locked = 5,
    /// 6: no key of the repository opens with the given passphrase.
    WrongPassphrase = 6,
    /// 7: readiness: at least one job is not VERIFIED (`rempart status`).
    NotVerified = 7,
    /// 130: stopped by a signal before it finished.
    Interrupted = 130,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The worse of two outcomes, for commands that aggregate several steps.
    pub fn worst(self, other: ExitStatus) -> ExitStatus {
        fn rank(s: ExitStatus) -> u8 {
            match s {
                ExitStatus::Success => 0,
                ExitStatus::Partial => 1,
                ExitStatus::NotVerified => 2,
                ExitStatus::Integrity => 3,
                ExitStatus::Locked => 4,
                ExitStatus::WrongPassphrase => 5,
                ExitStatus::Usage => 6,
                ExitStatus::Failure => 7,
                ExitStatus::Interrupted => 8,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}
