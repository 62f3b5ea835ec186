//! A job's CPU and I/O priority (`nice`, `ionice` in its file).
//!
//! Linux keeps both per thread, and new threads inherit them from the thread that creates
//! them. So a step with a priority runs on a thread of its own that lowers its priority first:
//! the backup's workers and hooks started from it inherit it, and the priority ends with the
//! thread instead of sticking to a daemon thread that later runs other jobs' steps.

use std::fmt;

/// An I/O scheduling class and level (ioprio_set(2)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum IoNice {
    /// Disk time only when no one else wants it.
    Idle,
    /// The normal class, level 0 (highest) to 7 (lowest).
    BestEffort(u8),
    /// Ahead of everyone (needs root), level 0 to 7.
    Realtime(u8),
}

impl std::str::FromStr for IoNice {
    type Err = String;

    /// `idle`, `best-effort[:LEVEL]`, `realtime[:LEVEL]` (LEVEL 0–7, default 4).
    fn from_str(text: &str) -> Result<IoNice, String> {
        let (class, level) = text.split_once(':').map_or((text, None), |(c, l)| (c, Some(l)));
        let level = match level {
            None => 4,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= 7)
                .ok_or_else(|| format!("ionice '{text}': the level must be 0 (highest) to 7 (lowest)"))?,
        };
        match class {
            "idle" if level == 4 || !text.contains(':') => Ok(IoNice::Idle),
            "best-effort" | "be" => Ok(IoNice::BestEffort(level)),
            "realtime" | "rt" => Ok(IoNice::Realtime(level)),
            _ => Err(format!("ionice '{text}': expected idle, best-effort[:0-7] or realtime[:0-7]")),
        }
    }
}

impl fmt::Display for IoNice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IoNice::Idle => write!(f, "idle"),
            IoNice::BestEffort(l) => write!(f, "best-effort:{l}"),
            IoNice::Realtime(l) => write!(f, "realtime:{l}"),
        }
    }
}

/// A job's priority; the default changes nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Priority {
    /// -20 (highest, root only) to 19 (lowest).
    pub nice: Option<i32>,
    pub ionice: Option<IoNice>,
}

impl Priority {
    pub fn is_default(&self) -> bool {
        self.nice.is_none() && self.ionice.is_none()
    }

    /// Applies the priority to the calling thread; failures are warnings (the step still runs).
    fn apply_to_this_thread(&self) {
        if let Some(n) = self.nice {
            // On Linux, PRIO_PROCESS with no pid (0) names the calling thread.
            if let Err(e) = rustix::process::setpriority_process(None, n) {
                tracing::warn!("cannot set nice {n}: {e}");
            }
        }
        if let Some(io) = self.ionice {
            let level = |l: u8| l.min(7);
            let class = match io {
                IoNice::Idle => ioprio::Class::Idle,
                IoNice::BestEffort(l) => ioprio::Class::BestEffort(
                    ioprio::BePriorityLevel::from_level(level(l))
                        .unwrap_or_else(ioprio::BePriorityLevel::fallback),
                ),
                IoNice::Realtime(l) => ioprio::Class::Realtime(
                    ioprio::RtPriorityLevel::from_level(level(l))
                        .unwrap_or_else(ioprio::RtPriorityLevel::lowest),
                ),
            };
            // Pid 0: the calling thread.
            let this_thread = ioprio::Target::Process(ioprio::Pid::from_raw(0));
            if let Err(e) = ioprio::set_priority(this_thread, ioprio::Priority::new(class)) {
                tracing::warn!("cannot set ionice {io}: {e}");
            }
        }
    }
}

/// Runs `f` with `priority`: on a thread of its own when there is one to set, else here.
pub fn run_with<T: Send>(priority: Priority, f: impl FnOnce() -> T + Send) -> T {
    if priority.is_default() {
        return f();
    }
    let span = tracing::Span::current();
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("rempart-step".into())
            .spawn_scoped(s, move || {
                let _entered = span.entered();
                priority.apply_to_this_thread();
                f()
            })
            .expect("spawn the step's thread")
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ionice_settings_parse_and_bad_ones_say_what_is_expected() {
        assert_eq!("idle".parse(), Ok(IoNice::Idle));
        assert_eq!("best-effort:7".parse(), Ok(IoNice::BestEffort(7)));
        assert_eq!("realtime".parse(), Ok(IoNice::Realtime(4)));
        assert!("best-effort:9".parse::<IoNice>().unwrap_err().contains("0 (highest) to 7"));
        assert!("slow".parse::<IoNice>().unwrap_err().contains("expected idle"));
    }

    #[test]
    fn the_priority_stays_on_the_steps_thread() {
        let read_nice = || rustix::process::getpriority_process(None).unwrap();
        let before = read_nice();
        let inside = run_with(Priority { nice: Some(before + 5), ionice: None }, read_nice);
        assert_eq!(inside, before + 5);
        assert_eq!(read_nice(), before, "the caller's priority is untouched");
    }
}
