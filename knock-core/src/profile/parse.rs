//! Reading a profile: TOML into [`Profile`], every error as `path:line: message`.
//!
//! Values are deserialized with their spans, so checks made after deserialization (a bad
//! hit in `sequence`, an HMAC length out of range) still point at the key's line.

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::{FixedSequence, HmacKnock, Knock, OneTime, Profile, SecretRef, base_dir};
use crate::hit::{TcpFlags, parse_exact_flags};
use crate::hmac::{HmacParams, ParamsError, PortRange, Protocols};
use crate::text::{foreign, quoted};

/// A profile that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Bad TOML, an unknown key, or a bad value.
    #[error("{}:{line}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("read profile {}: {error}", path.display())]
    Read {
        path: PathBuf,
        // In the message already, so not also a `source()`: `{:#}` would print it twice.
        error: io::Error,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    description: Option<Spanned<String>>,
    host: Option<Spanned<String>>,
    sequence: Option<Spanned<String>>,
    delay_ms: Option<Spanned<u64>>,
    udp: Option<Spanned<bool>>,
    family: Option<Spanned<String>>,
    raw: Option<Spanned<bool>>,
    open_port: Option<Spanned<i64>>,
    one_time_sequences: Option<Spanned<String>>,
    hmac: Option<Spanned<RawHmac>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHmac {
    door: Spanned<String>,
    secret_file: Option<Spanned<String>>,
    secret_env: Option<Spanned<String>>,
    length: Option<Spanned<usize>>,
    ports: Option<Spanned<String>>,
    protocols: Option<Spanned<String>>,
    step: Option<Spanned<u64>>,
    flags: Option<Spanned<String>>,
}

/// Reads and parses the profile at `path`.
pub fn parse_file(path: &Path) -> Result<Profile, ProfileError> {
    let text = std::fs::read_to_string(path).map_err(|error| ProfileError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse(path, &text)
}

/// Parses profile `text` read from `path`. Relative paths in it resolve against the
/// directory of `path`.
pub fn parse(path: &Path, text: &str) -> Result<Profile, ProfileError> {
    let at = At { path, text };
    let raw: RawProfile = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |s| at.line(s.start));
        let message = e.message().trim_end();
        let key = text
            .lines()
            .nth(line - 1)
            .and_then(|l| l.split_once('='))
            .map(|(k, _)| k.trim());
        // TOML's messages quote keys and values whole.
        let message = match key.and_then(|k| wrong_value(k, message)) {
            Some(better) => better,
            None => message.to_string(),
        };
        at.err_line(line, foreign(&message).to_string())
    })?;
    at.profile(raw)
}

/// How each key's value is written, for a message about a value of the wrong type.
const WRITTEN_AS: &[(&str, &str)] = &[
    (
        "description",
        "description = \"SSH at home\" (text, in quotes)",
    ),
    ("host", "host = \"home.example.net\" (in quotes)"),
    ("sequence", "sequence = \"7000,8000:udp\" (in quotes)"),
    (
        "delay_ms",
        "delay_ms = 100 (milliseconds: a whole number, without quotes)",
    ),
    ("udp", "udp = true (true or false, without quotes)"),
    (
        "family",
        "family = \"ipv4\" (\"any\", \"ipv4\" or \"ipv6\", in quotes)",
    ),
    ("raw", "raw = true (true or false, without quotes)"),
    (
        "one_time_sequences",
        "one_time_sequences = \"vpn.otp\" (a path, in quotes)",
    ),
    ("door", "door = \"ssh\" (in quotes)"),
    (
        "secret_file",
        "secret_file = \"office.secret\" (a path, in quotes)",
    ),
    (
        "secret_env",
        "secret_env = \"KNOCK_SECRET\" (a variable's name, in quotes)",
    ),
    ("length", "length = 4 (a whole number, without quotes)"),
    ("ports", "ports = \"1024-65535\" (in quotes)"),
    (
        "protocols",
        "protocols = \"tcp\" (\"tcp\", \"udp\" or \"mixed\", in quotes)",
    ),
    (
        "step",
        "step = 30 (seconds: a whole number, without quotes)",
    ),
    ("flags", "flags = \"fin+psh\" (in quotes)"),
];

/// serde's `invalid type: string "100", expected u64` for `key`, said for a person:
/// `delay_ms: string "100" is the wrong type; write it as delay_ms = 100 (...)`.
fn wrong_value(key: &str, message: &str) -> Option<String> {
    let (_, example) = WRITTEN_AS.iter().find(|(k, _)| *k == key)?;
    let (found, what) = if let Some(rest) = message.strip_prefix("invalid type: ") {
        (rest, "is the wrong type")
    } else if let Some(rest) = message.strip_prefix("invalid value: ") {
        (rest, "is out of range")
    } else {
        return None;
    };
    let found = found.split(", expected").next().unwrap_or(found);
    let hmac_keys = [
        "door",
        "secret_file",
        "secret_env",
        "length",
        "ports",
        "protocols",
    ];
    let table = if hmac_keys.contains(&key) || key == "step" || key == "flags" {
        "[hmac] "
    } else {
        ""
    };
    Some(format!(
        "{table}{key}: {found} {what}; write it as {example}"
    ))
}

/// Error construction against one file.
struct At<'a> {
    path: &'a Path,
    text: &'a str,
}

impl At<'_> {
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn err_line(&self, line: usize, message: impl Into<String>) -> ProfileError {
        ProfileError::Invalid {
            path: self.path.to_path_buf(),
            line,
            message: message.into(),
        }
    }

    fn err(&self, span: Range<usize>, message: impl Into<String>) -> ProfileError {
        self.err_line(self.line(span.start), message)
    }

    fn profile(&self, raw: RawProfile) -> Result<Profile, ProfileError> {
        let base = base_dir(self.path);
        let mut ways: Vec<(&str, Range<usize>)> = Vec::new();
        if let Some(s) = &raw.sequence {
            ways.push(("sequence", s.span()));
        }
        if let Some(s) = &raw.one_time_sequences {
            ways.push(("one_time_sequences", s.span()));
        }
        if let Some(s) = &raw.hmac {
            ways.push(("[hmac]", s.span()));
        }
        ways.sort_by_key(|(_, span)| span.start);
        match ways.as_slice() {
            [] => {
                return Err(self.err_line(
                    1,
                    "no way to knock: a profile has exactly one of sequence, \
                     one_time_sequences and [hmac]",
                ));
            }
            [_] => {}
            [(first, _), (second, span), ..] => {
                return Err(self.err(
                    span.clone(),
                    format!(
                        "{second} cannot be combined with {first}: a profile has exactly one \
                         of sequence, one_time_sequences and [hmac]"
                    ),
                ));
            }
        }
        let knock = if let Some(seq) = raw.sequence {
            let parsed = FixedSequence::parse(seq.get_ref())
                .map_err(|e| self.err(seq.span(), format!("sequence: {e}")))?;
            Knock::Fixed(parsed)
        } else if let Some(list) = raw.one_time_sequences {
            if list.get_ref().trim().is_empty() {
                return Err(self.err(list.span(), "one_time_sequences is empty (expected a path)"));
            }
            Knock::OneTime(OneTime::new(list.into_inner(), base))
        } else if let Some(hmac) = raw.hmac {
            let span = hmac.span();
            Knock::Hmac(self.hmac(hmac.into_inner(), span, base)?)
        } else {
            unreachable!("exactly one way to knock was checked above")
        };
        if let Some(udp) = &raw.udp
            && !matches!(knock, Knock::Fixed(_))
        {
            return Err(self.err(
                udp.span(),
                "udp applies only to sequence (one-time lines and [hmac] give each hit's \
                 protocol)",
            ));
        }
        if let Some(host) = &raw.host
            && host.get_ref().trim().is_empty()
        {
            return Err(self.err(host.span(), "host is empty"));
        }
        let open_port = match &raw.open_port {
            None => None,
            Some(p) => Some(
                u16::try_from(*p.get_ref())
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| {
                        self.err(
                            p.span(),
                            format!("open_port {} is not a port (expected 1-65535)", p.get_ref()),
                        )
                    })?,
            ),
        };
        let family = match raw.family {
            None => None,
            Some(f) => Some(
                f.get_ref()
                    .parse()
                    .map_err(|e: String| self.err(f.span(), e))?,
            ),
        };
        Ok(Profile {
            description: raw.description.map(Spanned::into_inner),
            host: raw.host.map(|h| h.into_inner().trim().to_string()),
            delay_ms: raw.delay_ms.map(Spanned::into_inner),
            udp: raw.udp.map(Spanned::into_inner),
            family,
            raw: raw.raw.map(Spanned::into_inner),
            open_port,
            knock,
        })
    }

    fn hmac(
        &self,
        raw: RawHmac,
        table: Range<usize>,
        base: &Path,
    ) -> Result<HmacKnock, ProfileError> {
        let door = raw.door.get_ref();
        if door.is_empty() {
            return Err(self.err(raw.door.span(), "[hmac] door is empty"));
        }
        if door.contains('\0') {
            // NUL separates the door from the counter in the HMAC message.
            return Err(self.err(raw.door.span(), "[hmac] door may not contain NUL"));
        }
        let secret = match (raw.secret_file, raw.secret_env) {
            (Some(file), Some(env)) => {
                let later = file.span().start.max(env.span().start);
                return Err(self.err_line(
                    self.line(later),
                    "[hmac] has both secret_file and secret_env; keep one",
                ));
            }
            (Some(file), None) => {
                if file.get_ref().trim().is_empty() {
                    return Err(self.err(file.span(), "[hmac] secret_file is empty"));
                }
                SecretRef::file(file.into_inner(), base)
            }
            (None, Some(env)) => {
                let name = env.get_ref();
                if name.is_empty() || name.contains(['=', '\0']) {
                    return Err(self.err(
                        env.span(),
                        format!(
                            "[hmac] secret_env {:?} is not a variable name",
                            quoted(name)
                        ),
                    ));
                }
                SecretRef::Env(env.into_inner())
            }
            (None, None) => SecretRef::Prompt,
        };
        let mut params = HmacParams::new(door.as_str());
        if let Some(length) = &raw.length {
            params.length = *length.get_ref();
        }
        if let Some(step) = &raw.step {
            params.step = *step.get_ref();
        }
        if let Some(ports) = &raw.ports {
            params.ports = ports
                .get_ref()
                .parse::<PortRange>()
                .map_err(|e| self.err(ports.span(), format!("[hmac] {e}")))?;
        }
        if let Some(p) = &raw.protocols {
            params.protocols = p
                .get_ref()
                .parse::<Protocols>()
                .map_err(|e| self.err(p.span(), format!("[hmac] {e}")))?;
        }
        if let Some(flags) = &raw.flags {
            params.flags = Some(
                parse_flags(flags.get_ref())
                    .map_err(|e| self.err(flags.span(), format!("[hmac] {e}")))?,
            );
        }
        params.validate().map_err(|e| {
            let at = match e {
                ParamsError::Length(_) => raw.length.as_ref().map(Spanned::span),
                ParamsError::Step => raw.step.as_ref().map(Spanned::span),
                ParamsError::PoolTooSmall { .. } => raw
                    .ports
                    .as_ref()
                    .map(Spanned::span)
                    .or_else(|| raw.length.as_ref().map(Spanned::span)),
                ParamsError::FlagsOnUdp => raw.flags.as_ref().map(Spanned::span),
            };
            self.err(at.unwrap_or(table.clone()), format!("[hmac] {e}"))
        })?;
        Ok(HmacKnock { params, secret })
    }
}

/// The `[hmac]` table's `flags`: exact flags as the hit grammar names them.
fn parse_flags(text: &str) -> Result<TcpFlags, String> {
    parse_exact_flags(text).map_err(|e| format!("flags {:?}: {e}", quoted(text)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hit::{Hit, Proto};
    use crate::hmac::DEFAULT_PORTS;
    use crate::profile::{Family, Kind};

    const PATH: &str = "/home/u/.config/knock/profiles/p.toml";

    fn ok(text: &str) -> Profile {
        parse(Path::new(PATH), text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn err(text: &str) -> String {
        match parse(Path::new(PATH), text) {
            Ok(p) => panic!("{text:?} parsed: {p:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_top_level_key() {
        let p = ok(r#"
description = "SSH on the home router"
host = " home.example.net "
sequence = "7000, 8000:udp ,9000:tcp:syn"
delay_ms = 150
udp = true
family = "ipv6"
raw = true
open_port = 22
"#);
        assert_eq!(p.description.as_deref(), Some("SSH on the home router"));
        assert_eq!(p.host.as_deref(), Some("home.example.net"));
        assert_eq!(p.delay_ms, Some(150));
        assert_eq!(p.udp, Some(true));
        assert_eq!(p.family, Some(Family::Ipv6));
        assert_eq!(p.raw, Some(true));
        assert_eq!(p.open_port, Some(22));
        assert_eq!(p.kind(), Kind::Fixed);
        let Knock::Fixed(seq) = &p.knock else {
            panic!("{p:?}")
        };
        assert_eq!(seq.as_str(), "7000, 8000:udp ,9000:tcp:syn");
        assert_eq!(
            seq.hits(Proto::Udp),
            [
                Hit::udp(7000),
                Hit::udp(8000),
                Hit::tcp_flags(9000, TcpFlags::SYN)
            ]
        );
    }

    #[test]
    fn minimal_profiles_leave_everything_unset() {
        let p = ok("sequence = \"7000\"\n");
        assert_eq!(
            (p.description, p.host, p.delay_ms, p.udp, p.family, p.raw),
            (None, None, None, None, None, None)
        );
        assert_eq!(p.open_port, None);
        for (text, family) in [
            ("any", Family::Any),
            ("ipv4", Family::Ipv4),
            ("IPv6", Family::Ipv6),
        ] {
            let p = ok(&format!("sequence = \"1\"\nfamily = \"{text}\"\n"));
            assert_eq!(p.family, Some(family));
        }
    }

    #[test]
    fn one_time_paths_resolve_against_the_profile_directory() {
        let p = ok("host = \"192.0.2.2\"\none_time_sequences = \"lists/vpn.otp\"\n");
        assert_eq!(p.kind(), Kind::OneTime);
        let Knock::OneTime(list) = &p.knock else {
            panic!("{p:?}")
        };
        assert_eq!(list.path, Path::new("lists/vpn.otp"));
        assert_eq!(
            list.resolved,
            Path::new("/home/u/.config/knock/profiles/lists/vpn.otp")
        );
        let p = ok("one_time_sequences = \"/srv/knock/vpn.otp\"\n");
        let Knock::OneTime(list) = &p.knock else {
            panic!("{p:?}")
        };
        assert_eq!(list.resolved, Path::new("/srv/knock/vpn.otp"));
    }

    #[test]
    fn every_hmac_key() {
        let p = ok(r#"
host = "office.example.net"
[hmac]
door = "ssh"
secret_file = "office.secret"
length = 6
ports = "7000-7999"
protocols = "mixed"
step = 60
flags = "fin+psh"
"#);
        assert_eq!(p.kind(), Kind::Hmac);
        let Knock::Hmac(h) = &p.knock else {
            panic!("{p:?}")
        };
        let want = HmacParams {
            door: "ssh".into(),
            length: 6,
            ports: PortRange { lo: 7000, hi: 7999 },
            protocols: Protocols::Mixed,
            step: 60,
            flags: Some(TcpFlags::FIN | TcpFlags::PSH),
        };
        assert_eq!(h.params, want);
        assert_eq!(
            h.secret,
            SecretRef::File {
                path: "office.secret".into(),
                resolved: "/home/u/.config/knock/profiles/office.secret".into(),
            }
        );
    }

    #[test]
    fn hmac_defaults_and_secret_sources() {
        let p = ok("[hmac]\ndoor = \"web door\"\nsecret_env = \"KNOCK_SECRET\"\n");
        let Knock::Hmac(h) = &p.knock else {
            panic!("{p:?}")
        };
        assert_eq!(h.params, HmacParams::new("web door"));
        assert_eq!(h.params.ports, DEFAULT_PORTS);
        assert_eq!(h.secret, SecretRef::Env("KNOCK_SECRET".into()));
        let p = ok("hmac = { door = \"d\", flags = \"none\" }\n");
        let Knock::Hmac(h) = &p.knock else {
            panic!("{p:?}")
        };
        assert_eq!(h.secret, SecretRef::Prompt);
        assert_eq!(h.params.flags, Some(TcpFlags::NONE));
        let p = ok("hmac.door = \"d\"\nhmac.protocols = \"UDP\"\n");
        let Knock::Hmac(h) = &p.knock else {
            panic!("{p:?}")
        };
        assert_eq!(h.params.protocols, Protocols::Udp);
    }

    /// Each error names the file and the line of the key at fault.
    #[test]
    fn errors_are_pinned_with_path_and_line() {
        let table: &[(&str, &str)] = &[
            (
                "sequence = \"1\"\n\nport = 7\n",
                "3: unknown field `port`, expected one of `description`, `host`, `sequence`, `delay_ms`, `udp`, `family`, `raw`, `open_port`, `one_time_sequences`, `hmac`",
            ),
            (
                "sequence = \"1\"\n[hmac]\ndoor = \"d\"\nsecret = \"x\"\n",
                "4: unknown field `secret`, expected one of `door`, `secret_file`, `secret_env`, `length`, `ports`, `protocols`, `step`, `flags`",
            ),
            (
                "host = \"a\"\nsequence = \n",
                "2: string values must be quoted, expected literal string",
            ),
            ("sequence = \"1\"\nsequence = \"2\"\n", "2: duplicate key"),
            (
                "",
                "1: no way to knock: a profile has exactly one of sequence, one_time_sequences and [hmac]",
            ),
            (
                "host = \"a\"\n",
                "1: no way to knock: a profile has exactly one of sequence, one_time_sequences and [hmac]",
            ),
            (
                "sequence = \"1\"\none_time_sequences = \"l\"\n",
                "2: one_time_sequences cannot be combined with sequence: a profile has exactly one of sequence, one_time_sequences and [hmac]",
            ),
            (
                "one_time_sequences = \"l\"\n[hmac]\ndoor = \"d\"\n",
                "2: [hmac] cannot be combined with one_time_sequences: a profile has exactly one of sequence, one_time_sequences and [hmac]",
            ),
            (
                "host = \"a\"\n\nsequence = \"7000,abc\"\n",
                "3: sequence: bad hit \"abc\": port \"abc\" is not a number (expected 1-65535)",
            ),
            (
                "sequence = \"7000,\"\n",
                "1: sequence: bad hit \"\": empty item (a stray or trailing comma?)",
            ),
            (
                "sequence = \"\"\n",
                "1: sequence: bad hit \"\": empty item (a stray or trailing comma?)",
            ),
            (
                "sequence = \"0\"\n",
                "1: sequence: bad hit \"0\": port 0 is out of range (expected 1-65535)",
            ),
            (
                "sequence = \"1:udp:syn\"\n",
                "1: sequence: bad hit \"1:udp:syn\": flags are only for tcp hits, not udp",
            ),
            (
                "sequence = 7000\n",
                "1: sequence: integer `7000` is the wrong type; write it as sequence = \"7000,8000:udp\" (in quotes)",
            ),
            ("sequence = \"1\"\nhost = \" \"\n", "2: host is empty"),
            (
                "sequence = \"1\"\ndelay_ms = -5\n",
                "2: delay_ms: integer `-5` is out of range; write it as delay_ms = 100 (milliseconds: a whole number, without quotes)",
            ),
            (
                "sequence = \"1\"\ndelay_ms = \"100\"\n",
                "2: delay_ms: string \"100\" is the wrong type; write it as delay_ms = 100 (milliseconds: a whole number, without quotes)",
            ),
            (
                "sequence = \"1\"\nudp = \"yes\"\n",
                "2: udp: string \"yes\" is the wrong type; write it as udp = true (true or false, without quotes)",
            ),
            (
                "sequence = \"1\"\nraw = 1\n",
                "2: raw: integer `1` is the wrong type; write it as raw = true (true or false, without quotes)",
            ),
            (
                "sequence = \"1\"\nopen_port = 0\n",
                "2: open_port 0 is not a port (expected 1-65535)",
            ),
            (
                "sequence = \"1\"\n\nopen_port = 70000\n",
                "3: open_port 70000 is not a port (expected 1-65535)",
            ),
            (
                "sequence = \"1\"\nopen_port = \"ssh\"\n",
                "2: invalid type: string \"ssh\", expected i64",
            ),
            (
                "sequence = \"1\"\nfamily = \"inet6\"\n",
                "2: unknown family \"inet6\" (expected any, ipv4 or ipv6)",
            ),
            (
                "sequence = \"1\"\ndescription = [1]\n",
                "2: description: sequence is the wrong type; write it as description = \"SSH at home\" (text, in quotes)",
            ),
            (
                "one_time_sequences = \" \"\n",
                "1: one_time_sequences is empty (expected a path)",
            ),
            (
                "one_time_sequences = \"l\"\nudp = true\n",
                "2: udp applies only to sequence (one-time lines and [hmac] give each hit's protocol)",
            ),
            ("[hmac]\nsecret_env = \"K\"\n", "1: missing field `door`"),
            ("[hmac]\ndoor = \"\"\n", "2: [hmac] door is empty"),
            (
                "[hmac]\ndoor = \"a\\u0000b\"\n",
                "2: [hmac] door may not contain NUL",
            ),
            (
                "[hmac]\ndoor = \"d\"\nsecret_env = \"K\"\nsecret_file = \"f\"\n",
                "4: [hmac] has both secret_file and secret_env; keep one",
            ),
            (
                "[hmac]\ndoor = \"d\"\nsecret_file = \"\"\n",
                "3: [hmac] secret_file is empty",
            ),
            (
                "[hmac]\ndoor = \"d\"\nsecret_env = \"A=B\"\n",
                "3: [hmac] secret_env \"A=B\" is not a variable name",
            ),
            (
                "[hmac]\ndoor = \"d\"\nsecret_env = \"\"\n",
                "3: [hmac] secret_env \"\" is not a variable name",
            ),
            (
                "[hmac]\ndoor = \"d\"\nlength = 0\n",
                "3: [hmac] length 0 is out of range (expected 1-32)",
            ),
            (
                "[hmac]\ndoor = \"d\"\nlength = 33\n",
                "3: [hmac] length 33 is out of range (expected 1-32)",
            ),
            (
                "[hmac]\ndoor = \"d\"\nlength = -1\n",
                "3: [hmac] length: integer `-1` is out of range; write it as length = 4 (a whole number, without quotes)",
            ),
            (
                "[hmac]\ndoor = \"d\"\nstep = 0\n",
                "3: [hmac] step must be at least 1 second",
            ),
            (
                "[hmac]\ndoor = \"d\"\nports = \"9000-8000\"\n",
                "3: [hmac] port range \"9000-8000\": low end is above high end",
            ),
            (
                "[hmac]\ndoor = \"d\"\nports = \"7000\"\n",
                "3: [hmac] port range \"7000\" is not LO-HI",
            ),
            (
                "[hmac]\ndoor = \"d\"\nports = \"0-10\"\n",
                "3: [hmac] port range \"0-10\": \"0\" is not a port (1-65535)",
            ),
            (
                "[hmac]\ndoor = \"d\"\nports = \"7000-7002\"\nlength = 5\n",
                "3: [hmac] port range 7000-7002 has 3 ports, fewer than the length 5",
            ),
            (
                "[hmac]\ndoor = \"d\"\nlength = 5\nports = \"7000-7002\"\n",
                "4: [hmac] port range 7000-7002 has 3 ports, fewer than the length 5",
            ),
            (
                "[hmac]\ndoor = \"d\"\nprotocols = \"icmp\"\n",
                "3: [hmac] unknown protocols \"icmp\" (expected tcp, udp or mixed)",
            ),
            (
                "[hmac]\ndoor = \"d\"\nflags = \"fin+foo\"\n",
                "3: [hmac] flags \"fin+foo\": unknown TCP flag \"foo\" (expected fin, syn, rst, psh, ack, urg, ece, cwr joined by +, or none)",
            ),
            (
                "[hmac]\ndoor = \"d\"\nflags = \"\"\n",
                "3: [hmac] flags \"\": no flags given (leave the setting out for plain SYNs)",
            ),
            (
                "[hmac]\ndoor = \"d\"\nflags = \"any\"\n",
                "3: [hmac] flags \"any\": \"any\" (flags ignored) is for a door's sequence, not for sending: give exact flags (fin+psh, or none), or leave them out for plain SYNs",
            ),
            (
                "[hmac]\ndoor = \"d\"\nflags = \"syn\"\nprotocols = \"udp\"\n",
                "3: [hmac] flags are set but protocols is udp",
            ),
            (
                "[hmac]\ndoor = \"d\"\nstep = 30.5\n",
                "3: [hmac] step: floating point `30.5` is the wrong type; write it as step = 30 (seconds: a whole number, without quotes)",
            ),
        ];
        for (text, want) in table {
            assert_eq!(err(text), format!("{PATH}:{want}"), "input {text:?}");
        }
    }

    #[test]
    fn crlf_files_count_lines_alike() {
        let e = err("host = \"a\"\r\n\r\nsequence = \"x\"\r\n");
        assert!(
            e.starts_with(&format!("{PATH}:3: sequence: bad hit \"x\"")),
            "{e}"
        );
    }
}
