//! Network interfaces: index, link type and every address of an interface, the
//! `--list-interfaces` text, and change detection by cheap polling.
//!
//! Polling `getifaddrs` once a second from the main loop costs a few tens of microseconds
//! and needs no extra socket or thread, so it was chosen over an rtnetlink subscription.

use std::fmt::Write as _;
use std::io;
use std::net::IpAddr;

use knock_core::wire::LinkType;
use knock_core::wire::field::arphrd;

use crate::sys::{self, IfAddr};

/// One interface as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub index: u32,
    /// The `ARPHRD_*` hardware type.
    pub hatype: u16,
    /// `IFF_*` flags.
    pub flags: u32,
    /// IPv4 then IPv6 addresses, each group in the kernel's order.
    pub addrs: Vec<IpAddr>,
}

impl Interface {
    /// How frames on this interface start, if we can capture on it.
    pub fn link(&self) -> Option<LinkType> {
        LinkType::from_arphrd(self.hatype)
    }

    /// A word for the hardware type, for listings and log lines.
    fn link_name(&self) -> String {
        match self.hatype {
            arphrd::ETHER => "ethernet".into(),
            arphrd::LOOPBACK => "loopback".into(),
            arphrd::PPP => "ppp".into(),
            arphrd::RAWIP => "raw-ip".into(),
            arphrd::TUNNEL => "ipip".into(),
            arphrd::TUNNEL6 => "ip6tnl".into(),
            arphrd::SIT => "sit".into(),
            arphrd::NONE => "none (raw ip)".into(),
            other => format!("unsupported ({other})"),
        }
    }

    pub fn is_up(&self) -> bool {
        self.flags & libc::IFF_UP as u32 != 0
    }
}

/// Every interface in this network namespace, by index.
pub fn interfaces() -> io::Result<Vec<Interface>> {
    let mut out: Vec<Interface> = Vec::new();
    let mut addrs: Vec<(String, IpAddr)> = Vec::new();
    // Links without a hardware address (tun, WireGuard) come without an AF_PACKET entry.
    let mut bare: Vec<(String, u32)> = Vec::new();
    for entry in sys::if_entries()? {
        match entry.addr {
            IfAddr::Link { index, hatype } => out.push(Interface {
                name: entry.name,
                index,
                hatype,
                flags: entry.flags,
                addrs: Vec::new(),
            }),
            IfAddr::Ip(ip) => addrs.push((entry.name, ip)),
            IfAddr::None => bare.push((entry.name, entry.flags)),
            IfAddr::Other => {}
        }
    }
    for (name, flags) in bare {
        if out.iter().any(|i| i.name == name) {
            continue;
        }
        if let Some((index, hatype)) = sys::index_and_hatype(&name) {
            out.push(Interface {
                name,
                index,
                hatype,
                flags,
                addrs: Vec::new(),
            });
        }
    }

    // IPv4 aliases come under their label ("eth0:1"); they belong to the base interface.
    addrs.sort_by_key(|(_, ip)| ip.is_ipv6());
    for (name, ip) in addrs {
        let base = name.split(':').next().unwrap_or(&name);
        if let Some(iface) = out.iter_mut().find(|i| i.name == name || i.name == base) {
            iface.addrs.push(ip);
        }
    }
    out.sort_by_key(|i| i.index);
    Ok(out)
}

/// The interface with this name, if it exists.
pub fn find(name: &str) -> io::Result<Option<Interface>> {
    Ok(interfaces()?.into_iter().find(|i| i.name == name))
}

/// The `--list-interfaces` text: one line per interface with its index, link type and
/// state, then one indented line per address.
pub fn list_text(ifaces: &[Interface]) -> String {
    let mut s = String::new();
    for i in ifaces {
        let state = if i.is_up() { "up" } else { "down" };
        let _ = writeln!(s, "{}: {} ({}, {state})", i.index, i.name, i.link_name());
        for a in &i.addrs {
            let _ = writeln!(s, "    {a}");
        }
    }
    s
}

/// A change to the watched interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The interface exists again (or for the first time), with this index.
    Appeared {
        index: u32,
    },
    Vanished,
    /// Deleted and re-created between two polls.
    IndexChanged {
        old: u32,
        new: u32,
    },
    WentDown,
    WentUp,
    AddressesChanged {
        added: Vec<IpAddr>,
        removed: Vec<IpAddr>,
    },
}

impl Change {
    /// A log line body for the change, e.g. `eth0: address 192.0.2.7 added`.
    pub(crate) fn describe(&self, ifname: &str) -> String {
        let list = |v: &[IpAddr]| {
            v.iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Change::Appeared { index } => format!("{ifname}: interface present (index {index})"),
            Change::Vanished => format!("{ifname}: interface gone"),
            Change::IndexChanged { old, new } => {
                format!("{ifname}: interface re-created (index {old} -> {new})")
            }
            Change::WentDown => format!("{ifname}: interface down"),
            Change::WentUp => format!("{ifname}: interface up"),
            Change::AddressesChanged { added, removed } => {
                let mut parts = Vec::new();
                if !added.is_empty() {
                    parts.push(format!("added {}", list(added)));
                }
                if !removed.is_empty() {
                    parts.push(format!("removed {}", list(removed)));
                }
                format!("{ifname}: addresses {}", parts.join("; "))
            }
        }
    }
}

/// Follows one interface by name between polls.
#[derive(Clone, Debug)]
pub struct Watch {
    name: String,
    last: Option<Interface>,
}

impl Watch {
    /// Starts watching with what is known now (`None`: the interface does not exist yet).
    pub fn new(name: &str, current: Option<Interface>) -> Watch {
        Watch {
            name: name.to_string(),
            last: current,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The interface as last seen.
    #[cfg(test)]
    fn current(&self) -> Option<&Interface> {
        self.last.as_ref()
    }

    /// Its addresses as last seen (empty while it is gone).
    pub fn addrs(&self) -> &[IpAddr] {
        self.last.as_ref().map_or(&[], |i| &i.addrs)
    }

    /// Looks the interface up again and reports what changed.
    pub fn poll(&mut self) -> io::Result<Vec<Change>> {
        let now = find(&self.name)?;
        Ok(self.update(now))
    }

    /// Records a new observation and reports what changed since the last one.
    pub(crate) fn update(&mut self, now: Option<Interface>) -> Vec<Change> {
        let changes = diff(self.last.as_ref(), now.as_ref());
        self.last = now;
        changes
    }
}

/// What changed between two observations of one interface.
fn diff(old: Option<&Interface>, new: Option<&Interface>) -> Vec<Change> {
    let mut out = Vec::new();
    match (old, new) {
        (None, None) => {}
        (Some(_), None) => out.push(Change::Vanished),
        (None, Some(n)) => {
            out.push(Change::Appeared { index: n.index });
            if !n.addrs.is_empty() {
                out.push(Change::AddressesChanged {
                    added: n.addrs.clone(),
                    removed: Vec::new(),
                });
            }
        }
        (Some(o), Some(n)) => {
            if o.index != n.index {
                out.push(Change::IndexChanged {
                    old: o.index,
                    new: n.index,
                });
            }
            match (o.is_up(), n.is_up()) {
                (true, false) => out.push(Change::WentDown),
                (false, true) => out.push(Change::WentUp),
                _ => {}
            }
            let added: Vec<IpAddr> = n
                .addrs
                .iter()
                .filter(|a| !o.addrs.contains(a))
                .copied()
                .collect();
            let removed: Vec<IpAddr> = o
                .addrs
                .iter()
                .filter(|a| !n.addrs.contains(a))
                .copied()
                .collect();
            if !added.is_empty() || !removed.is_empty() {
                out.push(Change::AddressesChanged { added, removed });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(index: u32, up: bool, addrs: &[&str]) -> Interface {
        Interface {
            name: "eth0".into(),
            index,
            hatype: 1,
            flags: if up { libc::IFF_UP as u32 } else { 0 },
            addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn loopback_is_listed_with_its_addresses() {
        let all = interfaces().unwrap();
        let lo = all.iter().find(|i| i.name == "lo").expect("lo exists");
        assert_eq!(lo.hatype, 772);
        assert_eq!(lo.link(), Some(LinkType::Ethernet));
        assert!(lo.index >= 1);
        let text = list_text(std::slice::from_ref(lo));
        assert!(
            text.starts_with(&format!("{}: lo (loopback, ", lo.index)),
            "{text}"
        );
        if lo.is_up() {
            assert!(lo.addrs.contains(&"127.0.0.1".parse().unwrap()), "{lo:?}");
            assert!(text.contains("\n    127.0.0.1\n"), "{text}");
        }
        assert_eq!(find("lo").unwrap().as_ref(), Some(lo));
        assert_eq!(find("no-such-if0").unwrap(), None);
    }

    #[test]
    fn list_text_format() {
        let i = iface(2, true, &["192.0.2.2", "2001:db8::2"]);
        assert_eq!(
            list_text(&[i]),
            "2: eth0 (ethernet, up)\n    192.0.2.2\n    2001:db8::2\n"
        );
        let mut tun = iface(5, false, &[]);
        tun.name = "wg0".into();
        tun.hatype = 0xfffe;
        assert_eq!(list_text(&[tun]), "5: wg0 (none (raw ip), down)\n");
    }

    #[test]
    fn diff_reports_each_kind_of_change() {
        let a = iface(2, true, &["192.0.2.2"]);
        assert_eq!(diff(Some(&a), Some(&a)), vec![]);
        assert_eq!(diff(Some(&a), None), vec![Change::Vanished]);
        assert_eq!(
            diff(None, Some(&a)),
            vec![
                Change::Appeared { index: 2 },
                Change::AddressesChanged {
                    added: vec!["192.0.2.2".parse().unwrap()],
                    removed: vec![]
                }
            ]
        );
        let moved = iface(7, false, &["192.0.2.9", "2001:db8::2"]);
        assert_eq!(
            diff(Some(&a), Some(&moved)),
            vec![
                Change::IndexChanged { old: 2, new: 7 },
                Change::WentDown,
                Change::AddressesChanged {
                    added: vec!["192.0.2.9".parse().unwrap(), "2001:db8::2".parse().unwrap()],
                    removed: vec!["192.0.2.2".parse().unwrap()]
                }
            ]
        );
        assert_eq!(
            diff(Some(&iface(2, false, &[])), Some(&iface(2, true, &[]))),
            vec![Change::WentUp]
        );
    }

    #[test]
    fn watch_follows_loss_and_return() {
        let mut w = Watch::new("eth0", Some(iface(2, true, &["192.0.2.2"])));
        assert_eq!(w.addrs().len(), 1);
        assert_eq!(w.update(None), vec![Change::Vanished]);
        assert!(w.addrs().is_empty());
        assert_eq!(w.update(None), vec![]);
        let back = w.update(Some(iface(9, true, &[])));
        assert_eq!(back, vec![Change::Appeared { index: 9 }]);
        assert_eq!(w.current().map(|i| i.index), Some(9));
    }

    #[test]
    fn change_descriptions() {
        let c = Change::AddressesChanged {
            added: vec!["192.0.2.7".parse().unwrap()],
            removed: vec!["192.0.2.2".parse().unwrap(), "2001:db8::2".parse().unwrap()],
        };
        assert_eq!(
            c.describe("eth0"),
            "eth0: addresses added 192.0.2.7; removed 192.0.2.2, 2001:db8::2"
        );
        assert_eq!(Change::Vanished.describe("eth0"), "eth0: interface gone");
        assert_eq!(
            Change::IndexChanged { old: 2, new: 5 }.describe("eth0"),
            "eth0: interface re-created (index 2 -> 5)"
        );
    }
}
