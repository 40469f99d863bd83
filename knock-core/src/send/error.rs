//! Why a hit could not be sent: the failed operation with its address, or a refusal.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use super::privilege::Grant;

/// The system call that failed, as it is named in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    Socket,
    Bind,
    Connect,
    SendTo,
    /// Finding the source address the kernel would use for a destination.
    Route,
    /// Drawing the random source port, sequence number and IP identification.
    GetRandom,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Socket => "socket",
            Op::Bind => "bind",
            Op::Connect => "connect",
            Op::SendTo => "sendto",
            Op::Route => "route",
            Op::GetRandom => "getrandom",
        })
    }
}

/// A hit the sender will not send, decided before anything is sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Exact TCP flags need a raw socket, which the plain sender does not use.
    #[error("exact TCP flags need a raw socket, which the plain sender does not use")]
    NeedsRaw,
    /// The hit would go raw, and this process lacks the privilege for raw sockets.
    #[error("{need}, which needs {}", grant.needs())]
    NoPrivilege { need: RawNeed, grant: Grant },
    /// The hit would go raw, and this system never sends TCP through raw sockets.
    #[error("{need}, but {why}")]
    Unsupported { need: RawNeed, why: &'static str },
    /// UDP hits always go through a plain socket.
    #[error("UDP hits are not sent through raw sockets")]
    RawUdp,
    /// The hits that go through ordinary sockets cannot leave from the source port asked
    /// for: binding it was refused (a port below 1024 without privileges). `ways` are how
    /// to get the privilege, as clauses (none where no privilege helps).
    #[error("source port {port} cannot be bound: permission denied")]
    SourcePort {
        port: u16,
        ways: &'static [&'static str],
    },
}

/// Why a TCP hit has to go out through a raw socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawNeed {
    /// It has exact flags other than the SYN a connect sends.
    ExactFlags,
    /// The run asked for plain TCP hits to go raw (knock's `--raw`).
    RawMode,
}

impl fmt::Display for RawNeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RawNeed::ExactFlags => "exact TCP flags need a raw socket",
            RawNeed::RawMode => "sending a TCP hit raw needs a raw socket",
        })
    }
}

/// A failed send. `Display` names the operation, the address and the OS error
/// (`connect 192.0.2.2:7000: Network is unreachable (os error 101)`); the OS error is not
/// also the `source()`, so a context chain (`{:#}`) prints it once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    #[error("{op} {addr}: {error}")]
    Io {
        op: Op,
        addr: SocketAddr,
        error: io::Error,
    },
    #[error(transparent)]
    Refused(#[from] Refusal),
}

impl SendError {
    pub(crate) fn io(op: Op, addr: SocketAddr, error: io::Error) -> SendError {
        SendError::Io { op, addr, error }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error and every cause, the way the binaries print it.
    fn chain(e: SendError) -> String {
        format!("{:#}", anyhow::Error::new(e))
    }

    #[test]
    fn names_operation_and_address() {
        let e = SendError::io(
            Op::Connect,
            "192.0.2.2:7000".parse().unwrap(),
            io::Error::other("boom"),
        );
        assert_eq!(chain(e), "connect 192.0.2.2:7000: boom");
        let e = SendError::io(
            Op::SendTo,
            "[2001:db8::2]:8000".parse().unwrap(),
            io::Error::other("boom"),
        );
        assert_eq!(chain(e), "sendto [2001:db8::2]:8000: boom");
        // An OS error, in the message and not also the source: printed once.
        let e = SendError::io(
            Op::SendTo,
            "192.0.2.2:7000".parse().unwrap(),
            io::Error::from_raw_os_error(libc::EPERM),
        );
        assert!(std::error::Error::source(&e).is_none());
        let text = chain(e);
        assert!(text.starts_with("sendto 192.0.2.2:7000: "), "{text}");
        assert_eq!(text.matches("(os error").count(), 1, "{text}");
        let ops = [
            Op::Socket,
            Op::Bind,
            Op::Connect,
            Op::SendTo,
            Op::Route,
            Op::GetRandom,
        ];
        let names: Vec<String> = ops.iter().map(Op::to_string).collect();
        assert_eq!(
            names,
            ["socket", "bind", "connect", "sendto", "route", "getrandom"]
        );
    }

    #[test]
    fn refusal_reads_alone() {
        let e = SendError::from(Refusal::NeedsRaw);
        assert_eq!(
            chain(e),
            "exact TCP flags need a raw socket, which the plain sender does not use"
        );
        let e = SendError::from(Refusal::NoPrivilege {
            need: RawNeed::ExactFlags,
            grant: Grant::RootOrCapNetRaw,
        });
        assert_eq!(
            chain(e),
            "exact TCP flags need a raw socket, which needs root or CAP_NET_RAW"
        );
    }
}
