//! Clocks and the local time zone: `clock_gettime(CLOCK_BOOTTIME)`, `localtime_r(3)` and
//! `tzset(3)`.

/// A moment in local time, as `struct tm` breaks it down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BrokenDown {
    pub(crate) year: i32,
    /// 1-12.
    pub(crate) month: i32,
    pub(crate) day: i32,
    pub(crate) hour: i32,
    pub(crate) minute: i32,
    pub(crate) second: i32,
}

// SAFETY: POSIX declares `void tzset(void)`, which this matches; the libc crate does not
// export it.
unsafe extern "C" {
    fn tzset();
}

/// Milliseconds since boot, suspend included: the monotonic clock every timer runs on. It
/// never steps, and it keeps counting while the machine sleeps, so a door opened before a
/// suspend is closed as soon as the machine wakes (`CLOCK_MONOTONIC`, and Rust's `Instant`,
/// stop during a suspend).
pub(crate) fn boot_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a live local the call only writes to; CLOCK_BOOTTIME exists on every
    // kernel knockd-lite runs on (2.6.39 and later), and the return value is checked.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    if rc != 0 {
        // Not reached on Linux; a clock that cannot be read must not panic the loop.
        return 0;
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1000).saturating_add(nanos / 1_000_000)
}

/// Re-reads `TZ` and the zone files, so later [`local_time`] calls follow a changed zone.
pub(crate) fn reload_time_zone() {
    // SAFETY: tzset only reads TZ and the zone files into libc's own state.
    unsafe { tzset() };
}

/// `secs` since the Unix epoch in the local time zone; `None` for a year out of range.
pub(crate) fn local_time(secs: i64) -> Option<BrokenDown> {
    let secs = super::TimeT::try_from(secs).ok()?;
    // SAFETY: tm is plain old data, for which all-zero is valid.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals; localtime_r writes only into tm and returns
    // null on failure.
    let ok = !unsafe { libc::localtime_r(&secs, &mut tm) }.is_null();
    ok.then_some(BrokenDown {
        year: tm.tm_year + 1900,
        month: tm.tm_mon + 1,
        day: tm.tm_mday,
        hour: tm.tm_hour,
        minute: tm.tm_min,
        second: tm.tm_sec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boot_clock_runs_forward() {
        let a = boot_ms();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = boot_ms();
        assert!(a > 0 && b >= a + 20, "{a} {b}");
    }

    #[test]
    fn a_year_out_of_range_is_none() {
        reload_time_zone();
        assert!(local_time(0).is_some());
        assert_eq!(local_time(i64::MAX), None);
    }
}
