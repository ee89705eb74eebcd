//! What the benches share: waiting for a child process they measure.

/// How a measured child process ended.
pub struct Finished {
    /// Its wait status (0: exited with 0).
    pub status: i32,
    /// User + system CPU seconds.
    pub cpu_secs: f64,
    /// Peak resident set, KiB.
    pub peak_rss_kib: i64,
}

/// Waits for our child `pid` (with `wait4`, which also reports its
/// resource use).
pub fn wait(pid: u32) -> Finished {
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child and fills a zeroed rusage.
    unsafe { libc::wait4(pid as i32, &mut status, 0, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Finished { status, cpu_secs: secs(usage.ru_utime) + secs(usage.ru_stime), peak_rss_kib: usage.ru_maxrss }
}
