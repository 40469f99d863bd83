//! Unix systems the raw sender was not written for (OpenBSD, NetBSD, illumos, ...): plain
//! hits work as everywhere; raw hits are refused rather than sent with a header layout
//! nobody has checked there.

use std::io;

use socket2::Socket;

use super::{Platform, unix};
use crate::send::privilege::Privilege;

pub(crate) struct Native;

impl Platform for Native {
    fn privilege() -> Privilege {
        Privilege::Unsupported("this build of knock has no raw sender for this system")
    }

    fn connect_in_progress(err: &io::Error) -> bool {
        unix::connect_in_progress(err)
    }

    fn reuse_fixed_port(socket: &Socket) -> io::Result<()> {
        unix::reuse_fixed_port(socket)
    }

    fn raw_ipv4_socket() -> io::Result<Socket> {
        Err(unsupported())
    }

    fn raw_ipv6_tcp_socket() -> io::Result<Socket> {
        Err(unsupported())
    }

    fn hdrincl_layout(_packet: &mut [u8]) {}
}

fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "this build of knock has no raw sender for this system",
    )
}
