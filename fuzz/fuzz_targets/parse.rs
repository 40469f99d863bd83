//! Arbitrary bytes into the frame parser, once per link type: it must return, never panic,
//! and what it returns must be self-consistent.
#![no_main]

use knock_core::hit::Proto;
use knock_core::wire::{KnockPacket, LinkType, parse_frame, parse_ip};
use libfuzzer_sys::fuzz_target;

const LINKS: [LinkType; 4] = [
    LinkType::Ethernet,
    LinkType::Loopback,
    LinkType::RawIp,
    LinkType::LinuxSll,
];

fuzz_target!(|data: &[u8]| {
    for link in LINKS {
        if let Ok(k) = parse_frame(link, data) {
            check(&k);
            // Length fields bound the packet, so bytes after it change nothing.
            let mut longer = data.to_vec();
            longer.extend([0xa5; 11]);
            assert_eq!(parse_frame(link, &longer), Ok(k), "{link:?}");
        }
    }
    assert_eq!(parse_ip(data), parse_frame(LinkType::RawIp, data));
});

fn check(k: &KnockPacket) {
    assert_eq!(k.src.is_ipv4(), k.dst.is_ipv4(), "one address family");
    if k.proto == Proto::Udp {
        assert!(k.tcp_flags.is_empty(), "UDP has no flags");
    }
}
