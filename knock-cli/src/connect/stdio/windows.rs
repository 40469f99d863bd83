//! Windows: a duplicate of the standard output handle for the relay, `NUL` set as the
//! standard output, then the original handle closed (a pipe ends only when every handle of
//! its writing side is closed).
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{self, Write};
use std::os::windows::io::{AsHandle, AsRawHandle, FromRawHandle, IntoRawHandle, OwnedHandle};

use windows_sys::Win32::System::Console::{STD_OUTPUT_HANDLE, SetStdHandle};

pub(super) fn take_stdout() -> io::Result<File> {
    let stdout = io::stdout();
    stdout.lock().flush()?;
    let own = stdout.as_handle().try_clone_to_owned()?;
    let original = stdout.as_raw_handle();
    let null = File::options().write(true).open("NUL")?;
    let null = null.into_raw_handle();
    // SAFETY: SetStdHandle stores a handle value for later GetStdHandle calls and reads no
    // memory of ours. `null` is an open file handle whose ownership goes to the process's
    // standard output from here on (it is never closed by us).
    if unsafe { SetStdHandle(STD_OUTPUT_HANDLE, null) } == 0 {
        let error = io::Error::last_os_error();
        // SAFETY: `null` is still ours (SetStdHandle did not take it): close it.
        drop(unsafe { OwnedHandle::from_raw_handle(null) });
        return Err(error);
    }
    // SAFETY: `original` was the standard output handle, which std only borrows through
    // GetStdHandle; that now names `null`, so nothing in the process uses `original` any
    // more, and closing it once here is what lets the reader see the end when `own` goes.
    drop(unsafe { OwnedHandle::from_raw_handle(original) });
    Ok(File::from(own))
}

/// The standard library's stdin, which reads consoles as well as pipes and files.
pub(super) fn stdin() -> io::Result<io::Stdin> {
    Ok(io::stdin())
}
