//! The kernel filter held against the parser: for thousands of generated frames, the
//! compiled BPF program (run by the interpreter) keeps a frame exactly when
//! `filter::wanted` does, that is when the parser accepts it and a capture rule matches.
//! Deterministic (a fixed seed), so it runs in every `cargo test`; the `filter` fuzz target
//! (`fuzz-props`) holds the same on mutated bytes, in `cargo test` and under cargo-fuzz.
//!
//! Frames are random bytes, and valid VLAN/IPv4/IPv6 TCP/UDP frames (IPv4 options, IPv6
//! extension headers, fragments) before and after mutation: a flipped bit, a length field
//! set to something else, a cut, trailing bytes.

use std::net::{Ipv4Addr, Ipv6Addr};

use knock_core::hit::{FlagRule, Proto, TcpFlags};
use knock_core::wire::field::{ethertype, ip_proto, ipv4, ipv6, ipv6_ext, udp, vlan};
use knock_core::wire::{
    Ipv4Header, Ipv6Header, LinkType, TcpSegment, Transport, UdpDatagram, ipv4_packet, ipv6_packet,
};
use knockd_engine::bpf::{Families, compile};
use knockd_engine::filter::{CaptureRule, wanted};

/// xorshift64*: small, fast and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// Random bytes, fewer than `max`.
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Ports the rules and the frames share, so that a good share of frames match.
const PORTS: [u16; 3] = [53, 7000, 65535];

fn flag_rules() -> [FlagRule; 5] {
    [
        FlagRule::ANY,
        FlagRule {
            set: TcpFlags::SYN,
            clear: TcpFlags::ACK,
        },
        FlagRule::exact(TcpFlags::FIN | TcpFlags::PSH),
        FlagRule::exact(TcpFlags::SYN),
        FlagRule {
            set: TcpFlags::NONE,
            clear: TcpFlags::RST,
        },
    ]
}

fn rules(rng: &mut Rng) -> Vec<CaptureRule> {
    (0..2 + rng.below(5))
        .map(|_| CaptureRule {
            proto: rng.pick(&[Proto::Tcp, Proto::Udp]),
            port: rng.pick(&PORTS),
            flags: rng.pick(&flag_rules()),
        })
        .collect()
}

fn transport(rng: &mut Rng) -> (u8, Vec<u8>) {
    let port = rng.pick(&PORTS);
    if rng.chance(50) {
        let any = rng.next() as u8;
        let flags = TcpFlags::from_bits(rng.pick(&[0x02, 0x12, 0x09, 0x01, 0x10, any]));
        let seg = TcpSegment::new(40000, port, flags);
        (ip_proto::TCP, l4_bytes(&Transport::Tcp(seg)))
    } else {
        let payload = rng.bytes(4);
        let dgram = UdpDatagram {
            // A small source port also reads as a plausible length when a bad IPv4
            // header length shifts the header by four bytes.
            src_port: rng.pick(&[40000, 12]),
            dst_port: port,
            payload: &payload,
        };
        let mut l4 = l4_bytes(&Transport::Udp(dgram));
        if rng.chance(15) {
            // Too short, or longer than the datagram (which a fragment may be).
            let len = rng.pick(&[0u16, 7, 200, 0xffff]);
            l4[udp::LENGTH].copy_from_slice(&len.to_be_bytes());
        }
        (ip_proto::UDP, l4)
    }
}

/// The transport header and payload alone (the checksum is not the filter's business).
fn l4_bytes(l4: &Transport<'_>) -> Vec<u8> {
    let v4 = Ipv4Header::new(Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2));
    ipv4_packet(&v4, l4).unwrap()[ipv4::MIN_HEADER_LEN..].to_vec()
}

/// What the IP headers below are built around before their own protocol and payload go in.
const EMPTY: Transport<'static> = Transport::Udp(UdpDatagram {
    src_port: 1,
    dst_port: 1,
    payload: &[],
});

/// An IPv4 packet around `l4`, maybe with options and a fragment field.
fn ipv4_around(rng: &mut Rng, proto: u8, l4: &[u8]) -> Vec<u8> {
    // 198.18.27.88: read as ports (a header length of 4 words puts TCP over the addresses),
    // its last two bytes are 7000.
    let dst = rng.pick(&[Ipv4Addr::new(192, 0, 2, 2), Ipv4Addr::new(198, 18, 27, 88)]);
    let v4 = Ipv4Header::new(Ipv4Addr::new(192, 0, 2, 1), dst);
    let mut pkt = ipv4_packet(&v4, &EMPTY).unwrap();
    pkt.truncate(ipv4::MIN_HEADER_LEN);
    let words = if rng.chance(30) { 1 + rng.below(10) } else { 0 };
    pkt.extend(std::iter::repeat_n(1u8, words * 4)); // NOP options
    pkt[ipv4::VER_IHL] = 0x40 | (5 + words) as u8;
    if rng.chance(10) {
        // Any header length, the impossible ones below 5 words included.
        pkt[ipv4::VER_IHL] = 0x40 | rng.below(16) as u8;
    }
    pkt[ipv4::PROTOCOL] = proto;
    if rng.chance(20) {
        let frag = rng.pick(&[
            ipv4::MORE_FRAGMENTS,
            1,
            ipv4::MORE_FRAGMENTS | 3,
            ipv4::DONT_FRAGMENT,
        ]);
        pkt[ipv4::FLAGS_FRAG].copy_from_slice(&frag.to_be_bytes());
    }
    pkt.extend_from_slice(l4);
    let total = pkt.len() as u16;
    pkt[ipv4::TOTAL_LEN].copy_from_slice(&total.to_be_bytes());
    pkt
}

/// An IPv6 packet around `l4`, maybe behind a chain of extension headers.
fn ipv6_around(rng: &mut Rng, proto: u8, l4: &[u8]) -> Vec<u8> {
    let v6 = Ipv6Header::new(
        "2001:db8::1".parse::<Ipv6Addr>().unwrap(),
        "2001:db8::2".parse().unwrap(),
    );
    let mut pkt = ipv6_packet(&v6, &EMPTY).unwrap();
    pkt.truncate(ipv6::HEADER_LEN);
    // Chains around the parser's limit of eight, as well as short ones.
    let count = if rng.chance(40) {
        rng.pick(&[1, 2, 3, 7, 8, 8, 9])
    } else {
        0
    };
    let kinds: Vec<u8> = (0..count)
        .map(|i| {
            let mut choices = vec![
                ip_proto::IPV6_ROUTING,
                ip_proto::IPV6_DEST_OPTIONS,
                ip_proto::IPV6_FRAGMENT,
            ];
            if i == 0 || rng.chance(2) {
                choices.push(ip_proto::HOP_BY_HOP);
            }
            rng.pick(&choices)
        })
        .collect();
    pkt[ipv6::NEXT_HEADER] = kinds.first().copied().unwrap_or(proto);
    for (i, &kind) in kinds.iter().enumerate() {
        let next = kinds.get(i + 1).copied().unwrap_or(proto);
        if kind == ip_proto::IPV6_FRAGMENT {
            // The more-fragments bit, and now and then an offset (a later fragment).
            let offset = rng.pick(&[0u16, 1, 0, 1, 8]);
            let mut h = vec![next, 0, 0, 0, 0, 0, 0, 7];
            h[2..4].copy_from_slice(&offset.to_be_bytes());
            pkt.extend(h);
        } else {
            let units = rng.below(3);
            let mut h = vec![0u8; (units + 1) * ipv6_ext::UNIT];
            h[ipv6_ext::NEXT_HEADER] = next;
            h[ipv6_ext::LENGTH] = units as u8;
            pkt.extend(h);
        }
    }
    pkt.extend_from_slice(l4);
    let payload = (pkt.len() - ipv6::HEADER_LEN) as u16;
    pkt[ipv6::PAYLOAD_LEN].copy_from_slice(&payload.to_be_bytes());
    pkt
}

/// A valid frame, give or take what `ipv4_around` and `ipv6_around` chose.
fn frame(rng: &mut Rng, link: LinkType) -> Vec<u8> {
    let (proto, l4) = if rng.chance(5) {
        (rng.pick(&[1, 58, 59, 50]), rng.bytes(9))
    } else {
        transport(rng)
    };
    let v6 = rng.chance(40);
    let ip = if v6 {
        ipv6_around(rng, proto, &l4)
    } else {
        ipv4_around(rng, proto, &l4)
    };
    if link == LinkType::RawIp {
        return ip;
    }
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    let tags = if rng.chance(30) {
        rng.pick(&[1, 2, vlan::MAX_TAGS - 1, vlan::MAX_TAGS, vlan::MAX_TAGS + 1])
    } else {
        0
    };
    for _ in 0..tags {
        let tpid = if rng.chance(5) {
            0x9100 // pre-standard: not a tag
        } else {
            rng.pick(&ethertype::VLAN_TPIDS)
        };
        f.extend(tpid.to_be_bytes());
        f.extend((rng.next() as u16 & 0x0fff).to_be_bytes());
    }
    let et = if v6 { ethertype::IPV6 } else { ethertype::IPV4 };
    let et = if rng.chance(3) { 0x0806 } else { et };
    f.extend(et.to_be_bytes());
    f.extend(ip);
    if rng.chance(10) {
        // Ethernet pads short frames.
        f.extend(std::iter::repeat_n(0, rng.below(20)));
    }
    f
}

/// Changes `f` a little: a flipped bit, a byte set to an edge value, a cut, more bytes.
fn mutate(rng: &mut Rng, f: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(3) {
        if f.is_empty() {
            f.push(rng.next() as u8);
            continue;
        }
        let at = rng.below(f.len());
        match rng.below(5) {
            0 => f[at] ^= 1 << rng.below(8),
            1 => {
                f[at] = rng.pick(&[
                    0x00, 0x01, 0x04, 0x05, 0x06, 0x0f, 0x11, 0x40, 0x45, 0x60, 0xff,
                ])
            }
            2 => f.truncate(at),
            3 => f.extend(rng.bytes(8)),
            _ => f[at] = rng.next() as u8,
        }
    }
}

fn hex(f: &[u8]) -> String {
    f.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_kernel_filter_keeps_exactly_the_frames_the_parser_accepts_and_a_rule_wants() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut frames, mut kept) = (0, 0);
    for _ in 0..400 {
        let rules = rules(&mut rng);
        let link = rng.pick(&[LinkType::Ethernet, LinkType::RawIp]);
        let families = rng.pick(&[Families::Both, Families::Both, Families::V4Only]);
        let program = compile(&rules, link, families).unwrap();
        for i in 0..40 {
            let f = match i % 4 {
                0 => rng.bytes(100),
                1 => frame(&mut rng, link),
                _ => {
                    let mut f = frame(&mut rng, link);
                    mutate(&mut rng, &mut f);
                    f
                }
            };
            let want = wanted(&rules, link, families, &f);
            assert_eq!(
                program.accepts(&f),
                want,
                "{link:?} {families:?} frame {} rules {rules:?}\n{program}",
                hex(&f)
            );
            frames += 1;
            kept += usize::from(want);
        }
    }
    // The generator reaches both answers often, or the check would prove little.
    assert_eq!(frames, 16_000);
    assert!(
        kept > frames / 10 && kept < frames * 9 / 10,
        "{kept} of {frames} kept"
    );
}
