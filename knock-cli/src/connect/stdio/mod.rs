//! stdin and stdout for the relay, one module per OS.
//!
//! stdout is taken over: the relay gets a handle of its own on the process's standard
//! output, and the standard output itself is pointed at the null device. Dropping the
//! relay's handle then ends the output for whoever reads it (ssh sees the connection's
//! end), while the process's stdout stays valid: a stray write goes nowhere instead of to
//! whatever file would reuse a closed descriptor.
//!
//! stdin is read as a plain file on unix (no buffer of the standard library's in the way),
//! and through the standard library's stdin on Windows, which knows consoles.

use std::fs::File;
use std::io;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as native;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as native;

/// The process's standard output, now owned by the caller; the standard output itself now
/// writes to the null device.
pub(crate) fn take_stdout() -> io::Result<File> {
    native::take_stdout()
}

/// The process's standard input, for a thread of its own.
pub(crate) fn stdin() -> io::Result<impl io::Read + Send + 'static> {
    native::stdin()
}
