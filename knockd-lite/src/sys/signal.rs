//! Signals as input: blocking them in the calling thread and reading them from a signalfd.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The size of `struct signalfd_siginfo`, which every read returns whole.
const SIGINFO_LEN: usize = std::mem::size_of::<libc::signalfd_siginfo>();

/// A signalfd for some signals, which are blocked in the thread that made it (and in the
/// threads it starts afterwards, which inherit the mask).
#[derive(Debug)]
pub(crate) struct SignalFd(File);

impl SignalFd {
    /// Blocks `signals` in the calling thread, opens a non-blocking signalfd for them, and
    /// ignores SIGPIPE (so a closed pipe or socket is an error, not death).
    pub(crate) fn new(signals: &[i32]) -> io::Result<SignalFd> {
        // SAFETY: sigset_t is plain data, for which all-zero is valid, and sigemptyset
        // initialises it before use.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: set is a live sigset_t; sigemptyset and sigaddset only write into it (a
        // bad signal number is reported, not undefined).
        unsafe {
            libc::sigemptyset(&mut set);
            for &sig in signals {
                super::check(libc::sigaddset(&mut set, sig))
                    .map_err(|e| with_op("sigaddset", e))?;
            }
        }
        // SAFETY: set is initialised; pthread_sigmask changes only this thread's mask and
        // takes a null old-set pointer.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(with_op("pthread_sigmask", io::Error::from_raw_os_error(rc)));
        }
        // SAFETY: SIG_IGN installs no handler code; the previous disposition is not needed.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        // SAFETY: set is initialised; signalfd(-1, ...) returns a new descriptor or -1.
        let raw = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        let raw = super::check(raw).map_err(|e| with_op("signalfd", e))? as RawFd;
        // SAFETY: raw is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(SignalFd(File::from(fd)))
    }

    /// The numbers of the signals that arrived, oldest first, without waiting.
    pub(crate) fn pending(&mut self) -> Vec<i32> {
        let mut out = Vec::new();
        let mut info = [0u8; SIGINFO_LEN];
        // Each read returns whole siginfo structs; ssi_signo, a u32, comes first.
        while let Ok(SIGINFO_LEN) = self.0.read(&mut info) {
            let signo = u32::from_ne_bytes([info[0], info[1], info[2], info[3]]);
            out.push(i32::try_from(signo).unwrap_or(0));
        }
        out
    }
}

impl AsRawFd for SignalFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

fn with_op(op: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{op}: {e}"))
}

/// Sends `sig` to the calling thread only (raise uses tgkill).
#[cfg(test)]
pub(crate) fn raise(sig: i32) {
    // SAFETY: raise has no memory effects; the tests that call it have `sig` blocked or
    // ignored in the calling thread, so no default action runs.
    unsafe { libc::raise(sig) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_siginfo_layout_starts_with_the_signal_number() {
        assert_eq!(SIGINFO_LEN, 128);
        // SAFETY: plain data; only the offset of one field is inspected.
        let info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let base = std::ptr::addr_of!(info) as usize;
        assert_eq!(std::ptr::addr_of!(info.ssi_signo) as usize - base, 0);
    }
}
