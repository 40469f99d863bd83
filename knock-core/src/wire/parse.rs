//! Parsing captured frames into [`KnockPacket`]s, every length checked before it is used.
//!
//! The parser reads fields by explicit offsets from slices whose length it has just checked
//! (`first_chunk` and `get`), so no input can make it index out of bounds: it returns a
//! [`ParseError`] instead, and it never allocates. Checksums are not verified: a knock
//! server reacts to what arrives, as knockd does.
//!
//! What is accepted:
//!
//! * links: Ethernet II with up to [`MAX_VLAN_TAGS`] stacked 802.1Q / 802.1ad tags, BSD
//!   loopback (`DLT_NULL`), raw IP and Linux cooked capture (`DLT_LINUX_SLL`);
//! * IPv4 with options; a non-first fragment (offset != 0) is refused with
//!   [`ParseError::Fragment`] as it carries no ports, a first fragment is read;
//! * IPv6 with up to [`MAX_IPV6_EXTENSIONS`] hop-by-hop, routing, destination-options and
//!   fragment headers, the same fragment rule applying;
//! * TCP and UDP.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::KnockPacket;
use crate::hit::{Proto, TcpFlags};

/// How many VLAN tags may stand between the Ethernet header and IP. Real networks use one
/// (802.1Q) or two (802.1ad "Q-in-Q"); the bound keeps hostile frames cheap.
pub const MAX_VLAN_TAGS: usize = 4;
/// How many IPv6 extension headers the parser walks before giving up.
pub const MAX_IPV6_EXTENSIONS: usize = 8;

const ETHERNET_HEADER_LEN: usize = 14;
const SLL_HEADER_LEN: usize = 16;
const LOOPBACK_HEADER_LEN: usize = 4;
const VLAN_TAG_LEN: usize = 4;
const IPV4_MIN_HEADER_LEN: usize = 20;
const TCP_MIN_HEADER_LEN: usize = 20;
const UDP_HEADER_LEN: usize = 8;
const IPV6_FRAGMENT_HEADER_LEN: usize = 8;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100; // 802.1Q customer tag
const ETHERTYPE_QINQ: u16 = 0x88a8; // 802.1ad service tag
const ETHERTYPE_QINQ_OLD: u16 = 0x9100; // pre-standard service tag, still seen on switches

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_DEST_OPTIONS: u8 = 60;

/// The layer-2 framing in front of the IP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// Ethernet II, optionally VLAN-tagged. Linux loopback read through `AF_PACKET` looks
    /// like this too, with all-zero MAC addresses.
    Ethernet,
    /// BSD loopback, pcap `DLT_NULL`/`DLT_LOOP`: a 4-byte address family, read in either byte
    /// order because it is the capturing host's order (network order for `DLT_LOOP`).
    Loopback,
    /// No link header at all; the IP version nibble decides (tun, WireGuard, `SOCK_DGRAM`
    /// packet sockets, pcap `DLT_RAW`).
    RawIp,
    /// Linux cooked capture v1 (pcap `DLT_LINUX_SLL`, the "any" device): a 16-byte header
    /// ending in the EtherType.
    LinuxSll,
}

impl LinkType {
    /// The link type of a Linux interface from its `ARPHRD_*` hardware type (the
    /// `sll_hatype` of an `AF_PACKET` socket), for the types a knock can arrive on.
    pub fn from_arphrd(hatype: u16) -> Option<LinkType> {
        match hatype {
            // ARPHRD_ETHER, ARPHRD_LOOPBACK (the kernel gives lo a zero Ethernet header)
            1 | 772 => Some(LinkType::Ethernet),
            // ARPHRD_RAWIP, ARPHRD_NONE (tun devices in IFF_TUN mode, WireGuard)
            519 | 0xfffe => Some(LinkType::RawIp),
            _ => None,
        }
    }

    /// The link type for a pcap file's `LINKTYPE_*` header value.
    pub fn from_pcap(linktype: u32) -> Option<LinkType> {
        match linktype {
            // LINKTYPE_NULL, LINKTYPE_LOOP
            0 | 108 => Some(LinkType::Loopback),
            // LINKTYPE_ETHERNET
            1 => Some(LinkType::Ethernet),
            // LINKTYPE_RAW and the DLT_RAW values that leak into files, LINKTYPE_IPV4/IPV6
            101 | 12 | 14 | 228 | 229 => Some(LinkType::RawIp),
            // LINKTYPE_LINUX_SLL
            113 => Some(LinkType::LinuxSll),
            _ => None,
        }
    }
}

/// Why a frame is not a knock candidate. Each variant names the layer and the check that
/// failed; all of them are cheap to count (`error as usize` indexes [`ParseError::ALL`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParseError {
    /// The frame is shorter than its link-layer header (VLAN tags included).
    LinkTruncated,
    /// More than [`MAX_VLAN_TAGS`] VLAN tags are stacked.
    TooManyVlanTags,
    /// The link layer carries something other than IPv4 or IPv6 (ARP, LLDP...).
    NotIp,
    /// Nothing at all where the IP header should start.
    Empty,
    /// The IP version nibble is neither 4 nor 6, or disagrees with the link layer.
    BadIpVersion,
    /// Fewer bytes than the IPv4 header needs (20, or IHL words).
    Ipv4Truncated,
    /// The IPv4 header length (IHL) is below 5 words.
    Ipv4BadHeaderLength,
    /// The IPv4 total length is smaller than the header or larger than the bytes captured.
    Ipv4BadTotalLength,
    /// Fewer than 40 bytes, or the IPv6 payload length reaches past the bytes captured.
    Ipv6Truncated,
    /// An IPv6 extension header reaches past the payload.
    Ipv6ExtensionTruncated,
    /// More than [`MAX_IPV6_EXTENSIONS`] IPv6 extension headers are chained.
    Ipv6TooManyExtensions,
    /// An IPv6 hop-by-hop options header that is not right after the fixed header.
    Ipv6MisplacedHopByHop,
    /// A non-first IPv4 or IPv6 fragment: it has no transport header, so no ports.
    Fragment,
    /// The transport protocol is neither TCP nor UDP (ICMP, ESP, no next header...).
    NotTcpOrUdp,
    /// Fewer bytes than the TCP header needs (20, or its data offset).
    TcpTruncated,
    /// The TCP data offset is below 5 words.
    TcpBadDataOffset,
    /// Fewer than 8 bytes of UDP header.
    UdpTruncated,
    /// The UDP length is below 8 or, in an unfragmented packet, past the IP payload.
    UdpBadLength,
}

impl ParseError {
    /// Every variant, in declaration order: `ALL[e as usize] == e`.
    pub const ALL: [ParseError; 18] = [
        ParseError::LinkTruncated,
        ParseError::TooManyVlanTags,
        ParseError::NotIp,
        ParseError::Empty,
        ParseError::BadIpVersion,
        ParseError::Ipv4Truncated,
        ParseError::Ipv4BadHeaderLength,
        ParseError::Ipv4BadTotalLength,
        ParseError::Ipv6Truncated,
        ParseError::Ipv6ExtensionTruncated,
        ParseError::Ipv6TooManyExtensions,
        ParseError::Ipv6MisplacedHopByHop,
        ParseError::Fragment,
        ParseError::NotTcpOrUdp,
        ParseError::TcpTruncated,
        ParseError::TcpBadDataOffset,
        ParseError::UdpTruncated,
        ParseError::UdpBadLength,
    ];

    /// A one-line description for logs and counters.
    pub fn as_str(self) -> &'static str {
        match self {
            ParseError::LinkTruncated => "frame shorter than its link-layer header",
            ParseError::TooManyVlanTags => "too many stacked VLAN tags",
            ParseError::NotIp => "link layer carries neither IPv4 nor IPv6",
            ParseError::Empty => "no bytes where the IP header should start",
            ParseError::BadIpVersion => "IP version is not 4 or 6 or disagrees with the link",
            ParseError::Ipv4Truncated => "IPv4 header cut short",
            ParseError::Ipv4BadHeaderLength => "IPv4 header length below 20 bytes",
            ParseError::Ipv4BadTotalLength => {
                "IPv4 total length below the header length or beyond the frame"
            }
            ParseError::Ipv6Truncated => "IPv6 header or payload cut short",
            ParseError::Ipv6ExtensionTruncated => "IPv6 extension header cut short",
            ParseError::Ipv6TooManyExtensions => "too many IPv6 extension headers",
            ParseError::Ipv6MisplacedHopByHop => "IPv6 hop-by-hop header not first",
            ParseError::Fragment => "non-first fragment, no transport header",
            ParseError::NotTcpOrUdp => "transport protocol is neither TCP nor UDP",
            ParseError::TcpTruncated => "TCP header cut short",
            ParseError::TcpBadDataOffset => "TCP data offset below 20 bytes",
            ParseError::UdpTruncated => "UDP header cut short",
            ParseError::UdpBadLength => "UDP length below 8 or beyond the IP payload",
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for ParseError {}

/// Parses one captured frame of the given link type.
pub fn parse_frame(link: LinkType, frame: &[u8]) -> Result<KnockPacket, ParseError> {
    match link {
        LinkType::Ethernet => {
            let Some((head, rest)) = frame.split_first_chunk::<ETHERNET_HEADER_LEN>() else {
                return Err(ParseError::LinkTruncated);
            };
            parse_ethertype(be16(head[12], head[13]), rest)
        }
        LinkType::LinuxSll => {
            let Some((head, rest)) = frame.split_first_chunk::<SLL_HEADER_LEN>() else {
                return Err(ParseError::LinkTruncated);
            };
            parse_ethertype(be16(head[14], head[15]), rest)
        }
        LinkType::Loopback => {
            let Some((head, rest)) = frame.split_first_chunk::<LOOPBACK_HEADER_LEN>() else {
                return Err(ParseError::LinkTruncated);
            };
            // Families are small numbers, so a value with high bits set was written in the
            // other byte order.
            let family = u32::from_le_bytes(*head);
            let family = if family > 0xffff {
                family.swap_bytes()
            } else {
                family
            };
            match family {
                2 => parse_ipv4(rest),
                // AF_INET6 on Linux, Windows (Npcap loopback), Net/OpenBSD, FreeBSD, macOS
                10 | 23 | 24 | 28 | 30 => parse_ipv6(rest),
                _ => Err(ParseError::NotIp),
            }
        }
        LinkType::RawIp => parse_ip(frame),
    }
}

/// Parses a packet that starts with its IP header; the version nibble picks IPv4 or IPv6.
pub fn parse_ip(packet: &[u8]) -> Result<KnockPacket, ParseError> {
    match packet.first() {
        None => Err(ParseError::Empty),
        Some(b) if b >> 4 == 4 => parse_ipv4(packet),
        Some(b) if b >> 4 == 6 => parse_ipv6(packet),
        Some(_) => Err(ParseError::BadIpVersion),
    }
}

/// Skips VLAN tags, then hands the rest to the IP parser the EtherType names.
fn parse_ethertype(mut ethertype: u16, mut rest: &[u8]) -> Result<KnockPacket, ParseError> {
    let mut tags = 0;
    while matches!(
        ethertype,
        ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
    ) {
        if tags == MAX_VLAN_TAGS {
            return Err(ParseError::TooManyVlanTags);
        }
        // A tag is the 16-bit TCI followed by the EtherType of what comes next.
        let Some((tag, inner)) = rest.split_first_chunk::<VLAN_TAG_LEN>() else {
            return Err(ParseError::LinkTruncated);
        };
        ethertype = be16(tag[2], tag[3]);
        rest = inner;
        tags += 1;
    }
    match ethertype {
        ETHERTYPE_IPV4 => parse_ipv4(rest),
        ETHERTYPE_IPV6 => parse_ipv6(rest),
        _ => Err(ParseError::NotIp),
    }
}

fn parse_ipv4(packet: &[u8]) -> Result<KnockPacket, ParseError> {
    let Some(h) = packet.first_chunk::<IPV4_MIN_HEADER_LEN>() else {
        return Err(if packet.is_empty() {
            ParseError::Empty
        } else {
            ParseError::Ipv4Truncated
        });
    };
    if h[0] >> 4 != 4 {
        return Err(ParseError::BadIpVersion);
    }
    let header_len = usize::from(h[0] & 0x0f) * 4;
    if header_len < IPV4_MIN_HEADER_LEN {
        return Err(ParseError::Ipv4BadHeaderLength);
    }
    if header_len > packet.len() {
        return Err(ParseError::Ipv4Truncated);
    }
    // Ethernet pads short frames, so the total length, not the frame, bounds the payload.
    let total_len = usize::from(be16(h[2], h[3]));
    if total_len < header_len || total_len > packet.len() {
        return Err(ParseError::Ipv4BadTotalLength);
    }
    let flags_offset = be16(h[6], h[7]);
    if flags_offset & 0x1fff != 0 {
        return Err(ParseError::Fragment);
    }
    let more_fragments = flags_offset & 0x2000 != 0;
    let Some(payload) = packet.get(header_len..total_len) else {
        return Err(ParseError::Ipv4BadTotalLength);
    };
    let src = Ipv4Addr::new(h[12], h[13], h[14], h[15]);
    let dst = Ipv4Addr::new(h[16], h[17], h[18], h[19]);
    parse_transport(h[9], payload, src.into(), dst.into(), more_fragments)
}

fn parse_ipv6(packet: &[u8]) -> Result<KnockPacket, ParseError> {
    // Fixed header: version/class/label (4), payload length (2), next header, hop limit,
    // then the two addresses.
    if packet.is_empty() {
        return Err(ParseError::Empty);
    }
    let Some((h, addrs)) = packet.split_first_chunk::<8>() else {
        return Err(ParseError::Ipv6Truncated);
    };
    let Some((src, addrs)) = addrs.split_first_chunk::<16>() else {
        return Err(ParseError::Ipv6Truncated);
    };
    let Some((dst, rest)) = addrs.split_first_chunk::<16>() else {
        return Err(ParseError::Ipv6Truncated);
    };
    if h[0] >> 4 != 6 {
        return Err(ParseError::BadIpVersion);
    }
    let payload_len = usize::from(be16(h[4], h[5]));
    let Some(mut payload) = rest.get(..payload_len) else {
        return Err(ParseError::Ipv6Truncated);
    };
    let src = Ipv6Addr::from(*src);
    let dst = Ipv6Addr::from(*dst);

    let mut next = h[6];
    let mut fragmented = false;
    let mut walked = 0;
    loop {
        match next {
            IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DEST_OPTIONS => {
                if next == IPV6_HOP_BY_HOP && walked > 0 {
                    return Err(ParseError::Ipv6MisplacedHopByHop);
                }
                if walked == MAX_IPV6_EXTENSIONS {
                    return Err(ParseError::Ipv6TooManyExtensions);
                }
                // Next header, then the length in 8-byte units not counting the first 8.
                let Some(&[nh, units]) = payload.first_chunk::<2>() else {
                    return Err(ParseError::Ipv6ExtensionTruncated);
                };
                let len = (usize::from(units) + 1) * 8;
                let Some(rest) = payload.get(len..) else {
                    return Err(ParseError::Ipv6ExtensionTruncated);
                };
                next = nh;
                payload = rest;
            }
            IPV6_FRAGMENT => {
                if walked == MAX_IPV6_EXTENSIONS {
                    return Err(ParseError::Ipv6TooManyExtensions);
                }
                let Some((f, rest)) = payload.split_first_chunk::<IPV6_FRAGMENT_HEADER_LEN>()
                else {
                    return Err(ParseError::Ipv6ExtensionTruncated);
                };
                // Bytes 2-3: 13-bit offset, 2 reserved bits, M flag.
                let offset_flags = be16(f[2], f[3]);
                if offset_flags >> 3 != 0 {
                    return Err(ParseError::Fragment);
                }
                fragmented |= offset_flags & 1 != 0;
                next = f[0];
                payload = rest;
            }
            _ => return parse_transport(next, payload, src.into(), dst.into(), fragmented),
        }
        walked += 1;
    }
}

/// Reads the ports and flags. `fragmented` says more fragments follow, so the UDP length
/// may legitimately reach past this packet.
fn parse_transport(
    proto: u8,
    segment: &[u8],
    src: IpAddr,
    dst: IpAddr,
    fragmented: bool,
) -> Result<KnockPacket, ParseError> {
    match proto {
        PROTO_TCP => {
            let Some(h) = segment.first_chunk::<TCP_MIN_HEADER_LEN>() else {
                return Err(ParseError::TcpTruncated);
            };
            let data_offset = usize::from(h[12] >> 4) * 4;
            if data_offset < TCP_MIN_HEADER_LEN {
                return Err(ParseError::TcpBadDataOffset);
            }
            if data_offset > segment.len() {
                return Err(ParseError::TcpTruncated);
            }
            Ok(KnockPacket {
                src,
                dst,
                proto: Proto::Tcp,
                dst_port: be16(h[2], h[3]),
                tcp_flags: TcpFlags::from_bits(h[13]),
            })
        }
        PROTO_UDP => {
            let Some(h) = segment.first_chunk::<UDP_HEADER_LEN>() else {
                return Err(ParseError::UdpTruncated);
            };
            let len = usize::from(be16(h[4], h[5]));
            if len < UDP_HEADER_LEN || (!fragmented && len > segment.len()) {
                return Err(ParseError::UdpBadLength);
            }
            Ok(KnockPacket {
                src,
                dst,
                proto: Proto::Udp,
                dst_port: be16(h[2], h[3]),
                tcp_flags: TcpFlags::NONE,
            })
        }
        _ => Err(ParseError::NotTcpOrUdp),
    }
}

fn be16(hi: u8, lo: u8) -> u16 {
    u16::from_be_bytes([hi, lo])
}
