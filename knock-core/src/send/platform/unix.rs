//! Unix (Linux, macOS, the BSDs): how a non-blocking connect reports a SYN in flight.

use std::io;

/// True when a non-blocking `connect` failed only because the handshake is under way,
/// which for a knock means the SYN has gone out.
pub(crate) fn connect_in_progress(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::EINPROGRESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_einprogress_means_sent() {
        assert!(connect_in_progress(&io::Error::from_raw_os_error(
            libc::EINPROGRESS
        )));
        // EAGAIN from a TCP connect means no ephemeral port was free: nothing was sent.
        assert!(!connect_in_progress(&io::Error::from_raw_os_error(
            libc::EAGAIN
        )));
        assert!(!connect_in_progress(&io::Error::from_raw_os_error(
            libc::ENETUNREACH
        )));
    }
}
