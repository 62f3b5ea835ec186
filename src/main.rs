//! The `rempart` binary: everything lives in the library; see `rempart::cli`.

fn main() -> std::process::ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    limit_malloc_arenas();
    rempart::cli::main()
}

/// glibc gives every thread that contends for the allocator an arena of its own, up to 8 per
/// core, and memory freed in one arena is not reused by another: a backup of a million small
/// files (chunk buffers, packs and id lists allocated on worker, lister and runtime threads)
/// held about 30 MB more resident memory that way (docs/performance.md). One arena per core
/// keeps threads from contending while memory is reused. Set before any thread starts;
/// `MALLOC_ARENA_MAX` in the environment still wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
    // SAFETY: mallopt only sets an allocator parameter; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, i32::try_from(cores).unwrap_or(i32::MAX));
    }
}
