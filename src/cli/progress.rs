//! Progress of long commands: a bar with done/total, rate and ETA on a terminal (indicatif),
//! and a one-line status every `REMPART_PROGRESS_INTERVAL` seconds (default 10; 0: never)
//! on stderr when it is not a terminal (cron mails, CI logs, journald), where a redrawn bar
//! would be noise. Lines a command wants printed while the bar runs (`backup -v`'s file
//! list) go through it, so they never tear the bar.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::util::{human_bytes, human_duration};

/// Lines to print while a command runs: each call returns those that came since the last.
pub type Lines = Box<dyn FnMut() -> Vec<String> + Send>;

/// Where a command stands.
pub struct Status {
    /// Bytes done.
    pub done: u64,
    /// Bytes in all, once known.
    pub total: Option<u64>,
    /// Counts worth showing beside the bytes (files, packs).
    pub detail: String,
}

/// A bar (or status lines) redrawn from counters by a background thread until
/// [`Progress::finish`].
pub struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn interval() -> Option<Duration> {
    let secs =
        std::env::var("REMPART_PROGRESS_INTERVAL").ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or(10.0);
    Duration::try_from_secs_f64(secs).ok().filter(|d| !d.is_zero())
}

/// `45.0 % 1.2 GiB of 2.6 GiB, 30.0 MiB/s, ETA 47s` (or without the total while unknown).
pub fn status_line(s: &Status, elapsed: Duration) -> String {
    let rate = s.done as f64 / elapsed.as_secs_f64().max(0.001);
    let mut line = match s.total {
        Some(t) if t > 0 => {
            let left = t.saturating_sub(s.done) as f64 / rate.max(1.0);
            format!(
                "{:.1} % {} of {}, {}/s, ETA {}",
                (s.done as f64 * 100.0 / t as f64).min(100.0),
                human_bytes(s.done),
                human_bytes(t),
                human_bytes(rate as u64),
                human_duration(Duration::from_secs_f64(left.min(1e9)))
            )
        }
        _ => format!("{} so far, {}/s", human_bytes(s.done), human_bytes(rate as u64)),
    };
    if !s.detail.is_empty() {
        line.push_str("; ");
        line.push_str(&s.detail);
    }
    line
}

impl Progress {
    /// Starts showing the progress of `what` (`backup`, `restore`, `check`) unless `enabled`
    /// is false (`--quiet`); what `lines` drains is printed as it comes (on stdout, or above
    /// the bar), and drained once more at the end.
    pub fn start(
        enabled: bool,
        what: &'static str,
        status: impl Fn() -> Status + Send + 'static,
        mut lines: Option<Lines>,
    ) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        let terminal = std::io::stderr().is_terminal();
        let every = interval();
        if !enabled || (!terminal && every.is_none() && lines.is_none()) {
            return Progress { stop, thread: None };
        }
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let bar = terminal.then(|| {
                let b = ProgressBar::new(0);
                b.set_prefix(what);
                b
            });
            let mut last_line = Instant::now();
            let mut print_lines = |bar: &Option<ProgressBar>| {
                if let Some(drain) = &mut lines {
                    for l in drain() {
                        match bar {
                            Some(b) => b.println(l),
                            None => crate::outln!("{l}"),
                        }
                    }
                }
            };
            loop {
                let stopping = s.load(Ordering::Relaxed);
                print_lines(&bar);
                let st = status();
                match &bar {
                    Some(b) => {
                        let style = match st.total {
                            Some(t) => {
                                b.set_length(t);
                                "{prefix} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}"
                            }
                            None => "{spinner} {prefix} [{elapsed_precise}] {bytes} {bytes_per_sec} {msg}",
                        };
                        b.set_style(ProgressStyle::with_template(style).expect("valid template"));
                        b.set_position(st.done);
                        b.set_message(st.detail);
                    }
                    None => {
                        if every.is_some_and(|e| last_line.elapsed() >= e) && !stopping {
                            last_line = Instant::now();
                            eprintln!(
                                "{what} [{}]: {}",
                                human_duration(started.elapsed()),
                                status_line(&st, started.elapsed())
                            );
                        }
                    }
                }
                if stopping {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if let Some(b) = bar {
                b.finish_and_clear();
            }
        });
        Progress { stop, thread: Some(thread) }
    }

    pub fn finish(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_says_share_rate_and_time_left() {
        let s = Status { done: 50 << 20, total: Some(100 << 20), detail: "3 files".into() };
        let line = status_line(&s, Duration::from_secs(10));
        assert!(line.starts_with("50.0 % 50.00 MiB of 100.00 MiB, 5.00 MiB/s, ETA 10"), "{line}");
        assert!(line.ends_with("; 3 files"), "{line}");
        let unknown = Status { done: 1 << 20, total: None, detail: String::new() };
        assert!(status_line(&unknown, Duration::from_secs(1)).starts_with("1.00 MiB so far"));
    }
}
