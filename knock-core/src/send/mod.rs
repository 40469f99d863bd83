//! Sending hits: the [`Sender`] seam and the unprivileged [`PlainSender`].
//!
//! A run asks its sender to [`check`](Sender::check) every hit before it sends the first
//! one, so a sequence that cannot go out whole is refused before any packet leaves (a half
//! sent sequence would leave the server's attempt in a state the user cannot see).
//!
//! [`PlainSender`] sends what knock(1) sends and needs no privileges: a TCP hit is one SYN
//! from a non-blocking `connect`, a UDP hit one datagram. A hit with exact TCP flags
//! ([`Hit::needs_raw`]) needs a raw socket; the plain sender refuses it with
//! [`Refusal::NeedsRaw`]. A raw sender implements the same trait, and a sender that routes
//! each hit to the plain or the raw one is what the client then holds.
//!
//! OS differences live in `platform`, one module per OS, so no `cfg` reaches this logic.

mod error;
mod plain;
mod platform;

use std::net::IpAddr;

pub use error::{Op, Refusal, SendError};
pub use plain::PlainSender;

use crate::hit::Hit;

/// Something that puts hits on the wire.
pub trait Sender {
    /// Whether this sender can send `hit`, decided without sending anything.
    fn check(&self, hit: &Hit) -> Result<(), Refusal>;

    /// Sends one hit to `dst`, returning once the packet is handed to the OS.
    fn send(&mut self, hit: &Hit, dst: IpAddr) -> Result<(), SendError>;
}
