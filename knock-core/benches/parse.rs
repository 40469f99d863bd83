//! Parser micro-benchmark: `cargo bench -p knock-core --bench parse` prints ns per frame.
//!
//! The capture loop must keep up with a flood of ~700k packets/s, about 1.4 µs per packet
//! for everything; this shows the parser's share. Each frame is parsed many times in a
//! row (hot caches, predictable branches, as in a flood of one kind), then all of them
//! round-robin.

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use knock_core::hit::TcpFlags;
use knock_core::wire::{
    Ipv4Header, Ipv6Header, LinkType, TcpSegment, Transport, UdpDatagram, ipv4_packet, ipv6_packet,
    parse_frame,
};

const ROUNDS: u32 = 5_000_000;

fn ethernet(tpids: &[u16], ethertype: u16, packet: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01];
    for tpid in tpids {
        f.extend(tpid.to_be_bytes());
        f.extend(100u16.to_be_bytes());
    }
    f.extend(ethertype.to_be_bytes());
    f.extend(packet);
    f
}

fn frames() -> Vec<(&'static str, LinkType, Vec<u8>)> {
    let src4 = Ipv4Addr::new(198, 18, 0, 1);
    let dst4 = Ipv4Addr::new(198, 18, 0, 2);
    let src6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    let dst6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    let syn = Transport::Tcp(TcpSegment::new(40000, 7000, TcpFlags::SYN));
    let udp = Transport::Udp(UdpDatagram {
        src_port: 40000,
        dst_port: 9000,
        payload: &[0; 18],
    });
    let v4_syn = ipv4_packet(&Ipv4Header::new(src4, dst4), &syn).unwrap();
    let v4_udp = ipv4_packet(&Ipv4Header::new(src4, dst4), &udp).unwrap();
    let v6_syn = ipv6_packet(&Ipv6Header::new(src6, dst6), &syn).unwrap();
    // IPv6 with a hop-by-hop header (8 bytes of padding) in front of the TCP segment.
    let mut v6_hbh = v6_syn.clone();
    v6_hbh[5] += 8;
    v6_hbh[6] = 0;
    v6_hbh.splice(40..40, [6, 0, 0, 0, 0, 0, 0, 0]);
    let mut v4_frag = v4_syn.clone();
    v4_frag[7] = 0x10;
    vec![
        (
            "ethernet ipv4 tcp syn",
            LinkType::Ethernet,
            ethernet(&[], 0x0800, &v4_syn),
        ),
        (
            "ethernet ipv4 udp",
            LinkType::Ethernet,
            ethernet(&[], 0x0800, &v4_udp),
        ),
        (
            "ethernet 802.1Q ipv4 tcp",
            LinkType::Ethernet,
            ethernet(&[0x8100], 0x0800, &v4_syn),
        ),
        (
            "ethernet ipv6 tcp syn",
            LinkType::Ethernet,
            ethernet(&[], 0x86dd, &v6_syn),
        ),
        (
            "ethernet ipv6 hop-by-hop tcp",
            LinkType::Ethernet,
            ethernet(&[], 0x86dd, &v6_hbh),
        ),
        ("raw ipv4 tcp syn", LinkType::RawIp, v4_syn.clone()),
        (
            "rejected: ipv4 non-first fragment",
            LinkType::Ethernet,
            ethernet(&[], 0x0800, &v4_frag),
        ),
        (
            "rejected: arp",
            LinkType::Ethernet,
            ethernet(&[], 0x0806, &[0; 28]),
        ),
        (
            "rejected: ipv4 cut short",
            LinkType::Ethernet,
            ethernet(&[], 0x0800, &v4_syn[..30]),
        ),
    ]
}

fn main() {
    let frames = frames();
    println!("{ROUNDS} rounds per frame");
    for (name, link, frame) in &frames {
        let start = Instant::now();
        for _ in 0..ROUNDS {
            let _ = black_box(parse_frame(black_box(*link), black_box(frame)));
        }
        let ns = start.elapsed().as_nanos() as f64 / f64::from(ROUNDS);
        println!("{name:36} {ns:6.2} ns/frame {:8.1} Mframes/s", 1e3 / ns);
    }
    let start = Instant::now();
    for _ in 0..ROUNDS / frames.len() as u32 {
        for (_, link, frame) in &frames {
            let _ = black_box(parse_frame(black_box(*link), black_box(frame)));
        }
    }
    let total = ROUNDS / frames.len() as u32 * frames.len() as u32;
    let ns = start.elapsed().as_nanos() as f64 / f64::from(total);
    println!(
        "{:36} {ns:6.2} ns/frame {:8.1} Mframes/s",
        "all of the above, round-robin",
        1e3 / ns
    );
}
