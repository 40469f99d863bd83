//! Reverse DNS: `getnameinfo(3)` with `NI_NAMEREQD`.

use std::ffi::CStr;
use std::net::IpAddr;

/// The name the resolver gives `ip` (PTR record, /etc/hosts), if it has one. The caller
/// decides whether the name is safe to print.
pub(crate) fn reverse_name(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(a) => {
            // SAFETY: sockaddr_in is plain old data, for which all-zero is valid.
            let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_addr.s_addr = u32::from(a).to_be();
            name_of(&sin)
        }
        IpAddr::V6(a) => {
            // SAFETY: sockaddr_in6 is plain old data, for which all-zero is valid.
            let mut sin6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_addr.s6_addr = a.octets();
            name_of(&sin6)
        }
    }
}

/// A socket address getnameinfo reads: its family field says which one it is.
trait SockAddr {}
impl SockAddr for libc::sockaddr_in {}
impl SockAddr for libc::sockaddr_in6 {}

fn name_of<A: SockAddr>(addr: &A) -> Option<String> {
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: addr is a live, initialised sockaddr_in or sockaddr_in6 of the size we pass;
    // host is a live buffer of the length we pass, which getnameinfo NUL-terminates on
    // success; no service buffer is asked for.
    let rc = unsafe {
        libc::getnameinfo(
            (addr as *const A).cast(),
            std::mem::size_of::<A>() as libc::socklen_t,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // Read up to the NUL without trusting that there is one.
    let bytes: Vec<u8> = host.iter().map(|&c| c as u8).collect();
    let name = CStr::from_bytes_until_nul(&bytes).ok()?.to_str().ok()?;
    Some(name.to_string())
}
