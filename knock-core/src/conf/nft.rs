//! `Nft_Set` and `Nft_Set_6`: the nftables set a door adds its knockers to (a knockd-lite
//! extension of knockd.conf), as `FAMILY TABLE SET`.

use std::fmt;

/// An nftables address family, as `nft` spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NftFamily {
    Ip,
    Ip6,
    Inet,
    Arp,
    Bridge,
    Netdev,
}

impl NftFamily {
    const ALL: [(&'static str, NftFamily); 6] = [
        ("ip", NftFamily::Ip),
        ("ip6", NftFamily::Ip6),
        ("inet", NftFamily::Inet),
        ("arp", NftFamily::Arp),
        ("bridge", NftFamily::Bridge),
        ("netdev", NftFamily::Netdev),
    ];

    /// `inet`, `ip`, ... as in `nft list ruleset`.
    pub fn name(self) -> &'static str {
        NftFamily::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("?", |(n, _)| n)
    }

    fn from_name(name: &str) -> Option<NftFamily> {
        NftFamily::ALL
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, f)| f)
    }
}

/// A set in the kernel's nftables: family, table and set name. `Display` writes it as the
/// directive does: `inet filter knock_ssh`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NftSet {
    pub family: NftFamily,
    pub table: String,
    pub set: String,
}

impl fmt::Display for NftSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.family.name(), self.table, self.set)
    }
}

/// The kernel's limit on table and set names, without the terminating NUL.
pub const MAX_NAME_LEN: usize = 255;

/// Parses `FAMILY TABLE SET`.
///
/// Names are restricted to nft's own identifier syntax (a letter or `_`, then letters,
/// digits, `_`, `-`, `.` or `/`), so every name prints the same in logs, in `--check`'s
/// ruleset lines and in `nft list ruleset`, and needs no quoting.
pub(crate) fn parse_set(value: &str) -> Result<NftSet, String> {
    const HINT: &str = "expected FAMILY TABLE SET, e.g. inet filter knock_ssh";
    let words: Vec<&str> = value.split_whitespace().collect();
    let [family, table, set] = words[..] else {
        return Err(format!(
            "{} word{} ({HINT})",
            words.len(),
            if words.len() == 1 { "" } else { "s" }
        ));
    };
    let family = NftFamily::from_name(family).ok_or_else(|| {
        format!("unknown family {family:?} (expected ip, ip6, inet, arp, bridge or netdev)")
    })?;
    for (what, name) in [("table", table), ("set", set)] {
        check_name(what, name)?;
    }
    Ok(NftSet {
        family,
        table: table.to_string(),
        set: set.to_string(),
    })
}

fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "{what} name is {} bytes long (the kernel takes at most {MAX_NAME_LEN})",
            name.len()
        ));
    }
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c)) {
        return Err(format!(
            "{what} name {name:?}: use a letter or _ first, then letters, digits, _ - . or /"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_parse_and_print() {
        let s = parse_set(" inet  filter\tknock_ssh ").unwrap();
        assert_eq!(
            s,
            NftSet {
                family: NftFamily::Inet,
                table: "filter".into(),
                set: "knock_ssh".into()
            }
        );
        assert_eq!(s.to_string(), "inet filter knock_ssh");
        let s = parse_set("IP6 fw knock-v6.ssh").unwrap();
        assert_eq!(s.to_string(), "ip6 fw knock-v6.ssh");
        for (f, want) in NftFamily::ALL {
            assert_eq!(parse_set(&format!("{f} t s")).unwrap().family, want);
            assert_eq!(want.name(), f);
        }
    }

    #[test]
    fn bad_sets_say_why() {
        for (value, want) in [
            (
                "inet filter",
                "2 words (expected FAMILY TABLE SET, e.g. inet filter knock_ssh)",
            ),
            (
                "knock_ssh",
                "1 word (expected FAMILY TABLE SET, e.g. inet filter knock_ssh)",
            ),
            (
                "inet filter knock ssh",
                "4 words (expected FAMILY TABLE SET, e.g. inet filter knock_ssh)",
            ),
            (
                "ipv4 filter s",
                "unknown family \"ipv4\" (expected ip, ip6, inet, arp, bridge or netdev)",
            ),
            (
                "inet 1filter s",
                "table name \"1filter\": use a letter or _ first, then letters, digits, _ - . or /",
            ),
            (
                "inet filter s\"x",
                "set name \"s\\\"x\": use a letter or _ first, then letters, digits, _ - . or /",
            ),
        ] {
            assert_eq!(parse_set(value).unwrap_err(), want, "{value}");
        }
        let long = "s".repeat(256);
        assert_eq!(
            parse_set(&format!("inet t {long}")).unwrap_err(),
            "set name is 256 bytes long (the kernel takes at most 255)"
        );
        assert!(parse_set(&format!("inet t {}", &long[..255])).is_ok());
    }
}
