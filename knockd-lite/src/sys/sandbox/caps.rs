//! Ids and capabilities: the bounding and ambient sets, groups, gid and uid, the
//! capability sets themselves, no_new_privs. Each step is checked after it is taken.

use std::io;

use super::SandboxError;
use crate::sys::check;

/// How many threads the process has (`/proc/self/task`): read before the file system goes.
pub(super) fn thread_count() -> Result<usize, SandboxError> {
    std::fs::read_dir("/proc/self/task")
        .map(Iterator::count)
        .map_err(|e| SandboxError::os("read /proc/self/task", e))
}

/// Whether the bounding set holds `cap`; `None` past the kernel's last capability.
fn in_bounding_set(cap: u32) -> Option<bool> {
    // SAFETY: PR_CAPBSET_READ takes an integer and touches no memory.
    let rc = unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap), 0, 0, 0) };
    (rc >= 0).then_some(rc == 1)
}

/// Empties the bounding set (every capability the kernel knows, PR_CAPBSET_DROP each) and
/// the ambient set. Returns what stays in the bounding set: the capabilities it could not
/// drop for want of CAP_SETPCAP (0 as root). Any other failure is an error.
pub(super) fn drop_bounding_and_ambient() -> Result<u64, SandboxError> {
    // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes integers and touches no memory.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    // EINVAL: a kernel before 4.3, which has no ambient set to clear.
    if let Err(e) = check(rc)
        && e.raw_os_error() != Some(libc::EINVAL)
    {
        return Err(SandboxError::os("prctl(PR_CAP_AMBIENT_CLEAR_ALL)", e));
    }
    let mut kept = 0u64;
    for cap in 0..64u32 {
        match in_bounding_set(cap) {
            None => break,
            Some(false) => {}
            Some(true) => {
                // SAFETY: PR_CAPBSET_DROP takes an integer and touches no memory.
                let rc = unsafe {
                    libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0)
                };
                match check(rc) {
                    Ok(_) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EPERM) => kept |= 1 << cap,
                    Err(e) => {
                        return Err(SandboxError::os(
                            format!("prctl(PR_CAPBSET_DROP, {cap})"),
                            e,
                        ));
                    }
                }
            }
        }
    }
    Ok(kept)
}

/// Becomes `uid`/`gid` for good: no supplementary groups, real, effective and saved gid,
/// then the same for the uid; checks each, checks that uid 0 cannot come back, and makes
/// the process non-dumpable.
pub(super) fn become_user(uid: u32, gid: u32) -> Result<(), SandboxError> {
    // SAFETY: a zero-length list: the pointer is never read.
    check(unsafe { libc::setgroups(0, std::ptr::null()) })
        .map_err(|e| SandboxError::os("setgroups(0)", e))?;
    // SAFETY: setresgid takes integers.
    check(unsafe { libc::setresgid(gid, gid, gid) })
        .map_err(|e| SandboxError::os(format!("setresgid({gid}, {gid}, {gid})"), e))?;
    // SAFETY: setresuid takes integers.
    check(unsafe { libc::setresuid(uid, uid, uid) })
        .map_err(|e| SandboxError::os(format!("setresuid({uid}, {uid}, {uid})"), e))?;

    let (r, e, s) = resuid()?;
    if (r, e, s) != (uid, uid, uid) {
        return Err(SandboxError::Kept(format!(
            "after setresuid({uid}): real, effective and saved uid are {r}, {e}, {s}"
        )));
    }
    let (r, e, s) = resgid()?;
    if (r, e, s) != (gid, gid, gid) {
        return Err(SandboxError::Kept(format!(
            "after setresgid({gid}): real, effective and saved gid are {r}, {e}, {s}"
        )));
    }
    // SAFETY: a zero-length buffer: getgroups only counts.
    let groups = check(unsafe { libc::getgroups(0, std::ptr::null_mut()) })
        .map_err(|e| SandboxError::os("getgroups", e))?;
    if groups != 0 {
        return Err(SandboxError::Kept(format!(
            "after setgroups(0): {groups} supplementary groups"
        )));
    }
    // SAFETY: setresuid takes integers; it must fail now.
    if unsafe { libc::setresuid(0, 0, 0) } == 0 {
        return Err(SandboxError::Kept(
            "uid 0 could be regained after setresuid: the worker does not run".into(),
        ));
    }
    // SAFETY: PR_SET_DUMPABLE takes integers and touches no memory.
    check(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) })
        .map_err(|e| SandboxError::os("prctl(PR_SET_DUMPABLE, 0)", e))?;
    Ok(())
}

fn resuid() -> Result<(u32, u32, u32), SandboxError> {
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: three valid pointers to u32s, written by the call.
    check(unsafe { libc::getresuid(&mut r, &mut e, &mut s) })
        .map_err(|err| SandboxError::os("getresuid", err))?;
    Ok((r, e, s))
}

fn resgid() -> Result<(u32, u32, u32), SandboxError> {
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: three valid pointers to u32s, written by the call.
    check(unsafe { libc::getresgid(&mut r, &mut e, &mut s) })
        .map_err(|err| SandboxError::os("getresgid", err))?;
    Ok((r, e, s))
}

/// `struct __user_cap_header_struct` (linux/capability.h).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`; version 3 takes two (capabilities 0-31 and 32-63).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit capability sets.
const CAP_VERSION_3: u32 = 0x2008_0522;

/// Sets the effective, permitted and inheritable capabilities to none, and checks.
pub(super) fn clear_capabilities() -> Result<(), SandboxError> {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: header and two data structs as capset(2) wants them for version 3; the
    // kernel only reads data.
    check(unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) })
        .map_err(|e| SandboxError::os("capset(0)", e))?;
    let now = capabilities().map_err(|e| SandboxError::os("capget", e))?;
    if now != [CapData::default(); 2] {
        return Err(SandboxError::Kept(format!(
            "after capset(0) the capabilities are {now:?}"
        )));
    }
    Ok(())
}

/// The calling thread's capability sets (capget).
fn capabilities() -> io::Result<[CapData; 2]> {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and room for two data structs, as capget(2) writes them for version 3.
    check(unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) })?;
    Ok(data)
}

/// PR_SET_NO_NEW_PRIVS: no exec can gain privileges (setuid bits, file capabilities), and
/// the condition for installing a seccomp filter without CAP_SYS_ADMIN.
pub(super) fn set_no_new_privs() -> Result<(), SandboxError> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integers and touches no memory.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })
        .map_err(|e| SandboxError::os("prctl(PR_SET_NO_NEW_PRIVS)", e))?;
    // SAFETY: as above.
    let on = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) };
    if on != 1 {
        return Err(SandboxError::Kept(format!(
            "prctl(PR_GET_NO_NEW_PRIVS) answers {on} after setting it"
        )));
    }
    Ok(())
}
