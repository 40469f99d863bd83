//! Unix: a duplicate of descriptor 1 for the relay, then the null device `dup2`ed over 1;
//! a duplicate of descriptor 0 to read stdin.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

pub(super) fn take_stdout() -> io::Result<File> {
    let stdout = io::stdout();
    // Nothing of knock's own may follow the connection's bytes, or precede them unsent.
    stdout.lock().flush()?;
    let own = stdout.as_fd().try_clone_to_owned()?;
    let null = File::options().write(true).open("/dev/null")?;
    // SAFETY: dup2 reads no memory; both descriptors are open (the null device just opened,
    // and 1, which `own` duplicated). It atomically makes 1 the null device, so no
    // moment exists in which descriptor 1 is closed and could be reused.
    if unsafe { libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO) } < 0 {
        return Err(io::Error::last_os_error());
    }
    grow_pipe(&own);
    Ok(File::from(own))
}

/// A duplicate of descriptor 0, read directly: nothing was read from stdin before, so no
/// buffered bytes are skipped.
pub(super) fn stdin() -> io::Result<File> {
    let own = io::stdin().as_fd().try_clone_to_owned()?;
    grow_pipe(&own);
    Ok(File::from(own))
}

/// The pipe size asked for: 1 MiB, the most an unprivileged process may set by default
/// (`/proc/sys/fs/pipe-max-size`).
#[cfg(any(target_os = "linux", target_os = "android"))]
const PIPE_SIZE: libc::c_int = 1 << 20;

/// On Linux, asks for a larger pipe when `fd` is one (ssh hands its ProxyCommand pipes of
/// 64 KiB), so that a bulk copy moves a whole relay chunk per wake-up of each end.
/// Anything else, or a refusal (a user over the pipe memory limit), leaves it as it is.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn grow_pipe(fd: &OwnedFd) {
    // SAFETY: fcntl(F_SETPIPE_SZ) takes an int and reads no memory of ours; on a
    // descriptor that is not a pipe it fails with EBADF or EINVAL and changes nothing.
    let _ = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE) };
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn grow_pipe(_fd: &OwnedFd) {}
