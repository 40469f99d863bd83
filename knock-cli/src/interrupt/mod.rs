//! Ctrl-C (SIGINT; a console's Ctrl-C or Ctrl-Break on Windows) noticed instead of fatal,
//! so a knock can take its progress bar off the screen, say how far it got, and exit 130.
//!
//! The handler only sets a flag. Every long wait of a run (the delay between hits, the
//! wait for an HMAC step) sleeps in short slices and looks at the flag between them
//! ([`sleep`]), and the send loop looks before each hit, so a Ctrl-C is acted on within a
//! slice. One module per OS installs the handler; they and `connect::stdio` (which hands
//! stdout over to `--proxy`'s relay) are the only unsafe code of the client.
//!
//! A crate (ctrlc) would do the same with a thread of its own and a dependency on nix;
//! this is the flag and two system calls per OS, and it puts the previous handler back
//! when a run is over, which matters to the in-process tests and to anyone calling `run`.

#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Set by the handler; cleared when a watch starts.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// How long a wait sleeps between two looks at the flag.
const SLICE: Duration = Duration::from_millis(50);

/// The exit code of a run stopped by Ctrl-C: 128 + SIGINT, as shells report it.
pub(crate) const EXIT_CODE: i32 = 130;

/// Ctrl-C watched while this lives; the previous handling comes back when it is dropped.
pub(crate) struct Watch {
    #[cfg(unix)]
    _os: unix::Installed,
    #[cfg(windows)]
    _os: windows::Installed,
}

impl Watch {
    /// Starts watching. `None` where the handler cannot be installed (no console, an OS
    /// without signals): Ctrl-C then ends the process as it always does.
    pub(crate) fn start() -> Option<Watch> {
        INTERRUPTED.store(false, Ordering::SeqCst);
        #[cfg(unix)]
        return unix::Installed::new().map(|os| Watch { _os: os });
        #[cfg(windows)]
        return windows::Installed::new().map(|os| Watch { _os: os });
        #[cfg(not(any(unix, windows)))]
        None
    }
}

/// Whether Ctrl-C was pressed since the watch started.
pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// What the handler does, and all it does: async-signal-safe, and safe on the console
/// handler's own thread on Windows.
fn note_interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Sleeps `d` on the monotonic clock, in slices, and returns early once Ctrl-C was pressed.
pub(crate) fn sleep(d: Duration) {
    let end = Instant::now() + d;
    loop {
        if interrupted() {
            return;
        }
        let now = Instant::now();
        if now >= end {
            return;
        }
        std::thread::sleep(SLICE.min(end - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_ends_early_once_interrupted() {
        // The flag is process-wide: set and cleared only here in the unit tests.
        INTERRUPTED.store(true, Ordering::SeqCst);
        let started = Instant::now();
        sleep(Duration::from_secs(30));
        assert!(started.elapsed() < Duration::from_secs(5));
        INTERRUPTED.store(false, Ordering::SeqCst);
        let started = Instant::now();
        sleep(Duration::from_millis(120));
        assert!(started.elapsed() >= Duration::from_millis(120));
    }
}
