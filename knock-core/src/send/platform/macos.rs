//! macOS and the other Darwin systems: raw sockets need root, and `IP_HDRINCL` wants the
//! IPv4 total length and fragment-offset word in host byte order.
//!
//! Darwin kept the old BSD convention: `rip_output` takes `ip_len` and `ip_off` as the
//! kernel once stored them internally, in host order, and swaps them on the way out. A
//! packet written in network order fails `sendto` with `EINVAL` on a little-endian Mac
//! (the length reads as 10240 for a 40-byte packet). [`ipv4_to_bsd_hdrincl`] swaps the two
//! fields; the rest of the header stays in network order. Checked by compiling only: no
//! Mac runs these tests.
//!
//! [`ipv4_to_bsd_hdrincl`]: crate::wire::ipv4_to_bsd_hdrincl

use std::io;

use socket2::Socket;

use super::{Platform, unix};
use crate::send::privilege::Privilege;
use crate::wire::ipv4_to_bsd_hdrincl;

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

    fn hdrincl_layout(packet: &mut [u8]) {
        // The raw sender passes only packets that ipv4_packet built, which always have a
        // 20-byte IPv4 header: the one error this reports cannot happen here.
        let _ = ipv4_to_bsd_hdrincl(packet);
    }
}
