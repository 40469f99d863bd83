//! How the ring reader waits once the ring is empty: woken by the kernel for the next frame
//! while frames are few, or asleep for a fixed interval while they pour in.
//!
//! A V2 ring wakes a sleeping reader for every frame, and on a veth pair (or a NIC's
//! softirq) that wake-up is paid on the sending CPU, per frame. Measured under a SYN flood,
//! per-frame wake-ups cut the generator's rate from ~1.15 to ~0.65 million frames/s.
//! Sleeping through an interval instead means the kernel finds nobody to wake, and frames
//! wait at most one interval in the ring, which is what a V3 ring's block timer costs every
//! frame, idle or not. The clock is passed in, so the switching is tested without sockets.

use std::time::{Duration, Instant};

/// What to do with an empty ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wait {
    /// Ask the kernel to wake us for the next frame (poll on the socket).
    ForFrame,
    /// Sleep this long without asking, then drain what came.
    Sleep(Duration),
}

#[derive(Debug)]
pub(super) struct Pace {
    interval: Duration,
    threshold: usize,
    busy: bool,
    /// Start of the current counting window, and the frames delivered in it.
    since: Option<Instant>,
    frames: usize,
}

impl Pace {
    /// Sleeps `interval` between drains once more than `threshold` frames arrive per
    /// `interval`; a zero interval or threshold means never.
    pub(super) fn new(interval: Duration, threshold: usize) -> Pace {
        Pace {
            interval,
            threshold,
            busy: false,
            since: None,
            frames: 0,
        }
    }

    pub(super) fn delivered(&mut self, frames: usize) {
        self.frames += frames;
    }

    /// The ring is empty at `now`: how to wait for more.
    pub(super) fn wait(&mut self, now: Instant) -> Wait {
        if self.interval.is_zero() || self.threshold == 0 {
            return Wait::ForFrame;
        }
        let since = *self.since.get_or_insert(now);
        let elapsed = now.saturating_duration_since(since);
        if elapsed >= self.interval {
            // A whole window: compare the rate, frames / elapsed, with threshold / interval.
            self.busy = self.frames as u128 * self.interval.as_nanos()
                >= self.threshold as u128 * elapsed.as_nanos();
            self.since = Some(now);
            self.frames = 0;
        } else if !self.busy && self.frames >= self.threshold {
            // Past the threshold before the window is over: switch now, and count afresh.
            self.busy = true;
            self.since = Some(now);
            self.frames = 0;
        }
        if self.busy {
            Wait::Sleep(self.interval)
        } else {
            Wait::ForFrame
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn pace() -> Pace {
        Pace::new(MS, 8)
    }

    #[test]
    fn an_idle_reader_waits_for_each_frame() {
        let mut p = pace();
        let t0 = Instant::now();
        assert_eq!(p.wait(t0), Wait::ForFrame);
        // A knock: three frames a few hundred microseconds apart.
        for i in 1..=3 {
            p.delivered(1);
            assert_eq!(p.wait(t0 + MS * i / 4), Wait::ForFrame);
        }
        // Much later, one more.
        p.delivered(1);
        assert_eq!(p.wait(t0 + MS * 5000), Wait::ForFrame);
    }

    #[test]
    fn a_burst_past_the_threshold_switches_to_sleeping_at_once() {
        let mut p = pace();
        let t0 = Instant::now();
        assert_eq!(p.wait(t0), Wait::ForFrame);
        for i in 1..=7 {
            p.delivered(1);
            assert_eq!(p.wait(t0 + MS * i / 10), Wait::ForFrame, "frame {i}");
        }
        p.delivered(1);
        assert_eq!(p.wait(t0 + MS * 8 / 10), Wait::Sleep(MS));
    }

    #[test]
    fn a_steady_rate_above_the_threshold_keeps_the_reader_asleep() {
        let mut p = pace();
        let mut now = Instant::now();
        p.wait(now);
        p.delivered(100);
        assert_eq!(p.wait(now), Wait::Sleep(MS));
        for _ in 0..10 {
            // Each drain after a sleep (and some processing) finds a full interval's worth.
            now += MS + MS / 5;
            p.delivered(700);
            assert_eq!(p.wait(now), Wait::Sleep(MS));
        }
    }

    #[test]
    fn the_reader_goes_back_to_waking_per_frame_when_the_flood_ends() {
        let mut p = pace();
        let t0 = Instant::now();
        p.wait(t0);
        p.delivered(50);
        assert_eq!(p.wait(t0), Wait::Sleep(MS));
        p.delivered(3);
        assert_eq!(p.wait(t0 + MS + MS / 10), Wait::ForFrame);
    }

    #[test]
    fn a_rate_just_under_the_threshold_stays_per_frame() {
        let mut p = pace();
        let mut now = Instant::now();
        p.wait(now);
        // 7 frames a millisecond, one at a time.
        for _ in 0..70 {
            now += MS / 7;
            p.delivered(1);
            assert_eq!(p.wait(now), Wait::ForFrame);
        }
    }

    #[test]
    fn a_long_quiet_window_does_not_count_as_busy() {
        let mut p = pace();
        let t0 = Instant::now();
        p.wait(t0);
        // 9 frames spread over a second: more than the threshold, far below the rate.
        p.delivered(9);
        assert_eq!(p.wait(t0 + MS * 1000), Wait::ForFrame);
    }

    #[test]
    fn zero_turns_pacing_off() {
        for mut p in [Pace::new(Duration::ZERO, 8), Pace::new(MS, 0)] {
            let t0 = Instant::now();
            p.delivered(1_000_000);
            assert_eq!(p.wait(t0), Wait::ForFrame);
            assert_eq!(p.wait(t0 + MS * 2), Wait::ForFrame);
        }
    }
}
