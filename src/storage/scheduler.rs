//! The request scheduler of remote storage: how many requests are in flight at once.
//!
//! Object storage answers each request after a round trip of 10–50 ms. A fixed number of
//! requests in flight is too few for a far bucket (the link idles while requests wait for
//! their answers) or more than a near one needs (buffers held, a server loaded for nothing).
//! So every S3 request passes through one scheduler per repository, which measures the
//! latency of the answers (the time to the response headers, without the body's transfer)
//! and keeps `MIN_IN_FLIGHT + latency / LATENCY_PER_REQUEST` requests in flight, at most
//! `MAX_IN_FLIGHT` (or `REMPART_S3_MAX_REQUESTS`, for a provider that limits connections): 4
//! on loopback, about 29 at a 25 ms round trip, 32 from 28 ms on.
//!
//! The latency is a moving minimum over the last `WINDOW` answers: a slow answer (a large
//! object, a busy server) says nothing about the round trip, and the minimum follows a route
//! that got slower within a window. Callers queue up to the most the scheduler will ever allow
//! (`SchedulerStats::max`) and bound their own memory (bytes in flight); the gate holds every
//! request beyond the current limit.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

/// Requests in flight however near the store is.
pub const MIN_IN_FLIGHT: usize = 4;
/// Requests in flight however far it is (connections, server load, memory), unless set
/// otherwise (`REMPART_S3_MAX_REQUESTS`, at most `MAX_SETTABLE`).
pub const MAX_IN_FLIGHT: usize = 32;
pub const MAX_SETTABLE: usize = 256;
/// One more request in flight per this much observed round trip.
pub const LATENCY_PER_REQUEST: Duration = Duration::from_millis(1);
/// Answers the latency estimate remembers.
const WINDOW: usize = 64;

/// The gate and the latency estimate of one store.
#[derive(Debug)]
pub struct RequestScheduler {
    /// The most requests in flight, whatever the latency.
    max: usize,
    state: Mutex<State>,
    freed: Notify,
    requests: AtomicU64,
    most_in_flight: AtomicUsize,
}

#[derive(Debug)]
struct State {
    in_flight: usize,
    limit: usize,
    /// Latencies of the last `WINDOW` answers, oldest first.
    recent: VecDeque<Duration>,
}

/// What the scheduler has seen, for logs and benchmarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedulerStats {
    pub requests: u64,
    /// How many requests may be in flight now, and at most whatever the latency.
    pub limit: usize,
    pub max: usize,
    pub most_in_flight: usize,
    /// The round trip the limit is set from (`None` before the first answer).
    pub latency: Option<Duration>,
}

impl Default for RequestScheduler {
    fn default() -> Self {
        RequestScheduler::new(MAX_IN_FLIGHT)
    }
}

/// The limit for a round trip of `latency`, with at most `max` in flight.
pub fn limit_for(latency: Duration, max: usize) -> usize {
    let extra = (latency.as_micros() / LATENCY_PER_REQUEST.as_micros().max(1)) as usize;
    (MIN_IN_FLIGHT + extra).min(max)
}

impl RequestScheduler {
    /// A scheduler that never has more than `max` requests in flight (1 to `MAX_SETTABLE`).
    pub fn new(max: usize) -> RequestScheduler {
        let max = max.clamp(1, MAX_SETTABLE);
        RequestScheduler {
            max,
            state: Mutex::new(State { in_flight: 0, limit: MIN_IN_FLIGHT.min(max), recent: VecDeque::new() }),
            freed: Notify::new(),
            requests: AtomicU64::new(0),
            most_in_flight: AtomicUsize::new(0),
        }
    }

    /// The most requests it will ever have in flight.
    pub fn max(&self) -> usize {
        self.max
    }

    /// How many requests are worth having in flight now.
    pub fn limit(&self) -> usize {
        self.state.lock().limit
    }

    pub fn stats(&self) -> SchedulerStats {
        let s = self.state.lock();
        SchedulerStats {
            requests: self.requests.load(Ordering::Relaxed),
            limit: s.limit,
            max: self.max,
            most_in_flight: self.most_in_flight.load(Ordering::Relaxed),
            latency: s.recent.iter().min().copied(),
        }
    }

    /// Waits for a place among the requests in flight for one request (`op` names it in
    /// trace logs); the place is held until the returned [`Slot`] is dropped.
    pub async fn slot(&self, op: &'static str) -> Slot<'_> {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut s = self.state.lock();
                if s.in_flight < s.limit {
                    s.in_flight += 1;
                    self.most_in_flight.fetch_max(s.in_flight, Ordering::Relaxed);
                    self.requests.fetch_add(1, Ordering::Relaxed);
                    return Slot { scheduler: self, op, started: Instant::now(), answered: false };
                }
            }
            freed.await;
        }
    }

    /// Runs one request in a slot; its whole duration counts as its latency (for requests
    /// whose answer is small: listings, deletes, heads, small objects).
    pub async fn run<T>(&self, op: &'static str, request: impl Future<Output = T>) -> T {
        let mut slot = self.slot(op).await;
        let out = request.await;
        slot.answered();
        out
    }

    fn record(&self, latency: Duration) {
        let grew = {
            let mut s = self.state.lock();
            if s.recent.len() == WINDOW {
                s.recent.pop_front();
            }
            s.recent.push_back(latency);
            let min = s.recent.iter().min().copied().unwrap_or(latency);
            let before = s.limit;
            s.limit = limit_for(min, self.max);
            s.limit > before
        };
        if grew {
            self.freed.notify_waiters();
        }
    }
}

/// A place among the requests in flight.
pub struct Slot<'a> {
    scheduler: &'a RequestScheduler,
    op: &'static str,
    started: Instant,
    answered: bool,
}

impl Slot<'_> {
    /// Marks the moment the answer's headers came: the time since the slot was taken is one
    /// latency sample. Later calls are ignored, and a slot dropped unanswered (a failed or
    /// cancelled request) gives no sample.
    pub fn answered(&mut self) {
        if !self.answered {
            self.answered = true;
            self.scheduler.record(self.started.elapsed());
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let in_flight = {
            let mut s = self.scheduler.state.lock();
            s.in_flight -= 1;
            s.in_flight
        };
        self.scheduler.freed.notify_one();
        tracing::trace!(target: "rempart::s3", op = self.op, ms = self.started.elapsed().as_secs_f64() * 1e3, in_flight, "request done");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_limit_follows_the_round_trip_within_bounds() {
        let max = MAX_IN_FLIGHT;
        assert_eq!(limit_for(Duration::ZERO, max), MIN_IN_FLIGHT);
        assert_eq!(limit_for(Duration::from_micros(300), max), MIN_IN_FLIGHT);
        assert_eq!(limit_for(Duration::from_millis(10), max), MIN_IN_FLIGHT + 10);
        assert_eq!(limit_for(Duration::from_millis(25), max), MIN_IN_FLIGHT + 25);
        assert_eq!(limit_for(Duration::from_secs(2), max), MAX_IN_FLIGHT);
        assert_eq!(limit_for(Duration::from_secs(2), 100), 100);
        // A cap below the minimum wins over it.
        let one = RequestScheduler::new(1);
        assert_eq!(one.limit(), 1);
        one.record(Duration::from_millis(50));
        assert_eq!(one.limit(), 1);
        assert_eq!(RequestScheduler::new(10_000).max(), MAX_SETTABLE);
    }

    #[test]
    fn the_estimate_is_the_smallest_recent_latency() {
        let s = RequestScheduler::default();
        assert_eq!(s.limit(), MIN_IN_FLIGHT);
        s.record(Duration::from_millis(40));
        s.record(Duration::from_millis(12));
        s.record(Duration::from_millis(300)); // a large object's answer says nothing of the route
        assert_eq!(s.stats().latency, Some(Duration::from_millis(12)));
        assert_eq!(s.limit(), MIN_IN_FLIGHT + 12);
        // The route got faster: the limit falls once the slow samples leave the window.
        for _ in 0..WINDOW {
            s.record(Duration::from_micros(200));
        }
        assert_eq!(s.limit(), MIN_IN_FLIGHT);
        // ...and slower: it rises as soon as the window holds only slow answers.
        for _ in 0..WINDOW {
            s.record(Duration::from_millis(20));
        }
        assert_eq!(s.limit(), MIN_IN_FLIGHT + 20);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_more_in_flight_than_the_limit_and_waiters_wake_when_it_grows() {
        let s = Arc::new(RequestScheduler::default());
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..40 {
            let (s, now, peak) = (s.clone(), now.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                let slot = s.slot("test").await;
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                drop(slot);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), MIN_IN_FLIGHT, "unanswered slots give no samples");
        assert_eq!(s.stats().requests, 40);

        // Slots beyond the limit wait, and go as soon as a far route raises it.
        let held: Vec<_> = futures::future::join_all((0..MIN_IN_FLIGHT).map(|_| s.slot("test"))).await;
        let waiting = {
            let s = s.clone();
            tokio::spawn(async move {
                let _slot = s.slot("test").await;
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "a slot beyond the limit must wait");
        s.record(Duration::from_millis(10));
        tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("woken by the new limit").unwrap();
        drop(held);
        assert_eq!(s.state.lock().in_flight, 0);
    }

    #[tokio::test]
    async fn run_takes_the_whole_request_as_its_latency() {
        let s = RequestScheduler::default();
        s.run("test", tokio::time::sleep(Duration::from_millis(8))).await;
        let got = s.stats().latency.unwrap();
        assert!(got >= Duration::from_millis(8), "{got:?}");
        assert!(s.limit() >= MIN_IN_FLIGHT + 8);
    }
}
