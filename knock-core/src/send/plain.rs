//! The unprivileged sender: what knock(1) puts on the wire, through ordinary sockets.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

use super::error::{Op, Refusal, SendError};
use super::platform::{Native, Platform};
use super::{Dest, Route, Sender};
use crate::hit::{Hit, Proto};

/// The one byte a UDP hit carries, as knock(1) sends it.
const UDP_PAYLOAD: [u8; 1] = [0];

/// Sends plain hits without privileges: a TCP hit is exactly one SYN from a fresh
/// ephemeral port (non-blocking `connect`, then `close`, so the kernel never retransmits
/// it), a UDP hit is one datagram with a 1-byte payload. Hits with exact TCP flags are
/// refused.
#[derive(Debug, Default)]
pub struct PlainSender {
    source_port: Option<u16>,
}

impl PlainSender {
    /// A sender whose hits leave from ephemeral ports the kernel picks.
    pub fn new() -> PlainSender {
        PlainSender::default()
    }

    /// A sender whose hits all leave from `port` (`--source-port`); `None` for ephemeral
    /// ports. Binding a port below 1024 needs privileges of its own.
    pub(crate) fn with_source_port(port: Option<u16>) -> PlainSender {
        PlainSender { source_port: port }
    }
}

impl Sender for PlainSender {
    fn check(&self, hit: &Hit) -> Result<(), Refusal> {
        if hit.needs_raw() {
            return Err(Refusal::NeedsRaw);
        }
        Ok(())
    }

    fn route(&self, _hit: &Hit) -> Route {
        Route::Plain
    }

    /// Binds the source port once per protocol among `hits`, as their sends will, and
    /// closes the sockets again. A refusal for want of privileges is a [`Refusal`]; any
    /// other failure (the port in use) is the bind error a send would have met.
    fn check_source(&self, hits: &[Hit], dst: Dest) -> Result<(), SendError> {
        let Some(port) = self.source_port else {
            return Ok(());
        };
        for proto in [Proto::Tcp, Proto::Udp] {
            let Some(hit) = hits.iter().find(|h| h.proto == proto) else {
                continue;
            };
            let addr = dst.socket_addr(hit.port);
            let socket =
                socket_for(addr, proto, true).map_err(|e| SendError::io(Op::Socket, addr, e))?;
            match bind_port(&socket, addr, port) {
                Err(SendError::Io { error, .. })
                    if error.kind() == io::ErrorKind::PermissionDenied =>
                {
                    return Err(SendError::Refused(Refusal::SourcePort {
                        port,
                        ways: Native::bind_ways(),
                    }));
                }
                other => other?,
            }
        }
        Ok(())
    }

    fn send(&mut self, hit: &Hit, dst: Dest) -> Result<(), SendError> {
        self.check(hit)?;
        let addr = dst.socket_addr(hit.port);
        match hit.proto {
            Proto::Tcp => syn(addr, self.source_port),
            Proto::Udp => datagram(addr, self.source_port),
        }
    }
}

/// Binds `socket` to `port` on the wildcard address of `dst`'s family, so the kernel still
/// picks the source address.
fn bind_port(socket: &Socket, dst: SocketAddr, port: u16) -> Result<(), SendError> {
    let any: IpAddr = match dst {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let local = SocketAddr::new(any, port);
    socket
        .bind(&local.into())
        .map_err(|e| SendError::io(Op::Bind, local, e))
}

/// A socket for a hit of `proto` to `addr`: a non-blocking TCP socket, which may reuse the
/// port of the previous hit when it binds a `fixed` one, or a UDP socket.
fn socket_for(addr: SocketAddr, proto: Proto, fixed: bool) -> io::Result<Socket> {
    let domain = Domain::for_address(addr);
    match proto {
        Proto::Tcp => {
            let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
            socket.set_nonblocking(true)?;
            if fixed {
                Native::reuse_fixed_port(&socket)?;
            }
            Ok(socket)
        }
        Proto::Udp => Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)),
    }
}

fn syn(addr: SocketAddr, source_port: Option<u16>) -> Result<(), SendError> {
    let socket = socket_for(addr, Proto::Tcp, source_port.is_some())
        .map_err(|e| SendError::io(Op::Socket, addr, e))?;
    if let Some(port) = source_port {
        bind_port(&socket, addr, port)?;
    }
    match socket.connect(&addr.into()) {
        Ok(()) => Ok(()),
        Err(e) if Native::connect_in_progress(&e) => Ok(()),
        // The SYN went out and the answer (an RST) came back before connect returned.
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(()),
        Err(e) => Err(SendError::io(Op::Connect, addr, e)),
    }
    // Dropping the socket closes it while the handshake is pending: the kernel forgets
    // the connection and sends nothing more.
}

fn datagram(addr: SocketAddr, source_port: Option<u16>) -> Result<(), SendError> {
    let socket = socket_for(addr, Proto::Udp, source_port.is_some())
        .map_err(|e| SendError::io(Op::Socket, addr, e))?;
    if let Some(port) = source_port {
        bind_port(&socket, addr, port)?;
    }
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
            sender.send(&fin, LOOPBACK.into()),
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
        PlainSender::new()
            .send(&Hit::udp(port), LOOPBACK.into())
            .unwrap();
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
        PlainSender::new()
            .send(&Hit::tcp(port), LOOPBACK.into())
            .unwrap();
    }

    /// A port that was free a moment ago.
    fn free_port() -> u16 {
        UdpSocket::bind((LOOPBACK, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[test]
    fn udp_hits_leave_from_the_source_port() {
        let server = UdpSocket::bind((LOOPBACK, 0)).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let dst_port = server.local_addr().unwrap().port();
        let source = free_port();
        let mut sender = PlainSender::with_source_port(Some(source));
        for _ in 0..2 {
            sender.send(&Hit::udp(dst_port), LOOPBACK.into()).unwrap();
            let (_, from) = server.recv_from(&mut [0u8; 4]).unwrap();
            assert_eq!(from.port(), source);
        }
    }

    #[test]
    fn tcp_hits_leave_from_the_source_port_even_past_time_wait() {
        let listener = TcpListener::bind((LOOPBACK, 0)).unwrap();
        let open = listener.local_addr().unwrap();
        let source = free_port();
        // An earlier hit whose handshake completed: closing first leaves its port in
        // TIME_WAIT, which must not keep the next hit from binding it.
        let earlier = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        Native::reuse_fixed_port(&earlier).unwrap();
        earlier
            .bind(&SocketAddr::new(LOOPBACK, source).into())
            .unwrap();
        earlier.connect(&open.into()).unwrap();
        let (accepted, from) = listener.accept().unwrap();
        assert_eq!(from.port(), source);
        drop(earlier);
        drop(accepted);

        let closed = free_port();
        let mut sender = PlainSender::with_source_port(Some(source));
        sender.send(&Hit::tcp(closed), LOOPBACK.into()).unwrap();
        sender.send(&Hit::tcp(closed), LOOPBACK.into()).unwrap();
    }

    #[test]
    fn the_source_port_is_checked_by_binding_it_and_letting_it_go() {
        let source = free_port();
        let sender = PlainSender::with_source_port(Some(source));
        let hits = [Hit::tcp(9), Hit::udp(9)];
        for _ in 0..2 {
            sender.check_source(&hits, LOOPBACK.into()).unwrap();
        }
        // Nothing to check without a fixed port, or without plain hits.
        PlainSender::new()
            .check_source(&hits, LOOPBACK.into())
            .unwrap();
        sender.check_source(&[], LOOPBACK.into()).unwrap();
        // A port another socket holds is the bind error the send would meet.
        let taken = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = PlainSender::with_source_port(Some(port))
            .check_source(&[Hit::udp(9)], LOOPBACK.into())
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("bind 0.0.0.0:{port}: ")),
            "{err}"
        );
        // A port below 1024 that may not be bound here is a refusal, with the ways to get
        // the privilege. (Root, Windows, macOS and containers that lower Linux's
        // ip_unprivileged_port_start bind it.)
        match PlainSender::with_source_port(Some(1)).check_source(&[Hit::tcp(9)], LOOPBACK.into()) {
            Err(SendError::Refused(Refusal::SourcePort { port: 1, ways })) => {
                assert_eq!(ways, Native::bind_ways())
            }
            Err(SendError::Refused(other)) => panic!("{other}"),
            _ => eprintln!("SKIP the privileged-port half: port 1 may be bound here"),
        }
    }

    #[test]
    fn a_taken_source_port_names_bind_and_the_address() {
        let taken = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = PlainSender::with_source_port(Some(port))
            .send(&Hit::udp(9), LOOPBACK.into())
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("bind 0.0.0.0:{port}: ")),
            "{text}"
        );
        let SendError::Io { error, .. } = err else {
            panic!("not an I/O error: {err:?}");
        };
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
    }
}
