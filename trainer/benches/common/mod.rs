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

/// Waits for our child `pid` (with `wait4`, which also reports its CPU
/// time, its descendants' included). Its peak RSS is read from
/// `/proc/PID/status` (`VmHWM`) while it runs, the largest of it and its
/// descendants' (Drain3 runs under `timeout`): `wait4`'s `ru_maxrss` is no
/// good for it, because Linux keeps the high-water mark across `execve`,
/// so a child reports at least what this bench held when it spawned it (a
/// bench that fits a model first made Fluent Bit look 50 MiB larger than
/// it is).
pub fn wait(pid: u32) -> Finished {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    let (peak, done) = (Arc::new(AtomicI64::new(0)), Arc::new(AtomicBool::new(false)));
    let poller = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            let hwm = |p: u32| {
                let status = std::fs::read_to_string(format!("/proc/{p}/status")).ok()?;
                let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
                line.split_whitespace().nth(1)?.parse::<i64>().ok()
            };
            let children = |p: u32| -> Vec<u32> {
                let list = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
                list.split_whitespace().filter_map(|c| c.parse().ok()).collect()
            };
            while !done.load(Ordering::Relaxed) {
                let mut tree = vec![pid];
                while let Some(p) = tree.pop() {
                    if let Some(kib) = hwm(p) {
                        peak.fetch_max(kib, Ordering::Relaxed);
                    }
                    tree.extend(children(p));
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        })
    };
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child and fills a zeroed rusage.
    unsafe { libc::wait4(pid as i32, &mut status, 0, &mut usage) };
    done.store(true, Ordering::Relaxed);
    poller.join().unwrap();
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Finished { status, cpu_secs: secs(usage.ru_utime) + secs(usage.ru_stime), peak_rss_kib: peak.load(Ordering::Relaxed) }
}
