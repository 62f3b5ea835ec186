//! The S3 calls object_store 0.12 cannot make, in one place: a bucket's Object Lock
//! configuration and versioning, PUTs with lock headers and `Content-MD5` (locked buckets
//! refuse a PUT without a checksum), an object version's retention (read, set, extend),
//! version listing, reads and deletes of one version.
//!
//! Each request is built here, signed with object_store's public `AwsAuthorizer` (SigV4, the
//! same signer object_store uses) and sent with reqwest: no second S3 SDK. Path-style URLs, as
//! the rest of the S3 backend. Transient failures (connection errors, 5xx, 429) are retried with
//! a bounded backoff like object_store's; the answer of the last try is the error.
//! docs/format.md ("Object Lock and versions") lists the calls.

use std::ops::Range;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use md5::Digest;
use object_store::aws::{AwsAuthorizer, AwsCredential};
use object_store::client::{HttpRequest, HttpRequestBody};
use reqwest::{Method, StatusCode};
use serde::Deserialize;

use super::s3::S3Settings;
use crate::error::{Error, Result};

/// Object Lock retention modes (S3's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    /// Nobody, not even the account root, can shorten or remove it before it ends.
    Compliance,
    /// Holders of `s3:BypassGovernanceRetention` can.
    Governance,
}

impl LockMode {
    pub fn as_s3(self) -> &'static str {
        match self {
            LockMode::Compliance => "COMPLIANCE",
            LockMode::Governance => "GOVERNANCE",
        }
    }

    /// Parses `compliance` or `governance` (any case).
    ///
    /// # Errors
    /// A sentence naming the text and the two accepted words.
    pub fn parse(text: &str) -> std::result::Result<LockMode, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "compliance" => Ok(LockMode::Compliance),
            "governance" => Ok(LockMode::Governance),
            _ => Err(format!("'{text}' is not an Object Lock mode: expected compliance or governance")),
        }
    }
}

/// What a bucket says about versions and locks (detected, never declared).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BucketProtection {
    /// `Enabled`, `Suspended`, or empty when versioning was never turned on.
    pub versioning: String,
    /// Object Lock is enabled on the bucket.
    pub object_lock: bool,
    /// The bucket's default retention, if any: mode and period (`30 days`).
    pub default_retention: Option<String>,
}

/// One entry of a version listing: a version of an object, or a delete marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectVersion {
    /// The full key (with the repository prefix).
    pub key: String,
    pub version_id: String,
    pub last_modified: DateTime<Utc>,
    pub size: u64,
    pub delete_marker: bool,
}

/// An object version's retention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub mode: LockMode,
    pub until: DateTime<Utc>,
}

/// What a request answered.
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Bytes,
}

/// Signed requests to one bucket.
pub struct S3Api {
    client: reqwest::Client,
    /// The endpoint without a trailing slash, e.g. `http://127.0.0.1:3900`.
    endpoint: String,
    bucket: String,
    region: String,
    credential: AwsCredential,
}

impl std::fmt::Debug for S3Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Api").field("endpoint", &self.endpoint).field("bucket", &self.bucket).finish()
    }
}

const MAX_TRIES: u32 = 7;

impl S3Api {
    /// # Errors
    /// `InvalidInput` when the settings have no static credentials (these calls sign with
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`) or the HTTP client cannot be built.
    pub fn new(settings: &S3Settings) -> Result<S3Api> {
        let (Some(key_id), Some(secret_key)) = (&settings.access_key_id, &settings.secret_access_key) else {
            return Err(Error::invalid(format!(
                "S3 repository 's3://{}': Object Lock and --as-of need AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment or the S3 settings file",
                settings.bucket
            )));
        };
        let endpoint = settings
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", settings.region))
            .trim_end_matches('/')
            .to_string();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // An idle limit, not a total one: a 1 GiB pack on a slow link may take long.
            .read_timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| {
                Error::invalid(format!("S3 endpoint '{endpoint}': cannot build an HTTP client: {e}"))
            })?;
        Ok(S3Api {
            client,
            endpoint,
            bucket: settings.bucket.clone(),
            region: settings.region.clone(),
            credential: AwsCredential {
                key_id: key_id.clone(),
                secret_key: secret_key.clone(),
                token: settings.session_token.clone(),
            },
        })
    }

    fn url(&self, key: Option<&str>, query: &[(&str, &str)]) -> Result<url::Url> {
        let mut url = url::Url::parse(&self.endpoint)
            .map_err(|e| Error::invalid(format!("S3 endpoint '{}': {e}", self.endpoint)))?;
        // Every segment encoded as S3 canonicalises it (all but unreserved characters), so the
        // path signed is the path the server checks; `url` alone leaves `=`, `+`, `:` ... as
        // they are, which AWS would encode before checking the signature.
        let mut path = url.path().trim_end_matches('/').to_string();
        path.push('/');
        path.push_str(&encode_segment(&self.bucket));
        if let Some(key) = key {
            for segment in key.split('/') {
                path.push('/');
                path.push_str(&encode_segment(segment));
            }
        }
        url.set_path(&path);
        if !query.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// Sends one signed request, retrying transient failures.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        op: &'static str,
        object: &str,
        method: Method,
        key: Option<&str>,
        query: &[(&str, &str)],
        headers: &[(&'static str, String)],
        body: Bytes,
    ) -> Result<Answer> {
        let url = self.url(key, query)?;
        let mut delay = Duration::from_millis(200);
        let mut tries = 0;
        loop {
            tries += 1;
            let mut request: HttpRequest = http::Request::builder()
                .method(method.clone())
                .uri(url.as_str())
                .body(HttpRequestBody::from(body.clone()))
                .map_err(|e| Error::invalid(format!("S3 request to '{url}': {e}")))?;
            for (name, value) in headers {
                let value = http::HeaderValue::from_str(value)
                    .map_err(|e| Error::invalid(format!("S3 header {name}: {e}")))?;
                request.headers_mut().insert(*name, value);
            }
            AwsAuthorizer::new(&self.credential, "s3", &self.region)
                .with_sign_payload(false)
                .authorize(&mut request, None);
            let (parts, _) = request.into_parts();
            let sent = self
                .client
                .request(parts.method, url.clone())
                .headers(parts.headers)
                .body(body.clone())
                .send()
                .await;
            let failure = match sent {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    match response.bytes().await {
                        Ok(body) if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS => {
                            storage_error(op, object, status, &body, true)
                        }
                        Ok(body) => return Ok(Answer { status, headers, body }),
                        Err(e) => Error::Storage {
                            op,
                            object: object.to_string(),
                            detail: e.to_string(),
                            retryable: true,
                        },
                    }
                }
                Err(e) => {
                    Error::Storage { op, object: object.to_string(), detail: e.to_string(), retryable: true }
                }
            };
            if tries >= MAX_TRIES {
                return Err(failure);
            }
            tracing::debug!("S3 {op} {object}: {failure}; retrying in {delay:?}");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(15));
        }
    }

    /// The bucket's versioning and Object Lock state.
    ///
    /// # Errors
    /// `Storage` when the bucket cannot be asked.
    pub async fn protection(&self) -> Result<BucketProtection> {
        let what = format!("bucket '{}'", self.bucket);
        let a = self
            .send("reading versioning of", &what, Method::GET, None, &[("versioning", "")], &[], Bytes::new())
            .await?;
        let versioning = if a.status.is_success() {
            xml::<VersioningXml>(&a.body, &what)?.status.unwrap_or_default()
        } else {
            return Err(storage_error("reading versioning of", &what, a.status, &a.body, false));
        };
        let a = self
            .send(
                "reading Object Lock of",
                &what,
                Method::GET,
                None,
                &[("object-lock", "")],
                &[],
                Bytes::new(),
            )
            .await?;
        let (object_lock, default_retention) = if a.status.is_success() {
            let c: LockConfigXml = xml(&a.body, &what)?;
            let rule = c.rule.and_then(|r| r.default_retention).map(|d| match (d.days, d.years) {
                (Some(days), _) => format!("{} {days} days", d.mode),
                (_, Some(years)) => format!("{} {years} years", d.mode),
                _ => d.mode,
            });
            (c.object_lock_enabled.as_deref() == Some("Enabled"), rule)
        } else if a.status == StatusCode::NOT_FOUND
            || body_code(&a.body).is_some_and(|c| c.contains("ObjectLockConfigurationNotFound"))
        {
            (false, None)
        } else {
            return Err(storage_error("reading Object Lock of", &what, a.status, &a.body, false));
        };
        Ok(BucketProtection { versioning, object_lock, default_retention })
    }

    /// Writes an object in one request with `Content-MD5` and, when given, its retention.
    /// Returns the new version's id (empty on an unversioned bucket).
    ///
    /// # Errors
    /// `Storage` naming the object.
    pub async fn put(&self, key: &str, data: Bytes, retention: Option<Retention>) -> Result<String> {
        let mut headers = vec![("content-md5", content_md5(&data))];
        if let Some(r) = retention {
            headers.push(("x-amz-object-lock-mode", r.mode.as_s3().to_string()));
            headers.push(("x-amz-object-lock-retain-until-date", s3_date(r.until)));
        }
        let a = self.send("writing", key, Method::PUT, Some(key), &[], &headers, data).await?;
        if !a.status.is_success() {
            return Err(storage_error("writing", key, a.status, &a.body, false));
        }
        Ok(version_header(&a.headers))
    }

    /// Sets the retention of an object's version (the current one without `version`).
    /// Extending always works; shortening a COMPLIANCE lock is refused by the server.
    ///
    /// # Errors
    /// `Storage` naming the object.
    pub async fn put_retention(
        &self,
        key: &str,
        version: Option<&str>,
        retention: Retention,
        bypass_governance: bool,
    ) -> Result<()> {
        let body = Bytes::from(format!(
            "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>{}</Mode><RetainUntilDate>{}</RetainUntilDate></Retention>",
            retention.mode.as_s3(),
            s3_date(retention.until)
        ));
        let mut query = vec![("retention", "")];
        if let Some(v) = version {
            query.push(("versionId", v));
        }
        let mut headers = vec![("content-md5", content_md5(&body))];
        if bypass_governance {
            headers.push(("x-amz-bypass-governance-retention", "true".into()));
        }
        let a = self
            .send("setting the retention of", key, Method::PUT, Some(key), &query, &headers, body)
            .await?;
        if a.status == StatusCode::NOT_FOUND {
            return Err(Error::not_found(format!("{key}: no such object")));
        }
        if !a.status.is_success() {
            return Err(storage_error("setting the retention of", key, a.status, &a.body, false));
        }
        Ok(())
    }

    /// The retention of an object's version (the current one without `version`), from its
    /// HEAD (GetObjectRetention is missing on some servers); `None` when it has none.
    ///
    /// # Errors
    /// `NotFound` for a missing object; `Storage` otherwise.
    pub async fn retention(&self, key: &str, version: Option<&str>) -> Result<Option<Retention>> {
        let query: Vec<(&str, &str)> = version.map(|v| ("versionId", v)).into_iter().collect();
        let a = self
            .send("reading the retention of", key, Method::HEAD, Some(key), &query, &[], Bytes::new())
            .await?;
        if a.status == StatusCode::NOT_FOUND {
            return Err(Error::not_found(format!("{key}: no such object")));
        }
        if !a.status.is_success() {
            return Err(storage_error("reading the retention of", key, a.status, &a.body, false));
        }
        let header = |name: &str| a.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        match (header("x-amz-object-lock-mode"), header("x-amz-object-lock-retain-until-date")) {
            (Some(mode), Some(until)) => Ok(Some(Retention {
                mode: LockMode::parse(&mode).map_err(|e| Error::corrupt(key, e))?,
                until: parse_date(&until, key)?,
            })),
            _ => Ok(None),
        }
    }

    /// Every version and delete marker under `prefix`, in the server's order (per key, newest
    /// first).
    ///
    /// # Errors
    /// `Storage` when the listing fails.
    pub async fn list_versions(&self, prefix: &str) -> Result<Vec<ObjectVersion>> {
        let what = format!("versions under '{prefix}'");
        let mut out = Vec::new();
        let (mut key_marker, mut version_marker) = (String::new(), String::new());
        loop {
            let mut query = vec![("versions", ""), ("prefix", prefix)];
            if !key_marker.is_empty() {
                query.push(("key-marker", &key_marker));
                query.push(("version-id-marker", &version_marker));
            }
            let a = self.send("listing", &what, Method::GET, None, &query, &[], Bytes::new()).await?;
            if !a.status.is_success() {
                return Err(storage_error("listing", &what, a.status, &a.body, false));
            }
            let page: ListVersionsXml = xml(&a.body, &what)?;
            for (entry, delete_marker) in page.entries.into_iter().filter_map(|e| match e {
                VersionEntry::Version(v) => Some((v, false)),
                VersionEntry::DeleteMarker(v) => Some((v, true)),
                VersionEntry::Other => None,
            }) {
                out.push(ObjectVersion {
                    last_modified: parse_date(&entry.last_modified, &entry.key)?,
                    key: entry.key,
                    version_id: entry.version_id,
                    size: entry.size.unwrap_or(0),
                    delete_marker,
                });
            }
            if !page.is_truncated.unwrap_or(false) {
                break;
            }
            key_marker = page.next_key_marker.unwrap_or_default();
            version_marker = page.next_version_id_marker.unwrap_or_default();
            if key_marker.is_empty() {
                break;
            }
        }
        // In the server's order: per key, newest first (versions and delete markers
        // interleaved as S3 lists them; two entries of the same second stay in that order).
        Ok(out)
    }

    /// Reads one version of an object, whole or a range.
    ///
    /// # Errors
    /// `NotFound` when the version does not exist; `Corrupt` for a short range; `Storage`.
    pub async fn get_version(&self, key: &str, version: &str, range: Option<Range<u64>>) -> Result<Bytes> {
        let mut headers = Vec::new();
        if let Some(r) = &range {
            if r.end <= r.start {
                return Ok(Bytes::new());
            }
            headers.push(("range", format!("bytes={}-{}", r.start, r.end - 1)));
        }
        let a = self
            .send("reading", key, Method::GET, Some(key), &[("versionId", version)], &headers, Bytes::new())
            .await?;
        if a.status == StatusCode::NOT_FOUND {
            return Err(Error::not_found(format!("{key} (version {version}): no such object version")));
        }
        if !a.status.is_success() {
            return Err(storage_error("reading", key, a.status, &a.body, false));
        }
        if let Some(r) = range {
            if a.body.len() as u64 != r.end - r.start {
                return Err(Error::corrupt(
                    key,
                    format!("truncated: asked bytes {}..{}, got {}", r.start, r.end, a.body.len()),
                ));
            }
        }
        Ok(a.body)
    }

    /// Deletes one version of an object (a locked version is refused by the server; with
    /// `bypass_governance`, a GOVERNANCE lock is bypassed when the key may).
    ///
    /// # Errors
    /// `Storage` with the server's answer.
    pub async fn delete_version(&self, key: &str, version: &str, bypass_governance: bool) -> Result<()> {
        let headers: Vec<(&'static str, String)> = if bypass_governance {
            vec![("x-amz-bypass-governance-retention", "true".into())]
        } else {
            Vec::new()
        };
        let a = self
            .send(
                "deleting",
                key,
                Method::DELETE,
                Some(key),
                &[("versionId", version)],
                &headers,
                Bytes::new(),
            )
            .await?;
        if a.status.is_success() {
            Ok(())
        } else {
            Err(storage_error("deleting", key, a.status, &a.body, false))
        }
    }

    /// Whether these credentials may delete object versions, asked without deleting anything:
    /// a delete of a version that does not exist, of a key no repository uses. The server
    /// checks the permission first (403 when refused); anything else means it would let a
    /// version be deleted (once its lock, if any, ends).
    ///
    /// # Errors
    /// `Storage` when the server cannot be reached.
    pub async fn can_delete_versions(&self, prefix: &str) -> Result<bool> {
        let key = if prefix.is_empty() {
            "rempart-permission-probe".to_string()
        } else {
            format!("{prefix}/rempart-permission-probe")
        };
        let version = "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY";
        let a = self
            .send(
                "probing the permissions of",
                &key,
                Method::DELETE,
                Some(&key),
                &[("versionId", version)],
                &[],
                Bytes::new(),
            )
            .await?;
        if a.status == StatusCode::FORBIDDEN {
            // Only a refusal of the permission says no; a bad signature or key says nothing.
            return match body_code(&a.body).as_deref() {
                Some("AccessDenied") => Ok(false),
                _ => Err(storage_error("probing the permissions of", &key, a.status, &a.body, false)),
            };
        }
        Ok(true)
    }

    /// Deletes an object without naming a version: a delete marker on a versioned bucket.
    ///
    /// # Errors
    /// `Storage` with the server's answer.
    pub async fn delete(&self, key: &str) -> Result<()> {
        let a = self.send("deleting", key, Method::DELETE, Some(key), &[], &[], Bytes::new()).await?;
        if a.status.is_success() || a.status == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(storage_error("deleting", key, a.status, &a.body, false))
        }
    }

    /// Sets the bucket's versioning (`Enabled` or `Suspended`).
    ///
    /// # Errors
    /// `Storage` with the server's answer.
    pub async fn set_versioning(&self, status: &str) -> Result<()> {
        let what = format!("bucket '{}'", self.bucket);
        let body = Bytes::from(format!(
            "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>{status}</Status></VersioningConfiguration>"
        ));
        let headers = [("content-md5", content_md5(&body))];
        let a = self
            .send("setting versioning of", &what, Method::PUT, None, &[("versioning", "")], &headers, body)
            .await?;
        if a.status.is_success() {
            Ok(())
        } else {
            Err(storage_error("setting versioning of", &what, a.status, &a.body, false))
        }
    }
}

/// True for the server's refusal of an operation (`403 AccessDenied`), as a lock or a policy
/// refuses; not for a bad signature, a bad key or a failure to reach the server.
pub fn is_access_denied(e: &Error) -> bool {
    matches!(e, Error::Storage { detail, .. } if detail.starts_with("HTTP 403") && detail.contains(" AccessDenied"))
}

/// A path segment as S3 canonicalises it: everything but `A-Z a-z 0-9 - . _ ~` percent-encoded.
fn encode_segment(segment: &str) -> String {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    percent_encoding::utf8_percent_encode(segment, SET).to_string()
}

fn content_md5(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(data))
}

/// S3's date form: `2026-12-30T07:00:00.000Z`.
fn s3_date(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_date(text: &str, what: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Error::corrupt(what, format!("the S3 server sent the date '{text}': {e}")))
}

fn version_header(headers: &reqwest::header::HeaderMap) -> String {
    headers.get("x-amz-version-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

/// The `<Code>` of an S3 error document.
fn body_code(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + 6;
    let end = text[start..].find("</Code>")? + start;
    Some(text[start..end].to_string())
}

fn storage_error(op: &'static str, object: &str, status: StatusCode, body: &[u8], retryable: bool) -> Error {
    let code = body_code(body).unwrap_or_default();
    let message = std::str::from_utf8(body)
        .ok()
        .and_then(|t| Some(t[t.find("<Message>")? + 9..t.find("</Message>")?].to_string()))
        .unwrap_or_default();
    Error::Storage {
        op,
        object: object.to_string(),
        detail: format!("HTTP {status} {code} {message}").trim().to_string(),
        retryable,
    }
}

fn xml<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T> {
    let text = std::str::from_utf8(body)
        .map_err(|_| Error::corrupt(what, "the S3 server's answer is not UTF-8".to_string()))?;
    quick_xml::de::from_str(text).map_err(|e| Error::corrupt(what, format!("the S3 server's answer: {e}")))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VersioningXml {
    status: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LockConfigXml {
    object_lock_enabled: Option<String>,
    rule: Option<LockRuleXml>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LockRuleXml {
    default_retention: Option<DefaultRetentionXml>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DefaultRetentionXml {
    mode: String,
    days: Option<u64>,
    years: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListVersionsXml {
    is_truncated: Option<bool>,
    next_key_marker: Option<String>,
    next_version_id_marker: Option<String>,
    /// Versions and delete markers in document order (and every other element, ignored).
    #[serde(rename = "$value", default)]
    entries: Vec<VersionEntry>,
}

#[derive(Deserialize)]
enum VersionEntry {
    Version(VersionXml),
    DeleteMarker(VersionXml),
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VersionXml {
    key: String,
    version_id: String,
    last_modified: String,
    size: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_listing_with_interleaved_delete_markers_parses() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListVersionsResult><Name>b</Name><Prefix>r/</Prefix><IsTruncated>true</IsTruncated>
<NextKeyMarker>r/y</NextKeyMarker><NextVersionIdMarker>v9</NextVersionIdMarker>
<DeleteMarker><Key>r/x</Key><VersionId>d1</VersionId><IsLatest>true</IsLatest><LastModified>2026-11-30T07:43:02.000Z</LastModified></DeleteMarker>
<Version><Key>r/x</Key><VersionId>v1</VersionId><IsLatest>false</IsLatest><LastModified>2026-11-30T07:43:01.000Z</LastModified><Size>5</Size></Version>
<Version><Key>r/y</Key><VersionId>v2</VersionId><IsLatest>true</IsLatest><LastModified>2026-11-30T07:43:01.000Z</LastModified><Size>7</Size></Version>
</ListVersionsResult>"#;
        let page: ListVersionsXml = xml(body, "listing").unwrap();
        assert_eq!(page.is_truncated, Some(true));
        assert_eq!(page.next_key_marker.as_deref(), Some("r/y"));
        let order: Vec<String> = page
            .entries
            .iter()
            .filter_map(|e| match e {
                VersionEntry::Version(v) => Some(format!("v:{}:{}", v.version_id, v.size.unwrap_or(0))),
                VersionEntry::DeleteMarker(v) => Some(format!("d:{}", v.version_id)),
                VersionEntry::Other => None,
            })
            .collect();
        assert_eq!(order, ["d:d1", "v:v1:5", "v:v2:7"]);
    }

    #[test]
    fn lock_configuration_and_errors_parse() {
        let c: LockConfigXml = xml(b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Days>30</Days></DefaultRetention></Rule></ObjectLockConfiguration>", "c").unwrap();
        assert_eq!(c.object_lock_enabled.as_deref(), Some("Enabled"));
        assert_eq!(c.rule.unwrap().default_retention.unwrap().days, Some(30));
        let e = storage_error(
            "deleting",
            "k",
            StatusCode::FORBIDDEN,
            b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
            false,
        );
        assert!(e.to_string().contains("AccessDenied Access Denied"), "{e}");
        assert!(e.is_read_only());
    }

    #[test]
    fn paths_are_encoded_as_s3_signs_them() {
        let settings = S3Settings::from_env_and_file("b/p", None).unwrap();
        let mut settings = settings;
        settings.endpoint = Some("http://127.0.0.1:9000/".into());
        settings.access_key_id = Some("k".into());
        settings.secret_access_key = Some("s".into());
        let api = S3Api::new(&settings).unwrap();
        let url = api
            .url(Some("team/host=web1 (a)+b~c/%7Eops/config"), &[("versions", ""), ("key-marker", "a/b")])
            .unwrap();
        assert_eq!(url.path(), "/b/team/host%3Dweb1%20%28a%29%2Bb~c/%257Eops/config");
        assert_eq!(url.query(), Some("versions=&key-marker=a%2Fb"));
        let denied = storage_error(
            "x",
            "k",
            StatusCode::FORBIDDEN,
            b"<Error><Code>AccessDenied</Code></Error>",
            false,
        );
        let bad_key = storage_error(
            "x",
            "k",
            StatusCode::FORBIDDEN,
            b"<Error><Code>SignatureDoesNotMatch</Code></Error>",
            false,
        );
        assert!(is_access_denied(&denied) && !is_access_denied(&bad_key));
    }

    #[test]
    fn dates_and_checksums_have_the_s3_form() {
        let t = DateTime::parse_from_rfc3339("2026-12-30T07:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(s3_date(t), "2026-12-30T07:00:00.000Z");
        assert_eq!(content_md5(b"hello"), "XUFAKrxLKna5cZ2REBfFkg==");
        assert_eq!(LockMode::parse("Compliance"), Ok(LockMode::Compliance));
        assert!(LockMode::parse("forever").unwrap_err().contains("compliance or governance"));
    }
}
