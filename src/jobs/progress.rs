//! Where a running step stands, for progress displays (`rempart drill` on a terminal).
//!
//! A step names its phase and, when the phase has counters, a probe that reads them (bytes
//! done and, once known, in all); the display polls [`StepProgress::read`]. A step that sets
//! nothing shows nothing but its elapsed time.

use parking_lot::Mutex;

type Probe = Box<dyn Fn() -> (u64, Option<u64>) + Send + Sync>;

#[derive(Default)]
pub struct StepProgress {
    phase: Mutex<String>,
    probe: Mutex<Option<Probe>>,
}

impl std::fmt::Debug for StepProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepProgress").field("phase", &*self.phase.lock()).finish()
    }
}

impl StepProgress {
    /// A phase whose progress `probe` reads as (bytes done, bytes in all once known).
    pub fn phase_with(&self, phase: &str, probe: impl Fn() -> (u64, Option<u64>) + Send + Sync + 'static) {
        *self.phase.lock() = phase.to_string();
        *self.probe.lock() = Some(Box::new(probe));
    }

    /// A phase without counters.
    pub fn phase(&self, phase: &str) {
        *self.phase.lock() = phase.to_string();
        *self.probe.lock() = None;
    }

    /// The phase, bytes done, and bytes in all when known.
    pub fn read(&self) -> (String, u64, Option<u64>) {
        let (done, total) = self.probe.lock().as_ref().map_or((0, None), |p| p());
        (self.phase.lock().clone(), done, total)
    }
}
