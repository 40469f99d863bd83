//! Engine time: milliseconds since the Unix epoch, as carried by kernel packet timestamps.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A moment, in milliseconds since the Unix epoch. Wall-clock based because packet
/// timestamps are, and because HMAC counters are defined on Unix seconds.
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
    }
}
