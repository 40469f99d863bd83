//! Windows: how a non-blocking connect reports a SYN in flight.

use std::io;

/// True when a non-blocking `connect` failed only because the handshake is under way.
/// Winsock says WSAEWOULDBLOCK there, which std maps to `WouldBlock`.
pub(crate) fn connect_in_progress(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::WouldBlock
}
