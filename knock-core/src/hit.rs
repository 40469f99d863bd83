//! The hit grammar: one knock ("hit") and comma-separated sequences of hits.
//!
//! Three spellings are accepted, and all of them parse into the same [`Hit`]:
//!
//! * knockd form `PORT[:PROTO]` (`7000`, `8000:udp`);
//! * extended form `PORT:tcp:FLAGS` with flag names joined by `+` (`7000:tcp:fin+psh`),
//!   plus the words `none` (no flag set) and `any` (flags ignored);
//! * tportknockd frame form `PROTO:PORT[:LETTERS]` (`tcp:110:up`), where the letters are
//!   `f s r p a u`, `x` (all six), `n` (none; the default) and `i` (ignored).
//!
//! [`Hit`]'s `Display` always writes the canonical knockd/extended spelling, which parses
//! back to an equal hit whatever the default protocol is.
//!
//! A port is a number. The client also takes service names (`ssh`, `http:udp`), as
//! knock(1) does: it passes a [`PortNames`] table it loaded at its edge to
//! [`parse_sequence_named`]. The grammar itself reads no files, and the server passes no
//! table, so a knockd.conf never depends on the services database of the machine.

use std::fmt;

use crate::text::{excerpt, quoted};

/// The transport vocabulary lives with the packets; the grammar speaks it too.
pub use crate::wire::{Proto, TcpFlags};

/// A condition on a packet's TCP flags: some flags must be set, others must be clear.
///
/// A door's `TCPFlags = syn,!ack` is `set: syn, clear: ack`; a step with exact flags is
/// `set: f, clear: !f`; "any flags" sets neither.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FlagRule {
    pub set: TcpFlags,
    pub clear: TcpFlags,
}

impl FlagRule {
    /// Accepts every packet.
    pub const ANY: FlagRule = FlagRule {
        set: TcpFlags::NONE,
        clear: TcpFlags::NONE,
    };

    /// Accepts exactly `flags`, all eight bits compared.
    pub const fn exact(flags: TcpFlags) -> FlagRule {
        FlagRule {
            set: flags,
            clear: TcpFlags::from_bits(!flags.bits()),
        }
    }

    pub const fn matches(self, flags: TcpFlags) -> bool {
        flags.contains(self.set) && !flags.intersects(self.clear)
    }

    pub const fn is_any(self) -> bool {
        self.set.is_empty() && self.clear.is_empty()
    }
}

/// How a hit's TCP flags were given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HitFlags {
    /// No flags written. The client sends an ordinary connect() SYN; a server step uses the
    /// door's `TCPFlags`. Always the value for UDP hits.
    Plain,
    /// Exactly these flags, no more and no fewer (extended or tportknockd form).
    Exact(TcpFlags),
    /// Flags ignored (tportknockd `i`, extended `any`): a server step accepts any flags and
    /// the client sends a SYN.
    Any,
}

/// One knock: a port, a protocol and, for TCP, how its flags were given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Hit {
    pub port: u16,
    pub proto: Proto,
    pub flags: HitFlags,
}

impl Hit {
    /// A plain TCP hit, as knock(1) sends it.
    pub const fn tcp(port: u16) -> Hit {
        Hit {
            port,
            proto: Proto::Tcp,
            flags: HitFlags::Plain,
        }
    }

    /// A UDP hit.
    pub const fn udp(port: u16) -> Hit {
        Hit {
            port,
            proto: Proto::Udp,
            flags: HitFlags::Plain,
        }
    }

    /// A TCP hit with exactly these flags.
    pub const fn tcp_flags(port: u16, flags: TcpFlags) -> Hit {
        Hit {
            port,
            proto: Proto::Tcp,
            flags: HitFlags::Exact(flags),
        }
    }

    /// The flags the client puts on the wire: a SYN unless exact flags were written, and
    /// nothing for UDP.
    pub fn wire_flags(&self) -> TcpFlags {
        match (self.proto, self.flags) {
            (Proto::Udp, _) => TcpFlags::NONE,
            (Proto::Tcp, HitFlags::Exact(f)) => f,
            (Proto::Tcp, HitFlags::Plain | HitFlags::Any) => TcpFlags::SYN,
        }
    }

    /// Whether sending this hit needs a raw socket (it carries explicit flags).
    pub fn needs_raw(&self) -> bool {
        self.proto == Proto::Tcp && matches!(self.flags, HitFlags::Exact(_))
    }

    /// The flag condition a server step applies to TCP packets: the door's `TCPFlags` for a
    /// plain hit, the written flags exactly, or anything for `any`.
    pub fn step_rule(&self, door: FlagRule) -> FlagRule {
        match self.flags {
            HitFlags::Plain => door,
            HitFlags::Exact(f) => FlagRule::exact(f),
            HitFlags::Any => FlagRule::ANY,
        }
    }

    /// Parses one item. `default` is the protocol of a bare `PORT` (udp under `-u`).
    pub fn parse(item: &str, default: Proto) -> Result<Hit, HitError> {
        Hit::parse_named(item, default, &NoNames)
    }

    /// Parses one item whose port may also be a service name found in `names`.
    pub fn parse_named(item: &str, default: Proto, names: &dyn PortNames) -> Result<Hit, HitError> {
        parse_item(item.trim(), default, names).map_err(|kind| HitError {
            item: item.trim().to_string(),
            kind,
        })
    }
}

/// Service names for ports (`ssh` for 22), looked up by whoever parses: the client loads
/// the system's services database, the server has none.
pub trait PortNames {
    /// The port named `name`, for a hit of protocol `proto`.
    fn port(&self, name: &str, proto: Proto) -> Option<u16>;

    /// Where names are looked up (`/etc/services`), for the message when one is not found;
    /// `None` when no names are taken at all, so a name is "not a number".
    fn source(&self) -> Option<String>;
}

/// No service names: every port must be a number (knockd.conf, profiles, one-time lists).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoNames;

impl PortNames for NoNames {
    fn port(&self, _name: &str, _proto: Proto) -> Option<u16> {
        None
    }

    fn source(&self) -> Option<String> {
        None
    }
}

/// Canonical spelling: `7000:tcp`, `8000:udp`, `7000:tcp:fin+psh`, `7000:tcp:none`,
/// `7000:tcp:any`.
impl fmt::Display for Hit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.port, self.proto)?;
        match self.flags {
            HitFlags::Plain => Ok(()),
            HitFlags::Exact(flags) => write!(f, ":{flags}"),
            HitFlags::Any => f.write_str(":any"),
        }
    }
}

/// A rejected item: the item as written and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad hit {}: {kind}", quoted(.item))]
pub struct HitError {
    pub item: String,
    pub kind: HitErrorKind,
}

/// What is wrong with an item.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HitErrorKind {
    #[error("empty item (a stray or trailing comma?)")]
    Empty,
    #[error("port {} is not a number (expected 1-65535)", quoted(.0))]
    NotANumber(String),
    #[error("{0}")]
    UnknownService(Box<UnknownService>),
    #[error("not a hit; write it as {} (PORT:PROTO)", excerpt(.0))]
    SlashForm(String),
    #[error("port {} is negative (expected 1-65535)", excerpt(.0))]
    Negative(String),
    #[error("port {} is out of range (expected 1-65535)", excerpt(.0))]
    OutOfRange(String),
    #[error("unknown protocol {} (expected tcp or udp)", quoted(.0))]
    UnknownProto(String),
    #[error(
        "unknown TCP flag {} (expected fin, syn, rst, psh, ack, urg, ece, cwr, none or any)",
        quoted(.0)
    )]
    UnknownFlag(String),
    #[error("unknown flag letter {0:?} (expected letters from f s r p a u, or x, n or i alone)")]
    UnknownLetter(char),
    #[error("{} cannot be combined with other flags", quoted(.0))]
    FlagNotAlone(String),
    #[error("empty flag list after the last ':'")]
    EmptyFlags,
    #[error("flags are only for tcp hits, not udp")]
    FlagsOnUdp,
    #[error("too many ':' fields (expected PORT[:PROTO[:FLAGS]] or PROTO:PORT[:LETTERS])")]
    TooManyFields,
}

impl HitError {
    /// The error for an item read from a file that may hold a secret (a one-time list, which
    /// is one, or a secret named as a list by mistake): what is wrong, never what was
    /// written.
    pub fn without_text(&self) -> String {
        format!(
            "not a sequence: {} (the line is not shown: the file may hold a secret)",
            self.kind.reason()
        )
    }
}

impl HitErrorKind {
    /// What is wrong, in words that quote nothing of the item.
    pub fn reason(&self) -> &'static str {
        match self {
            HitErrorKind::Empty => "an empty item (a stray or trailing comma?)",
            HitErrorKind::NotANumber(_)
            | HitErrorKind::SlashForm(_)
            | HitErrorKind::Negative(_)
            | HitErrorKind::OutOfRange(_) => "a port that is not a number from 1 to 65535",
            HitErrorKind::UnknownService(_) => {
                "a port that is neither a number nor a known service name"
            }
            HitErrorKind::UnknownProto(_) => "an unknown protocol (expected tcp or udp)",
            HitErrorKind::UnknownFlag(_)
            | HitErrorKind::UnknownLetter(_)
            | HitErrorKind::FlagNotAlone(_)
            | HitErrorKind::EmptyFlags => "TCP flags that are not valid",
            HitErrorKind::FlagsOnUdp => "flags on a udp hit",
            HitErrorKind::TooManyFields => "too many ':' fields",
        }
    }
}

/// A port written as a name that the services table does not have (boxed in
/// [`HitErrorKind`], which stays small for the errors that carry it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "port {} is neither a number (1-65535) nor a service name for {proto} in {database}",
    quoted(.name)
)]
pub struct UnknownService {
    pub name: String,
    pub proto: Proto,
    /// Where names were looked up ([`PortNames::source`]).
    pub database: String,
}

fn parse_item(item: &str, default: Proto, names: &dyn PortNames) -> Result<Hit, HitErrorKind> {
    if item.is_empty() {
        return Err(HitErrorKind::Empty);
    }
    if let Some(suggested) = slash_form(item) {
        return Err(HitErrorKind::SlashForm(suggested));
    }
    let fields: Vec<&str> = item.split(':').map(str::trim).collect();
    if fields.len() > 3 {
        return Err(HitErrorKind::TooManyFields);
    }
    // tportknockd frame form starts with the protocol name.
    if let Some(proto) = Proto::from_name(fields[0]) {
        if fields.len() < 2 {
            return Err(HitErrorKind::NotANumber(fields[0].to_string()));
        }
        let port = port_of(fields[1], proto, names)?;
        let letters = fields.get(2).copied();
        return match (proto, letters) {
            (Proto::Udp, None) => Ok(Hit::udp(port)),
            (Proto::Udp, Some(_)) => Err(HitErrorKind::FlagsOnUdp),
            (Proto::Tcp, None) => Ok(Hit::tcp_flags(port, TcpFlags::NONE)),
            (Proto::Tcp, Some(l)) => Ok(Hit {
                port,
                proto,
                flags: parse_letters(l)?,
            }),
        };
    }
    // `icmp:5`: a word where a frame's protocol would stand, followed by a port.
    if fields.len() >= 2
        && !fields[0].is_empty()
        && !fields[0].starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+')
        && fields[1].starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(HitErrorKind::UnknownProto(fields[0].to_string()));
    }
    // The protocol comes after the port, and a name is looked up for it: read it first.
    let proto = match fields.get(1) {
        None => None,
        Some(p) => {
            Some(Proto::from_name(p).ok_or_else(|| HitErrorKind::UnknownProto(p.to_string()))?)
        }
    };
    let port = port_of(fields[0], proto.unwrap_or(default), names)?;
    let Some(proto) = proto else {
        return Ok(Hit {
            port,
            proto: default,
            flags: HitFlags::Plain,
        });
    };
    match (proto, fields.get(2)) {
        (_, None) => Ok(Hit {
            port,
            proto,
            flags: HitFlags::Plain,
        }),
        (Proto::Udp, Some(_)) => Err(HitErrorKind::FlagsOnUdp),
        (Proto::Tcp, Some(names)) => Ok(Hit {
            port,
            proto,
            flags: parse_flag_names(names)?,
        }),
    }
}

/// `tcp/22` or `22/udp`, the notation of /etc/services and of firewalls: the item the user
/// meant, in the grammar's `PORT:PROTO`.
fn slash_form(item: &str) -> Option<String> {
    let (a, b) = item.split_once('/')?;
    let (a, b) = (a.trim(), b.trim());
    let (port, proto) = match (Proto::from_name(a), Proto::from_name(b)) {
        (Some(proto), None) => (b, proto),
        (None, Some(proto)) => (a, proto),
        _ => return None,
    };
    let port = parse_port(port).ok()?;
    Some(
        Hit {
            port,
            proto,
            flags: HitFlags::Plain,
        }
        .to_string(),
    )
}

/// A port field: a number, or a name `names` knows for `proto`.
fn port_of(s: &str, proto: Proto, names: &dyn PortNames) -> Result<u16, HitErrorKind> {
    match parse_port(s) {
        Err(HitErrorKind::NotANumber(name)) if !name.is_empty() => {
            match (names.port(&name, proto), names.source()) {
                (Some(port), _) => Ok(port),
                (None, Some(database)) => {
                    Err(HitErrorKind::UnknownService(Box::new(UnknownService {
                        name,
                        proto,
                        database,
                    })))
                }
                (None, None) => Err(HitErrorKind::NotANumber(name)),
            }
        }
        other => other,
    }
}

fn parse_port(s: &str) -> Result<u16, HitErrorKind> {
    if s.is_empty() {
        return Err(HitErrorKind::NotANumber(String::new()));
    }
    if let Some(rest) = s.strip_prefix('-')
        && !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(HitErrorKind::Negative(s.to_string()));
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HitErrorKind::NotANumber(s.to_string()));
    }
    match s.parse::<u32>() {
        Ok(p @ 1..=65535) => Ok(p as u16),
        // All digits, so the only parse failure is overflow.
        _ => Err(HitErrorKind::OutOfRange(s.to_string())),
    }
}

fn parse_flag_names(s: &str) -> Result<HitFlags, HitErrorKind> {
    if s.is_empty() {
        return Err(HitErrorKind::EmptyFlags);
    }
    let names: Vec<&str> = s.split('+').map(str::trim).collect();
    for word in ["none", "any"] {
        if names.iter().any(|n| n.eq_ignore_ascii_case(word)) {
            if names.len() > 1 {
                return Err(HitErrorKind::FlagNotAlone(word.to_string()));
            }
            return Ok(if word == "none" {
                HitFlags::Exact(TcpFlags::NONE)
            } else {
                HitFlags::Any
            });
        }
    }
    let mut flags = TcpFlags::NONE;
    for name in names {
        if name.is_empty() {
            return Err(HitErrorKind::EmptyFlags);
        }
        flags |=
            TcpFlags::from_name(name).ok_or_else(|| HitErrorKind::UnknownFlag(name.to_string()))?;
    }
    Ok(HitFlags::Exact(flags))
}

fn parse_letters(s: &str) -> Result<HitFlags, HitErrorKind> {
    if s.is_empty() {
        return Err(HitErrorKind::EmptyFlags);
    }
    let mut flags = TcpFlags::NONE;
    for c in s.chars() {
        let lower = c.to_ascii_lowercase();
        let alone = match lower {
            'x' => Some(HitFlags::Exact(TcpFlags::ALL_SIX)),
            'n' => Some(HitFlags::Exact(TcpFlags::NONE)),
            'i' => Some(HitFlags::Any),
            _ => None,
        };
        if let Some(value) = alone {
            if s.chars().count() > 1 {
                return Err(HitErrorKind::FlagNotAlone(lower.to_string()));
            }
            return Ok(value);
        }
        flags |= match lower {
            'f' => TcpFlags::FIN,
            's' => TcpFlags::SYN,
            'r' => TcpFlags::RST,
            'p' => TcpFlags::PSH,
            'a' => TcpFlags::ACK,
            'u' => TcpFlags::URG,
            _ => return Err(HitErrorKind::UnknownLetter(c)),
        };
    }
    Ok(HitFlags::Exact(flags))
}

/// Parses a comma-separated sequence. Whitespace around items is allowed; an empty item
/// (`7000,,8000` or a trailing comma) is an error, and so is an empty sequence.
pub fn parse_sequence(s: &str, default: Proto) -> Result<Vec<Hit>, HitError> {
    parse_sequence_named(s, default, &NoNames)
}

/// [`parse_sequence`] where a port may also be a service name found in `names`.
pub fn parse_sequence_named(
    s: &str,
    default: Proto,
    names: &dyn PortNames,
) -> Result<Vec<Hit>, HitError> {
    s.split(',')
        .map(|item| Hit::parse_named(item, default, names))
        .collect()
}

/// Exact TCP flags as a setting, not a hit (an HMAC profile's `flags`, `knock keygen
/// --flags`): flag names joined by `+` (`fin+psh`), or `none`. `any` has no place there:
/// it tells a door to accept any flags, but a derived sequence needs flags to send.
pub fn parse_exact_flags(text: &str) -> Result<TcpFlags, String> {
    if text.trim().is_empty() {
        return Err("no flags given (leave the setting out for plain SYNs)".into());
    }
    match parse_flag_names(text.trim()) {
        Ok(HitFlags::Exact(f)) => Ok(f),
        Ok(_) => Err(
            "\"any\" (flags ignored) is for a door's sequence, not for sending: give exact \
             flags (fin+psh, or none), or leave them out for plain SYNs"
                .into(),
        ),
        Err(HitErrorKind::UnknownFlag(name)) => Err(format!(
            "unknown TCP flag {:?} (expected fin, syn, rst, psh, ack, urg, ece, cwr joined \
             by +, or none)",
            quoted(&name)
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Writes hits in canonical form, joined by commas.
pub fn format_sequence(hits: &[Hit]) -> String {
    hits.iter()
        .map(Hit::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Proto = Proto::Tcp;
    const U: Proto = Proto::Udp;

    fn exact(port: u16, bits: u8) -> Hit {
        Hit::tcp_flags(port, TcpFlags::from_bits(bits))
    }

    #[test]
    fn accepted_items() {
        let any = |port| Hit {
            port,
            proto: T,
            flags: HitFlags::Any,
        };
        let table: &[(&str, Proto, Hit)] = &[
            ("7000", T, Hit::tcp(7000)),
            ("7000", U, Hit::udp(7000)),
            ("1", T, Hit::tcp(1)),
            ("65535", T, Hit::tcp(65535)),
            ("007000", T, Hit::tcp(7000)),
            ("  7000  ", T, Hit::tcp(7000)),
            ("8000:udp", T, Hit::udp(8000)),
            ("8000:UDP", T, Hit::udp(8000)),
            ("8000:Udp", T, Hit::udp(8000)),
            // An explicit :tcp stays tcp under -u (knock 0.8 sends it as UDP).
            ("9000:tcp", U, Hit::tcp(9000)),
            ("9000:TCP", U, Hit::tcp(9000)),
            ("7000:tcp:fin", T, exact(7000, 0x01)),
            ("7000:tcp:fin+psh", T, exact(7000, 0x09)),
            ("7000:tcp:FIN+Psh", U, exact(7000, 0x09)),
            ("7000:tcp:syn+ack", T, exact(7000, 0x12)),
            ("7000:tcp:ece+cwr", T, exact(7000, 0xc0)),
            (
                "7000:tcp:fin+syn+rst+psh+ack+urg+ece+cwr",
                T,
                exact(7000, 0xff),
            ),
            ("7000:tcp:syn+syn", T, exact(7000, 0x02)),
            ("7000:tcp:none", T, exact(7000, 0)),
            ("7000:tcp:any", T, any(7000)),
            ("tcp:110:up", T, exact(110, 0x28)),
            ("tcp:110:x", T, exact(110, 0x3f)),
            ("tcp:110:n", T, exact(110, 0)),
            ("tcp:110:i", U, any(110)),
            ("tcp:110:fsrpau", T, exact(110, 0x3f)),
            ("TCP:110:S", T, exact(110, 0x02)),
            ("tcp:110", U, exact(110, 0)),
            ("udp:53", T, Hit::udp(53)),
            (" tcp : 110 : a ", T, exact(110, 0x10)),
        ];
        for (input, default, want) in table {
            assert_eq!(Hit::parse(input, *default), Ok(*want), "input {input:?}");
        }
    }

    #[test]
    fn rejected_items_with_pinned_messages() {
        let table: &[(&str, &str)] = &[
            (
                "0",
                r#"bad hit "0": port 0 is out of range (expected 1-65535)"#,
            ),
            (
                "65536",
                r#"bad hit "65536": port 65536 is out of range (expected 1-65535)"#,
            ),
            (
                "99999999999999999999",
                r#"bad hit "99999999999999999999": port 99999999999999999999 is out of range (expected 1-65535)"#,
            ),
            (
                "abc",
                r#"bad hit "abc": port "abc" is not a number (expected 1-65535)"#,
            ),
            (
                "-1",
                r#"bad hit "-1": port -1 is negative (expected 1-65535)"#,
            ),
            (
                "+7",
                r#"bad hit "+7": port "+7" is not a number (expected 1-65535)"#,
            ),
            (
                "7000x",
                r#"bad hit "7000x": port "7000x" is not a number (expected 1-65535)"#,
            ),
            ("", r#"bad hit "": empty item (a stray or trailing comma?)"#),
            (
                "   ",
                r#"bad hit "": empty item (a stray or trailing comma?)"#,
            ),
            (
                "7000:icmp",
                r#"bad hit "7000:icmp": unknown protocol "icmp" (expected tcp or udp)"#,
            ),
            (
                "7000:",
                r#"bad hit "7000:": unknown protocol "" (expected tcp or udp)"#,
            ),
            (
                "icmp:5",
                r#"bad hit "icmp:5": unknown protocol "icmp" (expected tcp or udp)"#,
            ),
            (
                "7000:tcp:foo",
                r#"bad hit "7000:tcp:foo": unknown TCP flag "foo" (expected fin, syn, rst, psh, ack, urg, ece, cwr, none or any)"#,
            ),
            (
                "7000:tcp:",
                r#"bad hit "7000:tcp:": empty flag list after the last ':'"#,
            ),
            (
                "7000:tcp:fin+",
                r#"bad hit "7000:tcp:fin+": empty flag list after the last ':'"#,
            ),
            (
                "7000:tcp:none+syn",
                r#"bad hit "7000:tcp:none+syn": "none" cannot be combined with other flags"#,
            ),
            (
                "7000:udp:syn",
                r#"bad hit "7000:udp:syn": flags are only for tcp hits, not udp"#,
            ),
            (
                "udp:53:s",
                r#"bad hit "udp:53:s": flags are only for tcp hits, not udp"#,
            ),
            (
                "tcp:110:q",
                r#"bad hit "tcp:110:q": unknown flag letter 'q' (expected letters from f s r p a u, or x, n or i alone)"#,
            ),
            (
                "tcp:110:xs",
                r#"bad hit "tcp:110:xs": "x" cannot be combined with other flags"#,
            ),
            (
                "tcp:110:",
                r#"bad hit "tcp:110:": empty flag list after the last ':'"#,
            ),
            (
                "tcp:0",
                r#"bad hit "tcp:0": port 0 is out of range (expected 1-65535)"#,
            ),
            (
                "tcp:abc",
                r#"bad hit "tcp:abc": port "abc" is not a number (expected 1-65535)"#,
            ),
            (
                "tcp",
                r#"bad hit "tcp": port "tcp" is not a number (expected 1-65535)"#,
            ),
            (
                "7000:tcp:syn:1",
                r#"bad hit "7000:tcp:syn:1": too many ':' fields (expected PORT[:PROTO[:FLAGS]] or PROTO:PORT[:LETTERS])"#,
            ),
        ];
        for (input, want) in table {
            let err = Hit::parse(input, T).expect_err(input);
            assert_eq!(err.to_string(), *want, "input {input:?}");
        }
    }

    /// A services table for tests: ssh is tcp only, ntp udp only, domain both.
    struct Table;

    impl PortNames for Table {
        fn port(&self, name: &str, proto: Proto) -> Option<u16> {
            match (name, proto) {
                ("ssh", _) => Some(22),
                ("ntp", _) => Some(123),
                ("domain", _) => Some(53),
                ("http", Proto::Tcp) => Some(80),
                _ => None,
            }
        }

        fn source(&self) -> Option<String> {
            Some("/etc/services".into())
        }
    }

    #[test]
    fn service_names_only_with_a_table() {
        let table: &[(&str, Proto, Hit)] = &[
            ("ssh", T, Hit::tcp(22)),
            ("ssh", U, Hit::udp(22)),
            ("domain:udp", T, Hit::udp(53)),
            ("http:tcp", U, Hit::tcp(80)),
            ("ssh:tcp:fin", T, exact(22, 0x01)),
            ("tcp:ssh:up", T, exact(22, 0x28)),
            ("udp:ntp", T, Hit::udp(123)),
        ];
        for (input, default, want) in table {
            assert_eq!(
                Hit::parse_named(input, *default, &Table),
                Ok(*want),
                "{input}"
            );
            // Without a table a name is not a number, as knockd.conf has always read it.
            assert_eq!(
                Hit::parse(input, *default).unwrap_err().to_string(),
                format!(
                    "bad hit {input:?}: port {:?} is not a number (expected 1-65535)",
                    ["ssh", "domain", "http", "ntp"]
                        .into_iter()
                        .find(|n| input.contains(n))
                        .unwrap()
                ),
            );
        }
        assert_eq!(
            parse_sequence_named("ssh,http:udp,7000", T, &Table)
                .unwrap_err()
                .to_string(),
            "bad hit \"http:udp\": port \"http\" is neither a number (1-65535) nor a service \
             name for udp in /etc/services"
        );
        assert_eq!(
            parse_sequence_named("ssh,domain:udp,7000", T, &Table),
            Ok(vec![Hit::tcp(22), Hit::udp(53), Hit::tcp(7000)])
        );
        // Numbers never reach the table; bad numbers keep their own messages.
        for (input, want) in [
            ("-1", "port -1 is negative (expected 1-65535)"),
            ("0", "port 0 is out of range (expected 1-65535)"),
            (
                "ssh:icmp",
                "unknown protocol \"icmp\" (expected tcp or udp)",
            ),
        ] {
            let err = Hit::parse_named(input, T, &Table).unwrap_err();
            assert_eq!(err.kind.to_string(), want, "{input}");
        }
    }

    #[test]
    fn the_slash_notation_is_named_with_its_spelling_here() {
        for (input, want) in [
            ("tcp/22", "not a hit; write it as 22:tcp (PORT:PROTO)"),
            ("22/udp", "not a hit; write it as 22:udp (PORT:PROTO)"),
            ("UDP/53", "not a hit; write it as 53:udp (PORT:PROTO)"),
        ] {
            for names in [&NoNames as &dyn PortNames, &Table] {
                let err = Hit::parse_named(input, T, names).unwrap_err();
                assert_eq!(err.to_string(), format!("bad hit {input:?}: {want}"));
            }
        }
        // Anything else with a slash is an ordinary bad port.
        let err = Hit::parse("a/b", T).unwrap_err();
        assert_eq!(err.kind, HitErrorKind::NotANumber("a/b".into()));
    }

    #[test]
    fn exact_flags_as_a_setting() {
        assert_eq!(
            parse_exact_flags("fin+psh"),
            Ok(TcpFlags::FIN | TcpFlags::PSH)
        );
        assert_eq!(parse_exact_flags(" none "), Ok(TcpFlags::NONE));
        let table = [
            ("", "no flags given (leave the setting out for plain SYNs)"),
            (
                "any",
                "\"any\" (flags ignored) is for a door's sequence, not for sending: give exact \
                 flags (fin+psh, or none), or leave them out for plain SYNs",
            ),
            (
                "fin+bogus",
                "unknown TCP flag \"bogus\" (expected fin, syn, rst, psh, ack, urg, ece, cwr \
                 joined by +, or none)",
            ),
            ("fin+", "empty flag list after the last ':'"),
            ("none+fin", "\"none\" cannot be combined with other flags"),
        ];
        for (text, want) in table {
            assert_eq!(parse_exact_flags(text), Err(want.to_string()), "{text:?}");
        }
    }

    #[test]
    fn sequences() {
        assert_eq!(
            parse_sequence("7000,8000:udp,9000", T),
            Ok(vec![Hit::tcp(7000), Hit::udp(8000), Hit::tcp(9000)])
        );
        assert_eq!(
            parse_sequence(" 7000 , 8000:udp ,\t9000:tcp:syn ", U),
            Ok(vec![Hit::udp(7000), Hit::udp(8000), exact(9000, 0x02)])
        );
        let err = parse_sequence("7000,8000,", T).unwrap_err();
        assert_eq!(err.kind, HitErrorKind::Empty);
        let err = parse_sequence("7000,,8000", T).unwrap_err();
        assert_eq!(err.kind, HitErrorKind::Empty);
        assert_eq!(parse_sequence("", T).unwrap_err().kind, HitErrorKind::Empty);
        let err = parse_sequence("7000,abc,9000", T).unwrap_err();
        assert_eq!(err.item, "abc");
    }

    #[test]
    fn display_round_trips_under_either_default() {
        let hits = parse_sequence(
            "7000,8000:udp,9000:tcp,1:tcp:fin+psh,tcp:110:x,tcp:110:n,tcp:110:i,udp:53,7:tcp:ece+cwr",
            T,
        )
        .unwrap();
        let text = format_sequence(&hits);
        assert_eq!(
            text,
            "7000:tcp,8000:udp,9000:tcp,1:tcp:fin+psh,110:tcp:fin+syn+rst+psh+ack+urg,110:tcp:none,110:tcp:any,53:udp,7:tcp:ece+cwr"
        );
        for default in [T, U] {
            assert_eq!(parse_sequence(&text, default).unwrap(), hits);
        }
    }

    /// Every item of one to four `:`-separated fields drawn from good, bad and odd tokens
    /// parses or is refused without a panic, and every accepted item's canonical form parses
    /// back to the same hit under either default.
    #[test]
    fn field_combinations_never_panic_and_accepted_ones_round_trip() {
        const TOKENS: [&str; 20] = [
            "", "0", "1", "65535", "65536", "-1", "tcp", "UDP", "icmp", "fin+psh", "syn+", "none",
            "any", "x", "up", "i", "n", "q", " 7 ", "\u{e9}",
        ];
        let mut seen = std::collections::HashSet::new();
        let mut item = String::new();
        for fields in 1..=4u32 {
            for n in 0..TOKENS.len().pow(fields) {
                item.clear();
                let mut rest = n;
                for i in 0..fields {
                    if i > 0 {
                        item.push(':');
                    }
                    item.push_str(TOKENS[rest % TOKENS.len()]);
                    rest /= TOKENS.len();
                }
                for default in [T, U] {
                    let Ok(hit) = Hit::parse(&item, default) else {
                        continue;
                    };
                    let text = hit.to_string();
                    assert_eq!(Hit::parse(&text, T), Ok(hit), "{item:?} -> {text}");
                    assert_eq!(Hit::parse(&text, U), Ok(hit), "{item:?} -> {text}");
                    seen.insert(match hit.flags {
                        HitFlags::Plain => hit.proto.as_str(),
                        HitFlags::Exact(_) => "exact",
                        HitFlags::Any => "any",
                    });
                }
            }
        }
        // Every kind of hit was among the accepted ones, so the round trip covered each.
        for kind in ["tcp", "udp", "exact", "any"] {
            assert!(seen.contains(kind), "no {kind} hit accepted");
        }
    }

    #[test]
    fn wire_flags_and_raw() {
        assert_eq!(Hit::tcp(1).wire_flags(), TcpFlags::SYN);
        assert!(!Hit::tcp(1).needs_raw());
        assert_eq!(Hit::udp(1).wire_flags(), TcpFlags::NONE);
        assert!(!Hit::udp(1).needs_raw());
        let h = Hit::parse("tcp:1:i", T).unwrap();
        assert_eq!(h.wire_flags(), TcpFlags::SYN);
        assert!(!h.needs_raw());
        let h = Hit::parse("1:tcp:fin+psh", T).unwrap();
        assert_eq!(h.wire_flags(), TcpFlags::FIN | TcpFlags::PSH);
        assert!(h.needs_raw());
        assert!(Hit::parse("tcp:1", T).unwrap().needs_raw());
    }

    #[test]
    fn flag_rules() {
        let syn_not_ack = FlagRule {
            set: TcpFlags::SYN,
            clear: TcpFlags::ACK,
        };
        assert!(syn_not_ack.matches(TcpFlags::SYN));
        assert!(syn_not_ack.matches(TcpFlags::SYN | TcpFlags::PSH));
        assert!(!syn_not_ack.matches(TcpFlags::SYN | TcpFlags::ACK));
        assert!(!syn_not_ack.matches(TcpFlags::FIN));
        let exact = FlagRule::exact(TcpFlags::FIN | TcpFlags::PSH);
        assert!(exact.matches(TcpFlags::FIN | TcpFlags::PSH));
        assert!(!exact.matches(TcpFlags::FIN));
        assert!(!exact.matches(TcpFlags::FIN | TcpFlags::PSH | TcpFlags::ECE));
        assert!(FlagRule::exact(TcpFlags::NONE).matches(TcpFlags::NONE));
        assert!(!FlagRule::exact(TcpFlags::NONE).matches(TcpFlags::SYN));
        assert!(FlagRule::ANY.matches(TcpFlags::from_bits(0xff)));
        let any = Hit::parse("tcp:1:i", Proto::Tcp).unwrap();
        assert_eq!(any.step_rule(syn_not_ack), FlagRule::ANY);
        assert_eq!(Hit::tcp(1).step_rule(syn_not_ack), syn_not_ack);
        let x = Hit::parse("tcp:1:x", Proto::Tcp).unwrap();
        assert_eq!(x.step_rule(syn_not_ack), FlagRule::exact(TcpFlags::ALL_SIX));
    }
}
