//! The raw sender: TCP hits with any flags, built whole by us and sent through raw sockets.
//!
//! IPv4 goes through one `IP_HDRINCL` socket with the packet from [`ipv4_packet`] (laid
//! out the way the OS wants it, see `platform`). IPv6 goes through a raw socket of protocol
//! TCP: the kernel writes the IPv6 header and we write the segment, whose checksum covers
//! the source address, so the socket is bound to the source we computed it for.
//!
//! The source address is the one the kernel would pick for the destination: we connect a
//! UDP socket to it and read the local address back (a UDP connect only consults the
//! routing table; nothing is sent). Each hit gets a fresh random source port, sequence
//! number and IPv4 identification unless a source port is fixed.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};

use socket2::Socket;

use super::error::{Op, Refusal, SendError};
use super::platform::{Native, Platform};
use super::privilege::Privilege;
use super::{Dest, Route, Sender};
use crate::hit::{Hit, TcpFlags};
use crate::wire::build::{
    DEFAULT_TTL, DEFAULT_WINDOW, Ipv4Header, TcpSegment, Transport, ipv4_packet, transport_segment,
};

/// First port of the range random source ports come from: the IANA dynamic range,
/// 49152-65535, where ephemeral ports live on most systems.
const DYNAMIC_PORTS: u16 = 49152;

/// Sends TCP hits through raw sockets with exactly their flags: [`Hit::wire_flags`], so a
/// hit without flags goes out as a bare SYN. UDP hits are refused; privileges are checked
/// against the [`Privilege`] it was made with, and sockets are opened on first use.
#[derive(Debug)]
pub struct RawSender {
    privilege: Privilege,
    source_port: Option<u16>,
    v4: Option<Socket>,
    /// The IPv6 socket and the source address (and scope) it is bound to.
    v6: Option<(SocketAddrV6, Socket)>,
}

impl RawSender {
    /// A raw sender for a process with `privilege` (normally [`Privilege::current`]). Hits
    /// leave from `source_port`, or from a random port each when `None`.
    pub fn new(privilege: Privilege, source_port: Option<u16>) -> RawSender {
        RawSender {
            privilege,
            source_port,
            v4: None,
            v6: None,
        }
    }

    fn send_v4(&mut self, seg: TcpSegment, ip: Ipv4Header) -> Result<(), (Op, io::Error)> {
        let mut packet =
            ipv4_packet(&ip, &Transport::Tcp(seg)).expect("a 40-byte TCP packet always fits");
        Native::hdrincl_layout(&mut packet);
        let socket = open_once(&mut self.v4, Native::raw_ipv4_socket).map_err(at(Op::Socket))?;
        send_whole(socket, &packet, SocketAddr::new(ip.dst.into(), 0)).map_err(at(Op::SendTo))
    }

    /// `src` and `dst` carry their scope: a link-local source must be bound with the
    /// interface it belongs to, and a link-local destination sent to on that interface.
    fn send_v6(
        &mut self,
        seg: TcpSegment,
        src: SocketAddrV6,
        dst: SocketAddrV6,
    ) -> Result<(), (Op, io::Error)> {
        let segment =
            transport_segment(&Transport::Tcp(seg), (*src.ip()).into(), (*dst.ip()).into())
                .expect("source and destination are both IPv6");
        let local = SocketAddrV6::new(*src.ip(), 0, 0, src.scope_id());
        let socket = match &mut self.v6 {
            Some((bound, socket)) if *bound == local => socket,
            slot => {
                let socket = Native::raw_ipv6_tcp_socket().map_err(at(Op::Socket))?;
                socket
                    .bind(&SocketAddr::V6(local).into())
                    .map_err(at(Op::Bind))?;
                &slot.insert((local, socket)).1
            }
        };
        // The port of a raw IPv6 destination must be 0 (Linux reads it as a protocol).
        let to = SocketAddrV6::new(*dst.ip(), 0, 0, dst.scope_id());
        send_whole(socket, &segment, to.into()).map_err(at(Op::SendTo))
    }
}

impl Sender for RawSender {
    fn check(&self, hit: &Hit) -> Result<(), Refusal> {
        self.privilege.check_raw(hit)
    }

    fn route(&self, _hit: &Hit) -> Route {
        Route::Raw
    }

    fn send(&mut self, hit: &Hit, dst: Dest) -> Result<(), SendError> {
        self.check(hit)?;
        let addr = dst.socket_addr(hit.port);
        let src = source_address(addr).map_err(|e| SendError::io(Op::Route, addr, e))?;
        let draw = Draw::new().map_err(|e| SendError::io(Op::GetRandom, addr, e))?;
        let seg = segment(hit, self.source_port, &draw);
        let sent = match (src, addr) {
            (SocketAddr::V4(src), SocketAddr::V4(dst)) => self.send_v4(
                seg,
                Ipv4Header {
                    src: *src.ip(),
                    dst: *dst.ip(),
                    ttl: DEFAULT_TTL,
                    ident: draw.ident,
                },
            ),
            (SocketAddr::V6(src), SocketAddr::V6(dst)) => self.send_v6(seg, src, dst),
            (src, _) => Err((
                Op::Route,
                io::Error::other(format!("source address {} is of another family", src.ip())),
            )),
        };
        sent.map_err(|(op, e)| SendError::io(op, addr, e))
    }
}

/// The TCP header of a hit: its wire flags, the fixed or random source port, a random
/// sequence number, and a random acknowledgement number when ACK is set (a zero one
/// would mark the packet as crafted).
fn segment(hit: &Hit, source_port: Option<u16>, draw: &Draw) -> TcpSegment {
    let flags = hit.wire_flags();
    TcpSegment {
        src_port: source_port.unwrap_or(draw.port),
        dst_port: hit.port,
        seq: draw.seq,
        ack: if flags.contains(TcpFlags::ACK) {
            draw.ack
        } else {
            0
        },
        window: DEFAULT_WINDOW,
        flags,
    }
}

/// The random numbers one hit needs, drawn at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Draw {
    port: u16,
    seq: u32,
    ack: u32,
    ident: u16,
}

impl Draw {
    fn new() -> io::Result<Draw> {
        let mut bytes = [0u8; 12];
        getrandom::fill(&mut bytes).map_err(|e| match e.raw_os_error() {
            Some(errno) => io::Error::from_raw_os_error(errno),
            None => io::Error::other(e.to_string()),
        })?;
        Ok(Draw::from_bytes(bytes))
    }

    fn from_bytes(b: [u8; 12]) -> Draw {
        let port = u16::from_be_bytes([b[0], b[1]]);
        Draw {
            port: DYNAMIC_PORTS + port % (u16::MAX - DYNAMIC_PORTS + 1),
            seq: u32::from_be_bytes([b[2], b[3], b[4], b[5]]),
            ack: u32::from_be_bytes([b[6], b[7], b[8], b[9]]),
            ident: u16::from_be_bytes([b[10], b[11]]),
        }
    }
}

/// The source address the kernel picks for `dst`, read from a UDP socket connected to it,
/// with its scope (the interface of a link-local source); the port is meaningless.
pub(crate) fn source_address(dst: SocketAddr) -> io::Result<SocketAddr> {
    let any: IpAddr = match dst {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let probe = UdpSocket::bind((any, 0))?;
    probe.connect(dst)?;
    probe.local_addr()
}

fn open_once(
    slot: &mut Option<Socket>,
    open: impl FnOnce() -> io::Result<Socket>,
) -> io::Result<&Socket> {
    match slot {
        Some(socket) => Ok(socket),
        None => Ok(slot.insert(open()?)),
    }
}

/// Sends one datagram; a raw socket sends all of it or nothing, and anything else is
/// reported rather than assumed.
fn send_whole(socket: &Socket, bytes: &[u8], to: SocketAddr) -> io::Result<()> {
    let n = socket.send_to(bytes, &to.into())?;
    if n != bytes.len() {
        return Err(io::Error::other(format!(
            "sent {n} of {} bytes",
            bytes.len()
        )));
    }
    Ok(())
}

/// Tags an I/O error with the operation that failed.
fn at(op: Op) -> impl FnOnce(io::Error) -> (Op, io::Error) {
    move |e| (op, e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hit::Proto;
    use crate::send::privilege::Grant;
    use std::io::Read;
    use std::net::TcpListener;
    use std::time::{Duration, Instant};

    #[test]
    fn random_numbers_come_from_their_bytes() {
        let d = Draw::from_bytes([0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(
            d,
            Draw {
                port: 49152,
                seq: 0x0102_0304,
                ack: 0x0506_0708,
                ident: 0x090a
            }
        );
        // Ports stay in 49152-65535 at both ends of the drawn value.
        assert_eq!(
            Draw::from_bytes([0x3f, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).port,
            65535
        );
        assert_eq!(
            Draw::from_bytes([0x40, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).port,
            49152
        );
        assert_eq!(Draw::from_bytes([0xff; 12]).port, 65535);
        let a = Draw::new().unwrap();
        assert!(a.port >= DYNAMIC_PORTS);
    }

    #[test]
    fn segments_carry_the_hit_flags_and_ports() {
        let draw = Draw::from_bytes([0, 7, 0, 0, 0, 1, 0, 0, 0, 2, 0, 3]);
        let hit = |s: &str| Hit::parse(s, Proto::Tcp).unwrap();
        let seg = segment(&hit("7000:tcp:fin+psh"), None, &draw);
        assert_eq!(
            seg,
            TcpSegment {
                src_port: 49159,
                dst_port: 7000,
                seq: 1,
                ack: 0,
                window: DEFAULT_WINDOW,
                flags: TcpFlags::FIN | TcpFlags::PSH,
            }
        );
        // ACK set: the acknowledgement number is drawn too.
        let seg = segment(&hit("tcp:110:x"), Some(40000), &draw);
        assert_eq!(
            (seg.src_port, seg.ack, seg.flags),
            (40000, 2, TcpFlags::ALL_SIX)
        );
        // A hit without flags goes out as a bare SYN.
        assert_eq!(segment(&hit("7000"), None, &draw).flags, TcpFlags::SYN);
        assert_eq!(
            segment(&hit("tcp:7000:i"), None, &draw).flags,
            TcpFlags::SYN
        );
    }

    #[test]
    fn source_address_is_the_one_the_kernel_picks() {
        for dst in ["127.0.0.1:7000", "[::1]:7000"] {
            let dst: SocketAddr = dst.parse().unwrap();
            assert_eq!(source_address(dst).unwrap().ip(), dst.ip());
        }
    }

    #[test]
    fn refusals_come_from_the_privilege() {
        let mut sender = RawSender::new(Privilege::Missing(Grant::Root), None);
        let fin = Hit::tcp_flags(7000, TcpFlags::FIN);
        assert_eq!(
            sender.check(&fin),
            Err(Refusal::NoPrivilege {
                need: crate::send::RawNeed::ExactFlags,
                grant: Grant::Root
            })
        );
        // Refused before any socket is opened or any lookup made.
        assert!(matches!(
            sender.send(&fin, IpAddr::V4(Ipv4Addr::LOCALHOST).into()),
            Err(SendError::Refused(_))
        ));
        assert!(sender.v4.is_none());
        let raw = RawSender::new(Privilege::Raw, None);
        assert_eq!(raw.check(&Hit::udp(8000)), Err(Refusal::RawUdp));
        assert_eq!(raw.check(&fin), Ok(()));
    }

    /// The TCP header of a packet read from a raw IPPROTO_TCP socket: IPv4 sockets hand
    /// over the IP header too, IPv6 ones only the segment.
    fn tcp_header(packet: &[u8], v4: bool) -> Option<&[u8]> {
        let at = if v4 {
            usize::from(packet.first()? & 0x0f) * 4
        } else {
            0
        };
        packet.get(at..at + 20)
    }

    /// Sends a raw SYN from `source_port` to a listening port on `lo` and waits for the
    /// kernel's SYN-ACK: an answer at all means the kernel found every checksum right.
    fn answered_by_the_kernel(lo: IpAddr, source_port: u16) {
        let listener = TcpListener::bind((lo, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let domain = socket2::Domain::for_address(SocketAddr::new(lo, 0));
        let watch = Socket::new(domain, socket2::Type::RAW, Some(socket2::Protocol::TCP)).unwrap();
        watch
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut sender = RawSender::new(Privilege::Raw, Some(source_port));
        sender
            .send(&Hit::tcp_flags(port, TcpFlags::SYN), lo.into())
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 1500];
        while Instant::now() < deadline {
            let Ok(n) = (&watch).read(&mut buf) else {
                continue;
            };
            let Some(tcp) = tcp_header(&buf[..n], lo.is_ipv4()) else {
                continue;
            };
            let sport = u16::from_be_bytes([tcp[0], tcp[1]]);
            let dport = u16::from_be_bytes([tcp[2], tcp[3]]);
            if (sport, dport) == (port, source_port) {
                assert_eq!(
                    tcp[13], 0x12,
                    "SYN-ACK expected, got flags {:#04x}",
                    tcp[13]
                );
                return;
            }
        }
        panic!("no answer from {lo}:{port} to the raw SYN from port {source_port}");
    }

    fn closed_port(lo: IpAddr) -> u16 {
        TcpListener::bind((lo, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[test]
    fn raw_syns_carry_checksums_the_kernel_accepts() {
        if !Privilege::current().has_raw() {
            eprintln!("SKIP raw_syns_carry_checksums_the_kernel_accepts: needs raw sockets");
            return;
        }
        for lo in [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ] {
            answered_by_the_kernel(lo, closed_port(lo));
        }
    }
}
