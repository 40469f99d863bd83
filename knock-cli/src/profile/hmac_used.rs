//! The last knock-hmac-v1 counter each HMAC profile sent, so that a second knock inside
//! the same step waits for the next one instead of sending a sequence the door has already
//! used (and would ignore, as a replay, while `knock` exited 0).
//!
//! One small file per profile, next to it: `NAME.hmac-used`, holding the counter as a
//! decimal line, written through knock-core's atomic private write (mode 0600). It is
//! not a profile (`knock profile list` reads only `.toml` files), and `knock profile
//! remove NAME` removes it with the profile.

use std::io;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use knock_core::files;
use knock_core::profile::store::Store;

/// The state file of profile `name`.
pub(crate) fn path(store: &Store, name: &str) -> PathBuf {
    store.dir().join(format!("{name}.hmac-used"))
}

/// The counter last sent, if any. A file that cannot be read or makes no sense is
/// reported, and the knock goes ahead as if none had been sent (what `knock` did before it
/// kept this file): the door still refuses a replay.
pub(crate) fn last(path: &Path) -> Result<Option<u64>, anyhow::Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| anyhow!("{}: not a counter: {:?}", path.display(), text.trim())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow!("read {}: {e}", path.display())),
    }
}

/// Records `counter` as sent.
pub(crate) fn record(path: &Path, counter: u64) -> Result<(), anyhow::Error> {
    files::write_private(path, format!("{counter}\n").as_bytes(), true).map_err(|e| anyhow!(e))
}

/// Removes the state of a profile that is removed; none is fine.
pub(crate) fn forget(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// What a knock at `now` does about the counter last sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Turn {
    /// Nothing of this step was sent: knock now, with this counter.
    Now(u64),
    /// This step's sequence was sent already: wait `seconds` for the next step, which
    /// starts at unix time `at` with counter `counter`.
    Wait { seconds: u64, at: u64, counter: u64 },
    /// The counter last sent is ahead of this clock by more than a step: the clock went
    /// back, or the file came from elsewhere.
    Ahead { last: u64, now: u64 },
}

/// Decides when to knock: now, unless the current step (`now / step`) or a later one was
/// sent already.
pub(crate) fn turn(now: u64, step: u64, last: Option<u64>) -> Turn {
    let step = step.max(1);
    let counter = now / step;
    match last {
        Some(last) if last >= counter => {
            let next = last.saturating_add(1);
            let at = next.saturating_mul(step);
            let seconds = at.saturating_sub(now);
            if seconds > step {
                Turn::Ahead { last, now: counter }
            } else {
                Turn::Wait {
                    seconds,
                    at,
                    counter: next,
                }
            }
        }
        _ => Turn::Now(counter),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_already_sent_is_waited_out() {
        // step 30: counter 56666666 covers 1699999980..=1700000009.
        let table = [
            (1_700_000_000, None, Turn::Now(56_666_666)),
            (1_700_000_000, Some(56_666_665), Turn::Now(56_666_666)),
            (
                1_700_000_000,
                Some(56_666_666),
                Turn::Wait {
                    seconds: 10,
                    at: 1_700_000_010,
                    counter: 56_666_667,
                },
            ),
            (
                1_700_000_009,
                Some(56_666_666),
                Turn::Wait {
                    seconds: 1,
                    at: 1_700_000_010,
                    counter: 56_666_667,
                },
            ),
            (1_700_000_010, Some(56_666_666), Turn::Now(56_666_667)),
            // The next step was sent already (a clock a little behind): wait it out too.
            (
                1_699_999_999,
                Some(56_666_666),
                Turn::Wait {
                    seconds: 11,
                    at: 1_700_000_010,
                    counter: 56_666_667,
                },
            ),
            // Far ahead: the clock went back.
            (
                1_700_000_000,
                Some(56_666_700),
                Turn::Ahead {
                    last: 56_666_700,
                    now: 56_666_666,
                },
            ),
        ];
        for (now, last, want) in table {
            assert_eq!(turn(now, 30, last), want, "{now} {last:?}");
        }
    }

    #[test]
    fn the_file_is_private_and_read_back() {
        let dir = crate::tests::Scratch::new("hmac-used");
        let file = dir.join("office.hmac-used");
        assert_eq!(last(&file).unwrap(), None);
        record(&file, 56_666_666).unwrap();
        assert_eq!(last(&file).unwrap(), Some(56_666_666));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "56666666\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        std::fs::write(&file, "soon\n").unwrap();
        assert_eq!(
            last(&file).unwrap_err().to_string(),
            format!("{}: not a counter: \"soon\"", file.display())
        );
        forget(&file).unwrap();
        forget(&file).unwrap();
        assert!(!file.exists());
    }
}
