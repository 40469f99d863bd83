//! Linux (and Android): raw sockets need CAP_NET_RAW, read from the effective capability
//! set; `IP_HDRINCL` takes the packet exactly as it goes on the wire.

use std::io;

use socket2::Socket;

use super::{Platform, unix};
use crate::send::privilege::{Grant, Privilege};

/// The capability's bit number (linux/capability.h).
const CAP_NET_RAW: u32 = 13;

pub(crate) struct Native;

impl Platform for Native {
    fn privilege() -> Privilege {
        // Root normally has every capability, but not always (a container may drop
        // CAP_NET_RAW), so the capability set decides; the user id only stands in when
        // /proc is not there to ask.
        let has = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| effective_caps(&status))
            .map_or_else(unix::is_root, |caps| caps & (1 << CAP_NET_RAW) != 0);
        if has {
            Privilege::Raw
        } else {
            Privilege::Missing(Grant::RootOrCapNetRaw)
        }
    }

    fn connect_in_progress(err: &io::Error) -> bool {
        unix::connect_in_progress(err)
    }

    fn reuse_fixed_port(socket: &Socket) -> io::Result<()> {
        unix::reuse_fixed_port(socket)
    }

    fn raw_ipv4_socket() -> io::Result<Socket> {
        unix::raw_ipv4_socket()
    }

    fn raw_ipv6_tcp_socket() -> io::Result<Socket> {
        unix::raw_ipv6_tcp_socket()
    }

    fn hdrincl_layout(_packet: &mut [u8]) {}

    fn bind_ways() -> &'static [&'static str] {
        &[
            "run knock as root",
            "give it CAP_NET_BIND_SERVICE once with \
             `sudo setcap cap_net_bind_service+ep $(command -v knock)`",
        ]
    }
}

/// The `CapEff:` line of /proc/PID/status: the effective capabilities as a hex mask.
fn effective_caps(status: &str) -> Option<u64> {
    let hex = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))?
        .trim();
    u64::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_effective_set() {
        let status = "Name:\tknock\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\n\
                      CapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\n";
        assert_eq!(effective_caps(status), Some(0x1ff_ffff_ffff));
        // setcap cap_net_raw+ep: only bit 13.
        let status = "CapPrm:\t0000000000002000\nCapEff:\t0000000000002000\n";
        assert_eq!(effective_caps(status), Some(1 << CAP_NET_RAW));
        assert_eq!(effective_caps("CapEff:\t0000000000000000\n"), Some(0));
        assert_eq!(effective_caps("Name:\tknock\n"), None);
        assert_eq!(effective_caps("CapEff:\tnothex\n"), None);
    }

    #[test]
    fn privilege_follows_this_process_capabilities() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let caps = effective_caps(&status).expect("CapEff line");
        let want = if caps & (1 << CAP_NET_RAW) != 0 {
            Privilege::Raw
        } else {
            Privilege::Missing(Grant::RootOrCapNetRaw)
        };
        assert_eq!(Native::privilege(), want);
    }
}
