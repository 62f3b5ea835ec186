//! The systemd notification protocol (sd_notify), without libsystemd: datagrams to the socket
//! named by `NOTIFY_SOCKET`. `READY=1` once the daemon listens and has scheduled its jobs,
//! `WATCHDOG=1` every half of `WATCHDOG_USEC` while its loop runs, `RELOADING=1`/`READY=1`
//! around a SIGHUP reload and `STOPPING=1` at shutdown. Without `NOTIFY_SOCKET` (not started
//! by systemd with `Type=notify`) every call does nothing.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Where notifications go, if anywhere.
pub struct Notifier {
    socket: Option<(UnixDatagram, std::path::PathBuf)>,
    /// How often to send `WATCHDOG=1` (half the watchdog timeout), when systemd asks for it.
    pub watchdog: Option<Duration>,
}

impl Notifier {
    /// From the environment systemd sets (`NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`).
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET").and_then(|p| {
            let path = std::path::PathBuf::from(p);
            // An abstract socket (`@name`) needs Linux-specific addressing: not supported.
            if path.as_os_str().as_encoded_bytes().first() == Some(&b'@') {
                tracing::warn!("NOTIFY_SOCKET is an abstract socket: systemd notifications are off");
                return None;
            }
            UnixDatagram::unbound().ok().map(|s| (s, path))
        });
        let for_us = std::env::var("WATCHDOG_PID").map_or(true, |p| p == std::process::id().to_string());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|u| *u > 0 && for_us && socket.is_some())
            // At least a millisecond: a period of zero would spin (and tokio refuses it).
            .map(|u| Duration::from_micros(u / 2).max(Duration::from_millis(1)));
        Notifier { socket, watchdog }
    }

    /// `RELOADING=1` with the monotonic time systemd's `Type=notify-reload` asks for.
    pub fn reloading(&self) {
        let usec = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1_000)
            .unwrap_or(0);
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
    }

    /// Sends `state` (such as `READY=1`); failures are logged, never fatal.
    pub fn send(&self, state: &str) {
        if let Some((s, path)) = &self.socket {
            if let Err(e) = s.send_to(state.as_bytes(), path) {
                tracing::warn!("cannot notify systemd ({state}): {e}");
            }
        }
    }
}
