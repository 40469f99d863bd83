//! The ruleset lines `--check` prints for the nftables doors: each table with the sets its
//! doors fill and an input chain that lets their knockers in, ready for `nft -f`.

use std::fmt::Write as _;

use knock_core::conf::{Config, NftFamily};

use super::{DoorSet, door_sets};

/// The port the accept rules name, which the administrator replaces with the guarded one.
pub(crate) const PLACEHOLDER_PORT: u16 = 22;

/// `nft -f` text for every table the doors of `config` name, or "" when no door has a set.
pub(crate) fn snippet(config: &Config) -> String {
    // The doors' sets by table, tables in config order.
    let mut tables: Vec<Vec<DoorSet<'_>>> = Vec::new();
    for ds in door_sets(config) {
        let set = &ds.directive.set;
        match tables.iter_mut().find(|t| {
            let first = &t[0].directive.set;
            (first.family, &first.table) == (set.family, &set.table)
        }) {
            Some(t) => t.push(ds),
            None => tables.push(vec![ds]),
        }
    }
    let mut out = String::new();
    for sets in &tables {
        let (family, table) = (sets[0].directive.set.family, &sets[0].directive.set.table);
        let _ = writeln!(out, "table {} {table} {{", family.name());
        let mut defined: Vec<&str> = Vec::new();
        for DoorSet {
            directive, ipv6, ..
        } in sets
        {
            let set = &directive.set;
            if defined.contains(&set.set.as_str()) {
                continue;
            }
            defined.push(&set.set);
            let _ = writeln!(out, "\tset {} {{", set.set);
            let _ = writeln!(
                out,
                "\t\ttype {}",
                if *ipv6 { "ipv6_addr" } else { "ipv4_addr" }
            );
            let _ = writeln!(out, "\t\tflags timeout\n\t}}");
        }
        if matches!(family, NftFamily::Ip | NftFamily::Ip6 | NftFamily::Inet) {
            let _ = writeln!(out, "\tchain input {{");
            let _ = writeln!(
                out,
                "\t\ttype filter hook input priority filter; policy drop;"
            );
            let _ = writeln!(out, "\t\tct state established,related accept");
            let _ = writeln!(out, "\t\tiif \"lo\" accept");
            if family != NftFamily::Ip {
                // Neighbour discovery: without it IPv6 stops working under policy drop.
                let _ = writeln!(out, "\t\tmeta l4proto ipv6-icmp accept");
            }
            let mut ruled: Vec<(&str, bool)> = Vec::new();
            for DoorSet {
                door,
                ipv6,
                directive,
            } in sets
            {
                let set = &directive.set;
                if ruled.contains(&(set.set.as_str(), *ipv6)) {
                    continue;
                }
                ruled.push((&set.set, *ipv6));
                let _ = writeln!(
                    out,
                    "\t\ttcp dport {PLACEHOLDER_PORT} {} saddr @{} accept comment \"door [{door}]\"",
                    if *ipv6 { "ip6" } else { "ip" },
                    set.set
                );
            }
            let _ = writeln!(out, "\t}}");
        } else {
            let _ = writeln!(
                out,
                "\t# and in your chain: ... ip saddr @SET accept (ip6 saddr for IPv6 sets)"
            );
        }
        let _ = writeln!(out, "}}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn one_table_per_family_and_name_with_its_sets_and_rules() {
        let config = knock_core::conf::parse(
            "[ssh]\nsequence = 1\nnft_set = inet filter knock_ssh\nnft_set_6 = inet filter knock_ssh6\n\
             [web]\nsequence = 2\nnft_set = inet filter knock_ssh\n\
             [old]\nsequence = 3\nnft_set = ip legacy k4\n\
             [none]\nsequence = 4\n",
            Path::new("k.conf"),
        )
        .unwrap();
        let want = "\
table inet filter {
\tset knock_ssh {
\t\ttype ipv4_addr
\t\tflags timeout
\t}
\tset knock_ssh6 {
\t\ttype ipv6_addr
\t\tflags timeout
\t}
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept
\t\tiif \"lo\" accept
\t\tmeta l4proto ipv6-icmp accept
\t\ttcp dport 22 ip saddr @knock_ssh accept comment \"door [ssh]\"
\t\ttcp dport 22 ip6 saddr @knock_ssh6 accept comment \"door [ssh]\"
\t}
}
table ip legacy {
\tset k4 {
\t\ttype ipv4_addr
\t\tflags timeout
\t}
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept
\t\tiif \"lo\" accept
\t\ttcp dport 22 ip saddr @k4 accept comment \"door [old]\"
\t}
}
";
        assert_eq!(snippet(&config), want);
        let none = knock_core::conf::parse("[d]\nsequence = 1\n", Path::new("k")).unwrap();
        assert_eq!(snippet(&none), "");
    }
}
