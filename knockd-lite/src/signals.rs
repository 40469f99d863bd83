//! SIGHUP, SIGTERM and SIGINT, delivered to the main loop through a signalfd.
//!
//! [`Signals::new`] comes first in start-up: it blocks the signals, and threads started
//! later inherit the block, so no thread ever takes one with its default action. Commands
//! do not inherit the blocked mask: std resets it in the child before exec.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use crate::sys::SignalFd;

/// A signal for the main loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    /// SIGHUP: re-read the config and the interface addresses.
    Reload,
    /// SIGTERM or SIGINT (the number): run pending stop commands and exit 0.
    Shutdown(i32),
}

const HANDLED: [i32; 3] = [libc::SIGHUP, libc::SIGTERM, libc::SIGINT];

/// SIGHUP, SIGTERM and SIGINT as readable events on a descriptor.
#[derive(Debug)]
pub(crate) struct Signals(SignalFd);

impl Signals {
    /// Blocks the signals in the calling thread (and so in threads it starts later) and
    /// opens a signalfd for them. SIGPIPE is ignored, so a closed stdout or syslog socket
    /// becomes an error, not death.
    pub(crate) fn new() -> io::Result<Signals> {
        SignalFd::new(&HANDLED).map(Signals)
    }

    /// Readable when a signal is pending; poll it with the capture socket.
    pub(crate) fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// The signals that arrived, oldest first, without waiting.
    pub(crate) fn pending(&mut self) -> Vec<Signal> {
        self.0
            .pending()
            .into_iter()
            .map(|sig| {
                if sig == libc::SIGHUP {
                    Signal::Reload
                } else {
                    Signal::Shutdown(sig)
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{self, PollFd};
    use std::time::Duration;

    #[test]
    fn signals_arrive_on_the_descriptor() {
        // Runs on its own thread so the blocked mask stays there; the signals are sent to
        // that thread only, never to the whole test process.
        std::thread::spawn(|| {
            let mut sigs = Signals::new().unwrap();
            assert!(sigs.pending().is_empty());
            sys::raise(libc::SIGHUP);
            sys::raise(libc::SIGTERM);
            let mut fds = [PollFd::readable(sigs.fd())];
            assert_eq!(sys::poll(&mut fds, Duration::from_secs(1)).unwrap(), 1);
            // Standard signals are dequeued lowest number first.
            assert_eq!(
                sigs.pending(),
                vec![Signal::Reload, Signal::Shutdown(libc::SIGTERM)]
            );
            sys::raise(libc::SIGINT);
            assert_eq!(sigs.pending(), vec![Signal::Shutdown(libc::SIGINT)]);
        })
        .join()
        .unwrap();
    }
}
