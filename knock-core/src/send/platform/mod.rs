//! OS-specific details of sending behind one trait, one module per OS, re-exported as
//! `Native`, so no `cfg` reaches the sending logic.
//!
//! | OS | raw privilege | `IP_HDRINCL` length and offset |
//! | --- | --- | --- |
//! | Linux, Android | CAP_NET_RAW in the effective set (root has it) | network order |
//! | macOS (Darwin) | root | host order ([`ipv4_to_bsd_hdrincl`]) |
//! | FreeBSD | root | network order (since 11.0) |
//! | other unix | none: no raw sender | - |
//! | Windows | none: Windows sends no TCP through raw sockets | - |
//!
//! [`ipv4_to_bsd_hdrincl`]: crate::wire::ipv4_to_bsd_hdrincl

use std::io;

use socket2::Socket;

use super::privilege::Privilege;

#[cfg(unix)]
mod unix;

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) use linux::Native;

#[cfg(target_vendor = "apple")]
mod macos;
#[cfg(target_vendor = "apple")]
pub(crate) use macos::Native;

#[cfg(target_os = "freebsd")]
mod freebsd;
#[cfg(target_os = "freebsd")]
pub(crate) use freebsd::Native;

#[cfg(all(
    unix,
    not(any(
        target_os = "linux",
        target_os = "android",
        target_vendor = "apple",
        target_os = "freebsd"
    ))
))]
mod other_unix;
#[cfg(all(
    unix,
    not(any(
        target_os = "linux",
        target_os = "android",
        target_vendor = "apple",
        target_os = "freebsd"
    ))
))]
pub(crate) use other_unix::Native;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::Native;

/// What sending needs from the OS.
pub(crate) trait Platform {
    /// What this process may do with raw sockets, found without opening one.
    fn privilege() -> Privilege;

    /// True when a non-blocking `connect` failed only because the handshake is under way,
    /// which for a knock means the SYN has gone out.
    fn connect_in_progress(err: &io::Error) -> bool;

    /// Prepares a TCP socket to bind a fixed source port (`--source-port`) that the
    /// previous hit's socket may still hold.
    fn reuse_fixed_port(socket: &Socket) -> io::Result<()>;

    /// A raw IPv4 socket that sends whole packets, header included (`IP_HDRINCL`).
    fn raw_ipv4_socket() -> io::Result<Socket>;

    /// A raw IPv6 socket of protocol TCP: we write the segment and its checksum, the
    /// kernel writes the IPv6 header.
    fn raw_ipv6_tcp_socket() -> io::Result<Socket>;

    /// Rewrites an IPv4 packet built in wire order into the layout this OS's
    /// `IP_HDRINCL` takes.
    fn hdrincl_layout(packet: &mut [u8]);

    /// The ways to bind a source port this process was refused (a port below 1024), each a
    /// clause as in [`Grant::ways`](super::Grant::ways).
    fn bind_ways() -> &'static [&'static str] {
        &["run knock as root"]
    }
}
