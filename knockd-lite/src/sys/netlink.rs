//! A netlink socket to the kernel's netfilter subsystem (NETLINK_NETFILTER), for the
//! nftables doors: datagrams out and in, nothing more. What the datagrams hold is built and
//! read in `crate::nft`, which has no I/O.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// `SOL_NETLINK` and `NETLINK_CAP_ACK` (linux/netlink.h): acks carry only the header of
/// the request they answer, not the whole request.
const SOL_NETLINK: libc::c_int = 270;
const NETLINK_CAP_ACK: libc::c_int = 10;

/// A bound NETLINK_NETFILTER socket whose receives give up after a time limit.
#[derive(Debug)]
pub(crate) struct NetlinkSocket {
    fd: OwnedFd,
}

impl NetlinkSocket {
    /// Opens the socket; `recv` waits at most `timeout` for a datagram. Opening needs no
    /// privilege; the kernel checks CAP_NET_ADMIN on each request.
    pub(crate) fn netfilter(timeout: Duration) -> io::Result<NetlinkSocket> {
        // SAFETY: plain socket(2) call with constant arguments; the result is checked.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_NETFILTER,
            )
        };
        let raw = super::check(raw)? as RawFd;
        // SAFETY: raw is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let addr = kernel_addr();
        // SAFETY: addr is a valid sockaddr_nl (port 0: the kernel picks ours) and the
        // length passed is its size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        super::check(rc)?;
        let tv = libc::timeval {
            tv_sec: timeout.as_secs().min(i32::MAX as u64) as super::TimeT,
            tv_usec: timeout.subsec_micros() as super::SusecondsT,
        };
        set_option(&fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)?;
        // Older kernels lack the option; acks are then only longer.
        let _ = set_option(&fd, SOL_NETLINK, NETLINK_CAP_ACK, &1 as &libc::c_int);
        Ok(NetlinkSocket { fd })
    }

    /// Sends one datagram (one message, or a whole batch) to the kernel.
    pub(crate) fn send(&self, bytes: &[u8]) -> io::Result<()> {
        let addr = kernel_addr();
        // SAFETY: bytes is a valid buffer of its length; addr is a valid sockaddr_nl of the
        // length passed.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                0,
                (&addr as *const libc::sockaddr_nl).cast(),
                mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        let sent = super::check(rc as i64)? as usize;
        if sent != bytes.len() {
            return Err(io::Error::other(format!(
                "sent {sent} of {} bytes",
                bytes.len()
            )));
        }
        Ok(())
    }

    /// Receives one datagram into `buf`; `TimedOut` if none came within the time limit.
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: buf is a valid, writable buffer of the length passed. MSG_TRUNC makes
        // the result the datagram's real length, so a cut one is seen below.
        let rc = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC,
            )
        };
        match super::check(rc as i64) {
            Ok(n) if n as usize > buf.len() => Err(io::Error::other(format!(
                "a {n}-byte reply did not fit the {}-byte buffer",
                buf.len()
            ))),
            Ok(n) => Ok(n as usize),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no answer from the kernel in time",
            )),
            Err(e) => Err(e),
        }
    }
}

/// The kernel's netlink address (port 0), also the unbound address to bind to.
fn kernel_addr() -> libc::sockaddr_nl {
    // SAFETY: sockaddr_nl is plain old data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_nl = unsafe { mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    addr
}

fn set_option<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: value points to a live T and the length passed is its size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    super::check(rc).map(drop)
}
