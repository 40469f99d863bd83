//! Windows: plain hits only. Windows refuses to send TCP through raw sockets (since XP
//! SP2, whatever the privileges), so every raw hit is refused before anything is sent;
//! hits without flags, and hits whose only flag is SYN, go out through `connect`.

use std::io;

use socket2::Socket;

use super::Platform;
use crate::send::privilege::Privilege;

const NO_RAW_TCP: &str = "Windows does not send TCP through raw sockets";

pub(crate) struct Native;

impl Platform for Native {
    fn privilege() -> Privilege {
        Privilege::Unsupported(NO_RAW_TCP)
    }

    /// Winsock says WSAEWOULDBLOCK there, which std maps to `WouldBlock`.
    fn connect_in_progress(err: &io::Error) -> bool {
        err.kind() == io::ErrorKind::WouldBlock
    }

    fn reuse_fixed_port(_socket: &Socket) -> io::Result<()> {
        // SO_REUSEADDR on Windows lets a socket take over a port that another live socket
        // holds, which is more than a knock should do: leave it off.
        Ok(())
    }

    fn raw_ipv4_socket() -> io::Result<Socket> {
        Err(io::Error::new(io::ErrorKind::Unsupported, NO_RAW_TCP))
    }

    fn raw_ipv6_tcp_socket() -> io::Result<Socket> {
        Err(io::Error::new(io::ErrorKind::Unsupported, NO_RAW_TCP))
    }

    fn hdrincl_layout(_packet: &mut [u8]) {}

    /// Windows has no privileged ports; a refused bind is another program's exclusive use.
    fn bind_ways() -> &'static [&'static str] {
        &[]
    }
}
