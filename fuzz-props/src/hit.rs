//! `hit`: the hit grammar (`7000,8000:udp,9000:tcp:fin+psh`, `tcp:110:up`).
//!
//! The input is a sequence as typed on a command line or in a config. Properties:
//! * accepted: the canonical spelling (`format_sequence`) parses back to the same hits
//!   whatever the default protocol; every hit also parses back from its tportknockd frame
//!   spelling where it has one, and from its canonical spelling in capitals;
//! * the default protocol changes the protocol of bare ports and nothing else: both
//!   readings succeed or fail together, on the same item;
//! * rejected: the error names the first item that does not parse, as written (trimmed),
//!   in a printable message.
//!
//! The first bytes also make a hit directly (port, protocol, flags), which must survive the
//! same spellings: every hit the grammar can express, not only those the input spells.
//!
//! Service names (`ssh`, `domain:udp`, as `knock` looks them up) only add: where the plain
//! grammar reads a sequence, the named one reads the same; where the named one refuses, so
//! does the plain one. And the input read as exact flags (a profile's `[hmac] flags`):
//! accepted flags read back from their name, refusals are printable.

use knock_core::hit::{
    Hit, HitFlags, PortNames, Proto, TcpFlags, format_sequence, parse_exact_flags, parse_sequence,
    parse_sequence_named,
};

use crate::{printable_message, text};

/// Accepted: the input is a valid sequence.
pub fn check(data: &[u8]) -> bool {
    if let Some(hit) = hit_from_bytes(data) {
        spellings(&hit);
    }
    let input = text(data);
    exact_flags(&input);
    let tcp = parse_sequence(&input, Proto::Tcp);
    named(&input, &tcp);
    let udp = parse_sequence(&input, Proto::Udp);
    match (&tcp, &udp) {
        (Ok(tcp), Ok(udp)) => {
            assert_eq!(tcp.len(), input.split(',').count());
            for (t, u) in tcp.iter().zip(udp) {
                let bare = t.proto != u.proto;
                if bare {
                    assert_eq!(
                        (t.proto, u.proto, t.flags),
                        (Proto::Tcp, Proto::Udp, HitFlags::Plain)
                    );
                    assert_eq!((t.port, t.flags), (u.port, u.flags));
                } else {
                    assert_eq!(t, u);
                }
                spellings(t);
                spellings(u);
            }
            for hits in [tcp, udp] {
                let canonical = format_sequence(hits);
                for default in [Proto::Tcp, Proto::Udp] {
                    assert_eq!(
                        parse_sequence(&canonical, default).as_ref(),
                        Ok(hits),
                        "{canonical:?}"
                    );
                }
            }
            true
        }
        (Err(t), Err(u)) => {
            assert_eq!(t, u, "the default protocol changed the error");
            printable_message(&t.to_string());
            let first_bad = input
                .split(',')
                .map(str::trim)
                .find(|item| Hit::parse(item, Proto::Tcp).is_err());
            assert_eq!(first_bad, Some(t.item.as_str()));
            false
        }
        _ => panic!("one default protocol parses {input:?}, the other not: {tcp:?} {udp:?}"),
    }
}

/// Every way to write `hit` reads back as `hit`.
fn spellings(hit: &Hit) {
    let canonical = hit.to_string();
    for default in [Proto::Tcp, Proto::Udp] {
        assert_eq!(Hit::parse(&canonical, default), Ok(*hit), "{canonical:?}");
        let shouted = canonical.to_ascii_uppercase();
        assert_eq!(Hit::parse(&shouted, default), Ok(*hit), "{shouted:?}");
        if let Some(frame) = frame_spelling(hit) {
            assert_eq!(Hit::parse(&frame, default), Ok(*hit), "{frame:?}");
        }
    }
}

/// tportknockd's frame form, `PROTO:PORT[:LETTERS]`, where it can say this hit: it has no
/// spelling for plain TCP (a bare frame means "no flags") nor for ECE and CWR.
pub(crate) fn frame_spelling(hit: &Hit) -> Option<String> {
    let letters = match (hit.proto, hit.flags) {
        (Proto::Udp, _) => return Some(format!("udp:{}", hit.port)),
        (Proto::Tcp, HitFlags::Plain) => return None,
        (Proto::Tcp, HitFlags::Any) => "i".to_string(),
        (Proto::Tcp, HitFlags::Exact(f)) if f.is_empty() => "n".to_string(),
        (Proto::Tcp, HitFlags::Exact(f)) if TcpFlags::ALL_SIX.contains(f) => {
            const LETTERS: [(char, TcpFlags); 6] = [
                ('f', TcpFlags::FIN),
                ('s', TcpFlags::SYN),
                ('r', TcpFlags::RST),
                ('p', TcpFlags::PSH),
                ('a', TcpFlags::ACK),
                ('u', TcpFlags::URG),
            ];
            LETTERS
                .iter()
                .filter(|(_, flag)| f.contains(*flag))
                .map(|(c, _)| *c)
                .collect()
        }
        (Proto::Tcp, HitFlags::Exact(_)) => return None,
    };
    Some(format!("tcp:{}:{letters}", hit.port))
}

/// A hit from the first four bytes: port (two bytes), protocol and flag kind, flag bits.
fn hit_from_bytes(data: &[u8]) -> Option<Hit> {
    let &[hi, lo, kind, bits, ..] = data else {
        return None;
    };
    let port = u16::from_be_bytes([hi, lo]);
    if port == 0 {
        return None;
    }
    Some(match kind % 4 {
        0 => Hit::udp(port),
        1 => Hit::tcp(port),
        2 => Hit::tcp_flags(port, TcpFlags::from_bits(bits)),
        _ => Hit {
            port,
            proto: Proto::Tcp,
            flags: HitFlags::Any,
        },
    })
}

/// A services table of a few names, as `/etc/services` would give them.
struct Services;

impl PortNames for Services {
    fn port(&self, name: &str, proto: Proto) -> Option<u16> {
        match (name, proto) {
            ("ssh", Proto::Tcp) => Some(22),
            ("http", Proto::Tcp) => Some(80),
            ("domain", _) => Some(53),
            _ => None,
        }
    }

    fn source(&self) -> Option<String> {
        Some("the fuzz target's table".to_string())
    }
}

fn named(input: &str, plain: &Result<Vec<Hit>, knock_core::hit::HitError>) {
    let named = parse_sequence_named(input, Proto::Tcp, &Services);
    match (plain, &named) {
        (Ok(p), Ok(n)) => assert_eq!(p, n, "a name changed a sequence without names"),
        (Ok(_), Err(e)) => panic!("names refuse what the plain grammar reads: {e}"),
        (Err(_), Ok(_)) => {}
        (Err(_), Err(e)) => printable_message(&e.to_string()),
    }
}

fn exact_flags(input: &str) {
    match parse_exact_flags(input) {
        Ok(flags) => assert_eq!(parse_exact_flags(&flags.to_string()), Ok(flags)),
        Err(message) => printable_message(&message),
    }
}
