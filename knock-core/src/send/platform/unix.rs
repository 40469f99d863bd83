//! What the unix systems share: how a non-blocking connect reports a SYN in flight, the
//! raw sockets, and the root check.
//!
//! The unix systems without a raw sender (`other_unix`) use only the first two functions.
#![cfg_attr(
    not(any(
        target_os = "linux",
        target_os = "android",
        target_vendor = "apple",
        target_os = "freebsd"
    )),
    allow(dead_code)
)]

use std::io;

use socket2::{Domain, Protocol, Socket, Type};

use crate::send::privilege::{Grant, Privilege};

/// `IPPROTO_RAW`: a send-only raw socket, so the kernel queues it none of the traffic
/// it receives (an `IPPROTO_TCP` raw socket would get a copy of every TCP segment).
const IPPROTO_RAW: i32 = 255;

pub(super) fn connect_in_progress(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::EINPROGRESS)
}

pub(super) fn reuse_fixed_port(socket: &Socket) -> io::Result<()> {
    // When a hit's handshake completed before its socket closed, the port sits in
    // TIME_WAIT; SO_REUSEADDR lets the next hit bind it anyway (its connection has
    // another destination port, so the two never mix).
    socket.set_reuse_address(true)
}

pub(super) fn raw_ipv4_socket() -> io::Result<Socket> {
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_RAW)))?;
    // Implied by IPPROTO_RAW on Linux, not on every BSD: say it.
    socket.set_header_included_v4(true)?;
    Ok(socket)
}

pub(super) fn raw_ipv6_tcp_socket() -> io::Result<Socket> {
    let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::TCP))?;
    // IPv6 has no IPPROTO_RAW sending, so this socket is also handed every TCP segment
    // for the address it is bound to. knock never reads it; keep that queue small.
    socket.set_recv_buffer_size(1)?;
    Ok(socket)
}

/// Whether the effective user is root.
#[allow(unsafe_code)]
pub(super) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The rule on systems where only root opens raw sockets (macOS, FreeBSD).
#[cfg_attr(not(any(target_os = "macos", target_os = "freebsd")), allow(dead_code))]
pub(super) fn root_only_privilege() -> Privilege {
    if is_root() {
        Privilege::Raw
    } else {
        Privilege::Missing(Grant::Root)
    }
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
