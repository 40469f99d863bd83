//! When to try the port, when to knock again and when to give up: the wait's schedule, on
//! time passed in (no clock, no sockets), so every timing is tested on a virtual clock.
//!
//! The wait (`--wait-timeout`, 10 s by default) is cut into `retries + 1` equal turns. The
//! first turn follows the first knock; each later turn starts with a knock again, when the
//! port is still closed by then. Within a turn, tries start 0, 20, 50, 100, 200, 400, 800
//! and 1600 ms after its knock, then every second: a door usually opens within
//! milliseconds of the last hit, so the first tries come quickly, and a door that is slow
//! to open is not flooded with SYNs. Each try may take until the next one is due (a SYN the firewall
//! drops gets no answer, so the try's connect timeout is the pause); a try that fails at
//! once (a reset) waits for the next one's time. Nothing runs past the timeout.

use std::time::Duration;

/// The gaps between the starts of two tries within a turn; the last repeats.
const GAPS_MS: [u64; 8] = [20, 30, 50, 100, 200, 400, 800, 1000];

/// The wait's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Schedule {
    /// How long to wait, from the end of the first knock.
    pub timeout: Duration,
    /// How many times to knock again.
    pub retries: u32,
}

impl Schedule {
    /// When knock `n` is due, from the start of the wait: knock 0 is the first (sent before
    /// the wait starts), knock `k` starts turn `k`.
    pub(crate) fn knock_due(&self, n: u32) -> Duration {
        // The timeout is far below u32::MAX ms turns of nanoseconds, so no overflow.
        self.timeout * n / (self.retries + 1)
    }

    /// When the re-knocks are due, for descriptions (`--dry-run`).
    pub(crate) fn reknocks(&self) -> impl Iterator<Item = Duration> + '_ {
        (1..=self.retries).map(|n| self.knock_due(n))
    }
}

/// When try `i` (0-based) of a turn starts, after the turn's knock.
fn try_offset(i: u32) -> Duration {
    let mut ms = 0;
    for k in 0..i {
        ms += GAPS_MS[(k as usize).min(GAPS_MS.len() - 1)];
    }
    Duration::from_millis(ms)
}

/// What the wait does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Connect, giving up on this try after the duration.
    Try(Duration),
    /// Nothing until the next try, this long from now.
    Pause(Duration),
    /// Knock again (the port is still closed at the start of a turn).
    Knock,
    /// The timeout passed with the port still closed.
    GiveUp,
}

/// Where a wait stands. Times are measured from the start of the wait (the end of the
/// first knock), on the monotonic clock.
#[derive(Clone, Debug)]
pub(crate) struct Wait {
    schedule: Schedule,
    /// Knocks sent so far (the first included).
    knocks: u32,
    /// When the current turn's knock ended.
    turn_began: Duration,
    /// Tries started in the current turn.
    tries: u32,
}

impl Wait {
    /// A wait that starts now, after the first knock.
    pub(crate) fn new(schedule: Schedule) -> Wait {
        Wait {
            schedule,
            knocks: 1,
            turn_began: Duration::ZERO,
            tries: 0,
        }
    }

    /// Knocks sent so far, the first one included.
    pub(crate) fn knocks(&self) -> u32 {
        self.knocks
    }

    /// What to do at `elapsed` since the start of the wait.
    pub(crate) fn next(&mut self, elapsed: Duration) -> Next {
        let s = self.schedule;
        if elapsed >= s.timeout {
            return Next::GiveUp;
        }
        let more_knocks = self.knocks <= s.retries;
        if more_knocks && elapsed >= s.knock_due(self.knocks) {
            return Next::Knock;
        }
        // Nothing crosses the next knock or the end of the wait.
        let boundary = if more_knocks {
            s.knock_due(self.knocks)
        } else {
            s.timeout
        };
        let due = self.turn_began + try_offset(self.tries);
        if elapsed < due {
            return Next::Pause(due.min(boundary) - elapsed);
        }
        // Slots that passed while the previous try ran long are skipped, not crammed in.
        while self.turn_began + try_offset(self.tries + 1) <= elapsed {
            self.tries += 1;
        }
        self.tries += 1;
        let until = (self.turn_began + try_offset(self.tries)).min(boundary);
        // Before the boundary, which is after `elapsed` (checked above).
        Next::Try(until - elapsed)
    }

    /// A knock was sent; it ended at `elapsed`.
    pub(crate) fn knocked(&mut self, elapsed: Duration) {
        self.knocks += 1;
        self.turn_began = elapsed;
        self.tries = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// What a wait does against a port that never opens, each try taking `try_takes` of
    /// its time (`None`: all of it, as for a dropped SYN) and each knock `knock_takes`.
    /// Returns the events with their start times in ms.
    fn closed_door(
        schedule: Schedule,
        try_takes: Option<Duration>,
        knock_takes: Duration,
    ) -> Vec<(u64, Next)> {
        let mut wait = Wait::new(schedule);
        let mut now = Duration::ZERO;
        let mut log = Vec::new();
        loop {
            let next = wait.next(now);
            log.push((now.as_millis() as u64, next));
            match next {
                Next::Try(d) => now += try_takes.map_or(d, |t| t.min(d)),
                Next::Pause(d) => now += d,
                Next::Knock => {
                    now += knock_takes;
                    wait.knocked(now);
                }
                Next::GiveUp => return log,
            }
            assert!(log.len() < 1000, "runaway: {log:?}");
        }
    }

    fn starts(log: &[(u64, Next)], want: fn(&Next) -> bool) -> Vec<u64> {
        log.iter()
            .filter(|(_, n)| want(n))
            .map(|(t, _)| *t)
            .collect()
    }

    #[test]
    fn tries_back_off_and_knocks_split_the_wait_in_equal_turns() {
        let s = Schedule {
            timeout: ms(10_000),
            retries: 2,
        };
        let log = closed_door(s, None, Duration::ZERO);
        assert_eq!(
            starts(&log, |n| matches!(n, Next::Knock)),
            [3333, 6666],
            "{log:?}"
        );
        let tries = starts(&log, |n| matches!(n, Next::Try(_)));
        assert_eq!(
            tries,
            [
                0, 20, 50, 100, 200, 400, 800, 1600, 2600, // first turn, cut at 3333
                3333, 3353, 3383, 3433, 3533, 3733, 4133, 4933, 5933, // second
                6666, 6686, 6716, 6766, 6866, 7066, 7466, 8266, 9266, // third, cut at 10000
            ]
        );
        assert_eq!(log.last(), Some(&(10_000, Next::GiveUp)));
        // The last try of each turn is cut at the next knock or the end.
        let given = |at: u64| match log.iter().find(|(t, _)| *t == at) {
            Some((_, Next::Try(d))) => d.as_millis(),
            other => panic!("{other:?}"),
        };
        assert_eq!((given(2600), given(9266)), (733, 733));
        assert!(!log.iter().any(|(_, n)| matches!(n, Next::Pause(_))));
    }

    #[test]
    fn a_refused_try_waits_for_the_next_ones_time() {
        let s = Schedule {
            timeout: ms(1000),
            retries: 0,
        };
        let log = closed_door(s, Some(ms(1)), Duration::ZERO);
        assert_eq!(
            log,
            [
                (0, Next::Try(ms(20))),
                (1, Next::Pause(ms(19))),
                (20, Next::Try(ms(30))),
                (21, Next::Pause(ms(29))),
                (50, Next::Try(ms(50))),
                (51, Next::Pause(ms(49))),
                (100, Next::Try(ms(100))),
                (101, Next::Pause(ms(99))),
                (200, Next::Try(ms(200))),
                (201, Next::Pause(ms(199))),
                (400, Next::Try(ms(400))),
                (401, Next::Pause(ms(399))),
                (800, Next::Try(ms(200))),
                (801, Next::Pause(ms(199))),
                (1000, Next::GiveUp),
            ]
        );
    }

    #[test]
    fn turns_restart_the_backoff_after_the_knock_ends() {
        let s = Schedule {
            timeout: ms(2000),
            retries: 1,
        };
        // A knock with delays between its hits takes 300 ms; tries follow it.
        let log = closed_door(s, None, ms(300));
        assert_eq!(starts(&log, |n| matches!(n, Next::Knock)), [1000]);
        assert_eq!(
            starts(&log, |n| matches!(n, Next::Try(_))),
            [
                0, 20, 50, 100, 200, 400, 800, 1300, 1320, 1350, 1400, 1500, 1700
            ]
        );
        assert_eq!(log.last(), Some(&(2000, Next::GiveUp)));
    }

    #[test]
    fn no_retries_means_one_knock() {
        let s = Schedule {
            timeout: ms(300),
            retries: 0,
        };
        let log = closed_door(s, None, Duration::ZERO);
        assert!(!log.iter().any(|(_, n)| *n == Next::Knock));
        assert_eq!(
            starts(&log, |n| matches!(n, Next::Try(_))),
            [0, 20, 50, 100, 200]
        );
        assert_eq!(s.reknocks().count(), 0);
    }

    #[test]
    fn a_try_that_ran_past_its_time_is_followed_at_once() {
        let s = Schedule {
            timeout: ms(5000),
            retries: 0,
        };
        let mut wait = Wait::new(s);
        assert_eq!(wait.next(ms(0)), Next::Try(ms(20)));
        // The OS took 450 ms to fail it: the slots at 20, 50, 100, 200 and 400 ms passed
        // meanwhile, and the try now runs in the one at 400 ms, until 800.
        assert_eq!(wait.next(ms(450)), Next::Try(ms(350)));
        assert_eq!(wait.next(ms(700)), Next::Pause(ms(100)));
        assert_eq!(wait.next(ms(800)), Next::Try(ms(800)));
        assert_eq!(wait.knocks(), 1);
    }

    #[test]
    fn reknock_times_for_descriptions() {
        let s = Schedule {
            timeout: ms(10_000),
            retries: 2,
        };
        let at: Vec<u128> = s.reknocks().map(|d| d.as_millis()).collect();
        assert_eq!(at, [3333, 6666]);
        let mut wait = Wait::new(s);
        wait.knocked(ms(3400));
        assert_eq!(wait.knocks(), 2);
    }
}
