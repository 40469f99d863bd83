//! File-system questions std does not answer: `access(2)`.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Whether this process may write to `path` (a folder, to create a file in it), as the
/// kernel decides: permissions, and `EROFS` on a read-only file system, which mode bits
/// do not show (and which stops root too).
pub(crate) fn can_write(path: &Path) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call; access only
    // reads it.
    let rc = unsafe { libc::access(c.as_ptr(), libc::W_OK) };
    super::check(rc).map(drop)
}
