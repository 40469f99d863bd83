//! Turning HOST into the one address every hit of a run goes to, with its IPv6 zone.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use knock_core::profile::Family;
use knock_core::send::Dest;

fn admits(family: Family, addr: &IpAddr) -> bool {
    match family {
        Family::Any => true,
        Family::Ipv4 => addr.is_ipv4(),
        Family::Ipv6 => addr.is_ipv6(),
    }
}

/// The family as an error message names it.
fn label(family: &Family) -> &'static str {
    match family {
        Family::Any => "IP",
        Family::Ipv4 => "IPv4",
        Family::Ipv6 => "IPv6",
    }
}

/// A HOST that gave no usable address.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResolveError {
    /// HOST cannot name anything: a usage error, found before any lookup.
    #[error("{0}")]
    NotAHost(String),
    #[error("resolve {host}")]
    Lookup {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("resolve {host}: no {} address", label(family))]
    NoAddress { host: String, family: Family },
}

/// Where the hits go: the address with its scope, and the zone as HOST wrote it
/// (`fe80::1%eth0`), so every message shows the interface by the name the user gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Address {
    pub dest: Dest,
    /// The text after `%` in HOST; `None` when HOST had none (a scope found by the
    /// resolver for a name is then shown as its number).
    pub zone: Option<String>,
}

impl Address {
    /// `[2001:db8::2]:7000`, `[fe80::1%eth0]:7000`, `192.0.2.2:7000`.
    pub(crate) fn with_port(&self, port: u16) -> String {
        match self.dest.ip {
            IpAddr::V4(ip) => format!("{ip}:{port}"),
            IpAddr::V6(_) => format!("[{self}]:{port}"),
        }
    }
}

impl From<IpAddr> for Address {
    fn from(ip: IpAddr) -> Address {
        Address {
            dest: Dest::from(ip),
            zone: None,
        }
    }
}

/// `192.0.2.2`, `2001:db8::2`, `fe80::1%eth0` (or `fe80::1%2` for a scope without a
/// written zone).
impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.dest.ip)?;
        match (&self.zone, self.dest.scope_id) {
            (Some(zone), _) => write!(f, "%{zone}"),
            (None, 0) => Ok(()),
            (None, scope) => write!(f, "%{scope}"),
        }
    }
}

/// Why HOST cannot name a host at all, found without a lookup: an empty one, or one that
/// is written like an address but is not one (`192.0.2.999`, `2001:db8::zz`), which the
/// resolver would otherwise report as a name it could not find.
pub(crate) fn not_a_host(host: &str) -> Option<String> {
    if host.trim().is_empty() {
        return Some("HOST is empty".into());
    }
    let bare = unbracket(host);
    let addr = bare.split_once('%').map_or(bare, |(a, _)| a);
    let ipv4_like = addr.bytes().all(|b| b.is_ascii_digit() || b == b'.') && addr.contains('.');
    if ipv4_like && addr.parse::<std::net::Ipv4Addr>().is_err() {
        return Some(format!(
            "{host} is not an IPv4 address (four numbers 0-255 joined by dots), nor a host name"
        ));
    }
    if addr.contains(':') && addr.parse::<std::net::Ipv6Addr>().is_err() {
        return Some(format!("{host} is not an IPv6 address, nor a host name"));
    }
    None
}

/// `[2001:db8::2]` as `2001:db8::2`.
fn unbracket(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Resolves `host` once (an address literal, or a name through the system resolver) and
/// picks the address for `family`. `[2001:db8::2]` is accepted as well as `2001:db8::2`,
/// and a zone (`fe80::1%eth0`) is kept as the address's scope.
pub(crate) fn resolve(host: &str, family: Family) -> Result<Address, ResolveError> {
    if let Some(why) = not_a_host(host) {
        return Err(ResolveError::NotAHost(why));
    }
    let name = unbracket(host);
    let answers = (name, 0)
        .to_socket_addrs()
        .map_err(|source| ResolveError::Lookup {
            host: host.to_string(),
            source,
        })?;
    let found = pick(answers, family).ok_or_else(|| ResolveError::NoAddress {
        host: host.to_string(),
        family,
    })?;
    let zone = match found {
        SocketAddr::V6(a) if a.scope_id() != 0 => name.split_once('%').map(|(_, z)| z.to_string()),
        _ => None,
    };
    Ok(Address {
        dest: Dest::from(found),
        zone,
    })
}

/// The first answer of the wanted family.
pub(crate) fn pick(
    answers: impl IntoIterator<Item = SocketAddr>,
    family: Family,
) -> Option<SocketAddr> {
    answers.into_iter().find(|a| admits(family, &a.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        SocketAddr::new(s.parse().unwrap(), 0)
    }

    #[test]
    fn pick_takes_the_first_answer_of_the_family() {
        let answers = [sa("2001:db8::2"), sa("192.0.2.2"), sa("192.0.2.3")];
        assert_eq!(pick(answers, Family::Any), Some(sa("2001:db8::2")));
        assert_eq!(pick(answers, Family::Ipv4), Some(sa("192.0.2.2")));
        assert_eq!(pick(answers, Family::Ipv6), Some(sa("2001:db8::2")));
        let v4_only = [sa("192.0.2.2")];
        assert_eq!(pick(v4_only, Family::Ipv6), None);
        assert_eq!(pick([], Family::Any), None);
    }

    #[test]
    fn literals_resolve_without_a_lookup() {
        let table: &[(&str, Family, Result<&str, &str>)] = &[
            ("192.0.2.2", Family::Any, Ok("192.0.2.2")),
            ("192.0.2.2", Family::Ipv4, Ok("192.0.2.2")),
            (
                "192.0.2.2",
                Family::Ipv6,
                Err("resolve 192.0.2.2: no IPv6 address"),
            ),
            ("2001:db8::2", Family::Any, Ok("2001:db8::2")),
            ("2001:db8::2", Family::Ipv6, Ok("2001:db8::2")),
            ("[2001:db8::2]", Family::Any, Ok("2001:db8::2")),
            (
                "2001:db8::2",
                Family::Ipv4,
                Err("resolve 2001:db8::2: no IPv4 address"),
            ),
            (
                "[2001:db8::2]",
                Family::Ipv4,
                Err("resolve [2001:db8::2]: no IPv4 address"),
            ),
        ];
        for (host, family, want) in table {
            let got = resolve(host, *family)
                .map(|a| a.to_string())
                .map_err(|e| e.to_string());
            assert_eq!(
                got,
                want.map(str::to_string).map_err(str::to_string),
                "{host} {family:?}"
            );
        }
    }

    #[test]
    fn what_is_no_host_is_said_before_any_lookup() {
        let table: &[(&str, &str)] = &[
            ("", "HOST is empty"),
            ("  ", "HOST is empty"),
            (
                "192.0.2.999",
                "192.0.2.999 is not an IPv4 address (four numbers 0-255 joined by dots), \
                 nor a host name",
            ),
            (
                "10.1",
                "10.1 is not an IPv4 address (four numbers 0-255 joined by dots), nor a host \
                 name",
            ),
            (
                "2001:db8::zz",
                "2001:db8::zz is not an IPv6 address, nor a host name",
            ),
            (
                "[2001:db8:::2]",
                "[2001:db8:::2] is not an IPv6 address, nor a host name",
            ),
        ];
        for (host, want) in table {
            let err = resolve(host, Family::Any).unwrap_err();
            assert!(matches!(err, ResolveError::NotAHost(_)), "{host}");
            assert_eq!(err.to_string(), *want);
        }
        for host in [
            "192.0.2.2",
            "h.example",
            "2001:db8::2",
            "fe80::1%eth0",
            "a1.2.3",
        ] {
            assert_eq!(not_a_host(host), None, "{host}");
        }
    }

    #[test]
    fn a_zone_is_kept_as_the_scope_and_shown_as_written() {
        // The loopback interface exists everywhere Linux runs; its index is the scope.
        #[cfg(target_os = "linux")]
        {
            let a = resolve("fe80::1%lo", Family::Any).unwrap();
            assert_eq!(a.dest.ip, "fe80::1".parse::<IpAddr>().unwrap());
            assert_ne!(a.dest.scope_id, 0);
            assert_eq!(a.zone.as_deref(), Some("lo"));
            assert_eq!(a.to_string(), "fe80::1%lo");
            assert_eq!(a.with_port(7000), "[fe80::1%lo]:7000");
            let a = resolve("[fe80::1%lo]", Family::Ipv6).unwrap();
            assert_eq!(a.zone.as_deref(), Some("lo"));
        }
        // A numeric zone needs no interface to exist.
        let a = resolve("fe80::1%7", Family::Any).unwrap();
        assert_eq!(a.dest.scope_id, 7);
        assert_eq!(a.with_port(1), "[fe80::1%7]:1");
        let shown = |ip: &str, scope, zone: Option<&str>| {
            Address {
                dest: Dest {
                    ip: ip.parse().unwrap(),
                    scope_id: scope,
                },
                zone: zone.map(str::to_string),
            }
            .with_port(9)
        };
        assert_eq!(shown("fe80::1", 3, None), "[fe80::1%3]:9");
        assert_eq!(shown("2001:db8::2", 0, None), "[2001:db8::2]:9");
        assert_eq!(shown("192.0.2.2", 0, None), "192.0.2.2:9");
    }
}
