//! Packet layout, the one table: byte offsets of the header fields a knock touches, header
//! lengths, EtherTypes and IP protocol numbers.
//!
//! The parser, the builder and the server's kernel filter all read these, so a layout fact
//! lives here once. Offsets are relative to the start of their own header; a multi-byte
//! field is a [`Field`] range, a one-byte field its index. All multi-byte fields are big
//! endian (network order).

use std::ops::Range;

/// A multi-byte field: `header[FIELD]`.
pub type Field = Range<usize>;

/// Ethernet II (IEEE 802.3 with an EtherType).
pub mod ethernet {
    use super::Field;

    pub const DST: Field = 0..6;
    pub const SRC: Field = 6..12;
    /// The EtherType of the payload, or the TPID of a VLAN tag.
    pub const ETHERTYPE: Field = 12..14;
    pub const HEADER_LEN: usize = 14;
}

/// An 802.1Q / 802.1ad VLAN tag, counted from just after the TPID it follows: the TPID sits
/// in the EtherType field of the header before, and the tag ends with the next EtherType.
pub mod vlan {
    use super::Field;

    /// Priority, drop eligibility and the 12-bit VLAN id.
    pub const TCI: Field = 0..2;
    pub const ETHERTYPE: Field = 2..4;
    pub const TAG_LEN: usize = 4;
    /// How many tags may stand between the Ethernet header and IP. Real networks use one
    /// (802.1Q) or two (802.1ad "Q-in-Q"); the bound keeps hostile frames cheap.
    pub const MAX_TAGS: usize = 4;
}

/// Linux cooked capture v1 (pcap `DLT_LINUX_SLL`).
pub mod sll {
    use super::Field;

    /// Packet type (to us, broadcast, outgoing...).
    pub const PACKET_TYPE: Field = 0..2;
    /// The `ARPHRD_*` type of the device.
    pub const HATYPE: Field = 2..4;
    pub const ADDR_LEN: Field = 4..6;
    pub const ADDR: Field = 6..14;
    /// The EtherType of the payload.
    pub const PROTOCOL: Field = 14..16;
    pub const HEADER_LEN: usize = 16;
}

/// BSD loopback (pcap `DLT_NULL` / `DLT_LOOP`): a 32-bit address family in the capturing
/// host's byte order (network order for `DLT_LOOP`).
pub mod loopback {
    use super::Field;

    pub const FAMILY: Field = 0..4;
    pub const HEADER_LEN: usize = 4;
    /// `AF_INET`, the same on every system.
    pub const AF_INET: u32 = 2;
    /// `AF_INET6` on Linux (10), Windows (23), NetBSD and OpenBSD (24), FreeBSD (28) and
    /// macOS (30): a capture file says nothing of where it was made, so all are taken.
    pub const AF_INET6: [u32; 5] = [10, 23, 24, 28, 30];
}

/// Linux device types (`ARPHRD_*` in `<linux/if_arp.h>`), the `sll_hatype` of a packet
/// socket; [`LinkType::from_arphrd`](crate::wire::LinkType::from_arphrd) says which framing
/// each shows.
pub mod arphrd {
    pub const ETHER: u16 = 1;
    pub const IEEE1394: u16 = 24;
    pub const INFINIBAND: u16 = 32;
    pub const PPP: u16 = 512;
    pub const RAWIP: u16 = 519;
    /// IPv4 in IPv4 (ipip), and vti.
    pub const TUNNEL: u16 = 768;
    /// IPv4 or IPv6 in IPv6 (ip6tnl), and vti6.
    pub const TUNNEL6: u16 = 769;
    pub const LOOPBACK: u16 = 772;
    /// IPv6 in IPv4.
    pub const SIT: u16 = 776;
    pub const IPGRE: u16 = 778;
    pub const IEEE80211_RADIOTAP: u16 = 803;
    pub const IP6GRE: u16 = 823;
    /// No link header: tun in `IFF_TUN` mode, WireGuard.
    pub const NONE: u16 = 0xfffe;
}

/// EtherTypes (and VLAN TPIDs), the values of [`ethernet::ETHERTYPE`], [`vlan::ETHERTYPE`]
/// and [`sll::PROTOCOL`].
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const IPV6: u16 = 0x86dd;
    /// 802.1Q customer VLAN tag.
    pub const VLAN_8021Q: u16 = 0x8100;
    /// 802.1ad service VLAN tag (the outer tag of Q-in-Q).
    pub const VLAN_8021AD: u16 = 0x88a8;
    /// The VLAN tags a knock may arrive in, for the parser and the kernel filter alike.
    ///
    /// These two, and not the pre-standard Q-in-Q TPIDs (0x9100, 0x9200) some switches still
    /// emit: they are exactly the tags the Linux kernel itself takes off a frame (its
    /// `eth_type_vlan`) and the only ones a VLAN device can be made with, so a frame under any
    /// other tag never reaches the host's IP stack and a knock in it could not be answered by
    /// the connection it is meant to open. The server's filter tests this same list.
    pub const VLAN_TPIDS: [u16; 2] = [VLAN_8021Q, VLAN_8021AD];
}

/// IP protocol numbers (IPv4 protocol, IPv6 next header).
pub mod ip_proto {
    /// IPv6 hop-by-hop options; only ever right after the fixed header.
    pub const HOP_BY_HOP: u8 = 0;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const IPV6_ROUTING: u8 = 43;
    pub const IPV6_FRAGMENT: u8 = 44;
    pub const ICMPV6: u8 = 58;
    /// IPv6 "no next header".
    pub const IPV6_NO_NEXT: u8 = 59;
    pub const IPV6_DEST_OPTIONS: u8 = 60;
    /// The IPv6 extension headers the parser and the filter walk; all but the fragment
    /// header share the [`ipv6_ext`](super::ipv6_ext) layout.
    pub const IPV6_EXTENSIONS: [u8; 4] =
        [HOP_BY_HOP, IPV6_ROUTING, IPV6_FRAGMENT, IPV6_DEST_OPTIONS];
}

/// IPv4 (RFC 791).
pub mod ipv4 {
    use super::Field;

    /// Version (high nibble) and header length in 32-bit words (IHL, low nibble).
    pub const VER_IHL: usize = 0;
    /// The version nibble of every IPv4 header.
    pub const VERSION: u8 = 4;
    pub const DSCP_ECN: usize = 1;
    pub const TOTAL_LEN: Field = 2..4;
    pub const IDENT: Field = 4..6;
    /// Three flag bits and the 13-bit fragment offset.
    pub const FLAGS_FRAG: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC: Field = 12..16;
    pub const DST: Field = 16..20;
    /// The header without options (IHL 5).
    pub const MIN_HEADER_LEN: usize = 20;
    /// In [`FLAGS_FRAG`]: the fragment offset; non-zero in every fragment but the first.
    pub const FRAG_OFFSET_MASK: u16 = 0x1fff;
    /// In [`FLAGS_FRAG`]: more fragments follow.
    pub const MORE_FRAGMENTS: u16 = 0x2000;
    /// In [`FLAGS_FRAG`]: don't fragment.
    pub const DONT_FRAGMENT: u16 = 0x4000;
}

/// The fixed IPv6 header (RFC 8200).
pub mod ipv6 {
    use super::Field;

    /// Version (4 bits), traffic class (8) and flow label (20).
    pub const VER_TC_FLOW: Field = 0..4;
    /// The version nibble of every IPv6 header.
    pub const VERSION: u8 = 6;
    /// The bytes after the fixed header, extension headers included.
    pub const PAYLOAD_LEN: Field = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Field = 8..24;
    pub const DST: Field = 24..40;
    pub const HEADER_LEN: usize = 40;
}

/// IPv6 extension headers: hop-by-hop, routing and destination options share this layout;
/// the fragment header is [`ipv6_fragment`].
pub mod ipv6_ext {
    pub const NEXT_HEADER: usize = 0;
    /// The header's length in [`UNIT`]s, not counting the first.
    pub const LENGTH: usize = 1;
    pub const UNIT: usize = 8;
    /// The smallest extension header (length 0), which is also enough to read the two
    /// fields above.
    pub const MIN_LEN: usize = UNIT;
}

/// The IPv6 fragment header.
pub mod ipv6_fragment {
    use super::Field;

    pub const NEXT_HEADER: usize = 0;
    /// The fragment offset in 8-byte units (high 13 bits) and the more-fragments flag.
    pub const OFFSET_FLAGS: Field = 2..4;
    pub const IDENT: Field = 4..8;
    pub const HEADER_LEN: usize = 8;
    /// In [`OFFSET_FLAGS`]: the fragment offset; non-zero in every fragment but the first.
    pub const OFFSET_MASK: u16 = 0xfff8;
    /// In [`OFFSET_FLAGS`]: more fragments follow.
    pub const MORE_FRAGMENTS: u16 = 0x0001;
}

/// TCP (RFC 9293).
pub mod tcp {
    use super::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ: Field = 4..8;
    pub const ACK: Field = 8..12;
    /// The header length in 32-bit words in the high nibble.
    pub const DATA_OFFSET: usize = 12;
    /// The flag bits, as [`TcpFlags`](crate::wire::TcpFlags) holds them.
    pub const FLAGS: usize = 13;
    pub const WINDOW: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;
    /// The header without options (data offset 5).
    pub const MIN_HEADER_LEN: usize = 20;
}

/// UDP (RFC 768).
pub mod udp {
    use super::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    /// Header and payload, in bytes.
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
    pub const HEADER_LEN: usize = 8;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each header's fields tile it without gaps or overlaps, in order.
    #[test]
    fn fields_tile_their_headers() {
        let byte = |i: usize| i..i + 1;
        let tables: [(&str, Vec<Field>, usize); 7] = [
            (
                "ethernet",
                vec![ethernet::DST, ethernet::SRC, ethernet::ETHERTYPE],
                ethernet::HEADER_LEN,
            ),
            ("vlan", vec![vlan::TCI, vlan::ETHERTYPE], vlan::TAG_LEN),
            (
                "sll",
                vec![
                    sll::PACKET_TYPE,
                    sll::HATYPE,
                    sll::ADDR_LEN,
                    sll::ADDR,
                    sll::PROTOCOL,
                ],
                sll::HEADER_LEN,
            ),
            (
                "ipv4",
                vec![
                    byte(ipv4::VER_IHL),
                    byte(ipv4::DSCP_ECN),
                    ipv4::TOTAL_LEN,
                    ipv4::IDENT,
                    ipv4::FLAGS_FRAG,
                    byte(ipv4::TTL),
                    byte(ipv4::PROTOCOL),
                    ipv4::CHECKSUM,
                    ipv4::SRC,
                    ipv4::DST,
                ],
                ipv4::MIN_HEADER_LEN,
            ),
            (
                "ipv6",
                vec![
                    ipv6::VER_TC_FLOW,
                    ipv6::PAYLOAD_LEN,
                    byte(ipv6::NEXT_HEADER),
                    byte(ipv6::HOP_LIMIT),
                    ipv6::SRC,
                    ipv6::DST,
                ],
                ipv6::HEADER_LEN,
            ),
            (
                "tcp",
                vec![
                    tcp::SRC_PORT,
                    tcp::DST_PORT,
                    tcp::SEQ,
                    tcp::ACK,
                    byte(tcp::DATA_OFFSET),
                    byte(tcp::FLAGS),
                    tcp::WINDOW,
                    tcp::CHECKSUM,
                    tcp::URGENT,
                ],
                tcp::MIN_HEADER_LEN,
            ),
            (
                "udp",
                vec![udp::SRC_PORT, udp::DST_PORT, udp::LENGTH, udp::CHECKSUM],
                udp::HEADER_LEN,
            ),
        ];
        for (name, fields, len) in tables {
            let mut at = 0;
            for f in fields {
                assert_eq!(f.start, at, "{name}: gap or overlap before {f:?}");
                at = f.end;
            }
            assert_eq!(at, len, "{name}: fields do not cover the header");
        }
        let frag = [
            byte(ipv6_fragment::NEXT_HEADER),
            byte(1),
            ipv6_fragment::OFFSET_FLAGS,
            ipv6_fragment::IDENT,
        ];
        assert!(frag.windows(2).all(|w| w[0].end == w[1].start));
        assert_eq!(frag[3].end, ipv6_fragment::HEADER_LEN);
    }
}
