//! Pacing: how many frames to send now, or how long to wait, for a target rate.
//!
//! Pure: the caller passes the time elapsed since the start and the count sent so far.

use std::time::Duration;

/// The most a single `sendmmsg` call sends (the kernel's limit is 1024).
pub const MAX_BATCH: u64 = 512;
/// How far behind schedule the sender may fall before the missed frames are given up
/// rather than sent in one burst (after the process was descheduled, say).
const MAX_LAG: Duration = Duration::from_millis(10);
/// How often a paced sender wakes at most, so low rates send small batches.
const WAKEUPS_PER_SEC: u64 = 2000;

/// What the sender should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Send(u64),
    Wait(Duration),
}

/// A target rate in packets per second; 0 means as fast as possible.
#[derive(Clone, Debug)]
pub struct Pacer {
    rate: u64,
    /// Frames given up after falling behind by more than [`MAX_LAG`].
    skipped: u64,
}

impl Pacer {
    pub fn new(rate: u64) -> Pacer {
        Pacer { rate, skipped: 0 }
    }

    /// Frames given up so far because the sender fell behind.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The next step, `elapsed` after the start with `sent` frames sent.
    pub fn next(&mut self, elapsed: Duration, sent: u64) -> Step {
        if self.rate == 0 {
            return Step::Send(MAX_BATCH);
        }
        let due = (elapsed.as_nanos() * u128::from(self.rate) / 1_000_000_000) as u64;
        let done = sent + self.skipped;
        if due > done {
            let lag_limit = (MAX_LAG.as_nanos() * u128::from(self.rate) / 1_000_000_000) as u64;
            let behind = due - done;
            if behind > lag_limit.max(MAX_BATCH) {
                self.skipped += behind - lag_limit.max(1);
                return Step::Send(lag_limit.clamp(1, MAX_BATCH));
            }
            return Step::Send(behind.min(MAX_BATCH));
        }
        let chunk = (self.rate / WAKEUPS_PER_SEC).clamp(1, MAX_BATCH);
        let at = Duration::from_nanos(
            ((u128::from(done + chunk)) * 1_000_000_000 / u128::from(self.rate)) as u64,
        );
        Step::Wait(at.saturating_sub(elapsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn full_rate_always_sends_a_full_batch() {
        let mut p = Pacer::new(0);
        assert_eq!(p.next(Duration::ZERO, 0), Step::Send(MAX_BATCH));
        assert_eq!(p.next(10 * MS, 1_000_000), Step::Send(MAX_BATCH));
    }

    #[test]
    fn a_paced_sender_sends_what_is_due_then_waits_for_the_next_chunk() {
        // 10k/s: 10 frames due per millisecond; wake-ups every 5 frames (0.5 ms).
        let mut p = Pacer::new(10_000);
        assert_eq!(
            p.next(Duration::ZERO, 0),
            Step::Wait(Duration::from_micros(500))
        );
        assert_eq!(p.next(MS, 0), Step::Send(10));
        assert_eq!(p.next(MS, 10), Step::Wait(Duration::from_micros(500)));
        assert_eq!(p.next(Duration::from_micros(1200), 10), Step::Send(2));
    }

    #[test]
    fn simulated_runs_hit_the_rate() {
        for rate in [1_000u64, 10_000, 100_000, 700_000] {
            let mut p = Pacer::new(rate);
            let (mut now, mut sent) = (Duration::ZERO, 0u64);
            let end = Duration::from_secs(2);
            while now < end {
                match p.next(now, sent) {
                    Step::Send(n) => {
                        sent += n;
                        // Sending costs 100 ns a frame in this model.
                        now += Duration::from_nanos(100 * n);
                    }
                    Step::Wait(d) => now += d.max(Duration::from_micros(1)),
                }
            }
            let expected = rate * 2;
            assert!(
                sent.abs_diff(expected) <= expected / 100 + MAX_BATCH,
                "rate {rate}: sent {sent}, expected about {expected}"
            );
            assert_eq!(p.skipped(), 0, "rate {rate}");
        }
    }

    #[test]
    fn a_long_stall_gives_up_the_missed_frames_instead_of_bursting() {
        let mut p = Pacer::new(100_000);
        // One second late with nothing sent: 100,000 due, only 10 ms worth is kept.
        assert_eq!(p.next(Duration::from_secs(1), 0), Step::Send(512));
        assert_eq!(p.skipped(), 100_000 - 1_000);
        assert_eq!(p.next(Duration::from_secs(1), 512), Step::Send(488));
        assert!(matches!(
            p.next(Duration::from_secs(1), 1_000),
            Step::Wait(_)
        ));
    }
}
