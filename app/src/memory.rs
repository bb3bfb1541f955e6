//! Returning memory to the system after bursts.
//!
//! glibc raises its mmap threshold after freeing a large block, so later 19 MiB Argon2
//! blocks come from the heap arenas, one arena per thread, and stay there after the burst.
//! A fixed threshold keeps every large block in its own mapping, unmapped on free; fewer
//! arenas bound what small allocations keep. Called first thing by `ahlt`'s `main`.

/// Blocks at least this large are always mapped on their own (and unmapped on free).
const MMAP_THRESHOLD: i32 = 1 << 20;
/// Upper bound of glibc malloc arenas.
const ARENA_MAX: i32 = 4;

/// Tunes the allocator (glibc only; a no-op elsewhere). Safe to call more than once.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; both values are valid.
    unsafe {
        nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, ARENA_MAX);
    }
}

/// This process's resident set size now and at its peak (`VmRSS`, `VmHWM`), in KiB.
pub fn rss_kib() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Resets the peak (`VmHWM`) to the current RSS, so a later [`rss_kib`] reports the peak of
/// what ran in between (Linux: `/proc/self/clear_refs`).
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}
