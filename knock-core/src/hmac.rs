//! knock-hmac-v1: rotating knock sequences derived from a shared secret and the clock.
//!
//! The specification, with test vectors, is in `docs/knock-hmac-v1.md`. Time is a
//! parameter; nothing here reads a clock.

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::hit::{Hit, HitFlags, Proto, TcpFlags};
use crate::secret::Secret;
use crate::text::quoted;

/// The domain-separation label at the start of every HMAC message.
pub(crate) const LABEL: &[u8] = b"knock-hmac-v1";
pub const DEFAULT_STEP: u64 = 30;
pub const DEFAULT_LENGTH: usize = 4;
pub const MAX_LENGTH: usize = 32;
pub const DEFAULT_PORTS: PortRange = PortRange {
    lo: 1024,
    hi: 65535,
};

/// An inclusive port range `LO-HI`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    /// Number of ports in the range.
    pub fn size(self) -> u32 {
        u32::from(self.hi) - u32::from(self.lo) + 1
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.lo, self.hi)
    }
}

impl FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let shown = quoted(s);
        let (lo, hi) = s
            .split_once('-')
            .ok_or_else(|| format!("port range {shown:?} is not LO-HI"))?;
        let port = |p: &str| match p.trim().parse::<u16>() {
            Ok(v) if v > 0 && p.trim().bytes().all(|b| b.is_ascii_digit()) => Ok(v),
            _ => Err(format!(
                "port range {shown:?}: {:?} is not a port (1-65535)",
                quoted(p.trim())
            )),
        };
        let (lo, hi) = (port(lo)?, port(hi)?);
        if lo > hi {
            return Err(format!("port range {shown:?}: low end is above high end"));
        }
        Ok(PortRange { lo, hi })
    }
}

/// Which protocols a derived sequence (or a generated one-time list) uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protocols {
    #[default]
    Tcp,
    Udp,
    /// Each hit its own. In knock-hmac-v1 one extra word per hit picks it: even tcp, odd
    /// udp.
    Mixed,
}

impl Protocols {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocols::Tcp => "tcp",
            Protocols::Udp => "udp",
            Protocols::Mixed => "mixed",
        }
    }
}

impl fmt::Display for Protocols {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocols {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tcp" => Ok(Protocols::Tcp),
            "udp" => Ok(Protocols::Udp),
            "mixed" => Ok(Protocols::Mixed),
            _ => Err(format!(
                "unknown protocols {:?} (expected tcp, udp or mixed)",
                quoted(s)
            )),
        }
    }
}

/// Everything but the secret and the clock that determines a derived sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HmacParams {
    /// The door label `D`.
    pub door: String,
    pub length: usize,
    pub ports: PortRange,
    pub protocols: Protocols,
    /// Seconds per counter value.
    pub step: u64,
    /// Flags for TCP hits; `None` means plain SYNs.
    pub flags: Option<TcpFlags>,
}

/// Why a set of parameters cannot derive a sequence.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    #[error("length {0} is out of range (expected 1-32)")]
    Length(usize),
    #[error("step must be at least 1 second")]
    Step,
    #[error("port range {ports} has {size} ports, fewer than the length {length}")]
    PoolTooSmall {
        ports: PortRange,
        size: u32,
        length: usize,
    },
    #[error("flags are set but protocols is udp")]
    FlagsOnUdp,
}

impl HmacParams {
    /// Parameters with the defaults for everything but the door label.
    pub fn new(door: impl Into<String>) -> HmacParams {
        HmacParams {
            door: door.into(),
            length: DEFAULT_LENGTH,
            ports: DEFAULT_PORTS,
            protocols: Protocols::Tcp,
            step: DEFAULT_STEP,
            flags: None,
        }
    }

    pub fn validate(&self) -> Result<(), ParamsError> {
        if !(1..=MAX_LENGTH).contains(&self.length) {
            return Err(ParamsError::Length(self.length));
        }
        if self.step == 0 {
            return Err(ParamsError::Step);
        }
        if (self.ports.size() as usize) < self.length {
            return Err(ParamsError::PoolTooSmall {
                ports: self.ports,
                size: self.ports.size(),
                length: self.length,
            });
        }
        if self.flags.is_some() && self.protocols == Protocols::Udp {
            return Err(ParamsError::FlagsOnUdp);
        }
        Ok(())
    }

    /// The counter for a moment: `floor(unix_seconds / step)`.
    pub fn counter(&self, unix_seconds: u64) -> u64 {
        unix_seconds / self.step.max(1)
    }

    /// The sequence for counter `c`.
    pub fn derive(&self, secret: &Secret, counter: u64) -> Result<Vec<Hit>, ParamsError> {
        self.validate()?;
        let mut words = WordStream::new(secret, &self.door, counter);
        let pool = self.ports.size();
        let limit = 65536 - (65536 % pool);
        let mut ports: Vec<u16> = Vec::with_capacity(self.length);
        while ports.len() < self.length {
            let w = u32::from(words.next_word());
            if w >= limit {
                continue;
            }
            // `w mod pool < pool <= 65535 - lo + 1`, so the sum fits in u16.
            let port = (u32::from(self.ports.lo) + w % pool) as u16;
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
        let hits = ports
            .into_iter()
            .map(|port| {
                let proto = match self.protocols {
                    Protocols::Tcp => Proto::Tcp,
                    Protocols::Udp => Proto::Udp,
                    Protocols::Mixed if words.next_word().is_multiple_of(2) => Proto::Tcp,
                    Protocols::Mixed => Proto::Udp,
                };
                let flags = match (proto, self.flags) {
                    (Proto::Tcp, Some(f)) => HitFlags::Exact(f),
                    _ => HitFlags::Plain,
                };
                Hit { port, proto, flags }
            })
            .collect();
        Ok(hits)
    }

    /// The sequence for the moment `unix_seconds`.
    pub fn derive_at(&self, secret: &Secret, unix_seconds: u64) -> Result<Vec<Hit>, ParamsError> {
        self.derive(secret, self.counter(unix_seconds))
    }
}

/// The stream `S = B0 || B1 || ...` read as big-endian u16 words.
struct WordStream<'a> {
    secret: &'a Secret,
    door: &'a str,
    counter: u64,
    block_index: u32,
    block: [u8; 32],
    pos: usize,
}

impl<'a> WordStream<'a> {
    fn new(secret: &'a Secret, door: &'a str, counter: u64) -> Self {
        let mut s = WordStream {
            secret,
            door,
            counter,
            block_index: 0,
            block: [0; 32],
            pos: 0,
        };
        s.block = s.compute(0);
        s
    }

    fn compute(&self, i: u32) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.secret.expose())
            .expect("HMAC takes keys of any length");
        mac.update(LABEL);
        mac.update(&[0]);
        mac.update(self.door.as_bytes());
        mac.update(&[0]);
        mac.update(&self.counter.to_be_bytes());
        mac.update(&i.to_be_bytes());
        mac.finalize().into_bytes().into()
    }

    fn next_word(&mut self) -> u16 {
        if self.pos == self.block.len() {
            self.block_index += 1;
            self.block = self.compute(self.block_index);
            self.pos = 0;
        }
        let w = u16::from_be_bytes([self.block[self.pos], self.block[self.pos + 1]]);
        self.pos += 2;
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hit::format_sequence;

    fn secret() -> Secret {
        Secret::from_text("correct horse battery staple\n")
    }

    #[test]
    fn counter_is_floor_of_time_over_step() {
        let p = HmacParams::new("ssh");
        assert_eq!(p.counter(0), 0);
        assert_eq!(p.counter(29), 0);
        assert_eq!(p.counter(30), 1);
        assert_eq!(p.counter(1_700_000_000), 56_666_666);
    }

    #[test]
    fn derivation_is_deterministic_and_keyed() {
        let p = HmacParams::new("ssh");
        let a = p.derive(&secret(), 7).unwrap();
        assert_eq!(a, p.derive(&secret(), 7).unwrap());
        assert_ne!(a, p.derive(&secret(), 8).unwrap());
        assert_ne!(a, p.derive(&Secret::from_text("other"), 7).unwrap());
        assert_ne!(a, HmacParams::new("web").derive(&secret(), 7).unwrap());
    }

    #[test]
    fn ports_are_distinct_and_in_pool() {
        let mut p = HmacParams::new("d");
        p.ports = PortRange { lo: 5000, hi: 5031 };
        p.length = 32;
        for c in 0..50 {
            let hits = p.derive(&secret(), c).unwrap();
            let mut ports: Vec<u16> = hits.iter().map(|h| h.port).collect();
            assert!(ports.iter().all(|&x| (5000..=5031).contains(&x)));
            ports.sort_unstable();
            ports.dedup();
            assert_eq!(ports.len(), 32);
        }
    }

    #[test]
    fn invalid_params() {
        let mut p = HmacParams::new("d");
        p.length = 0;
        assert_eq!(p.validate(), Err(ParamsError::Length(0)));
        p.length = 33;
        assert_eq!(p.validate(), Err(ParamsError::Length(33)));
        p.length = 4;
        p.ports = PortRange { lo: 10, hi: 12 };
        assert_eq!(
            p.validate().unwrap_err().to_string(),
            "port range 10-12 has 3 ports, fewer than the length 4"
        );
        p.ports = DEFAULT_PORTS;
        p.step = 0;
        assert_eq!(p.validate(), Err(ParamsError::Step));
        assert_eq!(p.derive(&secret(), 1), Err(ParamsError::Step));
        p.step = DEFAULT_STEP;
        p.flags = Some(TcpFlags::FIN);
        p.protocols = Protocols::Udp;
        assert_eq!(
            p.validate().unwrap_err().to_string(),
            "flags are set but protocols is udp"
        );
        p.protocols = Protocols::Mixed;
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn port_range_parsing() {
        assert_eq!("1024-65535".parse(), Ok(DEFAULT_PORTS));
        assert_eq!("7-7".parse(), Ok(PortRange { lo: 7, hi: 7 }));
        assert_eq!(" 1 - 65535 ".parse(), Ok(PortRange { lo: 1, hi: 65535 }));
        let rejected = [
            ("0-10", r#"port range "0-10": "0" is not a port (1-65535)"#),
            ("10-5", r#"port range "10-5": low end is above high end"#),
            ("10", r#"port range "10" is not LO-HI"#),
            ("", r#"port range "" is not LO-HI"#),
            ("a-b", r#"port range "a-b": "a" is not a port (1-65535)"#),
            ("-5-10", r#"port range "-5-10": "" is not a port (1-65535)"#),
            (
                "+5-10",
                r#"port range "+5-10": "+5" is not a port (1-65535)"#,
            ),
            (
                "1-70000",
                r#"port range "1-70000": "70000" is not a port (1-65535)"#,
            ),
            (
                "1-2-3",
                r#"port range "1-2-3": "2-3" is not a port (1-65535)"#,
            ),
        ];
        for (input, want) in rejected {
            assert_eq!(
                input.parse::<PortRange>(),
                Err(want.to_string()),
                "{input:?}"
            );
        }
    }

    // Vectors computed independently with Python's hmac module (see docs/knock-hmac-v1.md).
    #[test]
    fn vectors() {
        let key = Secret::from_text("correct horse battery staple");
        let mut p = HmacParams::new("ssh");
        assert_eq!(
            format_sequence(&p.derive_at(&key, 1_700_000_000).unwrap()),
            VECTOR_1
        );
        p.length = 6;
        p.ports = PortRange { lo: 7000, hi: 7009 };
        p.protocols = Protocols::Mixed;
        assert_eq!(format_sequence(&p.derive(&key, 0).unwrap()), VECTOR_2);
        let mut p = HmacParams::new("web door ✓");
        p.protocols = Protocols::Udp;
        p.length = 3;
        p.step = 60;
        assert_eq!(
            format_sequence(&p.derive_at(&key, 1_800_000_000).unwrap()),
            VECTOR_3
        );
        let mut p = HmacParams::new("flags");
        p.flags = Some(TcpFlags::FIN | TcpFlags::PSH);
        p.protocols = Protocols::Mixed;
        assert_eq!(format_sequence(&p.derive(&key, 123_456).unwrap()), VECTOR_4);
    }

    const VECTOR_1: &str = "58063:tcp,26352:tcp,27769:tcp,27170:tcp";
    const VECTOR_2: &str = "7004:tcp,7009:udp,7007:tcp,7003:tcp,7006:udp,7001:udp";
    const VECTOR_3: &str = "22056:udp,63631:udp,54293:udp";
    const VECTOR_4: &str = "38509:tcp:fin+psh,52309:udp,21747:udp,14401:tcp:fin+psh";

    #[test]
    fn protocols_names() {
        for p in [Protocols::Tcp, Protocols::Udp, Protocols::Mixed] {
            assert_eq!(p.to_string().parse(), Ok(p));
        }
        assert_eq!("MIXED".parse(), Ok(Protocols::Mixed));
        assert_eq!(
            "icmp".parse::<Protocols>(),
            Err(r#"unknown protocols "icmp" (expected tcp, udp or mixed)"#.to_string())
        );
    }
}
