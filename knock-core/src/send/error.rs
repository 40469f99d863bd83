//! Why a hit could not be sent: the failed operation with its address, or a refusal.

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// The system call that failed, as it is named in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    Socket,
    Connect,
    SendTo,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Socket => "socket",
            Op::Connect => "connect",
            Op::SendTo => "sendto",
        })
    }
}

/// A hit the sender will not send, decided before anything is sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Exact TCP flags need a raw socket, which the plain sender does not have.
    #[error("raw flag knocks need the raw sender, which this version of knock does not have")]
    NeedsRaw,
}

/// A failed send. `Display` names the operation and the address
/// (`connect 192.0.2.2:7000`); the OS error is the [`source`](std::error::Error::source),
/// so a context chain prints `connect 192.0.2.2:7000: Network is unreachable (os error 101)`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    #[error("{op} {addr}")]
    Io {
        op: Op,
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Refused(#[from] Refusal),
}

impl SendError {
    pub(crate) fn io(op: Op, addr: SocketAddr, source: io::Error) -> SendError {
        SendError::Io { op, addr, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every cause, joined the way `{:#}` of anyhow joins them.
    fn chain(e: &dyn std::error::Error) -> String {
        let mut text = e.to_string();
        let mut cause = e.source();
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        text
    }

    #[test]
    fn names_operation_and_address() {
        let e = SendError::io(
            Op::Connect,
            "192.0.2.2:7000".parse().unwrap(),
            io::Error::other("boom"),
        );
        assert_eq!(chain(&e), "connect 192.0.2.2:7000: boom");
        let e = SendError::io(
            Op::SendTo,
            "[2001:db8::2]:8000".parse().unwrap(),
            io::Error::other("boom"),
        );
        assert_eq!(chain(&e), "sendto [2001:db8::2]:8000: boom");
        assert_eq!(Op::Socket.to_string(), "socket");
    }

    #[test]
    fn refusal_reads_alone() {
        let e = SendError::from(Refusal::NeedsRaw);
        assert_eq!(
            chain(&e),
            "raw flag knocks need the raw sender, which this version of knock does not have"
        );
    }
}
