//! FreeBSD: raw sockets need root; `IP_HDRINCL` takes the packet in network order.
//!
//! FreeBSD before 11.0 wanted the IPv4 total length and fragment-offset word in host
//! order, as macOS still does. 11.0 changed `rip_output` to take them in network order, and
//! Rust's FreeBSD targets need a newer release than that, so no conversion is made here.
//! Checked by compiling only: no FreeBSD machine runs these tests.

use std::io;

use socket2::Socket;

use super::{Platform, unix};
use crate::send::privilege::Privilege;

pub(crate) struct Native;

impl Platform for Native {
    fn privilege() -> Privilege {
        unix::root_only_privilege()
    }

    fn connect_in_progress(err: &io::Error) -> bool {
        unix::connect_in_progress(err)
    }

    fn reuse_fixed_port(socket: &Socket) -> io::Result<()> {
        unix::reuse_fixed_port(socket)
    }

    fn raw_ipv4_socket() -> io::Result<Socket> {
        unix::raw_ipv4_socket()
    }

    fn raw_ipv6_tcp_socket() -> io::Result<Socket> {
        unix::raw_ipv6_tcp_socket()
    }

    fn hdrincl_layout(_packet: &mut [u8]) {}
}
