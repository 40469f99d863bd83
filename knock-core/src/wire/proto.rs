//! The transport vocabulary of a knock: [`Proto`] (TCP or UDP) and [`TcpFlags`], shared by
//! the packets, the hit grammar (which re-exports them) and knockd.conf.

use std::fmt;
use std::str::FromStr;

use super::field;

/// Transport protocol of a hit or a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    /// The lower-case name used in the grammar, in logs and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }

    /// IANA protocol number.
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => field::ip_proto::TCP,
            Proto::Udp => field::ip_proto::UDP,
        }
    }

    /// The protocol of an IANA protocol number, if it is one a knock can use.
    pub fn from_number(number: u8) -> Option<Proto> {
        match number {
            field::ip_proto::TCP => Some(Proto::Tcp),
            field::ip_proto::UDP => Some(Proto::Udp),
            _ => None,
        }
    }

    pub(crate) fn from_name(s: &str) -> Option<Proto> {
        if s.eq_ignore_ascii_case("tcp") {
            Some(Proto::Tcp)
        } else if s.eq_ignore_ascii_case("udp") {
            Some(Proto::Udp)
        } else {
            None
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Proto {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Proto::from_name(s).ok_or_else(|| format!("unknown protocol {s:?} (expected tcp or udp)"))
    }
}

/// A set of TCP header flags, with the bit values of TCP header byte 13.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct TcpFlags(u8);

impl TcpFlags {
    pub const FIN: TcpFlags = TcpFlags(0x01);
    pub const SYN: TcpFlags = TcpFlags(0x02);
    pub const RST: TcpFlags = TcpFlags(0x04);
    pub const PSH: TcpFlags = TcpFlags(0x08);
    pub const ACK: TcpFlags = TcpFlags(0x10);
    pub const URG: TcpFlags = TcpFlags(0x20);
    pub const ECE: TcpFlags = TcpFlags(0x40);
    pub const CWR: TcpFlags = TcpFlags(0x80);
    /// No flag set (tportknockd `n`).
    pub const NONE: TcpFlags = TcpFlags(0);
    /// The six classic flags fin, syn, rst, psh, ack, urg (tportknockd `x`).
    pub const ALL_SIX: TcpFlags = TcpFlags(0x3f);

    /// Flag names in header bit order; the order `Display` and JSON use.
    pub const NAMES: [(&'static str, TcpFlags); 8] = [
        ("fin", TcpFlags::FIN),
        ("syn", TcpFlags::SYN),
        ("rst", TcpFlags::RST),
        ("psh", TcpFlags::PSH),
        ("ack", TcpFlags::ACK),
        ("urg", TcpFlags::URG),
        ("ece", TcpFlags::ECE),
        ("cwr", TcpFlags::CWR),
    ];

    pub const fn from_bits(bits: u8) -> TcpFlags {
        TcpFlags(bits)
    }

    pub const fn bits(self) -> u8 {
        self.0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// Looks up one flag by name (`syn`, case-insensitive).
    pub fn from_name(name: &str) -> Option<TcpFlags> {
        TcpFlags::NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, f)| f)
    }

    /// The names of the flags that are set, in header bit order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        TcpFlags::NAMES
            .into_iter()
            .filter(move |&(_, f)| self.contains(f))
            .map(|(n, _)| n)
    }
}

impl std::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

/// `fin+psh`, or `none` for the empty set.
impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        for (i, name) in self.names().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TcpFlags({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_names() {
        let f = TcpFlags::FIN | TcpFlags::ACK | TcpFlags::CWR;
        assert_eq!(f.names().collect::<Vec<_>>(), ["fin", "ack", "cwr"]);
        assert_eq!(f.to_string(), "fin+ack+cwr");
        assert_eq!(TcpFlags::NONE.to_string(), "none");
        assert_eq!(TcpFlags::from_name("SYN"), Some(TcpFlags::SYN));
        assert_eq!(TcpFlags::from_name("foo"), None);
    }

    #[test]
    fn protocol_numbers_round_trip() {
        for proto in [Proto::Tcp, Proto::Udp] {
            assert_eq!(Proto::from_number(proto.number()), Some(proto));
        }
        assert_eq!(Proto::Tcp.number(), 6);
        assert_eq!(Proto::Udp.number(), 17);
        assert_eq!(Proto::from_number(field::ip_proto::ICMPV6), None);
        assert_eq!("UDP".parse::<Proto>(), Ok(Proto::Udp));
        assert_eq!(
            "sctp".parse::<Proto>(),
            Err("unknown protocol \"sctp\" (expected tcp or udp)".to_string())
        );
    }
}
