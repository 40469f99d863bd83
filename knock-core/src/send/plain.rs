//! The unprivileged sender: what knock(1) puts on the wire, through ordinary sockets.

use std::io;
use std::net::{IpAddr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

use super::error::{Op, Refusal, SendError};
use super::{Sender, platform};
use crate::hit::{Hit, Proto};

/// The one byte a UDP hit carries, as knock(1) sends it.
const UDP_PAYLOAD: [u8; 1] = [0];

/// Sends plain hits without privileges: a TCP hit is exactly one SYN from a fresh
/// ephemeral port (non-blocking `connect`, then `close`, so the kernel never retransmits
/// it), a UDP hit is one datagram with a 1-byte payload. Hits with exact TCP flags are
/// refused.
#[derive(Debug, Default)]
pub struct PlainSender {
    _private: (),
}

impl PlainSender {
    pub fn new() -> PlainSender {
        PlainSender::default()
    }
}

impl Sender for PlainSender {
    fn check(&self, hit: &Hit) -> Result<(), Refusal> {
        if hit.needs_raw() {
            return Err(Refusal::NeedsRaw);
        }
        Ok(())
    }

    fn send(&mut self, hit: &Hit, dst: IpAddr) -> Result<(), SendError> {
        self.check(hit)?;
        let addr = SocketAddr::new(dst, hit.port);
        match hit.proto {
            Proto::Tcp => syn(addr),
            Proto::Udp => datagram(addr),
        }
    }
}

fn syn(addr: SocketAddr) -> Result<(), SendError> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| SendError::io(Op::Socket, addr, e))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| SendError::io(Op::Socket, addr, e))?;
    match socket.connect(&addr.into()) {
        Ok(()) => Ok(()),
        Err(e) if platform::connect_in_progress(&e) => Ok(()),
        // The SYN went out and the answer (an RST) came back before connect returned.
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(()),
        Err(e) => Err(SendError::io(Op::Connect, addr, e)),
    }
    // Dropping the socket closes it while the handshake is pending: the kernel forgets
    // the connection and sends nothing more.
}

fn datagram(addr: SocketAddr) -> Result<(), SendError> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| SendError::io(Op::Socket, addr, e))?;
    socket
        .send_to(&UDP_PAYLOAD, &addr.into())
        .map_err(|e| SendError::io(Op::SendTo, addr, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hit::TcpFlags;
    use std::net::{Ipv4Addr, TcpListener, UdpSocket};
    use std::time::Duration;

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn refuses_exact_flags_before_sending() {
        let mut sender = PlainSender::new();
        let fin = Hit::tcp_flags(7000, TcpFlags::FIN);
        assert_eq!(sender.check(&fin), Err(Refusal::NeedsRaw));
        assert!(matches!(
            sender.send(&fin, LOOPBACK),
            Err(SendError::Refused(Refusal::NeedsRaw))
        ));
        assert_eq!(sender.check(&Hit::tcp(7000)), Ok(()));
        assert_eq!(sender.check(&Hit::udp(7000)), Ok(()));
        let any = Hit::parse("tcp:7000:i", Proto::Tcp).unwrap();
        assert_eq!(sender.check(&any), Ok(()));
    }

    #[test]
    fn udp_hit_is_one_byte() {
        let server = UdpSocket::bind((LOOPBACK, 0)).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let port = server.local_addr().unwrap().port();
        PlainSender::new().send(&Hit::udp(port), LOOPBACK).unwrap();
        let mut buf = [0xffu8; 16];
        let (n, _) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &UDP_PAYLOAD);
    }

    #[test]
    fn tcp_hit_to_a_closed_port_counts_as_sent() {
        // Bind then drop a listener to find a port that is closed now.
        let port = TcpListener::bind((LOOPBACK, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        PlainSender::new().send(&Hit::tcp(port), LOOPBACK).unwrap();
    }
}
