//! `build_parse`: fuzzed header fields through the builder, wrapped in a fuzzed link layer,
//! back through the parser. The builder refuses only packets over 65535 bytes; the IPv4
//! header and TCP/UDP checksums verify with an RFC 1071 sum written here rather than pnet's;
//! `transport_segment` is the packet's transport part; the BSD layout holds `ip_len` in
//! host order; and parsing the frame gives back exactly the knock that was built.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::{Arbitrary, Unstructured};
use knock_core::hit::{Proto, TcpFlags};
use knock_core::wire::field::ethertype;
use knock_core::wire::{
    Ipv4Header, Ipv6Header, KnockPacket, LinkType, TcpSegment, Transport, UdpDatagram, ipv4_packet,
    ipv4_to_bsd_hdrincl, ipv6_packet, parse_frame, transport_segment,
};

#[derive(Arbitrary, Debug)]
struct Input {
    v6: bool,
    src: [u8; 16],
    dst: [u8; 16],
    ttl: u8,
    ident: u16,
    l4: L4,
    link: Link,
    /// Bytes after the packet: Ethernet padding, or junk a driver left.
    trailer: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
enum L4 {
    Tcp {
        src_port: u16,
        dst_port: u16,
        seq: u32,
        ack: u32,
        window: u16,
        flags: u8,
    },
    Udp {
        src_port: u16,
        dst_port: u16,
        payload: Vec<u8>,
    },
}

#[derive(Arbitrary, Debug)]
enum Link {
    Raw,
    /// Up to four VLAN tags, each picking one of the three tag EtherTypes.
    Ethernet {
        macs: [u8; 12],
        tags: Vec<(u8, u16)>,
    },
    Sll {
        head: [u8; 14],
    },
    Loopback {
        big_endian: bool,
    },
}

/// Accepted: the bytes made an input (as libFuzzer's `fuzz_target!(|input: Input|)` reads
/// them) and the packet was built.
pub fn check(data: &[u8]) -> bool {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return false;
    };
    let l4 = match &input.l4 {
        &L4::Tcp {
            src_port,
            dst_port,
            seq,
            ack,
            window,
            flags,
        } => Transport::Tcp(TcpSegment {
            src_port,
            dst_port,
            seq,
            ack,
            window,
            flags: TcpFlags::from_bits(flags),
        }),
        L4::Udp {
            src_port,
            dst_port,
            payload,
        } => Transport::Udp(UdpDatagram {
            src_port: *src_port,
            dst_port: *dst_port,
            payload,
        }),
    };
    let (src, dst): (IpAddr, IpAddr) = if input.v6 {
        (
            Ipv6Addr::from(input.src).into(),
            Ipv6Addr::from(input.dst).into(),
        )
    } else {
        let s: [u8; 4] = input.src[..4].try_into().unwrap();
        let d: [u8; 4] = input.dst[..4].try_into().unwrap();
        (Ipv4Addr::from(s).into(), Ipv4Addr::from(d).into())
    };
    let packet = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4_packet(
            &Ipv4Header {
                src: s,
                dst: d,
                ttl: input.ttl,
                ident: input.ident,
            },
            &l4,
        ),
        (IpAddr::V6(s), IpAddr::V6(d)) => ipv6_packet(
            &Ipv6Header {
                src: s,
                dst: d,
                hop_limit: input.ttl,
            },
            &l4,
        ),
        _ => unreachable!(),
    };
    let header_len = if input.v6 { 40 } else { 20 };
    let Ok(packet) = packet else {
        assert!(l4.len() + header_len > 65_535, "refused a packet that fits");
        return false;
    };

    // Checksums, verified by a sum written here rather than pnet's.
    let segment = &packet[header_len..];
    if !input.v6 {
        assert_eq!(rfc1071(&[&packet[..20]]), 0, "IPv4 header checksum");
        let mut bsd = packet.clone();
        ipv4_to_bsd_hdrincl(&mut bsd).unwrap();
        assert_eq!(
            usize::from(u16::from_ne_bytes([bsd[2], bsd[3]])),
            packet.len()
        );
    }
    let pseudo = pseudo_header(src, dst, l4.proto(), segment.len());
    assert_eq!(rfc1071(&[&pseudo, segment]), 0, "transport checksum");
    assert_eq!(transport_segment(&l4, src, dst).unwrap(), segment);

    let (link, mut frame) = wrap(&input.link, input.v6, &packet);
    frame.extend(&input.trailer);
    let want = KnockPacket {
        src,
        dst,
        proto: l4.proto(),
        dst_port: l4.dst_port(),
        tcp_flags: match l4 {
            Transport::Tcp(t) => t.flags,
            Transport::Udp(_) => TcpFlags::NONE,
        },
    };
    assert_eq!(parse_frame(link, &frame), Ok(want));
    true
}

fn wrap(link: &Link, v6: bool, packet: &[u8]) -> (LinkType, Vec<u8>) {
    let ether: u16 = if v6 { ethertype::IPV6 } else { ethertype::IPV4 };
    match link {
        Link::Raw => (LinkType::RawIp, packet.to_vec()),
        Link::Ethernet { macs, tags } => {
            let mut f = macs.to_vec();
            for &(kind, tci) in tags.iter().take(4) {
                let tpids = ethertype::VLAN_TPIDS;
                let tpid = tpids[usize::from(kind) % tpids.len()];
                f.extend(tpid.to_be_bytes());
                f.extend(tci.to_be_bytes());
            }
            f.extend(ether.to_be_bytes());
            f.extend(packet);
            (LinkType::Ethernet, f)
        }
        Link::Sll { head } => {
            let mut f = head.to_vec();
            f.extend(ether.to_be_bytes());
            f.extend(packet);
            (LinkType::LinuxSll, f)
        }
        Link::Loopback { big_endian } => {
            let family: u32 = if v6 { 30 } else { 2 };
            let mut f = if *big_endian {
                family.to_be_bytes().to_vec()
            } else {
                family.to_le_bytes().to_vec()
            };
            f.extend(packet);
            (LinkType::Loopback, f)
        }
    }
}

fn pseudo_header(src: IpAddr, dst: IpAddr, proto: Proto, len: usize) -> Vec<u8> {
    let mut p = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend(s.octets());
            p.extend(d.octets());
            p.extend([0, proto.number()]);
            p.extend((len as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend(s.octets());
            p.extend(d.octets());
            p.extend((len as u32).to_be_bytes());
            p.extend([0, 0, 0, proto.number()]);
        }
        _ => unreachable!(),
    }
    p
}

/// RFC 1071 over the concatenation of `parts` (each part but the last of even length).
fn rfc1071(parts: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    for part in parts {
        for pair in part.chunks(2) {
            sum += u64::from(pair[0]) << 8 | pair.get(1).map_or(0, |&b| u64::from(b));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
