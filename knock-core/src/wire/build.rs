//! Building knock packets: an IPv4 or IPv6 header over a TCP segment or a UDP datagram.
//!
//! Describe the transport part with [`Transport`] and the IP part with [`Ipv4Header`] or
//! [`Ipv6Header`], then ask for the bytes a socket wants:
//!
//! * [`ipv4_packet`]: the whole IPv4 packet, for a raw socket with `IP_HDRINCL` (on macOS and
//!   old FreeBSD pass it through [`ipv4_to_bsd_hdrincl`] first);
//! * [`ipv6_packet`]: the whole IPv6 packet;
//! * [`transport_segment`]: the TCP or UDP part alone, with its checksum computed over the
//!   pseudo-header of the given addresses. IPv6 raw sockets take this: the kernel writes the
//!   IPv6 header, but it leaves the TCP checksum to us.
//!
//! TCP segments carry no options and no payload; the data offset is always 5.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use knock_core::hit::TcpFlags;
//! use knock_core::wire::build::{ipv4_packet, Ipv4Header, TcpSegment, Transport};
//!
//! let ip = Ipv4Header::new(Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2));
//! let tcp = Transport::Tcp(TcpSegment::new(40000, 7000, TcpFlags::FIN | TcpFlags::PSH));
//! let packet = ipv4_packet(&ip, &tcp).unwrap();
//! assert_eq!(packet.len(), 40);
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pnet_packet::ip::IpNextHeaderProtocol;
use pnet_packet::ipv4::{self, MutableIpv4Packet};
use pnet_packet::ipv6::MutableIpv6Packet;
use pnet_packet::tcp::{self, MutableTcpPacket};
use pnet_packet::udp::{self, MutableUdpPacket};

use super::field;
use super::{Proto, TcpFlags};

/// Length of the IPv4 header we write (no options).
const IPV4_HEADER_LEN: usize = field::ipv4::MIN_HEADER_LEN;
/// Length of the TCP header we write (no options).
const TCP_HEADER_LEN: usize = field::tcp::MIN_HEADER_LEN;
/// The TTL / hop limit the constructors use, the usual Linux and macOS default.
pub const DEFAULT_TTL: u8 = 64;
/// The window the [`TcpSegment::new`] constructor uses, the size of a typical Linux SYN.
pub const DEFAULT_WINDOW: u16 = 64240;

/// IPv4 "don't fragment" flag, in the 3-bit flags field pnet sets.
const IPV4_DF: u8 = (field::ipv4::DONT_FRAGMENT >> 13) as u8;
/// Largest value of the 16-bit IPv4 total length and IPv6 payload length fields.
const MAX_LEN_FIELD: usize = u16::MAX as usize;

/// The header fields of a TCP segment with no options and no payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TcpSegment {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    /// Acknowledgement number; only meaningful to a receiver when `flags` has ACK.
    pub ack: u32,
    pub window: u16,
    pub flags: TcpFlags,
}

impl TcpSegment {
    /// A segment with sequence and acknowledgement numbers 0 and [`DEFAULT_WINDOW`].
    pub const fn new(src_port: u16, dst_port: u16, flags: TcpFlags) -> TcpSegment {
        TcpSegment {
            src_port,
            dst_port,
            seq: 0,
            ack: 0,
            window: DEFAULT_WINDOW,
            flags,
        }
    }
}

/// A UDP datagram: two ports and the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UdpDatagram<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

/// The transport part of a knock packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport<'a> {
    Tcp(TcpSegment),
    Udp(UdpDatagram<'a>),
}

impl Transport<'_> {
    pub fn proto(&self) -> Proto {
        match self {
            Transport::Tcp(_) => Proto::Tcp,
            Transport::Udp(_) => Proto::Udp,
        }
    }

    pub fn dst_port(&self) -> u16 {
        match self {
            Transport::Tcp(t) => t.dst_port,
            Transport::Udp(u) => u.dst_port,
        }
    }

    /// Bytes the transport header and payload take on the wire.
    pub fn len(&self) -> usize {
        match self {
            Transport::Tcp(_) => TCP_HEADER_LEN,
            Transport::Udp(u) => field::udp::HEADER_LEN + u.payload.len(),
        }
    }

    /// Never true: a transport always has a header. Here because clippy pairs it with `len`.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// The IPv4 header fields a knock chooses. The header has no options, DSCP/ECN 0 and the
/// don't-fragment bit set: a knock is far smaller than any path MTU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Header {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    /// Identification. Linux raw sockets fill in a fresh one when this is 0.
    pub ident: u16,
}

impl Ipv4Header {
    /// A header with [`DEFAULT_TTL`] and identification 0.
    pub const fn new(src: Ipv4Addr, dst: Ipv4Addr) -> Ipv4Header {
        Ipv4Header {
            src,
            dst,
            ttl: DEFAULT_TTL,
            ident: 0,
        }
    }
}

/// The IPv6 header fields a knock chooses. Traffic class and flow label are 0, and no
/// extension header is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv6Header {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub hop_limit: u8,
}

impl Ipv6Header {
    /// A header with a hop limit of [`DEFAULT_TTL`].
    pub const fn new(src: Ipv6Addr, dst: Ipv6Addr) -> Ipv6Header {
        Ipv6Header {
            src,
            dst,
            hop_limit: DEFAULT_TTL,
        }
    }
}

/// Why a packet could not be built or converted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The payload makes a length field overflow.
    #[error("{what} of {len} bytes exceeds the {max}-byte maximum")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// [`transport_segment`] got an IPv4 source with an IPv6 destination or the reverse.
    #[error("source {src} and destination {dst} are not of the same address family")]
    MixedFamilies { src: IpAddr, dst: IpAddr },
    /// [`ipv4_to_bsd_hdrincl`] got something that is not an IPv4 header.
    #[error("not an IPv4 packet of at least 20 bytes")]
    NotIpv4,
}

/// The addresses the TCP/UDP checksum covers through the pseudo-header.
#[derive(Clone, Copy)]
enum PseudoHeader {
    V4(Ipv4Addr, Ipv4Addr),
    V6(Ipv6Addr, Ipv6Addr),
}

/// The whole IPv4 packet: header with its checksum, then the transport part with its
/// checksum. This is what a raw socket with `IP_HDRINCL` sends on Linux, FreeBSD 11 and
/// later, OpenBSD and Windows.
pub fn ipv4_packet(ip: &Ipv4Header, l4: &Transport<'_>) -> Result<Vec<u8>, BuildError> {
    let total = IPV4_HEADER_LEN + l4.len();
    if total > MAX_LEN_FIELD {
        return Err(BuildError::TooLong {
            what: "IPv4 packet",
            len: total,
            max: MAX_LEN_FIELD,
        });
    }
    let mut buf = vec![0u8; total];
    let (head, rest) = buf.split_at_mut(IPV4_HEADER_LEN);
    emit_transport(rest, l4, PseudoHeader::V4(ip.src, ip.dst));

    let mut pkt = MutableIpv4Packet::new(head).expect("buffer holds an IPv4 header");
    pkt.set_version(4);
    pkt.set_header_length((IPV4_HEADER_LEN / 4) as u8);
    pkt.set_dscp(0);
    pkt.set_ecn(0);
    pkt.set_total_length(total as u16);
    pkt.set_identification(ip.ident);
    pkt.set_flags(IPV4_DF);
    pkt.set_fragment_offset(0);
    pkt.set_ttl(ip.ttl);
    pkt.set_next_level_protocol(IpNextHeaderProtocol(l4.proto().number()));
    pkt.set_source(ip.src);
    pkt.set_destination(ip.dst);
    pkt.set_checksum(0);
    let sum = ipv4::checksum(&pkt.to_immutable());
    pkt.set_checksum(sum);
    Ok(buf)
}

/// The whole IPv6 packet: fixed header, then the transport part with its checksum.
pub fn ipv6_packet(ip: &Ipv6Header, l4: &Transport<'_>) -> Result<Vec<u8>, BuildError> {
    let payload = l4.len();
    if payload > MAX_LEN_FIELD {
        return Err(BuildError::TooLong {
            what: "IPv6 payload",
            len: payload,
            max: MAX_LEN_FIELD,
        });
    }
    let mut buf = vec![0u8; field::ipv6::HEADER_LEN + payload];
    let (head, rest) = buf.split_at_mut(field::ipv6::HEADER_LEN);
    emit_transport(rest, l4, PseudoHeader::V6(ip.src, ip.dst));

    let mut pkt = MutableIpv6Packet::new(head).expect("buffer holds an IPv6 header");
    pkt.set_version(6);
    pkt.set_traffic_class(0);
    pkt.set_flow_label(0);
    pkt.set_payload_length(payload as u16);
    pkt.set_next_header(IpNextHeaderProtocol(l4.proto().number()));
    pkt.set_hop_limit(ip.hop_limit);
    pkt.set_source(ip.src);
    pkt.set_destination(ip.dst);
    Ok(buf)
}

/// The transport part alone (TCP or UDP header and payload), its checksum computed over the
/// pseudo-header of `src` and `dst`. Both addresses must be of one family.
///
/// An IPv6 raw socket of protocol TCP takes exactly this: the kernel adds the IPv6 header
/// but leaves the checksum as given (only ICMPv6 gets one computed by default; others need
/// the `IPV6_CHECKSUM` option, which we have no need for).
pub fn transport_segment(
    l4: &Transport<'_>,
    src: IpAddr,
    dst: IpAddr,
) -> Result<Vec<u8>, BuildError> {
    let pseudo = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PseudoHeader::V4(s, d),
        (IpAddr::V6(s), IpAddr::V6(d)) => PseudoHeader::V6(s, d),
        _ => return Err(BuildError::MixedFamilies { src, dst }),
    };
    let len = l4.len();
    if len > MAX_LEN_FIELD {
        return Err(BuildError::TooLong {
            what: "UDP datagram",
            len,
            max: MAX_LEN_FIELD,
        });
    }
    let mut buf = vec![0u8; len];
    emit_transport(&mut buf, l4, pseudo);
    Ok(buf)
}

/// Rewrites a built IPv4 packet into the layout that macOS and FreeBSD before 11.0 expect
/// on a raw socket with `IP_HDRINCL`: the total length (`ip_len`) and the flags/fragment
/// offset word (`ip_off`) in *host* byte order, every other field unchanged.
///
/// This is a BSD quirk from the days when the kernel kept those two fields in host order
/// internally: `rip_output` took them as is and swapped them back on the way out, so a
/// packet written in network order gets `sendto` failing with `EINVAL` (its length reads as
/// 10240 on a little-endian machine for a 40-byte packet). FreeBSD 11.0 moved to network
/// order; Linux, OpenBSD and Windows always took network order, so call this only on macOS
/// (and other Darwin systems) or old FreeBSD. On a big-endian host it changes nothing.
///
/// The header checksum is left as computed for the wire layout: the kernel puts the fields
/// back into network order and computes the header checksum itself before the packet leaves.
pub fn ipv4_to_bsd_hdrincl(packet: &mut [u8]) -> Result<(), BuildError> {
    let Some(head) = packet.first_chunk_mut::<IPV4_HEADER_LEN>() else {
        return Err(BuildError::NotIpv4);
    };
    if head[field::ipv4::VER_IHL] >> 4 != field::ipv4::VERSION {
        return Err(BuildError::NotIpv4);
    }
    for field in [field::ipv4::TOTAL_LEN, field::ipv4::FLAGS_FRAG] {
        let at = field.start;
        let value = u16::from_be_bytes([head[at], head[at + 1]]);
        [head[at], head[at + 1]] = value.to_ne_bytes();
    }
    Ok(())
}

/// Writes the transport header and payload into `buf` (sized to [`Transport::len`]) and
/// fills in its checksum.
fn emit_transport(buf: &mut [u8], l4: &Transport<'_>, pseudo: PseudoHeader) {
    match l4 {
        Transport::Tcp(t) => {
            let mut seg = MutableTcpPacket::new(buf).expect("buffer holds a TCP header");
            seg.set_source(t.src_port);
            seg.set_destination(t.dst_port);
            seg.set_sequence(t.seq);
            seg.set_acknowledgement(t.ack);
            seg.set_data_offset((TCP_HEADER_LEN / 4) as u8);
            seg.set_reserved(0);
            seg.set_flags(t.flags.bits());
            seg.set_window(t.window);
            seg.set_urgent_ptr(0);
            seg.set_checksum(0);
            let sum = match pseudo {
                PseudoHeader::V4(s, d) => tcp::ipv4_checksum(&seg.to_immutable(), &s, &d),
                PseudoHeader::V6(s, d) => tcp::ipv6_checksum(&seg.to_immutable(), &s, &d),
            };
            seg.set_checksum(sum);
        }
        Transport::Udp(u) => {
            let len = buf.len() as u16;
            let mut dgram = MutableUdpPacket::new(buf).expect("buffer holds a UDP header");
            dgram.set_source(u.src_port);
            dgram.set_destination(u.dst_port);
            dgram.set_length(len);
            dgram.set_payload(u.payload);
            dgram.set_checksum(0);
            let sum = match pseudo {
                PseudoHeader::V4(s, d) => udp::ipv4_checksum(&dgram.to_immutable(), &s, &d),
                PseudoHeader::V6(s, d) => udp::ipv6_checksum(&dgram.to_immutable(), &s, &d),
            };
            // In UDP a zero checksum means "none" (and is forbidden over IPv6); a computed
            // zero is sent as its ones'-complement twin, all ones (RFC 768, RFC 8200 8.1).
            dgram.set_checksum(if sum == 0 { 0xffff } else { sum });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const DST4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    const SRC6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const DST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    /// RFC 1071 Internet checksum, written independently of pnet. Over data that includes a
    /// correct checksum field it yields 0.
    fn rfc1071(data: &[u8]) -> u16 {
        let mut sum: u64 = 0;
        for pair in data.chunks(2) {
            let hi = u64::from(pair[0]) << 8;
            let lo = pair.get(1).map_or(0, |&b| u64::from(b));
            sum += hi | lo;
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    /// The TCP/UDP pseudo-header (RFC 793 / RFC 8200 section 8.1) followed by the segment.
    fn with_pseudo(src: IpAddr, dst: IpAddr, proto: u8, segment: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                out.extend(s.octets());
                out.extend(d.octets());
                out.extend([0, proto]);
                out.extend((segment.len() as u16).to_be_bytes());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                out.extend(s.octets());
                out.extend(d.octets());
                out.extend((segment.len() as u32).to_be_bytes());
                out.extend([0, 0, 0, proto]);
            }
            _ => unreachable!("test addresses are of one family"),
        }
        out.extend(segment);
        out
    }

    fn assert_l4_checksum(src: IpAddr, dst: IpAddr, proto: u8, segment: &[u8]) {
        assert_eq!(
            rfc1071(&with_pseudo(src, dst, proto, segment)),
            0,
            "bad checksum over {segment:02x?}"
        );
    }

    // The expected bytes below were also produced by a separate Python script (struct.pack
    // plus its own RFC 1071 sum), and tcpdump -vv read them back with every checksum correct.

    #[test]
    fn golden_ipv4_tcp() {
        let ip = Ipv4Header {
            src: SRC4,
            dst: DST4,
            ttl: 64,
            ident: 0x1234,
        };
        let tcp = Transport::Tcp(TcpSegment {
            src_port: 40000,
            dst_port: 7000,
            seq: 0x0102_0304,
            ack: 0,
            window: 64240,
            flags: TcpFlags::FIN | TcpFlags::PSH,
        });
        #[rustfmt::skip]
        let expected = [
            // IPv4 header
            0x45, 0x00,             // version 4, IHL 5 words; DSCP 0, ECN 0
            0x00, 0x28,             // total length 40
            0x12, 0x34,             // identification 0x1234
            0x40, 0x00,             // flags DF; fragment offset 0
            0x40, 0x06,             // TTL 64; protocol 6 (TCP)
            0xa4, 0x98,             // header checksum
            0xc0, 0x00, 0x02, 0x01, // source 192.0.2.1
            0xc0, 0x00, 0x02, 0x02, // destination 192.0.2.2
            // TCP header
            0x9c, 0x40,             // source port 40000
            0x1b, 0x58,             // destination port 7000
            0x01, 0x02, 0x03, 0x04, // sequence number 0x01020304
            0x00, 0x00, 0x00, 0x00, // acknowledgement number 0
            0x50, 0x09,             // data offset 5 words; flags FIN|PSH
            0xfa, 0xf0,             // window 64240
            0x75, 0x48,             // checksum
            0x00, 0x00,             // urgent pointer 0
        ];
        let packet = ipv4_packet(&ip, &tcp).unwrap();
        assert_eq!(packet, expected);
        assert_eq!(rfc1071(&packet[..20]), 0, "IPv4 header checksum");
        assert_l4_checksum(SRC4.into(), DST4.into(), 6, &packet[20..]);
        let segment = transport_segment(&tcp, SRC4.into(), DST4.into()).unwrap();
        assert_eq!(segment, packet[20..]);
    }

    #[test]
    fn golden_ipv6_tcp() {
        let ip = Ipv6Header::new(SRC6, DST6);
        let tcp = Transport::Tcp(TcpSegment {
            src_port: 40000,
            dst_port: 8000,
            seq: 0xdead_beef,
            ack: 0x1122_3344,
            window: 1024,
            flags: TcpFlags::ALL_SIX,
        });
        #[rustfmt::skip]
        let expected = [
            // IPv6 header
            0x60, 0x00, 0x00, 0x00, // version 6, traffic class 0, flow label 0
            0x00, 0x14,             // payload length 20
            0x06, 0x40,             // next header 6 (TCP); hop limit 64
            0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, // source 2001:db8::1
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
            0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, // destination 2001:db8::2
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
            // TCP header
            0x9c, 0x40,             // source port 40000
            0x1f, 0x40,             // destination port 8000
            0xde, 0xad, 0xbe, 0xef, // sequence number
            0x11, 0x22, 0x33, 0x44, // acknowledgement number
            0x50, 0x3f,             // data offset 5 words; flags FIN|SYN|RST|PSH|ACK|URG
            0x04, 0x00,             // window 1024
            0xb2, 0xac,             // checksum
            0x00, 0x00,             // urgent pointer 0
        ];
        let packet = ipv6_packet(&ip, &tcp).unwrap();
        assert_eq!(packet, expected);
        assert_l4_checksum(SRC6.into(), DST6.into(), 6, &packet[40..]);
        let segment = transport_segment(&tcp, SRC6.into(), DST6.into()).unwrap();
        assert_eq!(segment, packet[40..]);
    }

    #[test]
    fn golden_ipv4_udp() {
        let ip = Ipv4Header::new(SRC4, DST4);
        let udp = Transport::Udp(UdpDatagram {
            src_port: 40001,
            dst_port: 9000,
            payload: b"knock",
        });
        #[rustfmt::skip]
        let expected = [
            // IPv4 header
            0x45, 0x00,             // version 4, IHL 5 words; DSCP 0, ECN 0
            0x00, 0x21,             // total length 33
            0x00, 0x00,             // identification 0 (the kernel picks one)
            0x40, 0x00,             // flags DF; fragment offset 0
            0x40, 0x11,             // TTL 64; protocol 17 (UDP)
            0xb6, 0xc8,             // header checksum
            0xc0, 0x00, 0x02, 0x01, // source 192.0.2.1
            0xc0, 0x00, 0x02, 0x02, // destination 192.0.2.2
            // UDP header
            0x9c, 0x41,             // source port 40001
            0x23, 0x28,             // destination port 9000
            0x00, 0x0d,             // length 13
            0x76, 0x94,             // checksum (odd length: last byte padded with zero)
            b'k', b'n', b'o', b'c', b'k',
        ];
        let packet = ipv4_packet(&ip, &udp).unwrap();
        assert_eq!(packet, expected);
        assert_eq!(rfc1071(&packet[..20]), 0, "IPv4 header checksum");
        assert_l4_checksum(SRC4.into(), DST4.into(), 17, &packet[20..]);
        let segment = transport_segment(&udp, SRC4.into(), DST4.into()).unwrap();
        assert_eq!(segment, packet[20..]);
    }

    #[test]
    fn golden_ipv6_udp() {
        let ip = Ipv6Header {
            src: SRC6,
            dst: DST6,
            hop_limit: 255,
        };
        let udp = Transport::Udp(UdpDatagram {
            src_port: 40001,
            dst_port: 9000,
            payload: b"knock",
        });
        #[rustfmt::skip]
        let expected = [
            // IPv6 header
            0x60, 0x00, 0x00, 0x00, // version 6, traffic class 0, flow label 0
            0x00, 0x0d,             // payload length 13
            0x11, 0xff,             // next header 17 (UDP); hop limit 255
            0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, // source 2001:db8::1
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
            0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, // destination 2001:db8::2
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
            // UDP header
            0x9c, 0x41,             // source port 40001
            0x23, 0x28,             // destination port 9000
            0x00, 0x0d,             // length 13
            0x9f, 0x23,             // checksum
            b'k', b'n', b'o', b'c', b'k',
        ];
        let packet = ipv6_packet(&ip, &udp).unwrap();
        assert_eq!(packet, expected);
        assert_l4_checksum(SRC6.into(), DST6.into(), 17, &packet[40..]);
        let segment = transport_segment(&udp, SRC6.into(), DST6.into()).unwrap();
        assert_eq!(segment, packet[40..]);
    }

    #[test]
    fn udp_checksum_that_sums_to_zero_is_sent_as_all_ones() {
        // The payload 0xbc6a was searched for so that the computed checksum is 0.
        let udp = Transport::Udp(UdpDatagram {
            src_port: 40002,
            dst_port: 9001,
            payload: &[0xbc, 0x6a],
        });
        let packet = ipv4_packet(&Ipv4Header::new(SRC4, DST4), &udp).unwrap();
        assert_eq!(packet[26..28], [0xff, 0xff]);
        // 0xffff and 0x0000 are the same number in ones' complement, so it still verifies.
        assert_l4_checksum(SRC4.into(), DST4.into(), 17, &packet[20..]);
    }

    #[test]
    fn checksums_hold_for_every_flag_set_and_odd_payloads() {
        for bits in 0..=255u8 {
            let tcp = Transport::Tcp(TcpSegment {
                seq: u32::from(bits) * 0x0101_0101,
                ack: !u32::from(bits),
                ..TcpSegment::new(1024 + u16::from(bits), 7000, TcpFlags::from_bits(bits))
            });
            let v4 = ipv4_packet(&Ipv4Header::new(SRC4, DST4), &tcp).unwrap();
            assert_eq!(v4[33], bits, "flags byte");
            assert_eq!(rfc1071(&v4[..20]), 0);
            assert_l4_checksum(SRC4.into(), DST4.into(), 6, &v4[20..]);
            let v6 = transport_segment(&tcp, SRC6.into(), DST6.into()).unwrap();
            assert_l4_checksum(SRC6.into(), DST6.into(), 6, &v6);
        }
        let payload: Vec<u8> = (0..=255u8).collect();
        for len in 0..payload.len() {
            let udp = Transport::Udp(UdpDatagram {
                src_port: 5353,
                dst_port: 9000,
                payload: &payload[..len],
            });
            let v4 = transport_segment(&udp, SRC4.into(), DST4.into()).unwrap();
            assert_l4_checksum(SRC4.into(), DST4.into(), 17, &v4);
            let v6 = ipv6_packet(&Ipv6Header::new(SRC6, DST6), &udp).unwrap();
            assert_l4_checksum(SRC6.into(), DST6.into(), 17, &v6[40..]);
        }
    }

    #[test]
    fn length_limits() {
        let big = vec![0u8; 65_535];
        let udp = |len| {
            Transport::Udp(UdpDatagram {
                src_port: 1,
                dst_port: 2,
                payload: &big[..len],
            })
        };
        let v4 = Ipv4Header::new(SRC4, DST4);
        let v6 = Ipv6Header::new(SRC6, DST6);
        // IPv4: 20 + 8 + payload must fit the 16-bit total length.
        assert_eq!(ipv4_packet(&v4, &udp(65_507)).unwrap().len(), 65_535);
        let err = ipv4_packet(&v4, &udp(65_508)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "IPv4 packet of 65536 bytes exceeds the 65535-byte maximum"
        );
        // IPv6: 8 + payload must fit the 16-bit payload length.
        assert_eq!(ipv6_packet(&v6, &udp(65_527)).unwrap().len(), 40 + 65_535);
        let err = ipv6_packet(&v6, &udp(65_528)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "IPv6 payload of 65536 bytes exceeds the 65535-byte maximum"
        );
        let err = transport_segment(&udp(65_528), SRC6.into(), DST6.into()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "UDP datagram of 65536 bytes exceeds the 65535-byte maximum"
        );
    }

    #[test]
    fn segment_needs_one_address_family() {
        let tcp = Transport::Tcp(TcpSegment::new(1, 2, TcpFlags::SYN));
        let err = transport_segment(&tcp, SRC4.into(), DST6.into()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "source 192.0.2.1 and destination 2001:db8::2 are not of the same address family"
        );
    }

    #[test]
    fn bsd_hdrincl_puts_length_and_offset_in_host_order() {
        let tcp = Transport::Tcp(TcpSegment::new(40000, 7000, TcpFlags::SYN));
        let wire = ipv4_packet(&Ipv4Header::new(SRC4, DST4), &tcp).unwrap();
        let mut bsd = wire.clone();
        ipv4_to_bsd_hdrincl(&mut bsd).unwrap();
        // Read back in host order, the fields hold the true values...
        assert_eq!(u16::from_ne_bytes([bsd[2], bsd[3]]), 40, "ip_len");
        assert_eq!(u16::from_ne_bytes([bsd[6], bsd[7]]), 0x4000, "ip_off: DF");
        // ...and nothing else moved, the checksum included.
        assert_eq!(bsd[..2], wire[..2]);
        assert_eq!(bsd[4..6], wire[4..6]);
        assert_eq!(bsd[8..], wire[8..]);
        if cfg!(target_endian = "little") {
            assert_eq!(bsd[2..4], [0x28, 0x00]);
            assert_eq!(bsd[6..8], [0x00, 0x40]);
        } else {
            assert_eq!(bsd, wire);
        }
    }

    #[test]
    fn bsd_hdrincl_refuses_what_is_not_ipv4() {
        let tcp = Transport::Tcp(TcpSegment::new(40000, 7000, TcpFlags::SYN));
        let mut v6 = ipv6_packet(&Ipv6Header::new(SRC6, DST6), &tcp).unwrap();
        assert_eq!(ipv4_to_bsd_hdrincl(&mut v6), Err(BuildError::NotIpv4));
        let mut short = ipv4_packet(&Ipv4Header::new(SRC4, DST4), &tcp).unwrap();
        short.truncate(19);
        assert_eq!(ipv4_to_bsd_hdrincl(&mut short), Err(BuildError::NotIpv4));
        assert_eq!(ipv4_to_bsd_hdrincl(&mut []), Err(BuildError::NotIpv4));
        assert_eq!(
            BuildError::NotIpv4.to_string(),
            "not an IPv4 packet of at least 20 bytes"
        );
    }

    #[test]
    fn transport_accessors() {
        let tcp = Transport::Tcp(TcpSegment::new(1, 7000, TcpFlags::SYN));
        let udp = Transport::Udp(UdpDatagram {
            src_port: 1,
            dst_port: 8000,
            payload: b"abc",
        });
        assert_eq!(
            (tcp.proto(), tcp.dst_port(), tcp.len()),
            (Proto::Tcp, 7000, 20)
        );
        assert_eq!(
            (udp.proto(), udp.dst_port(), udp.len()),
            (Proto::Udp, 8000, 11)
        );
    }
}
