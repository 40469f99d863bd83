//! The worker's user: a name resolved to a uid and primary gid with `getpwnam_r`, by the
//! monitor before the worker starts (the passwd database is a file the worker cannot read).

use std::ffi::CString;
use std::io;

use super::SandboxError;

/// The user the worker runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WorkerIds {
    pub(crate) name: String,
    pub(crate) uid: u32,
    /// The user's primary group; the worker has no supplementary groups.
    pub(crate) gid: u32,
}

/// The first buffer for `getpwnam_r`; doubled on ERANGE up to [`MAX_BUF`].
const FIRST_BUF: usize = 1024;
const MAX_BUF: usize = 1 << 20;

impl WorkerIds {
    /// Resolves `name` (`getpwnam_r`: /etc/passwd, or NSS under glibc). Refuses root (uid 0)
    /// and a user whose primary group is root's, and a name that is no user.
    pub(crate) fn lookup(name: &str) -> Result<WorkerIds, SandboxError> {
        let (uid, gid) = getpwnam(name)?.ok_or_else(|| SandboxError::NoSuchUser(name.into()))?;
        if uid == 0 {
            return Err(SandboxError::Root(name.into()));
        }
        if gid == 0 {
            return Err(SandboxError::RootGroup(name.into()));
        }
        Ok(WorkerIds {
            name: name.into(),
            uid,
            gid,
        })
    }
}

/// The default worker user and why it was chosen (for the start-up log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DefaultUser {
    pub(crate) ids: WorkerIds,
    pub(crate) why: &'static str,
}

/// The system user the packages create.
const OWN_USER: &str = "knockd-lite";
/// Everywhere else.
const FALLBACK_USER: &str = "nobody";

/// Without `--user`: `knockd-lite` when that user exists (the Debian package creates it),
/// else `nobody`, with the reason to log. `nobody` is shared with other daemons, so the
/// reason says how to do better. An error when the lookup fails for another reason than a
/// missing user, or when neither exists (or one is root).
pub(crate) fn default_user() -> Result<DefaultUser, SandboxError> {
    match WorkerIds::lookup(OWN_USER) {
        Ok(ids) => Ok(DefaultUser {
            ids,
            why: "the knockd-lite system user exists",
        }),
        Err(SandboxError::NoSuchUser(_)) => match WorkerIds::lookup(FALLBACK_USER) {
            Ok(ids) => Ok(DefaultUser {
                ids,
                why: "there is no knockd-lite user; nobody is shared with other daemons, so create a knockd-lite system user or name one with --user",
            }),
            Err(SandboxError::NoSuchUser(_)) => Err(SandboxError::NoDefaultUser),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// `getpwnam_r(name)`: the uid and gid, `None` when there is no such user.
fn getpwnam(name: &str) -> Result<Option<(u32, u32)>, SandboxError> {
    // A name with a NUL byte cannot be in the database.
    let Ok(cname) = CString::new(name) else {
        return Ok(None);
    };
    let mut buf = vec![0 as libc::c_char; FIRST_BUF];
    loop {
        // SAFETY: passwd is plain data (integers and pointers); all-zero is a valid value.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: cname is NUL-terminated; pwd, buf (with its true length) and result are
        // valid for writes for the whole call; the strings getpwnam_r points pwd at live in
        // buf, which is not read through pwd after it is reused or dropped.
        let rc = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        match rc {
            0 if result.is_null() => return Ok(None),
            0 => return Ok(Some((pwd.pw_uid, pwd.pw_gid))),
            libc::ERANGE if buf.len() < MAX_BUF => buf.resize(buf.len() * 2, 0),
            // "Not found" comes back as one of these from some NSS modules.
            libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => return Ok(None),
            errno => {
                return Err(SandboxError::os(
                    format!("getpwnam_r({name:?})"),
                    io::Error::from_raw_os_error(errno),
                ));
            }
        }
    }
}
