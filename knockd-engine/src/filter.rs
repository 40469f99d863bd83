//! Capture rules: which packets can matter to the engine, as data shared by the engine
//! (which derives them from the doors) and the capture layer (which compiles them to BPF).

use std::fmt;

use knock_core::hit::{FlagRule, Proto};
use knock_core::wire::{LinkType, parse_frame};

use crate::bpf::Families;

/// One kind of candidate packet: this protocol, this destination port, and for TCP these
/// flags. A packet that matches no rule cannot touch any attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CaptureRule {
    pub proto: Proto,
    pub port: u16,
    /// Ignored for UDP.
    pub flags: FlagRule,
}

impl CaptureRule {
    /// Whether a packet with these fields is a candidate.
    pub fn matches(&self, proto: Proto, port: u16, flags: knock_core::hit::TcpFlags) -> bool {
        self.proto == proto
            && self.port == port
            && (proto == Proto::Udp || self.flags.matches(flags))
    }
}

/// Whether the capture filter for `rules` is to keep `frame`: the parser accepts it, some
/// rule matches the packet, and `families` lets its IP version through. The programs
/// [`crate::bpf::compile`] makes keep exactly these frames; this is the statement their
/// tests and the fuzz target check them against.
pub fn wanted(rules: &[CaptureRule], link: LinkType, families: Families, frame: &[u8]) -> bool {
    parse_frame(link, frame).is_ok_and(|p| {
        (families == Families::Both || p.src.is_ipv4())
            && rules
                .iter()
                .any(|r| r.matches(p.proto, p.dst_port, p.tcp_flags))
    })
}

/// tcpdump-style text, e.g. `tcp dst port 7000 and tcp[13] & 0x12 == 0x02`.
impl fmt::Display for CaptureRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} dst port {}", self.proto, self.port)?;
        if self.proto == Proto::Tcp && !self.flags.is_any() {
            let mask = self.flags.set.bits() | self.flags.clear.bits();
            write!(
                f,
                " and tcp[13] & 0x{mask:02x} == 0x{:02x}",
                self.flags.set.bits()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use knock_core::hit::TcpFlags;

    #[test]
    fn display_and_match() {
        let r = CaptureRule {
            proto: Proto::Tcp,
            port: 7000,
            flags: FlagRule {
                set: TcpFlags::SYN,
                clear: TcpFlags::ACK,
            },
        };
        assert_eq!(
            r.to_string(),
            "tcp dst port 7000 and tcp[13] & 0x12 == 0x02"
        );
        assert!(r.matches(Proto::Tcp, 7000, TcpFlags::SYN));
        assert!(!r.matches(Proto::Tcp, 7000, TcpFlags::SYN | TcpFlags::ACK));
        assert!(!r.matches(Proto::Udp, 7000, TcpFlags::NONE));
        let u = CaptureRule {
            proto: Proto::Udp,
            port: 53,
            flags: FlagRule::ANY,
        };
        assert_eq!(u.to_string(), "udp dst port 53");
        assert!(u.matches(Proto::Udp, 53, TcpFlags::NONE));
    }
}
