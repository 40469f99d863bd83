//! Waiting for descriptors: `ppoll(2)` with a nanosecond timeout.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// One descriptor to watch for input.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub(crate) struct PollFd(libc::pollfd);

impl PollFd {
    /// Watches `fd` for input. A descriptor that is not open only makes poll report
    /// `POLLNVAL` for it, so any number is safe to pass.
    pub(crate) fn readable(fd: RawFd) -> PollFd {
        PollFd(libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
    }

    /// Whether anything was reported for it (input, an error, a hang-up).
    pub(crate) fn ready(&self) -> bool {
        self.0.revents != 0
    }

    /// Whether an error is pending on it (`POLLERR`).
    pub(crate) fn failed(&self) -> bool {
        self.0.revents & libc::POLLERR != 0
    }
}

/// Waits up to `timeout` until one of `fds` is ready (none: a plain sleep) and returns how
/// many are. A signal that interrupts the wait is `ErrorKind::Interrupted`.
pub(crate) fn poll(fds: &mut [PollFd], timeout: Duration) -> io::Result<usize> {
    for f in fds.iter_mut() {
        f.0.revents = 0;
    }
    let ts = libc::timespec {
        tv_sec: super::TimeT::try_from(timeout.as_secs()).unwrap_or(super::TimeT::MAX),
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    let n = libc::nfds_t::try_from(fds.len())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: PollFd is a transparent pollfd, so fds is a live array of n pollfd structs that
    // ppoll may write revents into; ts is a valid timespec; no signal mask is passed.
    let rc = unsafe {
        libc::ppoll(
            fds.as_mut_ptr().cast::<libc::pollfd>(),
            n,
            &ts,
            std::ptr::null(),
        )
    };
    super::check(rc).map(|n| n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::time::Instant;

    #[test]
    fn waits_for_input_or_the_timeout() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut fds = [PollFd::readable(b.as_raw_fd())];
        let start = Instant::now();
        assert_eq!(poll(&mut fds, Duration::from_millis(50)).unwrap(), 0);
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert!(!fds[0].ready());
        a.write_all(b"x").unwrap();
        assert_eq!(poll(&mut fds, Duration::from_secs(5)).unwrap(), 1);
        assert!(fds[0].ready() && !fds[0].failed());
        // Nothing to watch: a sleep.
        assert_eq!(poll(&mut [], Duration::from_millis(1)).unwrap(), 0);
    }
}
