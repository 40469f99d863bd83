//! Engine time, on two clocks: [`Mono`] (monotonic) for every timer and timeout, and
//! [`Timestamp`] (the wall clock) for what is about the calendar, HMAC windows and log
//! stamps. A step of the wall clock (NTP, an operator, a VM resumed) moves neither
//! `Seq_Timeout` nor `Cmd_Timeout`; it moves the HMAC window, since the client's window
//! follows its own calendar too.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A moment on the wall clock, in milliseconds since the Unix epoch. Only for HMAC windows
/// (counters are defined on Unix seconds), log stamps and what must survive a restart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    pub const fn from_millis(ms: u64) -> Timestamp {
        Timestamp(ms)
    }

    pub const fn from_secs(secs: u64) -> Timestamp {
        Timestamp(secs.saturating_mul(1000))
    }

    /// Converts a `SystemTime` (e.g. a packet's kernel timestamp); times before the epoch
    /// become the epoch. This reads no clock.
    pub fn from_system_time(t: SystemTime) -> Timestamp {
        let ms = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
        Timestamp(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    pub const fn as_millis(self) -> u64 {
        self.0
    }

    pub const fn unix_seconds(self) -> u64 {
        self.0 / 1000
    }
}

/// `1700000000.250` (seconds.milliseconds since the epoch).
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

/// A moment on the monotonic clock, in milliseconds from an origin the runtime picks (it
/// uses the time since boot, suspend included, so a door opened before a suspend is closed
/// as soon as the machine wakes). Never steps, never runs backwards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mono(u64);

impl Mono {
    pub const fn from_millis(ms: u64) -> Mono {
        Mono(ms)
    }

    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `ms` later, saturating.
    pub const fn plus(self, ms: u64) -> Mono {
        Mono(self.0.saturating_add(ms))
    }
}

/// Both clocks, read at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Now {
    pub mono: Mono,
    pub wall: Timestamp,
}

/// How old a packet's kernel timestamp may be, against the wall clock read after it was
/// received, and still be trusted: older (or from the future), the wall clock stepped in
/// between and the packet is taken as received now.
pub const MAX_PACKET_AGE_MS: u64 = 5_000;

impl Now {
    pub const fn new(mono: Mono, wall: Timestamp) -> Now {
        Now { mono, wall }
    }

    /// Both clocks at the moment a packet stamped `stamp` by the kernel (a wall-clock
    /// time) was received, `self` being read after it: the packet's age on the wall clock,
    /// taken off both clocks when it is within `[0, MAX_PACKET_AGE_MS]`; otherwise the wall
    /// clock stepped between the stamp and the reading, and the packet is taken as
    /// received at `self`.
    pub fn of_packet(self, stamp: Timestamp) -> Now {
        match self.wall.0.checked_sub(stamp.0) {
            Some(age) if age <= MAX_PACKET_AGE_MS => Now {
                mono: Mono(self.mono.0.saturating_sub(age)),
                wall: stamp,
            },
            _ => self,
        }
    }
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        let t =
            Timestamp::from_system_time(UNIX_EPOCH + Duration::from_micros(1_700_000_000_250_900));
        assert_eq!(t.as_millis(), 1_700_000_000_250);
        assert_eq!(t.unix_seconds(), 1_700_000_000);
        assert_eq!(t.to_string(), "1700000000.250");
        assert_eq!(
            Timestamp::from_system_time(UNIX_EPOCH - Duration::from_secs(1)),
            Timestamp::default()
        );
        assert_eq!(
            Mono::from_millis(u64::MAX - 1).plus(5).as_millis(),
            u64::MAX
        );
    }

    #[test]
    fn a_packet_is_dated_on_both_clocks_unless_the_wall_clock_stepped() {
        const W: u64 = 1_700_000_000_000;
        let now = Now::new(Mono::from_millis(50_000), Timestamp::from_millis(W));
        // 300 ms old: 300 ms earlier on both clocks.
        assert_eq!(
            now.of_packet(Timestamp::from_millis(W - 300)),
            Now::new(Mono::from_millis(49_700), Timestamp::from_millis(W - 300))
        );
        assert_eq!(
            now.of_packet(Timestamp::from_millis(W - MAX_PACKET_AGE_MS)),
            Now::new(
                Mono::from_millis(50_000 - MAX_PACKET_AGE_MS),
                Timestamp::from_millis(W - MAX_PACKET_AGE_MS)
            )
        );
        // Stamped two hours before the reading (the clock was stepped forward), or after
        // it (stepped back): received now.
        for stamp in [
            W - 7_200_000,
            W - MAX_PACKET_AGE_MS - 1,
            W + 1,
            W + 7_200_000,
        ] {
            assert_eq!(now.of_packet(Timestamp::from_millis(stamp)), now, "{stamp}");
        }
        // The monotonic clock near its origin does not wrap.
        let early = Now::new(Mono::from_millis(100), Timestamp::from_millis(W));
        assert_eq!(
            early.of_packet(Timestamp::from_millis(W - 1000)).mono,
            Mono::from_millis(0)
        );
    }
}
