//! When to start the next worker after one died: at once the first time, then 1 s, 2 s,
//! 4 s ... up to [`MAX_DELAY_MS`], so a worker that dies at every start (a packet that kills
//! it as soon as it reads it, a kernel that refuses its sandbox) costs a start every 30 s,
//! not a spinning loop. A worker that ran for [`STABLE_MS`] starts the count again. Pure:
//! time (monotonic ms) is passed in.

/// The longest wait between two starts.
pub(crate) const MAX_DELAY_MS: u64 = 30_000;
/// A worker that ran this long before it died was not crash-looping.
pub(crate) const STABLE_MS: u64 = 60_000;

/// The restart schedule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Backoff {
    /// Deaths in a row, each after less than [`STABLE_MS`].
    quick_deaths: u32,
}

impl Backoff {
    /// A worker started at `started_ms` died at `died_ms`: how long to wait before the next
    /// start, in ms.
    pub(crate) fn died(&mut self, started_ms: u64, died_ms: u64) -> u64 {
        if died_ms.saturating_sub(started_ms) >= STABLE_MS {
            self.quick_deaths = 0;
        }
        let delay = match self.quick_deaths {
            0 => 0,
            // 1 s doubled: past 2^5 s the cap holds, and the shift never overflows.
            n => (1000u64 << (n - 1).min(5)).min(MAX_DELAY_MS),
        };
        self.quick_deaths = self.quick_deaths.saturating_add(1);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_deaths_wait_longer_each_time_up_to_the_cap() {
        let mut b = Backoff::default();
        let mut t = 0;
        let mut delays = Vec::new();
        for _ in 0..9 {
            let d = b.died(t, t + 10);
            delays.push(d);
            t += 10 + d;
        }
        assert_eq!(
            delays,
            [0, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        // The count never overflows, however long the loop.
        for _ in 0..100 {
            assert_eq!(b.died(t, t), MAX_DELAY_MS);
        }
    }

    #[test]
    fn a_worker_that_ran_a_minute_starts_the_count_again() {
        let mut b = Backoff::default();
        assert_eq!(b.died(0, 10), 0);
        assert_eq!(b.died(10, 20), 1000);
        assert_eq!(b.died(1020, 1020 + STABLE_MS), 0);
        assert_eq!(b.died(70_000, 70_001), 1000);
        assert_eq!(b.died(80_000, 80_000 + STABLE_MS - 1), 2000);
    }
}
