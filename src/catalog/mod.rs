//! The catalog: a SQLite index of every run (and, later, the evidence ledger).
//!
//! It lives in the state directory and is an index, not the truth: `rempart catalog rebuild`
//! recreates what it can from the repositories. SQLite in WAL mode with a busy timeout, schema
//! version in the database with forward migrations, and IMMEDIATE transactions for writes, so
//! a daemon and CLI commands can use it at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;

pub mod copy_state;
pub(crate) mod run;

pub use run::{RunOutcome, Status, Step, StepDetails};

/// How many recent runs are searched for the latest one that is not a drill of a copy.
const OWN_DRILL_SEARCH: u32 = 64;

/// A drill of one of the job's copies rather than of its repository.
fn is_copy_drill(r: &RunRecord) -> bool {
    r.outcome.details.drill().is_some_and(|d| d.copy.is_some())
}

use crate::error::{Error, Result};

/// Migrations in order; the schema version is the number applied.
const MIGRATIONS: &[&str] = &[
    // 1: runs
    "create table runs (
        id integer primary key,
        run_id text not null unique,
        job text not null,
        step text not null,
        trigger text not null,
        host text not null,
        operator text not null,
        repository text not null,
        started text not null,
        ended text,
        status text not null,
        snapshot text,
        snapshot_time text,
        files integer,
        bytes_read integer,
        bytes_added integer,
        error text,
        details text,
        definition_hash text
    );
    create index runs_by_job on runs(job, step, started);",
    // 2: the evidence ledger
    "create table evidence (
        chain text not null,
        seq integer not null,
        record_id text not null unique,
        canonical text not null,
        hash text not null,
        signature text not null
    );
    create index evidence_by_chain on evidence(chain, seq);",
    // 3: evidence records whose repository copy could not be written yet (a read-only
    // repository during a cold drill): uploaded by the next run that reaches it
    "create table evidence_pending (record_id text primary key);",
];

/// One run of a job step, as recorded.
#[derive(Clone, Debug, Serialize)]
pub struct RunRecord {
    pub run_id: String,
    pub job: String,
    pub step: Step,
    /// `schedule`, `manual`, `catch-up`, `start`, `retry` or `rebuilt`.
    pub trigger: String,
    pub host: String,
    /// The user who ran it, or `scheduler`.
    pub operator: String,
    pub repository: String,
    pub started: DateTime<Utc>,
    pub ended: Option<DateTime<Utc>>,
    /// What the step did (or that it is still running).
    #[serde(flatten)]
    pub outcome: RunOutcome,
    /// Attempts made, when a transient failure was retried.
    pub attempts: Option<u32>,
    pub definition_hash: Option<String>,
}

impl RunRecord {
    pub fn duration(&self) -> Option<Duration> {
        self.ended.and_then(|e| (e - self.started).to_std().ok())
    }

    pub fn succeeded(&self) -> bool {
        self.outcome.status.succeeded()
    }
}

pub struct Catalog {
    conn: Connection,
    path: PathBuf,
}

fn db_err(path: &Path, e: rusqlite::Error) -> Error {
    Error::failed(format!("catalog '{}': {e}", path.display()))
}

impl crate::jobs::access::RunContext {
    /// The catalog of this context's state directory.
    ///
    /// # Errors
    /// The catalog cannot be opened or migrated.
    pub fn catalog(&self) -> Result<Catalog> {
        Catalog::open(&self.state_dir)
    }
}

/// The `details` column: the step's facts as JSON, with the attempts when retried.
fn stored_details(r: &RunRecord) -> String {
    let mut v = serde_json::to_value(&r.outcome.details).unwrap_or(serde_json::Value::Null);
    if let (Some(a), Some(o)) = (r.attempts, v.as_object_mut()) {
        o.insert("attempts".into(), a.into());
    } else if let Some(a) = r.attempts {
        v = serde_json::json!({ "attempts": a });
    }
    v.to_string()
}

fn parse_time(s: Option<String>) -> Option<DateTime<Utc>> {
    s.and_then(|t| DateTime::parse_from_rfc3339(&t).ok()).map(|t| t.with_timezone(&Utc))
}

impl Catalog {
    /// Opens (creating and migrating as needed) the catalog of a state directory.
    ///
    /// # Errors
    /// `Failed` naming the file when SQLite cannot open or migrate it.
    pub fn open(state_dir: &Path) -> Result<Catalog> {
        crate::state::ensure(state_dir)?;
        let path = state_dir.join("catalog.db");
        let conn = Connection::open(&path).map_err(|e| db_err(&path, e))?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(|e| db_err(&path, e))?;
        conn.pragma_update(None, "journal_mode", "wal").map_err(|e| db_err(&path, e))?;
        conn.pragma_update(None, "synchronous", "normal").map_err(|e| db_err(&path, e))?;
        let mut c = Catalog { conn, path };
        c.migrate()?;
        Ok(c)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn migrate(&mut self) -> Result<()> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| db_err(&path, e))?;
        let version: usize =
            tx.query_row("pragma user_version", [], |r| r.get(0)).map_err(|e| db_err(&path, e))?;
        if version > MIGRATIONS.len() {
            return Err(Error::failed(format!(
                "catalog '{}' has schema version {version}, newer than this rempart knows ({})",
                path.display(),
                MIGRATIONS.len()
            )));
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version) {
            tx.execute_batch(m).map_err(|e| db_err(&path, e))?;
            tx.pragma_update(None, "user_version", i + 1).map_err(|e| db_err(&path, e))?;
        }
        tx.commit().map_err(|e| db_err(&path, e))
    }

    /// The schema version in the file.
    pub fn schema_version(&self) -> Result<usize> {
        self.conn.query_row("pragma user_version", [], |r| r.get(0)).map_err(|e| db_err(&self.path, e))
    }

    /// Records (or updates) a run.
    pub fn record(&mut self, r: &RunRecord) -> Result<()> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| db_err(&path, e))?;
        tx.execute(
            "insert into runs (run_id, job, step, trigger, host, operator, repository, started, ended, status, snapshot,
                               snapshot_time, files, bytes_read, bytes_added, error, details, definition_hash)
             values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
             on conflict(run_id) do update set ended = excluded.ended, status = excluded.status, snapshot = excluded.snapshot,
                snapshot_time = excluded.snapshot_time, files = excluded.files, bytes_read = excluded.bytes_read,
                bytes_added = excluded.bytes_added, error = excluded.error, details = excluded.details",
            params![
                r.run_id,
                r.job,
                r.step.name(),
                r.trigger,
                r.host,
                r.operator,
                r.repository,
                r.started.to_rfc3339(),
                r.ended.map(|t| t.to_rfc3339()),
                r.outcome.status.name(),
                r.outcome.snapshot,
                r.outcome.snapshot_time.map(|t| t.to_rfc3339()),
                r.outcome.files.map(|v| v as i64),
                r.outcome.bytes_read.map(|v| v as i64),
                r.outcome.bytes_added.map(|v| v as i64),
                r.outcome.error,
                stored_details(r),
                r.definition_hash,
            ],
        )
        .map_err(|e| db_err(&path, e))?;
        tx.commit().map_err(|e| db_err(&path, e))
    }

    fn query_runs(&self, sql: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<RunRecord>> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| db_err(&self.path, e))?;
        let rows = stmt
            .query_map(args, |row| {
                Ok(RunRecord {
                    run_id: row.get(0)?,
                    job: row.get(1)?,
                    step: Step::parse(&row.get::<_, String>(2)?).unwrap_or(Step::Backup),
                    trigger: row.get(3)?,
                    host: row.get(4)?,
                    operator: row.get(5)?,
                    repository: row.get(6)?,
                    started: parse_time(row.get(7)?).unwrap_or_default(),
                    ended: parse_time(row.get(8)?),
                    outcome: RunOutcome {
                        status: Status::parse(&row.get::<_, String>(9)?),
                        snapshot: row.get(10)?,
                        snapshot_time: parse_time(row.get(11)?),
                        files: row.get::<_, Option<i64>>(12)?.map(|v| v as u64),
                        bytes_read: row.get::<_, Option<i64>>(13)?.map(|v| v as u64),
                        bytes_added: row.get::<_, Option<i64>>(14)?.map(|v| v as u64),
                        error: row.get(15)?,
                        details: StepDetails::None,
                    },
                    attempts: None,
                    definition_hash: row.get(17)?,
                })
                .map(|mut rec| {
                    let stored: serde_json::Value = row
                        .get::<_, Option<String>>(16)
                        .ok()
                        .flatten()
                        .and_then(|d| serde_json::from_str(&d).ok())
                        .unwrap_or(serde_json::Value::Null);
                    rec.attempts = stored.get("attempts").and_then(|a| a.as_u64()).map(|a| a as u32);
                    rec.outcome.details = StepDetails::decode(rec.step, stored);
                    rec
                })
            })
            .map_err(|e| db_err(&self.path, e))?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(|e| db_err(&self.path, e))
    }

    const COLUMNS: &'static str = "run_id, job, step, trigger, host, operator, repository, started, ended, status, snapshot, \
                                   snapshot_time, files, bytes_read, bytes_added, error, details, definition_hash";

    /// Runs of a job (every job when `None`) started at or after `since`, oldest first.
    pub fn runs(&self, job: Option<&str>, since: DateTime<Utc>) -> Result<Vec<RunRecord>> {
        let since = since.to_rfc3339();
        match job {
            Some(j) => self.query_runs(
                &format!(
                    "select {} from runs where job = ?1 and started >= ?2 order by started, id",
                    Self::COLUMNS
                ),
                &[&j, &since],
            ),
            None => self.query_runs(
                &format!("select {} from runs where started >= ?1 order by started, id", Self::COLUMNS),
                &[&since],
            ),
        }
    }

    /// How many ended runs each job, step and status has (the metrics' counters).
    ///
    /// # Errors
    /// `Io` naming the catalog when it cannot be read.
    pub fn run_counts(&self) -> Result<Vec<(String, String, String, u64)>> {
        let mut stmt = self
            .conn
            .prepare("select job, step, status, count(*) from runs where status != 'running' group by job, step, status")
            .map_err(|e| db_err(&self.path, e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? as u64)))
            .map_err(|e| db_err(&self.path, e))?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(|e| db_err(&self.path, e))
    }

    /// The latest run of a step of a job (any status). For drills, the latest drill of the
    /// job's own repository: drills of its copies (`drill --copy`) have their own line.
    pub fn last_run(&self, job: &str, step: Step) -> Result<Option<RunRecord>> {
        let limit = if step == Step::Drill { OWN_DRILL_SEARCH } else { 1 };
        Ok(self.recent_runs(job, step, limit)?.into_iter().find(|r| !is_copy_drill(r)))
    }

    /// The latest `limit` runs of a step of a job, newest first.
    ///
    /// # Errors
    /// `Io` naming the catalog when it cannot be read.
    pub fn recent_runs(&self, job: &str, step: Step, limit: u32) -> Result<Vec<RunRecord>> {
        let step = step.name();
        self.query_runs(
            &format!(
                "select {} from runs where job = ?1 and step = ?2 order by started desc, id desc limit {limit}",
                Self::COLUMNS
            ),
            &[&job, &step],
        )
    }

    /// The latest successful run of a step of a job (for drills, of the job's own repository).
    pub fn last_success(&self, job: &str, step: Step) -> Result<Option<RunRecord>> {
        let limit = if step == Step::Drill { OWN_DRILL_SEARCH } else { 1 };
        let step = step.name();
        Ok(self
            .query_runs(
                &format!(
                    "select {} from runs where job = ?1 and step = ?2 and status in ('success', 'partial') order by started desc, id desc limit {limit}",
                    Self::COLUMNS
                ),
                &[&job, &step],
            )?
            .into_iter()
            .find(|r| !is_copy_drill(r)))
    }

    /// Marks runs left `running` by a process that died as `interrupted`; returns them.
    pub fn close_dangling(&mut self, now: DateTime<Utc>) -> Result<Vec<RunRecord>> {
        let dangling =
            self.query_runs(&format!("select {} from runs where status = 'running'", Self::COLUMNS), &[])?;
        for r in &dangling {
            let mut r = r.clone();
            r.outcome.status = Status::Interrupted;
            r.ended = Some(now);
            r.outcome.error.get_or_insert_with(|| "the process running it stopped before it finished".into());
            self.record(&r)?;
        }
        Ok(dangling)
    }

    /// Whether a run with this snapshot is already recorded.
    pub fn has_snapshot(&self, snapshot: &str) -> Result<bool> {
        self.conn
            .query_row("select 1 from runs where snapshot = ?1 limit 1", [snapshot], |_| Ok(()))
            .optional()
            .map(|o| o.is_some())
            .map_err(|e| db_err(&self.path, e))
    }

    /// Direct access for the evidence ledger and tests.
    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(job: &str, step: &str, status: &str, at: i64) -> RunRecord {
        RunRecord {
            run_id: format!("{job}-{step}-{at}"),
            job: job.into(),
            step: Step::parse(step).unwrap(),
            trigger: "manual".into(),
            host: "h".into(),
            operator: "u".into(),
            repository: "/r".into(),
            started: DateTime::from_timestamp(at, 0).unwrap(),
            ended: DateTime::from_timestamp(at + 10, 0),
            outcome: RunOutcome { status: Status::parse(status), files: Some(1), ..Default::default() },
            attempts: None,
            definition_hash: None,
        }
    }

    #[test]
    fn records_queries_and_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Catalog::open(dir.path()).unwrap();
        assert_eq!(c.schema_version().unwrap(), MIGRATIONS.len());
        c.record(&run("a", "backup", "success", 100)).unwrap();
        c.record(&run("a", "backup", "failed", 200)).unwrap();
        c.record(&run("b", "backup", "running", 300)).unwrap();
        assert_eq!(c.last_run("a", Step::Backup).unwrap().unwrap().outcome.status, Status::Failed);
        assert_eq!(c.last_success("a", Step::Backup).unwrap().unwrap().started.timestamp(), 100);
        assert_eq!(c.runs(Some("a"), DateTime::from_timestamp(150, 0).unwrap()).unwrap().len(), 1);
        let d = c.close_dangling(Utc::now()).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(c.last_run("b", Step::Backup).unwrap().unwrap().outcome.status, Status::Interrupted);
        drop(c);
        // Reopening keeps the data and does not migrate twice.
        let c = Catalog::open(dir.path()).unwrap();
        assert_eq!(c.runs(None, DateTime::from_timestamp(0, 0).unwrap()).unwrap().len(), 3);
    }
}
