//! Knock profiles: TOML files that save a host and how to knock on it.
//!
//! A profile has exactly one way to knock (its [`Kind`]): a fixed `sequence`, a
//! `one_time_sequences` list, or an `[hmac]` table for knock-hmac-v1. The format is
//! described in `docs/profiles.md`.
//!
//! * [`parse`](fn@parse) / [`parse_file`] read a profile, with every error as `path:line: message`;
//! * [`Profile::to_toml`] writes one back;
//! * [`Profile::show`] describes one without ever printing a secret;
//! * [`Overrides`] applies command-line options over a profile's values;
//! * [`store`] finds, lists, loads, saves and removes named profiles.
//!
//! ```
//! use knock_core::hit::Proto;
//! use knock_core::profile::{parse, Kind, Knock, Overrides};
//! let p = parse("ssh.toml".as_ref(), "host = \"192.0.2.2\"\nsequence = \"7000,8000:udp\"\n").unwrap();
//! assert_eq!(p.kind(), Kind::Fixed);
//! let settings = p.settings(&Overrides { udp: Some(true), ..Overrides::default() }).unwrap();
//! let Knock::Fixed(seq) = &p.knock else { unreachable!() };
//! assert_eq!(seq.hits(settings.default_proto())[0].proto, Proto::Udp);
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::hit::{Hit, HitError, Proto, parse_sequence};
use crate::hmac::HmacParams;
use crate::secret::source::SecretSource;

mod overrides;
mod parse;
mod show;
pub mod store;
mod write;

pub use overrides::{DEFAULT_DELAY_MS, NoHost, Overrides, Settings};
pub use parse::{ProfileError, parse, parse_file};
pub use write::ToTomlError;

/// A parsed profile. Optional values are `None` when the file leaves them out, so that
/// writing the profile back keeps it as it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub description: Option<String>,
    pub host: Option<String>,
    pub delay_ms: Option<u64>,
    /// Bare ports in `sequence` are udp (knock's `-u`).
    pub udp: Option<bool>,
    pub family: Option<Family>,
    /// Send plain TCP hits over a raw socket too (knock's `--raw`).
    pub raw: Option<bool>,
    /// The TCP port that accepts once the door is open: knocking waits for it (knock's
    /// `--wait`).
    pub open_port: Option<u16>,
    pub knock: Knock,
}

impl Profile {
    /// A profile with only a way to knock; every other value unset.
    pub fn new(knock: Knock) -> Profile {
        Profile {
            description: None,
            host: None,
            delay_ms: None,
            udp: None,
            family: None,
            raw: None,
            open_port: None,
            knock,
        }
    }

    pub fn kind(&self) -> Kind {
        match self.knock {
            Knock::Fixed(_) => Kind::Fixed,
            Knock::OneTime(_) => Kind::OneTime,
            Knock::Hmac(_) => Kind::Hmac,
        }
    }
}

/// How a profile knocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Knock {
    /// The same hits every time (the `sequence` key).
    Fixed(FixedSequence),
    /// The first unused line of a one-time list, which is then marked used.
    OneTime(OneTime),
    /// Hits derived from a shared secret and the clock (knock-hmac-v1).
    Hmac(HmacKnock),
}

/// The three kinds of profile, as `knock profile list` shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Shown as `sequence`, the key that makes one.
    Fixed,
    OneTime,
    Hmac,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Fixed => "sequence",
            Kind::OneTime => "one-time",
            Kind::Hmac => "hmac",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fixed sequence, kept as written. Bare ports take the protocol chosen when knocking
/// (udp under `udp = true` or `-u`), so both readings are parsed up front.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixedSequence {
    text: String,
    tcp: Vec<Hit>,
    udp: Vec<Hit>,
}

impl FixedSequence {
    /// Parses a sequence in the hit grammar (`7000,8000:udp,9000:tcp:syn`).
    pub fn parse(text: &str) -> Result<FixedSequence, HitError> {
        let text = text.trim();
        Ok(FixedSequence {
            text: text.to_string(),
            tcp: parse_sequence(text, Proto::Tcp)?,
            udp: parse_sequence(text, Proto::Udp)?,
        })
    }

    /// The sequence as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The hits, with bare ports given the protocol `default`.
    pub fn hits(&self, default: Proto) -> &[Hit] {
        match default {
            Proto::Tcp => &self.tcp,
            Proto::Udp => &self.udp,
        }
    }
}

impl fmt::Display for FixedSequence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A one-time list: the path as written in the profile, and where it points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneTime {
    pub path: PathBuf,
    /// `path` joined to the profile's directory when relative.
    pub resolved: PathBuf,
}

impl OneTime {
    /// `path` as written, resolved against `base_dir` (the profile's directory).
    pub fn new(path: impl Into<PathBuf>, base_dir: &Path) -> OneTime {
        let path = path.into();
        OneTime {
            resolved: resolve(&path, base_dir),
            path,
        }
    }
}

/// The `[hmac]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HmacKnock {
    pub params: HmacParams,
    pub secret: SecretRef,
}

/// Where an HMAC profile's secret comes from. The secret itself is never in a profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretRef {
    /// `secret_file`: the path as written, and resolved against the profile's directory.
    File { path: PathBuf, resolved: PathBuf },
    /// `secret_env`: the name of the variable.
    Env(String),
    /// Neither is set: ask on the terminal.
    Prompt,
}

impl SecretRef {
    /// A `secret_file` as written, resolved against `base_dir`.
    pub fn file(path: impl Into<PathBuf>, base_dir: &Path) -> SecretRef {
        let path = path.into();
        SecretRef::File {
            resolved: resolve(&path, base_dir),
            path,
        }
    }

    /// What to hand to [`crate::secret::source::load`].
    pub fn source(&self) -> SecretSource {
        match self {
            SecretRef::File { resolved, .. } => SecretSource::File(resolved.clone()),
            SecretRef::Env(name) => SecretSource::Env(name.clone()),
            SecretRef::Prompt => SecretSource::Prompt,
        }
    }
}

/// Which address family to use for the host (`-4` / `-6`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Family {
    /// The resolver's first answer, as knock(1) does.
    #[default]
    Any,
    Ipv4,
    Ipv6,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Any => "any",
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Family {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "any" => Ok(Family::Any),
            "ipv4" => Ok(Family::Ipv4),
            "ipv6" => Ok(Family::Ipv6),
            _ => Err(format!("unknown family {s:?} (expected any, ipv4 or ipv6)")),
        }
    }
}

/// The directory relative paths in a profile are resolved against.
fn base_dir(profile_path: &Path) -> &Path {
    match profile_path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

fn resolve(path: &Path, base_dir: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_bare_ports_follow_the_default() {
        let s = FixedSequence::parse(" 7000,8000:udp,9000:tcp ").unwrap();
        assert_eq!(s.as_str(), "7000,8000:udp,9000:tcp");
        assert_eq!(
            s.hits(Proto::Tcp),
            [Hit::tcp(7000), Hit::udp(8000), Hit::tcp(9000)]
        );
        assert_eq!(
            s.hits(Proto::Udp),
            [Hit::udp(7000), Hit::udp(8000), Hit::tcp(9000)]
        );
    }

    #[test]
    fn family_names() {
        for f in [Family::Any, Family::Ipv4, Family::Ipv6] {
            assert_eq!(f.to_string().parse(), Ok(f));
        }
        assert_eq!("IPv6".parse(), Ok(Family::Ipv6));
        assert_eq!(
            "inet".parse::<Family>(),
            Err(r#"unknown family "inet" (expected any, ipv4 or ipv6)"#.to_string())
        );
    }

    #[test]
    fn relative_paths_resolve_against_the_profile_dir() {
        let base = base_dir(Path::new("/etc/knock/profiles/a.toml"));
        assert_eq!(base, Path::new("/etc/knock/profiles"));
        assert_eq!(base_dir(Path::new("a.toml")), Path::new("."));
        let otp = OneTime::new("lists/a.otp", base);
        assert_eq!(otp.resolved, Path::new("/etc/knock/profiles/lists/a.otp"));
        assert_eq!(otp.path, Path::new("lists/a.otp"));
        let abs = SecretRef::file("/root/k.secret", base);
        assert_eq!(abs.source(), SecretSource::File("/root/k.secret".into()));
    }
}
