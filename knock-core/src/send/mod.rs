//! Sending hits: the [`Sender`] seam, the unprivileged [`PlainSender`], the [`RawSender`]
//! for exact TCP flags, and the [`KnockSender`] that routes each hit to one of them.
//!
//! A run asks its sender to [`check`](Sender::check) every hit before it sends the first
//! one, so a sequence that cannot go out whole is refused before any packet leaves (a half
//! sent sequence would leave the server's attempt in a state the user cannot see).
//!
//! [`PlainSender`] sends what knock(1) sends and needs no privileges: a TCP hit is one SYN
//! from a non-blocking `connect`, a UDP hit one datagram. A hit with exact TCP flags
//! ([`Hit::needs_raw`]) needs a raw socket: [`RawSender`] builds the whole packet
//! ([`crate::wire::build`]) and sends it through one, which needs root or CAP_NET_RAW.
//! Whether this process has that is a plain value, [`Privilege`], found once before
//! anything is sent; without it the raw hits are refused ([`Refusal::NoPrivilege`]) with
//! the ways to get it ([`Grant::ways`]).
//!
//! ```no_run
//! use knock_core::hit::{parse_sequence, Proto};
//! use knock_core::send::{Dest, KnockSender, Privilege, SendOptions, Sender};
//!
//! let hits = parse_sequence("7000:tcp:fin,8000:tcp:fin+psh,9000:udp", Proto::Tcp).unwrap();
//! let mut sender = KnockSender::new(SendOptions::default(), Privilege::current());
//! for hit in &hits {
//!     sender.check(hit).expect("root or CAP_NET_RAW");
//! }
//! for hit in &hits {
//!     sender.send(hit, Dest::from("192.0.2.2".parse::<std::net::IpAddr>().unwrap())).unwrap();
//! }
//! ```
//!
//! OS differences live in `platform`, one module per OS, so no `cfg` reaches this logic.

mod error;
mod plain;
mod platform;
mod privilege;
mod raw;
mod route;

use std::net::{IpAddr, SocketAddr, SocketAddrV6};

pub use error::{Op, RawNeed, Refusal, SendError};
pub use plain::PlainSender;
pub use privilege::{Grant, Privilege};
pub use raw::RawSender;
pub use route::{KnockSender, Route, SendOptions};

use crate::hit::Hit;

/// Something that puts hits on the wire.
pub trait Sender {
    /// Whether this sender can send `hit`, decided without sending anything.
    fn check(&self, hit: &Hit) -> Result<(), Refusal>;

    /// Sends one hit to `dst`, returning once the packet is handed to the OS.
    fn send(&mut self, hit: &Hit, dst: Dest) -> Result<(), SendError>;

    /// Which way `hit` goes out: through an ordinary socket or a raw one.
    fn route(&self, hit: &Hit) -> Route;

    /// Whether `hits` can leave for `dst` from the fixed source port (`--source-port`), found
    /// by binding it as sending would and letting it go, before anything is sent. A
    /// sender without a fixed port, or whose sockets bind none, has nothing to check.
    fn check_source(&self, _hits: &[Hit], _dst: Dest) -> Result<(), SendError> {
        Ok(())
    }
}

/// Where a run's hits go: an address and, for IPv6, its scope: the interface of a
/// link-local address (`fe80::1%eth0`), which a bare [`IpAddr`] cannot carry and without
/// which the OS cannot tell which link to send on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Dest {
    pub ip: IpAddr,
    /// The IPv6 scope id (an interface index); 0 for none, and always 0 for IPv4.
    pub scope_id: u32,
}

impl Dest {
    /// The socket address of `port` at this destination, with the scope.
    pub fn socket_addr(self, port: u16) -> SocketAddr {
        match self.ip {
            IpAddr::V4(ip) => SocketAddr::new(ip.into(), port),
            IpAddr::V6(ip) => SocketAddrV6::new(ip, port, 0, self.scope_id).into(),
        }
    }
}

impl From<IpAddr> for Dest {
    fn from(ip: IpAddr) -> Dest {
        Dest { ip, scope_id: 0 }
    }
}

/// The address and scope of a resolved socket address; its port is dropped.
impl From<SocketAddr> for Dest {
    fn from(addr: SocketAddr) -> Dest {
        match addr {
            SocketAddr::V4(a) => Dest::from(IpAddr::V4(*a.ip())),
            SocketAddr::V6(a) => Dest {
                ip: IpAddr::V6(*a.ip()),
                scope_id: a.scope_id(),
            },
        }
    }
}
