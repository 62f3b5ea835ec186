//! S3-compatible backend through object_store's `AmazonS3Builder`.
//!
//! Settings come from the standard AWS environment variables (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_ENDPOINT_URL`, `AWS_REGION`,
//! `AWS_ALLOW_HTTP`) or from a credentials file of `KEY=VALUE` lines that the configuration
//! names (`REMPART_S3_ENV_FILE`, or `s3_env_file` in a job); values in the file win. Secrets
//! are never taken from command-line flags. Objects above the multipart threshold go up as
//! multipart uploads; object_store retries transient failures (5xx, resets, timeouts) with
//! exponential backoff, and permanent ones are mapped to errors that say what to check.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as StorePath;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectMeta, ObjectStore, RetryConfig, WriteMultipart,
};

use super::local::map_store_error;
use super::object_lock::{BucketControl, LockPolicy};
use super::s3_api::S3Api;
use super::scheduler::{self, RequestScheduler};
use super::{Kind, ObjectInfo, Storage};
use crate::error::{Error, Result};

/// Objects above this size go up as multipart uploads (`REMPART_S3_MULTIPART_MIB` changes it):
/// default-size packs (16 MiB) go up in one request, larger ones (pack sizes up to 1 GiB) in
/// 8 MiB parts.
const MULTIPART_THRESHOLD: usize = 32 << 20;
const PART_SIZE: usize = 8 << 20;
/// A put of at most this many bytes is answered in about one round trip: its duration is a
/// latency sample for the scheduler (a larger one's is mostly transfer).
const SMALL_PUT: usize = 64 << 10;
/// Keys one listing request answers (S3's and Garage's page).
const LIST_PAGE: usize = 1000;

/// Everything needed to reach one bucket and prefix.
#[derive(Clone)]
pub struct S3Settings {
    pub bucket: String,
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub allow_http: bool,
    /// Objects larger than this go up as multipart uploads of `part_size` parts.
    pub multipart_threshold: usize,
    pub part_size: usize,
    /// Write every object locked (S3 Object Lock): `REMPART_IMMUTABLE_FOR`,
    /// `REMPART_OBJECT_LOCK_MODE`, `REMPART_LOCK_REFRESH`, or a copy's `immutable_for`.
    pub object_lock: Option<LockPolicy>,
    /// How long one request may take before it is abandoned and retried
    /// (`REMPART_S3_REQUEST_TIMEOUT`, default 300 s: a 1 GiB pack on a slow link).
    pub request_timeout: Duration,
    /// How long a failing request is retried, counted from the end of its first attempt, before
    /// the operation fails (`REMPART_S3_RETRY_FOR`, default 120 s, at most 10 minutes; jittered
    /// backoff up to 15 s, at most 30 retries).
    pub retry_for: Duration,
    /// The most requests in flight at once, whatever the latency (`REMPART_S3_MAX_REQUESTS`,
    /// 1 to 256, default 32; storage::scheduler).
    pub max_requests: usize,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id.as_ref().map(|_| "<set>"))
            .field("secret_access_key", &self.secret_access_key.as_ref().map(|_| "<set>"))
            .field("object_lock", &self.object_lock)
            .finish()
    }
}

impl S3Settings {
    /// Settings for `BUCKET/PREFIX` from the environment and, when `REMPART_S3_ENV_FILE` is
    /// set, from that file.
    ///
    /// # Errors
    /// `InvalidInput` naming the URL or the file when they cannot be used.
    pub fn from_env(bucket_and_prefix: &str) -> Result<S3Settings> {
        let file = std::env::var_os("REMPART_S3_ENV_FILE");
        Self::from_env_and_file(bucket_and_prefix, file.as_deref().map(Path::new))
    }

    pub fn from_env_and_file(bucket_and_prefix: &str, file: Option<&Path>) -> Result<S3Settings> {
        let (bucket, prefix) = match bucket_and_prefix.split_once('/') {
            Some((b, p)) => (b.to_string(), p.trim_matches('/').to_string()),
            None => (bucket_and_prefix.to_string(), String::new()),
        };
        if bucket.is_empty() {
            return Err(Error::invalid(format!(
                "repository 's3://{bucket_and_prefix}': no bucket name; expected s3://BUCKET/PREFIX"
            )));
        }
        let mut vars: std::collections::HashMap<String, String> = std::env::vars().collect();
        if let Some(file) = file {
            let text = std::fs::read_to_string(file)
                .map_err(|e| Error::io(format!("cannot read S3 settings file '{}'", file.display()), e))?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (k, v) = line.split_once('=').ok_or_else(|| {
                    Error::invalid(format!(
                        "S3 settings file '{}' line {}: expected KEY=VALUE",
                        file.display(),
                        n + 1
                    ))
                })?;
                vars.insert(k.trim().to_string(), v.trim().trim_matches('"').to_string());
            }
        }
        let get = |k: &str| vars.get(k).filter(|v| !v.is_empty()).cloned();
        let object_lock = LockPolicy::from_settings(
            get("REMPART_OBJECT_LOCK_MODE").as_deref(),
            get("REMPART_IMMUTABLE_FOR").as_deref(),
            get("REMPART_LOCK_REFRESH").as_deref(),
        )
        .map_err(|e| {
            Error::invalid(format!(
                "repository 's3://{bucket_and_prefix}': REMPART_IMMUTABLE_FOR / REMPART_OBJECT_LOCK_MODE / REMPART_LOCK_REFRESH: {e}"
            ))
        })?;
        Ok(S3Settings {
            bucket,
            prefix,
            endpoint: get("AWS_ENDPOINT_URL").or_else(|| get("AWS_ENDPOINT")),
            region: get("AWS_REGION")
                .or_else(|| get("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".into()),
            access_key_id: get("AWS_ACCESS_KEY_ID"),
            secret_access_key: get("AWS_SECRET_ACCESS_KEY"),
            session_token: get("AWS_SESSION_TOKEN"),
            allow_http: get("AWS_ALLOW_HTTP").is_some_and(|v| v == "true" || v == "1"),
            multipart_threshold: get("REMPART_S3_MULTIPART_MIB")
                .and_then(|v| v.parse::<usize>().ok())
                .map(|m| m.max(5) << 20)
                .unwrap_or(MULTIPART_THRESHOLD),
            part_size: PART_SIZE,
            object_lock,
            request_timeout: duration_setting(
                &get,
                "REMPART_S3_REQUEST_TIMEOUT",
                REQUEST_TIMEOUT,
                Duration::from_secs(3600),
            )?,
            // Well under the 30 minutes after which other hosts take a silent lock for dead.
            retry_for: duration_setting(&get, "REMPART_S3_RETRY_FOR", RETRY_FOR, Duration::from_secs(600))?,
            max_requests: match get("REMPART_S3_MAX_REQUESTS") {
                None => scheduler::MAX_IN_FLIGHT,
                Some(text) => text
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=scheduler::MAX_SETTABLE).contains(n))
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "REMPART_S3_MAX_REQUESTS '{text}': expected a whole number of requests from 1 to {}",
                            scheduler::MAX_SETTABLE
                        ))
                    })?,
            },
        })
    }
}

const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
const RETRY_FOR: Duration = Duration::from_secs(120);

/// A duration setting (`30s`, `5m`), between 1 second and `max`.
fn duration_setting(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: Duration,
    max: Duration,
) -> Result<Duration> {
    let Some(text) = get(name) else { return Ok(default) };
    let d = crate::duration::parse_duration(&text)
        .map_err(|e| Error::invalid(format!("{name} '{text}': {e}")))?;
    if d < Duration::from_secs(1) || d > max {
        return Err(Error::invalid(format!(
            "{name} '{text}': expected a duration between 1s and {}",
            crate::duration::format_duration(max)
        )));
    }
    Ok(d)
}

#[derive(Debug)]
pub struct S3Storage {
    store: Arc<AmazonS3>,
    settings: S3Settings,
    /// Signed calls for Object Lock and versions; `None` without static credentials.
    control: Option<Arc<BucketControl>>,
    /// Without a lock policy: whether the repository's `config` is locked (asked once, before
    /// the first write), so a locked repository is never written unlocked by mistake.
    config_lock: tokio::sync::OnceCell<Option<chrono::DateTime<chrono::Utc>>>,
    /// Every request passes here: how many are in flight follows the observed latency.
    scheduler: Arc<RequestScheduler>,
}

impl S3Storage {
    /// # Errors
    /// `InvalidInput` when object_store rejects the settings (bad endpoint URL, ...).
    pub fn new(settings: S3Settings) -> Result<S3Storage> {
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_allow_http(settings.allow_http)
            .with_virtual_hosted_style_request(false)
            // Objects are content-addressed and authenticated by rempart itself (checked on every
            // read), so hashing each payload for the request signature only costs CPU.
            .with_unsigned_payload(true)
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(200),
                    max_backoff: Duration::from_secs(15),
                    base: 2.0,
                },
                // The window (retry_for) is the real bound: a connection refused at once must not
                // use up the retries within seconds of a short partition.
                max_retries: 30,
                // object_store counts the window from the first attempt: a request that stalls
                // for its whole timeout must still be retried, for the window after that.
                retry_timeout: settings.retry_for + settings.request_timeout,
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(10).min(settings.request_timeout))
                    .with_timeout(settings.request_timeout)
                    .with_allow_http(settings.allow_http),
            );
        if let Some(e) = &settings.endpoint {
            b = b.with_endpoint(e);
        }
        if let Some(k) = &settings.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(s) = &settings.secret_access_key {
            b = b.with_secret_access_key(s);
        }
        if let Some(t) = &settings.session_token {
            b = b.with_token(t);
        }
        let store = b.build().map_err(|e| {
            Error::invalid(format!("S3 repository 's3://{}/{}': {e}", settings.bucket, settings.prefix))
        })?;
        let location = location_of(&settings);
        let control = match S3Api::new(&settings) {
            Ok(api) => Some(Arc::new(BucketControl::new(
                api,
                settings.prefix.clone(),
                settings.object_lock,
                location,
            ))),
            Err(e) if settings.object_lock.is_some() => return Err(e),
            Err(_) => None,
        };
        let scheduler = Arc::new(RequestScheduler::new(settings.max_requests));
        Ok(S3Storage {
            store: Arc::new(store),
            settings,
            control,
            config_lock: tokio::sync::OnceCell::new(),
            scheduler,
        })
    }

    /// Refuses a write without a lock policy into a repository whose `config` is locked
    /// (`rempart copy --to` or `-r` on an immutable copy without REMPART_IMMUTABLE_FOR): its
    /// new objects would not be locked while the copy's locks say every object is.
    async fn refuse_unlocked_write(&self, kind: Kind) -> Result<()> {
        let Some(control) = self.control.as_deref().filter(|c| c.policy.is_none()) else { return Ok(()) };
        if kind == Kind::Lock || kind == Kind::Config {
            return Ok(());
        }
        let locked = self
            .config_lock
            .get_or_try_init(|| async {
                let key = control.key(Kind::Config, "config");
                match self.scheduler.run("retention of config", control.api.retention(&key, None)).await {
                    Ok(r) => Ok(r.map(|r| r.until)),
                    Err(Error::NotFound(_)) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await?;
        match locked {
            Some(until) => Err(Error::invalid(format!(
                "repository '{}' is on S3 Object Lock (its config is locked until {until}) but no lock policy is set here: new objects would not be locked; set REMPART_IMMUTABLE_FOR (and REMPART_OBJECT_LOCK_MODE) in the environment or the S3 settings file, or write through the job's [[copy]]",
                self.location()
            ))),
            None => Ok(()),
        }
    }

    /// Every object under `dir`. A listing answers at most `LIST_PAGE` keys per request, one
    /// page after the other: 100,000 packs would be 100 round trips in a row. So when the first
    /// page is full, the rest of the key space is split at the first hex digit of the names
    /// (`dir/0` ... `dir/f`, names are hex) and the parts are listed at once, each part paging
    /// on its own. Each part takes the keys after its start up to and including the next
    /// part's start, so every key is listed exactly once.
    async fn list_keys(&self, dir: &StorePath) -> std::result::Result<Vec<ObjectMeta>, object_store::Error> {
        use futures::StreamExt;
        let mut out = Vec::new();
        {
            let _slot = self.scheduler.slot("list").await;
            let mut first = self.store.list(Some(dir));
            while out.len() < LIST_PAGE {
                match first.next().await {
                    Some(meta) => out.push(meta?),
                    None => return Ok(out),
                }
            }
        }
        // Paths, never strings made into paths: a prefix with a character that object_store
        // percent-encodes (`#`, `~`) must not be encoded twice.
        let last = out.last().expect("a full page").location.clone();
        let mut starts = vec![last.clone()];
        starts.extend(
            "0123456789abcdef"
                .chars()
                .map(|h| dir.child(h.to_string()))
                .filter(|b| b.as_ref() > last.as_ref()),
        );
        let parts = starts.iter().enumerate().map(|(i, from)| {
            let to = starts.get(i + 1);
            async move {
                let _slot = self.scheduler.slot("list").await;
                let mut part = Vec::new();
                let mut keys = self.store.list_with_offset(Some(dir), from);
                while let Some(meta) = keys.next().await {
                    let meta = meta?;
                    if to.is_some_and(|to| meta.location.as_ref() > to.as_ref()) {
                        break;
                    }
                    part.push(meta);
                }
                Ok::<_, object_store::Error>(part)
            }
        });
        for part in futures::future::try_join_all(parts).await? {
            out.extend(part);
        }
        Ok(out)
    }

    /// The control when objects are written locked.
    fn locking(&self) -> Option<&BucketControl> {
        self.control.as_deref().filter(|c| c.policy.is_some())
    }

    fn path(&self, kind: Kind, name: &str) -> StorePath {
        if self.settings.prefix.is_empty() {
            StorePath::from(kind.key(name))
        } else {
            StorePath::from(format!("{}/{}", self.settings.prefix, kind.key(name)))
        }
    }

    fn explain(&self, op: &'static str, kind: Kind, name: &str, e: object_store::Error) -> Error {
        let err = map_store_error(op, kind, name, &self.location(), e);
        match err {
            Error::Storage { op, object, detail, retryable } => {
                let lower = detail.to_lowercase();
                let hint = if lower.contains("nosuchbucket") || lower.contains("no such bucket") {
                    " (the bucket does not exist: create it or check the repository URL)"
                } else if lower.contains("invalidaccesskeyid")
                    || lower.contains("signaturedoesnotmatch")
                    || lower.contains("invalid signature")
                {
                    " (bad credentials: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
                } else if lower.contains("accessdenied")
                    || lower.contains("403")
                    || lower.contains("forbidden")
                {
                    " (access denied: check AWS_ACCESS_KEY_ID and the bucket's permissions for this key)"
                } else if lower.contains("connect")
                    || lower.contains("dns")
                    || lower.contains("error sending request")
                {
                    " (cannot reach the endpoint: check AWS_ENDPOINT_URL and the network)"
                } else {
                    ""
                };
                Error::Storage { op, object, detail: format!("{detail}{hint}"), retryable }
            }
            other => other,
        }
    }
}

#[async_trait]
impl Storage for S3Storage {
    fn location(&self) -> String {
        location_of(&self.settings)
    }

    fn bucket_control(&self) -> Option<Arc<BucketControl>> {
        self.control.clone()
    }

    fn scheduler_stats(&self) -> Option<super::scheduler::SchedulerStats> {
        Some(self.scheduler.stats())
    }

    async fn put(&self, kind: Kind, name: &str, data: Bytes) -> Result<()> {
        self.refuse_unlocked_write(kind).await?;
        let mut slot = self.scheduler.slot("put").await;
        let small = data.len() <= SMALL_PUT;
        if let Some(control) = self.locking() {
            // One request with the lock headers and Content-MD5 (locked buckets require a
            // checksum); objects up to 5 GiB go in one PUT, packs are at most 1 GiB.
            control.put(kind, name, data).await?;
            if small {
                slot.answered();
            }
            return Ok(());
        }
        let path = self.path(kind, name);
        if data.len() <= self.settings.multipart_threshold {
            self.store.put(&path, data.into()).await.map_err(|e| self.explain("writing", kind, name, e))?;
            if small {
                slot.answered();
            }
            return Ok(());
        }
        // One slot for the whole multipart upload (its parts go up a few at a time).
        let upload = self
            .store
            .put_multipart(&path)
            .await
            .map_err(|e| self.explain("starting upload of", kind, name, e))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, self.settings.part_size);
        let mut offset = 0;
        while offset < data.len() {
            let end = (offset + self.settings.part_size).min(data.len());
            w.wait_for_capacity(4).await.map_err(|e| self.explain("uploading", kind, name, e))?;
            w.put(data.slice(offset..end));
            offset = end;
        }
        w.finish().await.map_err(|e| self.explain("completing upload of", kind, name, e))?;
        Ok(())
    }

    async fn put_file(&self, kind: Kind, name: &str, staged: &std::path::Path) -> Result<()> {
        use tokio::io::AsyncReadExt;
        let io = |e| Error::io(format!("cannot read staged file '{}'", staged.display()), e);
        let size = tokio::fs::metadata(staged).await.map_err(io)?.len() as usize;
        let mut file = tokio::fs::File::open(staged).await.map_err(io)?;
        self.refuse_unlocked_write(kind).await?;
        if size <= self.settings.multipart_threshold || self.locking().is_some() {
            let mut data = Vec::with_capacity(size);
            file.read_to_end(&mut data).await.map_err(io)?;
            return self.put(kind, name, Bytes::from(data)).await;
        }
        // Parts are read as they go up: memory holds a few parts, not the whole object.
        let _slot = self.scheduler.slot("multipart put").await;
        let path = self.path(kind, name);
        let upload = self
            .store
            .put_multipart(&path)
            .await
            .map_err(|e| self.explain("starting upload of", kind, name, e))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, self.settings.part_size);
        loop {
            let mut part = vec![0u8; self.settings.part_size];
            let mut filled = 0;
            while filled < part.len() {
                let n = file.read(&mut part[filled..]).await.map_err(io)?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                break;
            }
            part.truncate(filled);
            w.wait_for_capacity(2).await.map_err(|e| self.explain("uploading", kind, name, e))?;
            w.put(Bytes::from(part));
        }
        w.finish().await.map_err(|e| self.explain("completing upload of", kind, name, e))?;
        Ok(())
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Bytes> {
        let mut slot = self.scheduler.slot("get").await;
        let r = self
            .store
            .get(&self.path(kind, name))
            .await
            .map_err(|e| self.explain("reading", kind, name, e))?;
        slot.answered();
        r.bytes().await.map_err(|e| self.explain("reading", kind, name, e))
    }

    async fn get_range(&self, kind: Kind, name: &str, range: Range<u64>) -> Result<Bytes> {
        let path = self.path(kind, name);
        let got = {
            let mut slot = self.scheduler.slot("range").await;
            let options =
                GetOptions { range: Some(GetRange::Bounded(range.clone())), ..GetOptions::default() };
            match self.store.get_opts(&path, options).await {
                Ok(r) => {
                    slot.answered();
                    r.bytes().await
                }
                Err(e) => Err(e),
            }
        };
        match got {
            Ok(b) if b.len() as u64 == range.end - range.start => Ok(b),
            Ok(b) => Err(Error::corrupt(
                kind.describe(name),
                format!("truncated: asked bytes {}..{}, got {}", range.start, range.end, b.len()),
            )),
            Err(e @ object_store::Error::NotFound { .. }) => Err(self.explain("reading", kind, name, e)),
            Err(e) => match self.scheduler.run("head", self.store.head(&path)).await {
                Ok(meta) if meta.size < range.end => Err(Error::corrupt(
                    kind.describe(name),
                    format!(
                        "truncated: {} bytes long, asked bytes {}..{}",
                        meta.size, range.start, range.end
                    ),
                )),
                _ => Err(self.explain("reading", kind, name, e)),
            },
        }
    }

    async fn list(&self, kind: Kind) -> Result<Vec<ObjectInfo>> {
        if kind == Kind::Config {
            return match self.scheduler.run("head", self.store.head(&self.path(kind, "config"))).await {
                Ok(m) => Ok(vec![ObjectInfo { name: "config".into(), size: m.size }]),
                Err(object_store::Error::NotFound { .. }) => Ok(vec![]),
                Err(e) => Err(self.explain("listing", kind, "", e)),
            };
        }
        let prefix = if self.settings.prefix.is_empty() {
            StorePath::from(kind.dir())
        } else {
            StorePath::from(format!("{}/{}", self.settings.prefix, kind.dir()))
        };
        let metas = self.list_keys(&prefix).await.map_err(|e| self.explain("listing", kind, "", e))?;
        Ok(metas
            .into_iter()
            .filter_map(|m| Some(ObjectInfo { name: m.location.filename()?.to_string(), size: m.size }))
            .collect())
    }

    async fn delete(&self, kind: Kind, name: &str) -> Result<()> {
        match self.scheduler.run("delete", self.store.delete(&self.path(kind, name))).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.explain("deleting", kind, name, e)),
        }
    }
}

impl Drop for S3Storage {
    fn drop(&mut self) {
        let s = self.scheduler.stats();
        tracing::debug!(
            "S3 requests: {}; round trip {:.1} ms; at most {} in flight (limit now {})",
            s.requests,
            s.latency.unwrap_or_default().as_secs_f64() * 1e3,
            s.most_in_flight,
            s.limit
        );
    }
}

/// `s3://bucket` or `s3://bucket/prefix`, for messages.
pub(super) fn location_of(settings: &S3Settings) -> String {
    if settings.prefix.is_empty() {
        format!("s3://{}", settings.bucket)
    } else {
        format!("s3://{}/{}", settings.bucket, settings.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(lines: &str) -> Result<S3Settings> {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), lines).unwrap();
        S3Settings::from_env_and_file("bucket/prefix", Some(file.path()))
    }

    #[test]
    fn timeouts_and_retry_windows_are_bounded_and_named_when_wrong() {
        let s =
            settings("REMPART_S3_REQUEST_TIMEOUT=4s\nREMPART_S3_RETRY_FOR=1m\nREMPART_S3_MAX_REQUESTS=8\n")
                .unwrap();
        assert_eq!(s.max_requests, 8);
        assert_eq!((s.request_timeout, s.retry_for), (Duration::from_secs(4), Duration::from_secs(60)));
        let s = settings("").unwrap();
        assert_eq!((s.request_timeout, s.retry_for), (REQUEST_TIMEOUT, RETRY_FOR));
        assert_eq!(s.max_requests, scheduler::MAX_IN_FLIGHT);
        for (line, says) in [
            ("REMPART_S3_RETRY_FOR=11m", "between 1s and 10m"),
            ("REMPART_S3_REQUEST_TIMEOUT=2h", "between 1s and 1h"),
            ("REMPART_S3_REQUEST_TIMEOUT=soon", "REMPART_S3_REQUEST_TIMEOUT 'soon'"),
            ("REMPART_S3_RETRY_FOR=0s", "between 1s"),
            ("REMPART_S3_MAX_REQUESTS=0", "from 1 to 256"),
            ("REMPART_S3_MAX_REQUESTS=many", "REMPART_S3_MAX_REQUESTS 'many'"),
        ] {
            let e = settings(line).unwrap_err().to_string();
            assert!(e.contains(says), "{line}: {e}");
        }
    }
}
