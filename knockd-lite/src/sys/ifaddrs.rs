//! Interfaces and their addresses: `getifaddrs(3)`, and `SIOCGIFHWADDR` for links that it
//! lists without a link-layer entry.

use std::ffi::{CStr, CString};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// What one `getifaddrs` entry holds, copied out of the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum IfAddr {
    /// The link itself (an `AF_PACKET` entry): its index and `ARPHRD_*` type.
    Link {
        index: u32,
        hatype: u16,
    },
    Ip(IpAddr),
    /// No address (links without a hardware address, such as tun or WireGuard).
    None,
    /// A family we do not read.
    Other,
}

/// One `getifaddrs` entry: the name (an IPv4 alias comes under its label, `eth0:1`), the
/// `IFF_*` flags and the address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IfEntry {
    pub(crate) name: String,
    pub(crate) flags: u32,
    pub(crate) addr: IfAddr,
}

/// Every entry `getifaddrs` lists in this network namespace, in its order.
pub(crate) fn if_entries() -> io::Result<Vec<IfEntry>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head to the pointer we pass; on success we free the
    // list with freeifaddrs below, and on failure there is nothing to free.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::other(format!(
            "getifaddrs: {}",
            io::Error::last_os_error()
        )));
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: cur is a non-null node of the list getifaddrs returned, valid until
        // freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        let addr = if ifa.ifa_addr.is_null() {
            IfAddr::None
        } else {
            // SAFETY: ifa_addr is non-null and points at a sockaddr whose family says which
            // larger sockaddr it is; each is read as that type only.
            unsafe { read_addr(ifa.ifa_addr) }
        };
        out.push(IfEntry {
            name,
            flags: ifa.ifa_flags,
            addr,
        });
    }
    // SAFETY: head came from a successful getifaddrs and is freed exactly once; nothing
    // borrowed from the list outlives this call (names and addresses were copied).
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// # Safety
/// `sa` points at a live sockaddr of the size its family implies.
unsafe fn read_addr(sa: *const libc::sockaddr) -> IfAddr {
    // SAFETY: every sockaddr starts with its family.
    match i32::from(unsafe { (*sa).sa_family }) {
        libc::AF_PACKET => {
            // SAFETY: AF_PACKET entries carry a sockaddr_ll.
            let ll = unsafe { &*sa.cast::<libc::sockaddr_ll>() };
            IfAddr::Link {
                index: u32::try_from(ll.sll_ifindex).unwrap_or(0),
                hatype: ll.sll_hatype,
            }
        }
        libc::AF_INET => {
            // SAFETY: AF_INET entries carry a sockaddr_in.
            let sin = unsafe { &*sa.cast::<libc::sockaddr_in>() };
            IfAddr::Ip(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                sin.sin_addr.s_addr,
            ))))
        }
        libc::AF_INET6 => {
            // SAFETY: AF_INET6 entries carry a sockaddr_in6.
            let sin6 = unsafe { &*sa.cast::<libc::sockaddr_in6>() };
            IfAddr::Ip(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => IfAddr::Other,
    }
}

/// Index and `ARPHRD_*` type by name, for links that getifaddrs lists without an
/// `AF_PACKET` entry; `None` if there is no such link.
pub(crate) fn index_and_hatype(name: &str) -> Option<(u32, u16)> {
    if name.len() >= libc::IFNAMSIZ {
        return None;
    }
    let cname = CString::new(name).ok()?;
    // SAFETY: cname is a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        return None;
    }
    // SAFETY: plain socket(2) call; the result is checked and wrapped at once.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return None;
    }
    // SAFETY: raw is a fresh descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ifreq is plain old data, for which all-zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, &b) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *dst = b as libc::c_char;
    }
    // The request's type differs between glibc (unsigned long) and musl (int); the alias
    // names whichever the target has, so the static builds compile too.
    let request = libc::SIOCGIFHWADDR as libc::Ioctl;
    // SAFETY: req is a live ifreq with a NUL-terminated name (the name is shorter than
    // IFNAMSIZ and the rest is zero); SIOCGIFHWADDR writes only into it.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), request, &mut req) };
    if rc != 0 {
        return None;
    }
    // SAFETY: a successful SIOCGIFHWADDR fills the ifru_hwaddr member of the union.
    let hatype = unsafe { req.ifr_ifru.ifru_hwaddr.sa_family };
    Some((index, hatype))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_a_link_entry_and_a_type() {
        let entries = if_entries().unwrap();
        let link = entries
            .iter()
            .find_map(|e| match (&e.name[..], &e.addr) {
                ("lo", IfAddr::Link { index, hatype }) => Some((*index, *hatype)),
                _ => None,
            })
            .expect("lo has an AF_PACKET entry");
        assert_eq!(link.1, 772);
        assert_eq!(index_and_hatype("lo"), Some(link));
        assert_eq!(index_and_hatype("no-such-if0"), None);
        assert_eq!(index_and_hatype(&"x".repeat(40)), None);
    }
}
