//! Turning HOST into the one address every hit of a run goes to.

use std::io;
use std::net::{IpAddr, ToSocketAddrs};

use knock_core::profile::Family;

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
    #[error("resolve {host}")]
    Lookup {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("resolve {host}: no {} address", label(family))]
    NoAddress { host: String, family: Family },
}

/// Resolves `host` once (an address literal, or a name through the system resolver) and
/// picks the address for `family`. `[2001:db8::2]` is accepted as well as `2001:db8::2`.
pub(crate) fn resolve(host: &str, family: Family) -> Result<IpAddr, ResolveError> {
    let name = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let answers = (name, 0)
        .to_socket_addrs()
        .map_err(|source| ResolveError::Lookup {
            host: host.to_string(),
            source,
        })?;
    pick(answers.map(|a| a.ip()), family).ok_or_else(|| ResolveError::NoAddress {
        host: host.to_string(),
        family,
    })
}

/// The first answer of the wanted family.
pub(crate) fn pick(answers: impl IntoIterator<Item = IpAddr>, family: Family) -> Option<IpAddr> {
    answers.into_iter().find(|a| admits(family, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn pick_takes_the_first_answer_of_the_family() {
        let answers = [ip("2001:db8::2"), ip("192.0.2.2"), ip("192.0.2.3")];
        assert_eq!(pick(answers, Family::Any), Some(ip("2001:db8::2")));
        assert_eq!(pick(answers, Family::Ipv4), Some(ip("192.0.2.2")));
        assert_eq!(pick(answers, Family::Ipv6), Some(ip("2001:db8::2")));
        let v4_only = [ip("192.0.2.2")];
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
            let got = resolve(host, *family).map_err(|e| e.to_string());
            assert_eq!(
                got,
                want.map(ip).map_err(str::to_string),
                "{host} {family:?}"
            );
        }
    }
}
