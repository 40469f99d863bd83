//! Whether this process may send raw TCP, as a plain value decided before anything is sent.
//!
//! [`Privilege::current`] asks the OS once; everything else works on the value, so the
//! refusals and their messages are tested without root by passing in the value wanted.

use super::error::{RawNeed, Refusal};
use super::platform::{Native, Platform};
use crate::hit::{Hit, HitFlags, Proto, TcpFlags};

/// What this process may do with raw sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privilege {
    /// Raw sockets can be opened: root, or CAP_NET_RAW on Linux.
    Raw,
    /// Raw sockets need a privilege this process lacks; [`Grant`] says how to get it.
    Missing(Grant),
    /// This system never sends TCP through raw sockets, whatever the privileges (Windows);
    /// the text says why, as a clause: `Windows does not send TCP through raw sockets`.
    Unsupported(&'static str),
}

/// How to get the privilege raw sockets need, which depends on the OS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Grant {
    /// Linux: root, or the CAP_NET_RAW capability, which `setcap` can give the binary.
    RootOrCapNetRaw,
    /// macOS and the BSDs: root only.
    Root,
}

impl Grant {
    /// What is needed, for a message: `root or CAP_NET_RAW`.
    pub fn needs(self) -> &'static str {
        match self {
            Grant::RootOrCapNetRaw => "root or CAP_NET_RAW",
            Grant::Root => "root",
        }
    }

    /// The ways to get it, each a clause that reads after "you can": `run knock as root`.
    pub fn ways(self) -> &'static [&'static str] {
        match self {
            Grant::RootOrCapNetRaw => &[
                "run knock as root",
                "give it CAP_NET_RAW once with `sudo setcap cap_net_raw+ep $(command -v knock)`",
            ],
            Grant::Root => &["run knock as root"],
        }
    }
}

impl Privilege {
    /// This process's privilege, found without opening a socket: on Linux the effective
    /// capability set (CAP_NET_RAW), elsewhere on unix the effective user id (root). On
    /// Windows always [`Privilege::Unsupported`].
    pub fn current() -> Privilege {
        Native::privilege()
    }

    /// Whether raw sockets can be opened.
    pub fn has_raw(self) -> bool {
        self == Privilege::Raw
    }

    /// Whether `hit` can go out through a raw socket under this privilege, or why not.
    /// UDP hits never go raw.
    pub fn check_raw(self, hit: &Hit) -> Result<(), Refusal> {
        if hit.proto == Proto::Udp {
            return Err(Refusal::RawUdp);
        }
        let need = raw_need(hit);
        match self {
            Privilege::Raw => Ok(()),
            Privilege::Missing(grant) => Err(Refusal::NoPrivilege { need, grant }),
            Privilege::Unsupported(why) => Err(Refusal::Unsupported { need, why }),
        }
    }
}

/// Why a TCP hit that goes raw has to: its flags, unless they are the SYN that a connect
/// sends too, in which case only a request to send raw can have put it there.
fn raw_need(hit: &Hit) -> RawNeed {
    match hit.flags {
        HitFlags::Exact(flags) if flags != TcpFlags::SYN => RawNeed::ExactFlags,
        _ => RawNeed::RawMode,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(s: &str) -> Hit {
        Hit::parse(s, Proto::Tcp).unwrap()
    }

    #[test]
    fn raw_privilege_allows_every_tcp_hit() {
        for h in [
            "7000",
            "7000:tcp:fin+psh",
            "tcp:110:x",
            "tcp:110:n",
            "7000:tcp:syn",
        ] {
            assert_eq!(Privilege::Raw.check_raw(&hit(h)), Ok(()), "{h}");
        }
        assert_eq!(
            Privilege::Raw.check_raw(&Hit::udp(8000)),
            Err(Refusal::RawUdp)
        );
        assert!(Privilege::Raw.has_raw());
    }

    #[test]
    fn refusals_say_why_the_hit_needs_raw() {
        let missing = Privilege::Missing(Grant::RootOrCapNetRaw);
        assert!(!missing.has_raw());
        let table: &[(&str, &str)] = &[
            (
                "7000:tcp:fin",
                "exact TCP flags need a raw socket, which needs root or CAP_NET_RAW",
            ),
            (
                "tcp:110:n",
                "exact TCP flags need a raw socket, which needs root or CAP_NET_RAW",
            ),
            (
                "7000",
                "sending a TCP hit raw needs a raw socket, which needs root or CAP_NET_RAW",
            ),
            // A written SYN goes raw only when asked to: a connect sends the same flags.
            (
                "7000:tcp:syn",
                "sending a TCP hit raw needs a raw socket, which needs root or CAP_NET_RAW",
            ),
        ];
        for (h, want) in table {
            assert_eq!(
                missing.check_raw(&hit(h)).unwrap_err().to_string(),
                *want,
                "{h}"
            );
        }
        let root = Privilege::Missing(Grant::Root);
        assert_eq!(
            root.check_raw(&hit("7000:tcp:rst"))
                .unwrap_err()
                .to_string(),
            "exact TCP flags need a raw socket, which needs root"
        );
    }

    #[test]
    fn unsupported_systems_say_so() {
        let windows = Privilege::Unsupported("Windows does not send TCP through raw sockets");
        assert!(!windows.has_raw());
        assert_eq!(
            windows
                .check_raw(&hit("7000:tcp:fin"))
                .unwrap_err()
                .to_string(),
            "exact TCP flags need a raw socket, but Windows does not send TCP through raw sockets"
        );
        assert_eq!(
            windows.check_raw(&hit("7000")).unwrap_err().to_string(),
            "sending a TCP hit raw needs a raw socket, but Windows does not send TCP through \
             raw sockets"
        );
    }

    #[test]
    fn grants_name_their_ways_out() {
        assert_eq!(Grant::RootOrCapNetRaw.needs(), "root or CAP_NET_RAW");
        assert_eq!(
            Grant::RootOrCapNetRaw.ways(),
            [
                "run knock as root",
                "give it CAP_NET_RAW once with `sudo setcap cap_net_raw+ep $(command -v knock)`"
            ]
        );
        assert_eq!(Grant::Root.needs(), "root");
        assert_eq!(Grant::Root.ways(), ["run knock as root"]);
    }

    #[test]
    fn current_agrees_with_whether_a_raw_socket_opens() {
        // The one check of the detection itself: asking the OS directly.
        let opened = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::RAW,
            Some(socket2::Protocol::from(255)),
        )
        .is_ok();
        match Privilege::current() {
            Privilege::Raw => assert!(opened, "detected raw privilege, but no raw socket"),
            Privilege::Missing(_) => assert!(!opened, "a raw socket opened without privilege"),
            Privilege::Unsupported(_) => {}
        }
    }
}
