//! Bandwidth limits (`--limit-upload`, `--limit-download`, a job's `limit_upload` and
//! `limit_download`): a storage wrapper that paces the bytes it moves.
//!
//! Each direction has one schedule shared by every concurrent transfer: a transfer of `n`
//! bytes books the next `n / rate` seconds of the link and returns when its booking ends, so
//! the average rate over any run stays at or under the limit whatever the concurrency (an
//! upload is booked before it starts, a download once its size is known). Only packs are
//! paced: they are the bytes that fill a link. Locks, indexes, snapshots and keys are small,
//! and a lock refresh queued behind minutes of pack uploads would go stale (docs/format.md:
//! 30 minutes) and stop the backup; listing and deleting move almost nothing.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;

use super::{Kind, ObjectInfo, Storage};
use crate::error::Result;

/// One direction's schedule.
#[derive(Debug)]
struct Pace {
    bytes_per_sec: f64,
    /// When the link is free again.
    free_at: Mutex<Option<Instant>>,
}

impl Pace {
    fn new(kib_per_sec: u64) -> Pace {
        Pace { bytes_per_sec: kib_per_sec as f64 * 1024.0, free_at: Mutex::new(None) }
    }

    /// Books `bytes` on the link; returns when the booking ends.
    async fn take(&self, bytes: u64) {
        let until = {
            let mut free = self.free_at.lock();
            let now = Instant::now();
            let start = free.filter(|f| *f > now).unwrap_or(now);
            let end = start + Duration::from_secs_f64(bytes as f64 / self.bytes_per_sec);
            *free = Some(end);
            end
        };
        tokio::time::sleep_until(until.into()).await;
    }
}

#[derive(Debug)]
pub struct Throttled {
    inner: Arc<dyn Storage>,
    up: Option<Pace>,
    down: Option<Pace>,
}

/// Wraps `inner` with the given limits in KiB/s (`None` or 0: unlimited); returns `inner`
/// itself when there is no limit.
pub fn throttle(
    inner: Arc<dyn Storage>,
    upload_kib: Option<u64>,
    download_kib: Option<u64>,
) -> Arc<dyn Storage> {
    let up = upload_kib.filter(|k| *k > 0).map(Pace::new);
    let down = download_kib.filter(|k| *k > 0).map(Pace::new);
    if up.is_none() && down.is_none() {
        return inner;
    }
    Arc::new(Throttled { inner, up, down })
}

#[async_trait]
impl Storage for Throttled {
    fn scheduler_stats(&self) -> Option<super::scheduler::SchedulerStats> {
        self.inner.scheduler_stats()
    }

    fn bucket_control(&self) -> Option<Arc<super::BucketControl>> {
        self.inner.bucket_control()
    }

    fn is_view_of_the_past(&self) -> bool {
        self.inner.is_view_of_the_past()
    }

    fn location(&self) -> String {
        self.inner.location()
    }

    async fn put(&self, kind: Kind, name: &str, data: Bytes) -> Result<()> {
        if let Some(p) = self.up.as_ref().filter(|_| kind == Kind::Pack) {
            p.take(data.len() as u64).await;
        }
        self.inner.put(kind, name, data).await
    }

    fn staging_dir(&self) -> Option<std::path::PathBuf> {
        self.inner.staging_dir()
    }

    async fn put_file(&self, kind: Kind, name: &str, path: &std::path::Path) -> Result<()> {
        if let Some(p) = self.up.as_ref().filter(|_| kind == Kind::Pack) {
            let size = tokio::fs::metadata(path).await.map(|m| m.len()).unwrap_or(0);
            p.take(size).await;
        }
        self.inner.put_file(kind, name, path).await
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Bytes> {
        let data = self.inner.get(kind, name).await?;
        if let Some(p) = self.down.as_ref().filter(|_| kind == Kind::Pack) {
            p.take(data.len() as u64).await;
        }
        Ok(data)
    }

    async fn get_range(&self, kind: Kind, name: &str, range: Range<u64>) -> Result<Bytes> {
        let data = self.inner.get_range(kind, name, range).await?;
        if let Some(p) = self.down.as_ref().filter(|_| kind == Kind::Pack) {
            p.take(data.len() as u64).await;
        }
        Ok(data)
    }

    async fn list(&self, kind: Kind) -> Result<Vec<ObjectInfo>> {
        self.inner.list(kind).await
    }

    async fn delete(&self, kind: Kind, name: &str) -> Result<()> {
        self.inner.delete(kind, name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_transfers_share_one_schedule() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let pace = Arc::new(Pace::new(100)); // 100 KiB/s
        let started = Instant::now();
        rt.block_on(async {
            let mut tasks = Vec::new();
            for _ in 0..4 {
                let p = pace.clone();
                tasks.push(tokio::spawn(async move { p.take(10 * 1024).await }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
        // 40 KiB at 100 KiB/s: at least 0.4 s, however many transfers share the link.
        assert!(started.elapsed() >= Duration::from_millis(390), "{:?}", started.elapsed());
    }
}
