//! Reverse DNS: `getnameinfo(3)` with `NI_NAMEREQD`.

use std::ffi::CStr;
use std::net::IpAddr;

/// The name the resolver gives `ip` (PTR record, /etc/hosts), if it has one. The caller
/// decides whether the name is safe to print.
pub(crate) fn reverse_name(ip: IpAddr) -> Option<String> {
    let mut host = [0 as libc::c_char; 1025];
    let rc = match ip {
        IpAddr::V4(a) => {
            // SAFETY: sockaddr_in is plain old data, for which all-zero is valid.
            let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_addr.s_addr = u32::from(a).to_be();
            // SAFETY: sin is a live sockaddr_in of the size we pass; host is a live buffer
            // of the length we pass, which getnameinfo NUL-terminates on success.
            unsafe {
                libc::getnameinfo(
                    (&sin as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                    host.as_mut_ptr(),
                    host.len() as libc::socklen_t,
                    std::ptr::null_mut(),
                    0,
                    libc::NI_NAMEREQD,
                )
            }
        }
        IpAddr::V6(a) => {
            // SAFETY: sockaddr_in6 is plain old data, for which all-zero is valid.
            let mut sin6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_addr.s6_addr = a.octets();
            // SAFETY: as above, with a live sockaddr_in6.
            unsafe {
                libc::getnameinfo(
                    (&sin6 as *const libc::sockaddr_in6).cast(),
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                    host.as_mut_ptr(),
                    host.len() as libc::socklen_t,
                    std::ptr::null_mut(),
                    0,
                    libc::NI_NAMEREQD,
                )
            }
        }
    };
    if rc != 0 {
        return None;
    }
    // The buffer is NUL-terminated on success; read it without trusting that.
    let bytes: Vec<u8> = host.iter().map(|&c| c as u8).collect();
    let name = CStr::from_bytes_until_nul(&bytes).ok()?.to_str().ok()?;
    Some(name.to_string())
}
