//! `packet`: arbitrary bytes into the frame parser, once per link type. It must return,
//! never panic, and what it returns must be self-consistent: one address family, no flags
//! on UDP, bytes after an accepted frame change nothing (length fields bound the packet),
//! and `parse_ip` is the raw-IP link.

use knock_core::hit::Proto;
use knock_core::wire::{KnockPacket, LinkType, parse_frame, parse_ip};

const LINKS: [LinkType; 4] = [
    LinkType::Ethernet,
    LinkType::Loopback,
    LinkType::RawIp,
    LinkType::LinuxSll,
];

/// Accepted: some link type parsed the frame.
pub fn check(data: &[u8]) -> bool {
    let mut accepted = false;
    for link in LINKS {
        if let Ok(k) = parse_frame(link, data) {
            accepted = true;
            consistent(&k);
            let mut longer = data.to_vec();
            longer.extend([0xa5; 11]);
            assert_eq!(parse_frame(link, &longer), Ok(k), "{link:?}");
        }
    }
    assert_eq!(parse_ip(data), parse_frame(LinkType::RawIp, data));
    accepted
}

fn consistent(k: &KnockPacket) {
    assert_eq!(k.src.is_ipv4(), k.dst.is_ipv4(), "one address family");
    if k.proto == Proto::Udp {
        assert!(k.tcp_flags.is_empty(), "UDP has no flags");
    }
}
