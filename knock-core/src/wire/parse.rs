//! Parsing captured frames into [`KnockPacket`]s, every length checked before it is used.
//!
//! The parser reads fields by explicit offsets from slices whose length it has just checked
//! (`first_chunk` and `get`), so no input can make it index out of bounds: it returns a
//! [`ParseError`] instead, and it never allocates. Checksums are not verified: a knock
//! server reacts to what arrives, as knockd does.
//!
//! What is accepted:
//!
//! * links: Ethernet II with up to [`vlan::MAX_TAGS`] stacked VLAN tags of the TPIDs in
//!   [`ethertype::VLAN_TPIDS`] (802.1Q and 802.1ad), BSD loopback (`DLT_NULL`), raw IP and
//!   Linux cooked capture (`DLT_LINUX_SLL`);
//! * IPv4 with options; a non-first fragment (offset != 0) is refused with
//!   [`ParseError::Fragment`] as it carries no ports, a first fragment is read;
//! * IPv6 with up to [`MAX_IPV6_EXTENSIONS`] hop-by-hop, routing, destination-options and
//!   fragment headers, the same fragment rule applying;
//! * TCP and UDP.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::field::{
    Field, arphrd, ethernet, ethertype, ip_proto, ipv4, ipv6, ipv6_ext, ipv6_fragment, loopback,
    sll, tcp, udp, vlan,
};
use super::{KnockPacket, Proto, TcpFlags};

/// How many IPv6 extension headers the parser walks before giving up.
pub const MAX_IPV6_EXTENSIONS: usize = 8;

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
    /// `sll_hatype` of an `AF_PACKET` socket): what the kernel puts in front of the IP header
    /// on a `SOCK_RAW` packet socket bound to it, for the types a knock can arrive on.
    ///
    /// A device shows a link header there only if it has header operations that build one
    /// (`dev_has_header`); the tunnels and PPP have none, so their frames start with IP, in
    /// both directions, and the version nibble tells IPv4 from IPv6. Devices whose header is
    /// not fixed by their type (GRE, which shows its outer IP and GRE header only in some
    /// modes; IP over InfiniBand; 802.11 monitor mode) are `None`: the caller declines them.
    pub fn from_arphrd(hatype: u16) -> Option<LinkType> {
        match hatype {
            // Ethernet, veth, bridges, VLAN devices, macvlan, tap, Wi-Fi in station mode;
            // and lo, to which the kernel gives an all-zero Ethernet header.
            arphrd::ETHER | arphrd::LOOPBACK => Some(LinkType::Ethernet),
            // ppp_generic (pppd, PPPoE, L2TP) takes the 2-byte PPP protocol off before a
            // received packet is delivered and adds it only after the tap on send.
            // (Synchronous HDLC cards running PPP show a 4-byte HDLC header instead; their
            // frames start 0xff, fail the version check and are refused, never misread.)
            arphrd::PPP
            // Raw-IP modems (qmi_wwan, rmnet).
            | arphrd::RAWIP
            // ipip and vti, ip6tnl and vti6, sit: the outer header is gone on receive and
            // not yet there when a sent packet passes the tap.
            | arphrd::TUNNEL
            | arphrd::TUNNEL6
            | arphrd::SIT
            // tun devices in IFF_TUN mode, WireGuard.
            | arphrd::NONE => Some(LinkType::RawIp),
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
    /// More than [`vlan::MAX_TAGS`] VLAN tags are stacked.
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
            let Some((head, rest)) = frame.split_first_chunk::<{ ethernet::HEADER_LEN }>() else {
                return Err(ParseError::LinkTruncated);
            };
            parse_ethertype(be16(head, ethernet::ETHERTYPE), rest)
        }
        LinkType::LinuxSll => {
            let Some((head, rest)) = frame.split_first_chunk::<{ sll::HEADER_LEN }>() else {
                return Err(ParseError::LinkTruncated);
            };
            parse_ethertype(be16(head, sll::PROTOCOL), rest)
        }
        LinkType::Loopback => {
            let Some((head, rest)) = frame.split_first_chunk::<{ loopback::HEADER_LEN }>() else {
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
            if family == loopback::AF_INET {
                parse_ipv4(rest)
            } else if loopback::AF_INET6.contains(&family) {
                parse_ipv6(rest)
            } else {
                Err(ParseError::NotIp)
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
    while ethertype::VLAN_TPIDS.contains(&ethertype) {
        if tags == vlan::MAX_TAGS {
            return Err(ParseError::TooManyVlanTags);
        }
        // A tag is the 16-bit TCI followed by the EtherType of what comes next.
        let Some((tag, inner)) = rest.split_first_chunk::<{ vlan::TAG_LEN }>() else {
            return Err(ParseError::LinkTruncated);
        };
        ethertype = be16(tag, vlan::ETHERTYPE);
        rest = inner;
        tags += 1;
    }
    match ethertype {
        ethertype::IPV4 => parse_ipv4(rest),
        ethertype::IPV6 => parse_ipv6(rest),
        _ => Err(ParseError::NotIp),
    }
}

fn parse_ipv4(packet: &[u8]) -> Result<KnockPacket, ParseError> {
    let Some(h) = packet.first_chunk::<{ ipv4::MIN_HEADER_LEN }>() else {
        return Err(if packet.is_empty() {
            ParseError::Empty
        } else {
            ParseError::Ipv4Truncated
        });
    };
    if h[ipv4::VER_IHL] >> 4 != ipv4::VERSION {
        return Err(ParseError::BadIpVersion);
    }
    let header_len = usize::from(h[ipv4::VER_IHL] & 0x0f) * 4;
    if header_len < ipv4::MIN_HEADER_LEN {
        return Err(ParseError::Ipv4BadHeaderLength);
    }
    if header_len > packet.len() {
        return Err(ParseError::Ipv4Truncated);
    }
    // Ethernet pads short frames, so the total length, not the frame, bounds the payload.
    let total_len = usize::from(be16(h, ipv4::TOTAL_LEN));
    if total_len < header_len || total_len > packet.len() {
        return Err(ParseError::Ipv4BadTotalLength);
    }
    let flags_offset = be16(h, ipv4::FLAGS_FRAG);
    if flags_offset & ipv4::FRAG_OFFSET_MASK != 0 {
        return Err(ParseError::Fragment);
    }
    let more_fragments = flags_offset & ipv4::MORE_FRAGMENTS != 0;
    let Some(payload) = packet.get(header_len..total_len) else {
        return Err(ParseError::Ipv4BadTotalLength);
    };
    let src = Ipv4Addr::from(bytes::<4>(h, ipv4::SRC));
    let dst = Ipv4Addr::from(bytes::<4>(h, ipv4::DST));
    parse_transport(
        h[ipv4::PROTOCOL],
        payload,
        src.into(),
        dst.into(),
        more_fragments,
    )
}

fn parse_ipv6(packet: &[u8]) -> Result<KnockPacket, ParseError> {
    if packet.is_empty() {
        return Err(ParseError::Empty);
    }
    let Some((h, rest)) = packet.split_first_chunk::<{ ipv6::HEADER_LEN }>() else {
        return Err(ParseError::Ipv6Truncated);
    };
    if h[ipv6::VER_TC_FLOW.start] >> 4 != ipv6::VERSION {
        return Err(ParseError::BadIpVersion);
    }
    let payload_len = usize::from(be16(h, ipv6::PAYLOAD_LEN));
    let Some(mut payload) = rest.get(..payload_len) else {
        return Err(ParseError::Ipv6Truncated);
    };
    let src = Ipv6Addr::from(bytes::<16>(h, ipv6::SRC));
    let dst = Ipv6Addr::from(bytes::<16>(h, ipv6::DST));

    let mut next = h[ipv6::NEXT_HEADER];
    let mut fragmented = false;
    let mut walked = 0;
    loop {
        match next {
            ip_proto::HOP_BY_HOP | ip_proto::IPV6_ROUTING | ip_proto::IPV6_DEST_OPTIONS => {
                if next == ip_proto::HOP_BY_HOP && walked > 0 {
                    return Err(ParseError::Ipv6MisplacedHopByHop);
                }
                if walked == MAX_IPV6_EXTENSIONS {
                    return Err(ParseError::Ipv6TooManyExtensions);
                }
                let Some(e) = payload.first_chunk::<{ ipv6_ext::MIN_LEN }>() else {
                    return Err(ParseError::Ipv6ExtensionTruncated);
                };
                let len = (usize::from(e[ipv6_ext::LENGTH]) + 1) * ipv6_ext::UNIT;
                let Some(rest) = payload.get(len..) else {
                    return Err(ParseError::Ipv6ExtensionTruncated);
                };
                next = e[ipv6_ext::NEXT_HEADER];
                payload = rest;
            }
            ip_proto::IPV6_FRAGMENT => {
                if walked == MAX_IPV6_EXTENSIONS {
                    return Err(ParseError::Ipv6TooManyExtensions);
                }
                let Some((f, rest)) = payload.split_first_chunk::<{ ipv6_fragment::HEADER_LEN }>()
                else {
                    return Err(ParseError::Ipv6ExtensionTruncated);
                };
                let offset_flags = be16(f, ipv6_fragment::OFFSET_FLAGS);
                if offset_flags & ipv6_fragment::OFFSET_MASK != 0 {
                    return Err(ParseError::Fragment);
                }
                fragmented |= offset_flags & ipv6_fragment::MORE_FRAGMENTS != 0;
                next = f[ipv6_fragment::NEXT_HEADER];
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
    match Proto::from_number(proto) {
        Some(Proto::Tcp) => {
            let Some(h) = segment.first_chunk::<{ tcp::MIN_HEADER_LEN }>() else {
                return Err(ParseError::TcpTruncated);
            };
            let data_offset = usize::from(h[tcp::DATA_OFFSET] >> 4) * 4;
            if data_offset < tcp::MIN_HEADER_LEN {
                return Err(ParseError::TcpBadDataOffset);
            }
            if data_offset > segment.len() {
                return Err(ParseError::TcpTruncated);
            }
            Ok(KnockPacket {
                src,
                dst,
                proto: Proto::Tcp,
                dst_port: be16(h, tcp::DST_PORT),
                tcp_flags: TcpFlags::from_bits(h[tcp::FLAGS]),
            })
        }
        Some(Proto::Udp) => {
            let Some(h) = segment.first_chunk::<{ udp::HEADER_LEN }>() else {
                return Err(ParseError::UdpTruncated);
            };
            let len = usize::from(be16(h, udp::LENGTH));
            if len < udp::HEADER_LEN || (!fragmented && len > segment.len()) {
                return Err(ParseError::UdpBadLength);
            }
            Ok(KnockPacket {
                src,
                dst,
                proto: Proto::Udp,
                dst_port: be16(h, udp::DST_PORT),
                tcp_flags: TcpFlags::NONE,
            })
        }
        None => Err(ParseError::NotTcpOrUdp),
    }
}

/// The big-endian u16 in `field` of a header whose whole length was checked (`N` bytes),
/// so the index is in bounds for every field of that header.
fn be16<const N: usize>(header: &[u8; N], field: Field) -> u16 {
    u16::from_be_bytes(bytes::<2>(header, field))
}

/// The `M` bytes of `field` in a header whose whole length was checked.
fn bytes<const M: usize>(header: &[u8], field: Field) -> [u8; M] {
    debug_assert_eq!(field.len(), M);
    let mut out = [0; M];
    out.copy_from_slice(&header[field]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::build::{
        Ipv4Header, Ipv6Header, TcpSegment, Transport, UdpDatagram, ipv4_packet, ipv6_packet,
    };

    const SRC4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const DST4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    const SRC6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const DST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    const FIN_PSH: TcpFlags = TcpFlags::from_bits(0x09);

    use ParseError::*;

    fn tcp(flags: TcpFlags) -> Transport<'static> {
        Transport::Tcp(TcpSegment::new(40000, 7000, flags))
    }

    fn udp(payload: &[u8]) -> Transport<'_> {
        Transport::Udp(UdpDatagram {
            src_port: 40001,
            dst_port: 9000,
            payload,
        })
    }

    fn v4(l4: Transport<'_>) -> Vec<u8> {
        ipv4_packet(&Ipv4Header::new(SRC4, DST4), &l4).unwrap()
    }

    fn v6(l4: Transport<'_>) -> Vec<u8> {
        ipv6_packet(&Ipv6Header::new(SRC6, DST6), &l4).unwrap()
    }

    fn knock(src: IpAddr, dst: IpAddr, proto: Proto, port: u16, flags: TcpFlags) -> KnockPacket {
        KnockPacket {
            src,
            dst,
            proto,
            dst_port: port,
            tcp_flags: flags,
        }
    }

    fn k4_tcp(flags: TcpFlags) -> Result<KnockPacket, ParseError> {
        Ok(knock(SRC4.into(), DST4.into(), Proto::Tcp, 7000, flags))
    }

    fn k6_tcp(flags: TcpFlags) -> Result<KnockPacket, ParseError> {
        Ok(knock(SRC6.into(), DST6.into(), Proto::Tcp, 7000, flags))
    }

    fn k4_udp() -> Result<KnockPacket, ParseError> {
        Ok(knock(
            SRC4.into(),
            DST4.into(),
            Proto::Udp,
            9000,
            TcpFlags::NONE,
        ))
    }

    fn k6_udp() -> Result<KnockPacket, ParseError> {
        Ok(knock(
            SRC6.into(),
            DST6.into(),
            Proto::Udp,
            9000,
            TcpFlags::NONE,
        ))
    }

    /// An Ethernet II frame between two locally administered MACs, with VLAN tags given as
    /// their TPIDs (VLAN ids 100, 101, ...).
    fn eth_tagged(tpids: &[u16], ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01];
        for (i, tpid) in tpids.iter().enumerate() {
            f.extend(tpid.to_be_bytes());
            f.extend((100 + i as u16).to_be_bytes());
        }
        f.extend(ethertype.to_be_bytes());
        f.extend(payload);
        f
    }

    fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        eth_tagged(&[], ethertype, payload)
    }

    /// A Linux cooked (SLL v1) header: incoming unicast from an Ethernet device.
    fn sll(protocol: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0, 0, 0, 1, 0, 6, 0x02, 0, 0, 0, 0, 0x01, 0, 0];
        f.extend(protocol.to_be_bytes());
        f.extend(payload);
        f
    }

    fn lo(family: [u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut f = family.to_vec();
        f.extend(payload);
        f
    }

    /// Applies `change` to a copy of `bytes`.
    fn with(mut bytes: Vec<u8>, change: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        change(&mut bytes);
        bytes
    }

    /// An IPv6 extension header for [`v6_chain`].
    #[derive(Clone, Copy)]
    enum Ext {
        /// Hop-by-hop (0), routing (43) or destination options (60) of `(units + 1) * 8`
        /// bytes, padded with zeros (Pad1 options, or routing type 0 with no segments left).
        Opts(u8, u8),
        Frag {
            offset: u16,
            more: bool,
        },
    }

    impl Ext {
        fn kind(self) -> u8 {
            match self {
                Ext::Opts(kind, _) => kind,
                Ext::Frag { .. } => ip_proto::IPV6_FRAGMENT,
            }
        }
    }

    /// An IPv6 packet 2001:db8::1 -> 2001:db8::2 with these extension headers before a
    /// transport of protocol `proto`.
    fn v6_chain(exts: &[Ext], proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        for (i, ext) in exts.iter().enumerate() {
            let next = exts.get(i + 1).map_or(proto, |e| e.kind());
            match *ext {
                Ext::Opts(_, units) => {
                    body.extend([next, units]);
                    body.extend(vec![0; usize::from(units) * 8 + 6]);
                }
                Ext::Frag { offset, more } => {
                    body.extend([next, 0]);
                    body.extend((offset << 3 | u16::from(more)).to_be_bytes());
                    body.extend(0x1234_5678u32.to_be_bytes());
                }
            }
        }
        body.extend(l4);
        let first = exts.first().map_or(proto, |e| e.kind());
        let mut p = vec![0x60, 0, 0, 0];
        p.extend((body.len() as u16).to_be_bytes());
        p.extend([first, 64]);
        p.extend(SRC6.octets());
        p.extend(DST6.octets());
        p.extend(body);
        p
    }

    /// The TCP part of a FIN+PSH knock to port 7000 (checksum irrelevant to the parser).
    fn tcp_seg() -> Vec<u8> {
        v4(tcp(FIN_PSH))[20..].to_vec()
    }

    /// The UDP part of a knock to port 9000 carrying `knock`.
    fn udp_seg() -> Vec<u8> {
        v4(udp(b"knock"))[20..].to_vec()
    }

    struct Case {
        name: &'static str,
        link: LinkType,
        frame: Vec<u8>,
        want: Result<KnockPacket, ParseError>,
    }

    fn case(
        name: &'static str,
        link: LinkType,
        frame: Vec<u8>,
        want: Result<KnockPacket, ParseError>,
    ) -> Case {
        Case {
            name,
            link,
            frame,
            want,
        }
    }

    fn run(cases: Vec<Case>) {
        for c in cases {
            assert_eq!(parse_frame(c.link, &c.frame), c.want, "case {:?}", c.name);
        }
    }

    use LinkType::{Ethernet, LinuxSll, Loopback, RawIp};

    /// As in knockd 0.8 (the README says so): checksums are never verified, so a knock with
    /// a bad IPv4 header, TCP or UDP checksum counts like any other.
    #[test]
    fn bad_checksums_count() {
        use crate::wire::field::{ipv4, tcp as tcp_field, udp as udp_field};
        let ip = ipv4::MIN_HEADER_LEN;
        let bad_ip = with(v4(tcp(FIN_PSH)), |p| p[ipv4::CHECKSUM].fill(0xde));
        let bad_tcp = with(v4(tcp(FIN_PSH)), |p| {
            p[ip + tcp_field::CHECKSUM.start] ^= 0xff;
        });
        let bad_udp = with(v4(udp(b"k")), |p| {
            p[ip + udp_field::CHECKSUM.start] ^= 0xff;
        });
        assert_eq!(parse_frame(RawIp, &bad_ip), k4_tcp(FIN_PSH));
        assert_eq!(parse_frame(RawIp, &bad_tcp), k4_tcp(FIN_PSH));
        assert_eq!(
            parse_frame(RawIp, &bad_udp),
            Ok(knock(
                SRC4.into(),
                DST4.into(),
                Proto::Udp,
                9000,
                TcpFlags::NONE
            ))
        );
    }

    #[test]
    fn link_layers() {
        let p4 = v4(tcp(FIN_PSH));
        let p6 = v6(tcp(FIN_PSH));
        let (q, ad, old) = (0x8100, 0x88a8, 0x9100);
        run(vec![
            case("ethernet ipv4", Ethernet, eth(0x0800, &p4), k4_tcp(FIN_PSH)),
            case("ethernet ipv6", Ethernet, eth(0x86dd, &p6), k6_tcp(FIN_PSH)),
            case(
                "linux loopback: zero MACs",
                Ethernet,
                with(eth(0x0800, &p4), |f| f[..12].fill(0)),
                k4_tcp(FIN_PSH),
            ),
            case(
                "802.1Q",
                Ethernet,
                eth_tagged(&[q], 0x0800, &p4),
                k4_tcp(FIN_PSH),
            ),
            case(
                "802.1ad over 802.1Q",
                Ethernet,
                eth_tagged(&[ad, q], 0x86dd, &p6),
                k6_tcp(FIN_PSH),
            ),
            case(
                "four tags, the limit",
                Ethernet,
                eth_tagged(&[ad, q, ad, q], 0x0800, &p4),
                k4_tcp(FIN_PSH),
            ),
            // Only the tags the kernel itself takes off (field::ethertype::VLAN_TPIDS).
            case(
                "pre-standard Q-in-Q tag",
                Ethernet,
                eth_tagged(&[old], 0x0800, &p4),
                Err(NotIp),
            ),
            case(
                "pre-standard tag under an 802.1ad tag",
                Ethernet,
                eth_tagged(&[ad, old], 0x0800, &p4),
                Err(NotIp),
            ),
            case(
                "five tags",
                Ethernet,
                eth_tagged(&[ad, q, q, q, q], 0x0800, &p4),
                Err(TooManyVlanTags),
            ),
            case(
                "a thousand tags",
                Ethernet,
                eth_tagged(&[q; 1000], 0x0800, &p4),
                Err(TooManyVlanTags),
            ),
            case(
                "tag cut short",
                Ethernet,
                eth_tagged(&[q], 0x0800, &[])[..16].to_vec(),
                Err(LinkTruncated),
            ),
            case(
                "tag with nothing after it",
                Ethernet,
                eth_tagged(&[], q, &[]),
                Err(LinkTruncated),
            ),
            case("empty ethernet", Ethernet, vec![], Err(LinkTruncated)),
            case(
                "13-byte ethernet",
                Ethernet,
                vec![0; 13],
                Err(LinkTruncated),
            ),
            case("arp", Ethernet, eth(0x0806, &[0; 28]), Err(NotIp)),
            case("802.3 length field", Ethernet, eth(0x002e, &p4), Err(NotIp)),
            case("header only", Ethernet, eth(0x0800, &[]), Err(Empty)),
            case(
                "ipv4 type, ipv6 inside",
                Ethernet,
                eth(0x0800, &p6),
                Err(BadIpVersion),
            ),
            case(
                "ipv6 type, ipv4 inside",
                Ethernet,
                eth(0x86dd, &p4),
                Err(BadIpVersion),
            ),
            case(
                "ethernet padding after a short packet",
                Ethernet,
                with(eth(0x0800, &v4(udp(b""))), |f| f.resize(60, 0)),
                k4_udp(),
            ),
            case("raw ipv4", RawIp, p4.clone(), k4_tcp(FIN_PSH)),
            case("raw ipv6", RawIp, p6.clone(), k6_tcp(FIN_PSH)),
            case("raw empty", RawIp, vec![], Err(Empty)),
            case(
                "raw version 5",
                RawIp,
                with(p4.clone(), |p| p[0] = 0x55),
                Err(BadIpVersion),
            ),
            case("raw version 0", RawIp, vec![0; 60], Err(BadIpVersion)),
            case("sll ipv4", LinuxSll, sll(0x0800, &p4), k4_tcp(FIN_PSH)),
            case("sll ipv6", LinuxSll, sll(0x86dd, &p6), k6_tcp(FIN_PSH)),
            case(
                "sll vlan",
                LinuxSll,
                with(sll(q, &[0, 100, 0x08, 0x00]), |f| f.extend(&p4)),
                k4_tcp(FIN_PSH),
            ),
            case("sll 802.2", LinuxSll, sll(0x0004, &p4), Err(NotIp)),
            case(
                "sll cut short",
                LinuxSll,
                sll(0x0800, &[])[..15].to_vec(),
                Err(LinkTruncated),
            ),
            case(
                "loopback inet, little-endian",
                Loopback,
                lo([2, 0, 0, 0], &p4),
                k4_tcp(FIN_PSH),
            ),
            case(
                "loopback inet, big-endian",
                Loopback,
                lo([0, 0, 0, 2], &p4),
                k4_tcp(FIN_PSH),
            ),
            case(
                "loopback inet6 macOS",
                Loopback,
                lo([30, 0, 0, 0], &p6),
                k6_tcp(FIN_PSH),
            ),
            case(
                "loopback inet6 FreeBSD",
                Loopback,
                lo([28, 0, 0, 0], &p6),
                k6_tcp(FIN_PSH),
            ),
            case(
                "loopback inet6 OpenBSD",
                Loopback,
                lo([0, 0, 0, 24], &p6),
                k6_tcp(FIN_PSH),
            ),
            case(
                "loopback inet6 Windows",
                Loopback,
                lo([23, 0, 0, 0], &p6),
                k6_tcp(FIN_PSH),
            ),
            case(
                "loopback inet6 Linux",
                Loopback,
                lo([10, 0, 0, 0], &p6),
                k6_tcp(FIN_PSH),
            ),
            case(
                "loopback other family",
                Loopback,
                lo([7, 0, 0, 0], &p4),
                Err(NotIp),
            ),
            case(
                "loopback garbage family",
                Loopback,
                lo([1, 0, 0, 1], &p4),
                Err(NotIp),
            ),
            case(
                "loopback inet, ipv6 inside",
                Loopback,
                lo([2, 0, 0, 0], &p6),
                Err(BadIpVersion),
            ),
            case(
                "loopback cut short",
                Loopback,
                vec![2, 0, 0],
                Err(LinkTruncated),
            ),
            case(
                "loopback header only",
                Loopback,
                lo([2, 0, 0, 0], &[]),
                Err(Empty),
            ),
        ]);
    }

    #[test]
    fn ipv4() {
        let p = v4(tcp(FIN_PSH));
        let u = v4(udp(b"knock"));
        // Sets the total length field.
        let total = |p: &mut Vec<u8>, len: u16| p[2..4].copy_from_slice(&len.to_be_bytes());
        // Sets the flags/fragment offset word.
        let frag = |p: &mut Vec<u8>, word: u16| p[6..8].copy_from_slice(&word.to_be_bytes());
        run(vec![
            case("tcp", RawIp, p.clone(), k4_tcp(FIN_PSH)),
            case("udp", RawIp, u.clone(), k4_udp()),
            case("19 bytes", RawIp, p[..19].to_vec(), Err(Ipv4Truncated)),
            case("1 byte", RawIp, vec![0x45], Err(Ipv4Truncated)),
            case(
                "IHL 4",
                RawIp,
                with(p.clone(), |p| p[0] = 0x44),
                Err(Ipv4BadHeaderLength),
            ),
            case(
                "IHL 0",
                RawIp,
                with(p.clone(), |p| p[0] = 0x40),
                Err(Ipv4BadHeaderLength),
            ),
            case(
                "IHL 15 in 40 bytes",
                RawIp,
                with(p.clone(), |p| p[0] = 0x4f),
                Err(Ipv4Truncated),
            ),
            case(
                "IHL 15, 60 bytes, total length 40",
                RawIp,
                with(p.clone(), |p| {
                    p[0] = 0x4f;
                    p.resize(60, 0);
                }),
                Err(Ipv4BadTotalLength),
            ),
            case(
                "total length one past the buffer",
                RawIp,
                with(p.clone(), |p| total(p, 41)),
                Err(Ipv4BadTotalLength),
            ),
            case(
                "total length 65535",
                RawIp,
                with(p.clone(), |p| total(p, 0xffff)),
                Err(Ipv4BadTotalLength),
            ),
            case(
                "total length below the header",
                RawIp,
                with(p.clone(), |p| total(p, 19)),
                Err(Ipv4BadTotalLength),
            ),
            case(
                "total length 0",
                RawIp,
                with(p.clone(), |p| total(p, 0)),
                Err(Ipv4BadTotalLength),
            ),
            case(
                "total length hides the TCP header",
                RawIp,
                with(p.clone(), |p| total(p, 20)),
                Err(TcpTruncated),
            ),
            case(
                "trailing bytes past total length are ignored",
                RawIp,
                with(p.clone(), |p| p.extend([0xff; 7])),
                k4_tcp(FIN_PSH),
            ),
            case(
                "options: IHL 6 with four NOPs",
                RawIp,
                with(p.clone(), |p| {
                    p[0] = 0x46;
                    total(p, 44);
                    p.splice(20..20, [1, 1, 1, 1]);
                }),
                k4_tcp(FIN_PSH),
            ),
            case(
                "options: IHL 15, 40 option bytes",
                RawIp,
                with(p.clone(), |p| {
                    p[0] = 0x4f;
                    total(p, 80);
                    p.splice(20..20, [0; 40]);
                }),
                k4_tcp(FIN_PSH),
            ),
            case(
                "non-first fragment",
                RawIp,
                with(p.clone(), |p| frag(p, 0x0001)),
                Err(Fragment),
            ),
            case(
                "middle fragment",
                RawIp,
                with(p.clone(), |p| frag(p, 0x2000 | 0x00b9)),
                Err(Fragment),
            ),
            case(
                "last fragment, offset 8191",
                RawIp,
                with(p.clone(), |p| frag(p, 0x1fff)),
                Err(Fragment),
            ),
            case(
                "first fragment is read",
                RawIp,
                with(p.clone(), |p| frag(p, 0x2000)),
                k4_tcp(FIN_PSH),
            ),
            case(
                "first UDP fragment: UDP length covers later fragments",
                RawIp,
                with(u.clone(), |p| {
                    frag(p, 0x2000);
                    p[24..26].copy_from_slice(&1480u16.to_be_bytes());
                }),
                k4_udp(),
            ),
            case(
                "icmp",
                RawIp,
                with(p.clone(), |p| p[9] = 1),
                Err(NotTcpOrUdp),
            ),
            case(
                "sctp",
                RawIp,
                with(p.clone(), |p| p[9] = 132),
                Err(NotTcpOrUdp),
            ),
            case(
                "ipv6-in-ipv4",
                RawIp,
                with(p.clone(), |p| p[9] = 41),
                Err(NotTcpOrUdp),
            ),
        ]);
    }

    #[test]
    fn ipv4_transport() {
        let p = v4(tcp(FIN_PSH));
        let u = v4(udp(b"knock"));
        // Cuts the packet to `len` bytes and makes the total length agree.
        let cut = |p: &[u8], len: usize| {
            with(p[..len].to_vec(), |p| {
                p[2..4].copy_from_slice(&(len as u16).to_be_bytes())
            })
        };
        let offset = |p: &mut Vec<u8>, words: u8| p[32] = words << 4;
        let udp_len = |p: &mut Vec<u8>, len: u16| p[24..26].copy_from_slice(&len.to_be_bytes());
        run(vec![
            case("tcp 19 bytes", RawIp, cut(&p, 39), Err(TcpTruncated)),
            case("tcp 0 bytes", RawIp, cut(&p, 20), Err(TcpTruncated)),
            case(
                "data offset 4",
                RawIp,
                with(p.clone(), |p| offset(p, 4)),
                Err(TcpBadDataOffset),
            ),
            case(
                "data offset 0",
                RawIp,
                with(p.clone(), |p| offset(p, 0)),
                Err(TcpBadDataOffset),
            ),
            case(
                "data offset 6, options missing",
                RawIp,
                with(p.clone(), |p| offset(p, 6)),
                Err(TcpTruncated),
            ),
            case(
                "data offset 15, options missing",
                RawIp,
                with(p.clone(), |p| offset(p, 15)),
                Err(TcpTruncated),
            ),
            case(
                "data offset 6 with an MSS option",
                RawIp,
                with(p.clone(), |p| {
                    offset(p, 6);
                    p.extend([2, 4, 0x05, 0xb4]);
                    p[2..4].copy_from_slice(&44u16.to_be_bytes());
                }),
                k4_tcp(FIN_PSH),
            ),
            case(
                "NS bit and reserved bits do not leak into the flags",
                RawIp,
                with(p.clone(), |p| p[32] |= 0x0f),
                k4_tcp(FIN_PSH),
            ),
            case("udp 7 bytes", RawIp, cut(&u, 27), Err(UdpTruncated)),
            case("udp 0 bytes", RawIp, cut(&u, 20), Err(UdpTruncated)),
            case(
                "udp length 7",
                RawIp,
                with(u.clone(), |p| udp_len(p, 7)),
                Err(UdpBadLength),
            ),
            case(
                "udp length 0",
                RawIp,
                with(u.clone(), |p| udp_len(p, 0)),
                Err(UdpBadLength),
            ),
            case(
                "udp length past the IP payload",
                RawIp,
                with(u.clone(), |p| udp_len(p, 14)),
                Err(UdpBadLength),
            ),
            case(
                "udp length short of the IP payload",
                RawIp,
                with(u.clone(), |p| udp_len(p, 8)),
                k4_udp(),
            ),
        ]);
    }

    #[test]
    fn ipv6() {
        use Ext::{Frag, Opts};
        let (hbh, rt, dst) = (
            ip_proto::HOP_BY_HOP,
            ip_proto::IPV6_ROUTING,
            ip_proto::IPV6_DEST_OPTIONS,
        );
        let t = tcp_seg();
        let u = udp_seg();
        let p = v6(tcp(FIN_PSH));
        let plen = |p: &mut Vec<u8>, len: u16| p[4..6].copy_from_slice(&len.to_be_bytes());
        let nine_dst = [Opts(dst, 0); 9];
        run(vec![
            case("tcp", RawIp, p.clone(), k6_tcp(FIN_PSH)),
            case("udp", RawIp, v6(udp(b"knock")), k6_udp()),
            case(
                "chain helper, no extensions",
                RawIp,
                v6_chain(&[], 6, &t),
                k6_tcp(FIN_PSH),
            ),
            case("39 bytes", RawIp, p[..39].to_vec(), Err(Ipv6Truncated)),
            case("1 byte", RawIp, vec![0x60], Err(Ipv6Truncated)),
            case(
                "payload length one past the buffer",
                RawIp,
                with(p.clone(), |p| plen(p, 21)),
                Err(Ipv6Truncated),
            ),
            case(
                "payload length 65535",
                RawIp,
                with(p.clone(), |p| plen(p, 0xffff)),
                Err(Ipv6Truncated),
            ),
            case(
                "payload length 0 (jumbogram or lie)",
                RawIp,
                with(p.clone(), |p| plen(p, 0)),
                Err(TcpTruncated),
            ),
            case(
                "trailing bytes past the payload are ignored",
                RawIp,
                with(p.clone(), |p| p.extend([0xff; 9])),
                k6_tcp(FIN_PSH),
            ),
            case(
                "hop-by-hop",
                RawIp,
                v6_chain(&[Opts(hbh, 0)], 6, &t),
                k6_tcp(FIN_PSH),
            ),
            case(
                "hop-by-hop, routing, destination options, fragment",
                RawIp,
                v6_chain(
                    &[
                        Opts(hbh, 1),
                        Opts(rt, 2),
                        Opts(dst, 0),
                        Frag {
                            offset: 0,
                            more: false,
                        },
                    ],
                    17,
                    &u,
                ),
                k6_udp(),
            ),
            case(
                "hop-by-hop after destination options",
                RawIp,
                v6_chain(&[Opts(dst, 0), Opts(hbh, 0)], 6, &t),
                Err(Ipv6MisplacedHopByHop),
            ),
            case(
                "two hop-by-hop headers",
                RawIp,
                v6_chain(&[Opts(hbh, 0), Opts(hbh, 0)], 6, &t),
                Err(Ipv6MisplacedHopByHop),
            ),
            case(
                "eight extension headers, the limit",
                RawIp,
                v6_chain(&nine_dst[..8], 6, &t),
                k6_tcp(FIN_PSH),
            ),
            case(
                "nine extension headers",
                RawIp,
                v6_chain(&nine_dst, 6, &t),
                Err(Ipv6TooManyExtensions),
            ),
            case(
                "nine with a fragment header last",
                RawIp,
                v6_chain(
                    &[
                        Opts(rt, 0),
                        Opts(rt, 0),
                        Opts(rt, 0),
                        Opts(rt, 0),
                        Opts(rt, 0),
                        Opts(rt, 0),
                        Opts(rt, 0),
                        Opts(rt, 0),
                        Frag {
                            offset: 0,
                            more: false,
                        },
                    ],
                    6,
                    &t,
                ),
                Err(Ipv6TooManyExtensions),
            ),
            case(
                "a chain of 8000 routing headers (a \"loop\")",
                RawIp,
                v6_chain(&[Opts(rt, 0); 8000], 6, &t),
                Err(Ipv6TooManyExtensions),
            ),
            case(
                "extension header longer than the payload",
                RawIp,
                with(v6_chain(&[Opts(dst, 0)], 6, &t), |p| p[41] = 255),
                Err(Ipv6ExtensionTruncated),
            ),
            case(
                "extension header with one byte",
                RawIp,
                with(v6_chain(&[], dst, &[6]), |p| p[6] = dst),
                Err(Ipv6ExtensionTruncated),
            ),
            case(
                "extension header with nothing",
                RawIp,
                v6_chain(&[], rt, &[]),
                Err(Ipv6ExtensionTruncated),
            ),
            case(
                "fragment header cut short",
                RawIp,
                v6_chain(&[], ip_proto::IPV6_FRAGMENT, &[6, 0, 0, 0, 0, 0, 0]),
                Err(Ipv6ExtensionTruncated),
            ),
            case(
                "non-first fragment",
                RawIp,
                v6_chain(
                    &[Frag {
                        offset: 1,
                        more: true,
                    }],
                    6,
                    &t,
                ),
                Err(Fragment),
            ),
            case(
                "last fragment behind options",
                RawIp,
                v6_chain(
                    &[
                        Opts(hbh, 0),
                        Frag {
                            offset: 8191,
                            more: false,
                        },
                    ],
                    6,
                    &t,
                ),
                Err(Fragment),
            ),
            case(
                "first fragment",
                RawIp,
                v6_chain(
                    &[Frag {
                        offset: 0,
                        more: true,
                    }],
                    6,
                    &t,
                ),
                k6_tcp(FIN_PSH),
            ),
            case(
                "first UDP fragment: UDP length covers later fragments",
                RawIp,
                v6_chain(
                    &[Frag {
                        offset: 0,
                        more: true,
                    }],
                    17,
                    &with(u.clone(), |u| {
                        u[4..6].copy_from_slice(&1400u16.to_be_bytes())
                    }),
                ),
                k6_udp(),
            ),
            case(
                "atomic fragment: UDP length checked",
                RawIp,
                v6_chain(
                    &[Frag {
                        offset: 0,
                        more: false,
                    }],
                    17,
                    &with(u.clone(), |u| {
                        u[4..6].copy_from_slice(&1400u16.to_be_bytes())
                    }),
                ),
                Err(UdpBadLength),
            ),
            case(
                "no next header",
                RawIp,
                v6_chain(&[], 59, &[]),
                Err(NotTcpOrUdp),
            ),
            case(
                "icmpv6",
                RawIp,
                v6_chain(&[], 58, &[128, 0, 0, 0]),
                Err(NotTcpOrUdp),
            ),
            case(
                "esp",
                RawIp,
                v6_chain(&[Opts(hbh, 0)], 50, &t),
                Err(NotTcpOrUdp),
            ),
            case(
                "tcp data offset 3",
                RawIp,
                v6_chain(&[Opts(dst, 0)], 6, &with(t.clone(), |t| t[12] = 0x30)),
                Err(TcpBadDataOffset),
            ),
            case(
                "tcp cut short behind options",
                RawIp,
                v6_chain(&[Opts(dst, 0)], 6, &t[..19]),
                Err(TcpTruncated),
            ),
            case(
                "udp cut short behind a fragment header",
                RawIp,
                v6_chain(
                    &[Frag {
                        offset: 0,
                        more: true,
                    }],
                    17,
                    &u[..7],
                ),
                Err(UdpTruncated),
            ),
        ]);
    }

    /// Every proper prefix of a well-formed frame is refused, with a truncation error of the
    /// layer the cut falls in.
    #[test]
    fn every_truncation_is_an_error() {
        let truncations = [
            LinkTruncated,
            Empty,
            Ipv4Truncated,
            Ipv4BadTotalLength,
            Ipv6Truncated,
        ];
        for (link, frame) in sample_frames() {
            assert!(parse_frame(link, &frame).is_ok());
            for len in 0..frame.len() {
                let got = parse_frame(link, &frame[..len]);
                assert!(
                    matches!(got, Err(e) if truncations.contains(&e)),
                    "{link:?} frame cut to {len} bytes: {got:?}"
                );
            }
        }
    }

    /// Every single-byte change of a well-formed frame, to every value, parses or fails
    /// without a panic; a change to a byte the parser does not read changes nothing.
    #[test]
    fn every_byte_changed_to_every_value() {
        for (link, frame) in sample_frames() {
            let good = parse_frame(link, &frame);
            for at in 0..frame.len() {
                let mut copy = frame.clone();
                for value in 0..=255u8 {
                    copy[at] = value;
                    let got = parse_frame(link, &copy);
                    if let Ok(k) = got {
                        assert!(k.proto == Proto::Tcp || k.tcp_flags.is_empty());
                    }
                }
                // The payload of a UDP knock is never read.
                if frame.ends_with(b"knock") && at >= frame.len() - 5 {
                    copy[at] = !frame[at];
                    assert_eq!(parse_frame(link, &copy), good);
                }
            }
        }
    }

    fn sample_frames() -> Vec<(LinkType, Vec<u8>)> {
        use Ext::{Frag, Opts};
        let p4 = v4(tcp(FIN_PSH));
        let u4 = v4(udp(b"knock"));
        let p6 = v6_chain(
            &[
                Opts(ip_proto::HOP_BY_HOP, 0),
                Frag {
                    offset: 0,
                    more: false,
                },
            ],
            6,
            &tcp_seg(),
        );
        let u6 = v6(udp(b"knock"));
        vec![
            (Ethernet, eth_tagged(&[0x88a8, 0x8100], 0x0800, &p4)),
            (Ethernet, eth(0x86dd, &u6)),
            (LinuxSll, sll(0x86dd, &p6)),
            (Loopback, lo([2, 0, 0, 0], &u4)),
            (RawIp, p6),
        ]
    }

    #[test]
    fn round_trip_every_flag_combination_over_every_link() {
        for bits in 0..=255u8 {
            let flags = TcpFlags::from_bits(bits);
            let seg = Transport::Tcp(TcpSegment {
                seq: u32::from(bits) << 24,
                ..TcpSegment::new(1024 + u16::from(bits), 7000, flags)
            });
            for (packet, want) in [(v4(seg), k4_tcp(flags)), (v6(seg), k6_tcp(flags))] {
                for (link, frame) in wrap_in_every_link(&packet) {
                    assert_eq!(parse_frame(link, &frame), want, "{link:?} {flags}");
                }
            }
        }
    }

    #[test]
    fn round_trip_udp_payload_sizes() {
        let payload = vec![0xa5; 1500];
        for len in [0, 1, 5, 7, 8, 9, 512, 1472, 1500] {
            let l4 = udp(&payload[..len]);
            for (packet, want) in [(v4(l4), k4_udp()), (v6(l4), k6_udp())] {
                for (link, frame) in wrap_in_every_link(&packet) {
                    assert_eq!(parse_frame(link, &frame), want, "{link:?} payload {len}");
                }
            }
        }
    }

    #[test]
    fn round_trip_other_addresses_and_ports() {
        let src = Ipv4Addr::new(198, 18, 0, 7);
        let dst = Ipv4Addr::new(192, 0, 2, 254);
        for port in [0, 1, 80, 7000, 65535] {
            let l4 = Transport::Tcp(TcpSegment::new(65535 - port, port, TcpFlags::SYN));
            let packet = ipv4_packet(&Ipv4Header::new(src, dst), &l4).unwrap();
            assert_eq!(
                parse_ip(&packet),
                Ok(knock(
                    src.into(),
                    dst.into(),
                    Proto::Tcp,
                    port,
                    TcpFlags::SYN
                ))
            );
        }
    }

    fn wrap_in_every_link(packet: &[u8]) -> Vec<(LinkType, Vec<u8>)> {
        let v6 = packet[0] >> 4 == 6;
        let ethertype = if v6 { 0x86dd } else { 0x0800 };
        let family = if v6 { 30 } else { 2 };
        vec![
            (RawIp, packet.to_vec()),
            (Ethernet, eth(ethertype, packet)),
            (Ethernet, eth_tagged(&[0x8100], ethertype, packet)),
            (Ethernet, eth_tagged(&[0x88a8, 0x8100], ethertype, packet)),
            (LinuxSll, sll(ethertype, packet)),
            (Loopback, lo([family, 0, 0, 0], packet)),
            (Loopback, lo([0, 0, 0, family], packet)),
        ]
    }

    #[test]
    fn parse_ip_is_the_raw_ip_link() {
        let p = v6(tcp(TcpFlags::SYN));
        assert_eq!(parse_ip(&p), parse_frame(RawIp, &p));
        assert_eq!(parse_ip(&p), k6_tcp(TcpFlags::SYN));
    }

    #[test]
    fn link_type_numbers() {
        assert_eq!(LinkType::from_arphrd(1), Some(Ethernet));
        assert_eq!(LinkType::from_arphrd(772), Some(Ethernet));
        assert_eq!(LinkType::from_arphrd(0xfffe), Some(RawIp));
        assert_eq!(LinkType::from_arphrd(519), Some(RawIp));
        // PPP, ipip, ip6tnl, sit: no link header in front of IP.
        for hatype in [512, 768, 769, 776] {
            assert_eq!(LinkType::from_arphrd(hatype), Some(RawIp), "{hatype}");
        }
        // No fixed framing: declined.
        for hatype in [24, 32, 778, 803, 823] {
            assert_eq!(LinkType::from_arphrd(hatype), None, "{hatype}");
        }
        assert_eq!(LinkType::from_pcap(0), Some(Loopback));
        assert_eq!(LinkType::from_pcap(1), Some(Ethernet));
        assert_eq!(LinkType::from_pcap(101), Some(RawIp));
        assert_eq!(LinkType::from_pcap(113), Some(LinuxSll));
        assert_eq!(LinkType::from_pcap(127), None); // radiotap
    }

    #[test]
    fn errors_index_their_table_and_describe_themselves() {
        for (i, e) in ParseError::ALL.iter().enumerate() {
            assert_eq!(*e as usize, i);
        }
        assert_eq!(
            Ipv4BadHeaderLength.to_string(),
            "IPv4 header length below 20 bytes"
        );
        assert_eq!(
            Fragment.to_string(),
            "non-first fragment, no transport header"
        );
        let mut seen = std::collections::HashSet::new();
        assert!(ParseError::ALL.iter().all(|e| seen.insert(e.as_str())));
    }

    #[test]
    fn error_is_small() {
        assert_eq!(std::mem::size_of::<ParseError>(), 1);
    }
}
