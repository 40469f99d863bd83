//! Packets on the wire: their layout, their vocabulary, building knock packets and parsing
//! captured frames.
//!
//! pnet stays inside this module; the public API speaks only in std and crate types.
//!
//! * [`field`]: the one table of header offsets, EtherTypes and protocol numbers;
//! * [`Proto`] and [`TcpFlags`]: the transport vocabulary (re-exported by the hit grammar);
//! * [`build`]: IPv4/IPv6 packets and bare TCP/UDP segments with correct checksums, for the
//!   raw sender;
//! * [`parse`]: captured frames (Ethernet, BSD loopback, raw IP, Linux cooked) into
//!   [`KnockPacket`]s, for the server's capture loop. It never panics.

use std::net::IpAddr;

pub mod build;
pub mod field;
pub mod parse;
mod proto;

pub use build::{
    BuildError, Ipv4Header, Ipv6Header, TcpSegment, Transport, UdpDatagram, ipv4_packet,
    ipv4_to_bsd_hdrincl, ipv6_packet, transport_segment,
};
pub use parse::{LinkType, ParseError, parse_frame, parse_ip};
pub use proto::{Proto, TcpFlags};

/// What the server needs to know about one captured packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnockPacket {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: Proto,
    pub dst_port: u16,
    /// TCP flags; always empty for UDP.
    pub tcp_flags: TcpFlags,
}
