//! What `/proc/<pid>/stat` says about a process: one small read per process, used by status
//! (CPU, RSS) and by the guard (process group, session, start time).

/// The fields fild uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pgrp: i32,
    pub session: i32,
    /// User and system CPU time, in clock ticks.
    pub utime: u64,
    pub stime: u64,
    /// Start time, in clock ticks since boot.
    pub starttime: u64,
    /// Resident set size, in pages.
    pub rss_pages: u64,
}

/// Read and parse `/proc/<pid>/stat`; `None` when the process is gone.
pub fn read(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse(&text)
}

/// Parse a stat line (the command name may hold spaces and parentheses).
pub fn parse(text: &str) -> Option<Stat> {
    let rest = text.get(text.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state): field N is f[N - 3].
    let num = |n: usize| f.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        pgrp: f.get(2)?.parse().ok()?,
        session: f.get(3)?.parse().ok()?,
        utime: num(14)?,
        stime: num(15)?,
        starttime: num(22)?,
        rss_pages: num(24)?,
    })
}

/// Clock ticks per second.
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 } else { 4096 }
}

/// Seconds since boot, from `/proc/uptime`.
pub fn uptime_secs() -> Option<f64> {
    std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU time over the process's lifetime as a percentage of one core.
pub fn cpu_percent(s: &Stat, now_secs: f64, tps: u64) -> f64 {
    let lived = now_secs - s.starttime as f64 / tps as f64;
    if lived <= 0.0 {
        return 0.0;
    }
    (s.utime + s.stime) as f64 / tps as f64 / lived * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_name_with_spaces_and_parens() {
        let line = "1234 (a b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 5000 10000000 250 18446744073709551615";
        let s = parse(line).unwrap();
        assert_eq!((s.pgrp, s.session), (1234, 1234));
        assert_eq!(
            (s.utime, s.stime, s.starttime, s.rss_pages),
            (7, 3, 5000, 250)
        );
    }

    #[test]
    fn reads_our_own_process() {
        let s = read(std::process::id() as i32).unwrap();
        assert!(s.rss_pages > 0);
        let pct = cpu_percent(&s, uptime_secs().unwrap(), ticks_per_second());
        assert!((0.0..=200.0).contains(&pct));
    }
}
