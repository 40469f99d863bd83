//! Packets on the wire: building knock packets and parsing captured frames.
//!
//! pnet stays inside this module; the public API speaks only in std and crate types.

use std::net::IpAddr;

use crate::hit::{Proto, TcpFlags};

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
