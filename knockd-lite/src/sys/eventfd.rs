//! An eventfd: a counter other threads bump to wake a thread that polls it.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A non-blocking eventfd. Reads and writes go through std's `File`, 8 bytes at a time as
/// eventfd(2) requires.
#[derive(Debug)]
pub(crate) struct EventFd(File);

impl EventFd {
    pub(crate) fn new() -> io::Result<EventFd> {
        // SAFETY: plain eventfd(2) call with valid flags; the result is checked below.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        let raw = super::check(raw)? as RawFd;
        // SAFETY: raw is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(EventFd(File::from(fd)))
    }

    /// Makes the descriptor readable (until [`EventFd::clear`]).
    pub(crate) fn notify(&self) {
        // Only a counter at its maximum refuses, and then it is readable anyway.
        let _ = (&self.0).write(&1u64.to_ne_bytes());
    }

    /// Resets the counter, so the descriptor is quiet until the next notify.
    pub(crate) fn clear(&self) {
        let mut buf = [0u8; 8];
        // Nothing to read (EAGAIN) is the quiet state already.
        let _ = (&self.0).read(&mut buf);
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{PollFd, poll};
    use std::time::Duration;

    #[test]
    fn readable_after_notify_until_cleared() {
        let e = EventFd::new().unwrap();
        let mut fds = [PollFd::readable(e.as_raw_fd())];
        assert_eq!(poll(&mut fds, Duration::ZERO).unwrap(), 0);
        e.notify();
        e.notify();
        assert_eq!(poll(&mut fds, Duration::ZERO).unwrap(), 1);
        e.clear();
        assert_eq!(poll(&mut fds, Duration::ZERO).unwrap(), 0);
        e.clear();
    }
}
