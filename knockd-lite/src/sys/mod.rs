//! The operating system, behind safe functions: every libc call knockd-lite makes outside
//! the capture ring's shared memory (`capture/ring.rs`) is in this module, one file per
//! concern, so the rest of the crate is safe code.
//!
//! Each wrapper owns what it creates (`OwnedFd`, a `File`) and checks every return value;
//! errors are `io::Error`s the caller names the operation for. Every `unsafe` block says why
//! it is sound in a `// SAFETY:` comment; review them here as a set.
#![allow(unsafe_code)]

mod dns;
mod eventfd;
mod fs;
mod ifaddrs;
mod netlink;
mod packet;
mod poll;
mod process;
// Until the monitor/worker split (issue 17 part B) calls it, only its tests do.
#[allow(dead_code, unused_imports)]
pub(crate) mod sandbox;
mod seqpacket;
mod signal;
mod time;

pub(crate) use dns::reverse_name;
pub(crate) use eventfd::EventFd;
pub(crate) use fs::can_write;
pub(crate) use ifaddrs::{IfAddr, if_entries, index_and_hatype};
pub(crate) use netlink::NetlinkSocket;
pub(crate) use packet::{PacketSocket, RecvBatch};
pub(crate) use poll::{PollFd, poll};
#[cfg(test)]
pub(crate) use process::is_root;
pub(crate) use process::{Pidfd, detach, kill_group, new_session, set_name};
pub(crate) use seqpacket::{Received, SeqPacket};
pub(crate) use signal::SignalFd;
#[cfg(test)]
pub(crate) use signal::raise;
pub(crate) use time::{BrokenDown, boot_ms, local_time, reload_time_zone};

use std::io;

/// C's `time_t` and `suseconds_t`. libc marks these aliases deprecated on musl (musl 1.2
/// widened them on 32-bit targets before libc's definitions follow); on the 64-bit targets
/// built here, glibc and musl alike, they are 64 bits. One allowance here, not one per use.
#[allow(deprecated)]
pub(crate) type TimeT = libc::time_t;
#[allow(deprecated)]
pub(crate) type SusecondsT = libc::suseconds_t;

/// `Err(last OS error)` when a call returned -1 (or any negative value).
fn check(rc: impl Into<i64>) -> io::Result<i64> {
    let rc = rc.into();
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}
