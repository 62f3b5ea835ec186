//! The TOML shape of a job file and its validation into a [`Job`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::duration::parse_duration;
use super::schedule::{parse_tz, CronSchedule};
use super::{Defaults, Job, JobError, Source, Step};
use crate::id::Id;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    name: Spanned<String>,
    #[serde(default)]
    sources: Vec<Spanned<String>>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    exclude_caches: bool,
    #[serde(default)]
    exclude_if_present: Vec<String>,
    exclude_larger_than: Option<Spanned<String>>,
    limit_upload: Option<u64>,
    limit_download: Option<u64>,
    nice: Option<Spanned<i32>>,
    ionice: Option<Spanned<String>>,
    #[serde(default)]
    tags: Vec<String>,
    host: Option<String>,
    #[serde(default)]
    one_file_system: bool,
    repository: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    s3_env_file: Option<Spanned<String>>,
    db_password_file: Option<Spanned<String>>,
    #[serde(default)]
    run_at_start: bool,
    catch_up: Option<bool>,
    retries: Option<u32>,
    #[serde(default)]
    schedule: RawSchedule,
    #[serde(default)]
    retention: Retention,
    #[serde(default)]
    objectives: RawObjectives,
    #[serde(default)]
    hooks: RawHooks,
    #[serde(default)]
    notify: Notify,
    #[serde(default)]
    drill: RawDrill,
    #[serde(default)]
    copy: Vec<super::copies::RawCopy>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    backup: Option<Spanned<String>>,
    check: Option<Spanned<String>>,
    prune: Option<Spanned<String>>,
    drill: Option<Spanned<String>>,
    copy: Option<Spanned<String>>,
    ransomware: Option<Spanned<String>>,
    timezone: Option<Spanned<String>>,
    check_read_data: Option<Spanned<String>>,
}

/// Retention rules, ORed as restic's `forget` does.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    pub keep_last: Option<u32>,
    pub keep_hourly: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
    pub keep_yearly: Option<u32>,
    /// Keep everything younger than this, counted back from the newest snapshot.
    pub keep_within: Option<String>,
    #[serde(default)]
    pub keep_tags: Vec<String>,
}

impl Retention {
    pub fn is_empty(&self) -> bool {
        self.keep_last.is_none()
            && self.keep_hourly.is_none()
            && self.keep_daily.is_none()
            && self.keep_weekly.is_none()
            && self.keep_monthly.is_none()
            && self.keep_yearly.is_none()
            && self.keep_within.is_none()
            && self.keep_tags.is_empty()
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawObjectives {
    rpo: Option<Spanned<String>>,
    rto: Option<Spanned<String>>,
    copies: Option<Spanned<u32>>,
    immutable: Option<Spanned<bool>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHooks {
    before: Option<String>,
    after: Option<String>,
    timeout: Option<Spanned<String>>,
}

/// Commands run around a backup (`sh -c`), with a timeout.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Hooks {
    pub before: Option<String>,
    pub after: Option<String>,
    pub timeout: std::time::Duration,
}

/// Where a job reports its runs.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// POSTed a JSON body on failure (and on success when `on_success`).
    pub webhook: Option<String>,
    #[serde(default)]
    pub on_success: bool,
    /// healthchecks.io-style base URL: `/start`, success (the URL itself) and `/fail` are pinged.
    pub healthchecks: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDrill {
    level: Option<u8>,
    interval: Option<Spanned<String>>,
    snapshot: Option<Spanned<String>>,
    server: Option<Spanned<String>>,
    server_password_file: Option<Spanned<String>>,
    #[serde(default)]
    checks: Vec<DrillCheck>,
}

/// A validation check of level 4.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DrillCheck {
    /// A query on the restored database, with its expected result.
    Sql {
        query: String,
        /// The first column of the first row, as text.
        expect: Option<String>,
        /// The first column of the first row, as a number, at least this.
        expect_at_least: Option<i64>,
        /// Which database of the snapshot (default: the only one).
        database: Option<String>,
    },
    /// A path (as backed up) that must exist in the restored copy.
    FileExists { path: String },
    /// Compares a random sample of files with the live source (borgmatic's spot check).
    SpotCheck {
        /// Percentage of the snapshot's files hashed on both sides.
        #[serde(default = "default_sample")]
        sample_percent: f64,
        /// Tolerated difference, in percent, between the file counts of the copy and the source.
        #[serde(default)]
        count_tolerance_percent: f64,
        /// Tolerated share, in percent, of sampled files whose content differs.
        #[serde(default)]
        data_tolerance_percent: f64,
    },
}

fn default_sample() -> f64 {
    10.0
}

/// How a job's drills run and when readiness lapses.
#[derive(Clone, Debug, Serialize)]
pub struct DrillSpec {
    /// The level a drill must reach for the job to be VERIFIED (1-4).
    pub level: u8,
    /// Readiness lapses when the last passing drill is older than this.
    pub interval: std::time::Duration,
    /// `latest` or `random`.
    pub snapshot: String,
    /// The server for scratch databases (default: the source's server).
    pub server: Option<String>,
    pub server_password_file: Option<PathBuf>,
    pub checks: Vec<DrillCheck>,
}

pub(super) struct Ctx<'a> {
    pub(super) file: &'a Path,
    text: &'a str,
    dir: PathBuf,
    pub(super) errors: Vec<JobError>,
}

impl Ctx<'_> {
    fn line_of(&self, span: std::ops::Range<usize>) -> usize {
        crate::util::line_at(self.text, span.start)
    }

    pub(super) fn err<T>(&mut self, spanned: &Spanned<T>, key: &str, message: impl Into<String>) {
        let line = self.line_of(spanned.span());
        self.errors.push(JobError {
            file: self.file.to_path_buf(),
            line: Some(line),
            key: Some(key.into()),
            message: message.into(),
        });
    }

    pub(super) fn path(&self, p: &str) -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            let joined = self.dir.join(p);
            crate::backup::walker::absolute(&joined).unwrap_or(joined)
        }
    }

    /// A repository location: `s3://...` as given, a local path made absolute.
    pub(super) fn repository(&mut self, r: &Spanned<String>, key: &str) -> String {
        if r.get_ref().contains("://") {
            if !r.get_ref().starts_with("s3://") {
                self.err(r, key, format!("'{}': expected a local path or s3://BUCKET/PREFIX", r.get_ref()));
            }
            r.get_ref().clone()
        } else {
            self.path(r.get_ref()).display().to_string()
        }
    }

    fn duration(&mut self, v: &Option<Spanned<String>>, key: &str) -> Option<std::time::Duration> {
        let v = v.as_ref()?;
        match parse_duration(v.get_ref()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(v, key, e);
                None
            }
        }
    }
}

/// Reads one job file.
pub fn load_file(file: &Path, defaults: &Defaults) -> Result<Job, Vec<JobError>> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        vec![JobError {
            file: file.to_path_buf(),
            line: None,
            key: None,
            message: format!("cannot read: {e}"),
        }]
    })?;
    parse_job(file, &text, defaults)
}

/// Parses and checks the text of job file `file` (nothing is read from disk).
pub fn parse_job(file: &Path, text: &str, defaults: &Defaults) -> Result<Job, Vec<JobError>> {
    let text = text.to_string();
    let raw: RawJob = toml::from_str(&text).map_err(|e| {
        let line = e.span().map(|s| crate::util::line_at(&text, s.start));
        let message = e.message().to_string();
        let key =
            message.strip_prefix("unknown field `").and_then(|r| r.split('`').next()).map(str::to_string);
        let message = if message.starts_with("unknown field") {
            format!("{message} (docs/jobs.md lists every key)")
        } else {
            message
        };
        vec![JobError { file: file.to_path_buf(), line, key, message }]
    })?;
    let dir = file.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    let mut cx = Ctx { file, text: &text, dir, errors: Vec::new() };

    let name = raw.name.get_ref().clone();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        cx.err(&raw.name, "name", format!("'{name}' is not a job name: use letters, digits, '-' and '_'"));
    }
    if raw.sources.is_empty() {
        cx.errors.push(JobError {
            file: file.to_path_buf(),
            line: None,
            key: Some("sources".into()),
            message: "no sources: list paths or database URLs to back up".into(),
        });
    }
    let mut paths = Vec::new();
    let mut sources = Vec::new();
    for s in &raw.sources {
        let v = s.get_ref();
        if crate::sources::is_db_url(v) {
            match crate::sources::DbUrl::parse(v) {
                Ok(_) => sources.push(Source::Database(v.clone())),
                Err(e) => cx.err(s, "sources", e.to_string()),
            }
        } else {
            let p = cx.path(v);
            if std::fs::symlink_metadata(&p).is_err() {
                cx.err(s, "sources", format!("source path '{}' does not exist", p.display()));
            }
            paths.push(p);
        }
    }
    if !paths.is_empty() {
        sources.insert(0, Source::Paths(paths));
    }

    let repository = match &raw.repository {
        Some(r) => cx.repository(r, "repository"),
        None => defaults.repository.display().to_string(),
    };
    let password_file = match &raw.password_file {
        Some(p) => cx.path(p.get_ref()),
        None if raw.repository.is_none() => defaults.keys_dir.join("default.pass"),
        None => defaults.keys_dir.join(format!("{name}.pass")),
    };

    let tz_name = raw.schedule.timezone.as_ref().map(|t| t.get_ref().clone()).unwrap_or_else(|| "UTC".into());
    let tz = match parse_tz(&tz_name) {
        Ok(tz) => tz,
        Err(e) => {
            if let Some(t) = &raw.schedule.timezone {
                cx.err(t, "schedule.timezone", e);
            }
            chrono_tz::UTC
        }
    };
    let mut schedules = Vec::new();
    for (step, v) in [
        (Step::Backup, &raw.schedule.backup),
        (Step::Check, &raw.schedule.check),
        (Step::Prune, &raw.schedule.prune),
        (Step::Drill, &raw.schedule.drill),
        (Step::Copy, &raw.schedule.copy),
        (Step::Ransomware, &raw.schedule.ransomware),
    ] {
        if let Some(v) = v {
            match CronSchedule::parse(v.get_ref(), tz) {
                Ok(c) => schedules.push((step, c)),
                Err(e) => cx.err(v, &format!("schedule.{}", step.name()), e),
            }
        }
    }
    if let Some(s) = &raw.schedule.check_read_data {
        let v = s.get_ref();
        let rotate_ok = v.strip_prefix("rotate/").is_some_and(|m| m.parse::<u32>().is_ok_and(|m| m > 0));
        if v != "all" && !rotate_ok {
            if let Err(e) = crate::check::ReadData::parse_subset(v) {
                cx.err(
                    s,
                    "schedule.check_read_data",
                    format!("{e}, or 'all', or rotate/M (bucket N+1 of M at each check)"),
                );
            }
        }
    }
    if let Some(w) = &raw.retention.keep_within {
        if let Err(e) = parse_duration(w) {
            // keep_within is kept as text in the job; find its line for the message.
            let line = text
                .lines()
                .position(|l| l.trim_start().starts_with("keep_within") && l.contains('='))
                .map(|i| i + 1);
            cx.errors.push(JobError {
                file: file.to_path_buf(),
                line,
                key: Some("retention.keep_within".into()),
                message: e,
            });
        }
    }
    let rpo = cx.duration(&raw.objectives.rpo, "objectives.rpo");
    let rto = cx.duration(&raw.objectives.rto, "objectives.rto");
    let hooks = Hooks {
        before: raw.hooks.before.clone(),
        after: raw.hooks.after.clone(),
        timeout: cx
            .duration(&raw.hooks.timeout, "hooks.timeout")
            .unwrap_or(std::time::Duration::from_secs(300)),
    };
    for (k, u) in [("notify.webhook", &raw.notify.webhook), ("notify.healthchecks", &raw.notify.healthchecks)]
    {
        if let Some(u) = u {
            if url::Url::parse(u).map(|x| !matches!(x.scheme(), "http" | "https")).unwrap_or(true) {
                cx.errors.push(JobError {
                    file: file.to_path_buf(),
                    line: None,
                    key: Some(k.into()),
                    message: format!("'{u}' is not an http(s) URL"),
                });
            }
        }
    }
    let level = raw.drill.level.unwrap_or(3);
    if !(1..=4).contains(&level) {
        cx.errors.push(JobError {
            file: file.to_path_buf(),
            line: None,
            key: Some("drill.level".into()),
            message: format!(
                "level {level}: expected 1 (structure), 2 (data), 3 (restore) or 4 (validation)"
            ),
        });
    }
    let snapshot =
        raw.drill.snapshot.as_ref().map(|s| s.get_ref().clone()).unwrap_or_else(|| "latest".into());
    if let Some(s) = &raw.drill.snapshot {
        if !matches!(s.get_ref().as_str(), "latest" | "random") {
            cx.err(s, "drill.snapshot", format!("'{}': expected 'latest' or 'random'", s.get_ref()));
        }
    }
    if let Some(s) = &raw.drill.server {
        if let Err(e) = crate::sources::DbUrl::parse(s.get_ref()) {
            cx.err(s, "drill.server", e.to_string());
        }
    }
    for (i, c) in raw.drill.checks.iter().enumerate() {
        let line = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.trim_start().starts_with("[[drill.checks]]"))
            .nth(i)
            .map(|(n, _)| n + 1);
        let mut bad = |key: &str, message: String| {
            cx.errors.push(JobError {
                file: file.to_path_buf(),
                line,
                key: Some(format!("drill.checks.{key}")),
                message,
            })
        };
        let has_files = sources.iter().any(|s| matches!(s, Source::Paths(_)));
        let has_db = sources.iter().any(|s| matches!(s, Source::Database(_)));
        match c {
            DrillCheck::Sql { .. } if !has_db => {
                bad("kind", "a 'sql' check needs a database source; this job backs up files".into())
            }
            DrillCheck::FileExists { .. } | DrillCheck::SpotCheck { .. } if !has_files => bad(
                "kind",
                "'file_exists' and 'spot_check' need a files source; this job backs up a database (use a 'sql' check)".into(),
            ),
            _ => {}
        }
        match c {
            DrillCheck::FileExists { path } => {
                let p = Path::new(path);
                if p.is_absolute() && p.components().any(|c| c == std::path::Component::ParentDir) {
                    bad(
                        "path",
                        format!(
                            "'{path}' contains '..': expected an absolute path as backed up (or one relative to the job file's folder)"
                        ),
                    );
                }
            }
            DrillCheck::SpotCheck { sample_percent, count_tolerance_percent, data_tolerance_percent } => {
                if !(sample_percent.is_finite() && *sample_percent > 0.0 && *sample_percent <= 100.0) {
                    bad(
                        "sample_percent",
                        format!("{sample_percent}: expected a number above 0 and at most 100"),
                    );
                }
                for (k, v) in [
                    ("count_tolerance_percent", count_tolerance_percent),
                    ("data_tolerance_percent", data_tolerance_percent),
                ] {
                    if !(v.is_finite() && (0.0..=100.0).contains(v)) {
                        bad(k, format!("{v}: expected a number from 0 to 100"));
                    }
                }
            }
            DrillCheck::Sql { .. } => {}
        }
    }
    let drill = DrillSpec {
        level,
        interval: cx
            .duration(&raw.drill.interval, "drill.interval")
            .unwrap_or(std::time::Duration::from_secs(7 * 86_400)),
        snapshot,
        server: raw.drill.server.as_ref().map(|s| s.get_ref().clone()),
        server_password_file: raw.drill.server_password_file.as_ref().map(|p| cx.path(p.get_ref())),
        checks: raw.drill.checks.clone(),
    };
    let exclude_larger_than = match &raw.exclude_larger_than {
        Some(v) => match crate::backup::filters::parse_size(v.get_ref()) {
            Ok(n) => Some(n),
            Err(e) => {
                cx.err(v, "exclude_larger_than", e);
                None
            }
        },
        None => None,
    };
    let mut priority = crate::jobs::priority::Priority::default();
    if let Some(n) = &raw.nice {
        if (-20..=19).contains(n.get_ref()) {
            priority.nice = Some(*n.get_ref());
        } else {
            cx.err(
                n,
                "nice",
                format!("{} is not a nice value: expected -20 (highest) to 19 (lowest)", n.get_ref()),
            );
        }
    }
    if let Some(io) = &raw.ionice {
        match io.get_ref().parse() {
            Ok(v) => priority.ionice = Some(v),
            Err(e) => cx.err(io, "ionice", e),
        }
    }
    for m in &raw.exclude_if_present {
        if let Err(e) = crate::backup::filters::Marker::parse(m) {
            cx.errors.push(JobError {
                file: file.to_path_buf(),
                line: None,
                key: Some("exclude_if_present".into()),
                message: e.to_string(),
            });
        }
    }
    let copies =
        super::copies::parse(&mut cx, &raw.copy, raw.schedule.copy.as_ref(), &name, &repository, defaults);
    if let Some(r) = &raw.schedule.ransomware {
        let s3 = copies.iter().filter(|c| c.repository.starts_with("s3://")).count();
        if s3 != 1 {
            cx.err(
                r,
                "schedule.ransomware",
                format!("the ransomware drill proves the job's one S3 [[copy]]; this job has {s3} (run 'rempart drill JOB --ransomware --copy NAME' by hand for each)"),
            );
        }
    }
    let required_copies = raw.objectives.copies.as_ref().map(|c| *c.get_ref()).unwrap_or(0);
    let require_immutable = raw.objectives.immutable.as_ref().is_some_and(|i| *i.get_ref());
    if let Some(i) = raw.objectives.immutable.as_ref().filter(|i| *i.get_ref()) {
        if !copies.iter().any(|c| c.repository.starts_with("s3://") && c.object_lock.is_some()) {
            cx.err(
                i,
                "objectives.immutable",
                "no [[copy]] is an S3 repository with immutable_for: immutability is proven by the ransomware drill of such a copy",
            );
        }
    }
    if let Some(c) = &raw.objectives.copies {
        if *c.get_ref() as usize > copies.len() {
            cx.err(
                c,
                "objectives.copies",
                format!(
                    "{} copies required but the job has {} [[copy]] sections: add them, or lower the requirement",
                    c.get_ref(),
                    copies.len()
                ),
            );
        }
    }
    if !cx.errors.is_empty() {
        return Err(cx.errors);
    }
    Ok(Job {
        name,
        file: crate::backup::walker::absolute(file).unwrap_or_else(|_| file.to_path_buf()),
        sources,
        exclude: raw.exclude,
        exclude_caches: raw.exclude_caches,
        exclude_if_present: raw.exclude_if_present,
        exclude_larger_than,
        limit_upload: raw.limit_upload,
        limit_download: raw.limit_download,
        priority,
        tags: raw.tags,
        host: raw.host,
        one_file_system: raw.one_file_system,
        repository,
        password_file,
        s3_env_file: raw.s3_env_file.as_ref().map(|p| cx.path(p.get_ref())),
        db_password_file: raw.db_password_file.as_ref().map(|p| cx.path(p.get_ref())),
        schedules,
        timezone: tz_name,
        check_read_data: raw.schedule.check_read_data.map(|s| s.into_inner()),
        retention: raw.retention,
        rpo,
        rto,
        hooks,
        notify: raw.notify,
        drill,
        copies,
        required_copies,
        require_immutable,
        run_at_start: raw.run_at_start,
        catch_up: raw.catch_up.unwrap_or(true),
        retries: raw.retries.unwrap_or(2),
        definition_hash: normalized_hash(&text),
        legacy_definition_hash: Id::of_bytes(text.as_bytes()),
    })
}

/// The hash of what a job file means: parsed, then written as JSON with sorted keys.
pub fn normalized_hash(text: &str) -> Id {
    match toml::from_str::<toml::Value>(text) {
        Ok(v) => Id::of_bytes(serde_json::to_string(&v).expect("serializable").as_bytes()),
        Err(_) => Id::of_bytes(text.as_bytes()),
    }
}

#[cfg(test)]
mod normalized_hash_tests {
    use super::normalized_hash;

    #[test]
    fn comments_spacing_and_key_order_do_not_change_the_meaning() {
        let a = "name = \"j\"\nsources = [\"/srv\"]\n[retention]\nkeep_daily = 7\n";
        let b = "# a comment\nsources = [ \"/srv\" ]   # inline\nname=\"j\"\n\n[retention]\nkeep_daily = 7\n";
        assert_eq!(normalized_hash(a), normalized_hash(b));
        assert_ne!(normalized_hash(a), normalized_hash(&a.replace('7', "8")));
    }
}

#[cfg(test)]
mod filter_settings_tests {
    use super::parse_job;

    #[test]
    fn backup_filters_are_read_and_bad_values_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("j.toml");
        let defaults = crate::jobs::Defaults::new(dir.path(), dir.path(), None);
        let text = "name = \"j\"\nsources = [\"/\"]\nexclude_caches = true\nexclude_if_present = [\".nobackup\"]\nexclude_larger_than = \"2G\"\n";
        let job = parse_job(&file, text, &defaults).unwrap();
        assert!(job.exclude_caches);
        assert_eq!(job.exclude_if_present, [".nobackup"]);
        assert_eq!(job.exclude_larger_than, Some(2 << 30));
        let bad = text.replace("2G", "huge").replace(".nobackup", "a/b");
        let errors = parse_job(&file, &bad, &defaults).unwrap_err();
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert!(
            text.iter().any(|e| e.contains("exclude_larger_than") && e.contains("'huge' is not a size")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|e| e.contains("exclude_if_present") && e.contains("without '/'")),
            "{text:?}"
        );
    }
}
