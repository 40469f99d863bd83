//! What the monitor admits from its worker: a completion only for the configuration it was
//! made under, from an address a knock can come from, of a family the server captures.
//! The door and its proof are then checked by the monitor's own engine
//! (`Engine::on_completed`). Pure: the monitor's loop calls it, tests and fuzzing too.

use std::fmt;
use std::net::IpAddr;

use knockd_engine::Proof;

/// A completion the monitor may hand its engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub door: String,
    pub src: IpAddr,
    pub proof: Proof,
}

/// Why a completion from the worker was refused before its door was looked at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Made under another configuration than the running one (a reload crossed it).
    Generation { got: u32, running: u32 },
    /// An IPv6 address while the server captures IPv4 only (`-4`).
    Family(IpAddr),
    /// An address no packet comes from: unspecified, multicast, or the IPv4 broadcast.
    Source(IpAddr),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Generation { got, running } => write!(
                f,
                "made under configuration {got}, the running one is {running}"
            ),
            Refusal::Family(a) => write!(f, "{a} is IPv6 and the server captures IPv4 only"),
            Refusal::Source(a) => write!(f, "{a} is not an address a knock comes from"),
        }
    }
}

/// Admits a completion of configuration `generation` by `src`, or says why not.
pub fn completion(
    generation: u32,
    running: u32,
    only_ipv4: bool,
    door: &str,
    src: IpAddr,
    proof: Proof,
) -> Result<Claim, Refusal> {
    if generation != running {
        return Err(Refusal::Generation {
            got: generation,
            running,
        });
    }
    if only_ipv4 && src.is_ipv6() {
        return Err(Refusal::Family(src));
    }
    let no_source = match src {
        IpAddr::V4(a) => a.is_unspecified() || a.is_multicast() || a.is_broadcast(),
        IpAddr::V6(a) => a.is_unspecified() || a.is_multicast(),
    };
    if no_source {
        return Err(Refusal::Source(src));
    }
    Ok(Claim {
        door: door.to_string(),
        src,
        proof,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admit(generation: u32, only_ipv4: bool, src: &str) -> Result<Claim, String> {
        completion(
            generation,
            3,
            only_ipv4,
            "ssh",
            src.parse().unwrap(),
            Proof::Fixed,
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn a_completion_of_the_running_configuration_from_a_real_source_is_admitted() {
        for src in ["192.0.2.10", "2001:db8::10", "10.0.0.1", "::ffff:192.0.2.1"] {
            let claim = admit(3, false, src).unwrap();
            assert_eq!(claim.src, src.parse::<IpAddr>().unwrap());
            assert_eq!(claim.door, "ssh");
        }
        assert!(admit(3, true, "192.0.2.10").is_ok());
    }

    #[test]
    fn refusals_are_pinned() {
        let cases = [
            (
                2,
                false,
                "192.0.2.10",
                "made under configuration 2, the running one is 3",
            ),
            (
                3,
                true,
                "2001:db8::10",
                "2001:db8::10 is IPv6 and the server captures IPv4 only",
            ),
            (
                3,
                false,
                "0.0.0.0",
                "0.0.0.0 is not an address a knock comes from",
            ),
            (3, false, "::", ":: is not an address a knock comes from"),
            (
                3,
                false,
                "224.0.0.1",
                "224.0.0.1 is not an address a knock comes from",
            ),
            (
                3,
                false,
                "ff02::1",
                "ff02::1 is not an address a knock comes from",
            ),
            (
                3,
                false,
                "255.255.255.255",
                "255.255.255.255 is not an address a knock comes from",
            ),
        ];
        for (generation, only_ipv4, src, message) in cases {
            assert_eq!(admit(generation, only_ipv4, src), Err(message.to_string()));
        }
    }
}
