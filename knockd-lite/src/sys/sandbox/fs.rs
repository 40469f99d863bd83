//! No file system for the worker: a Landlock ruleset that handles every access right and
//! allows none, or, on a kernel without Landlock, an empty root (chroot into a directory
//! that is removed as it is entered).

use std::fmt;
use std::io;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope,
};

use super::{SandboxError, Unavailable};
use crate::sys::check;

/// How the worker lost the file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FsIsolation {
    /// A Landlock domain that allows no file system access (and, from ABI 4, no TCP bind or
    /// connect; from ABI 6, no signal or abstract socket outside the domain).
    Landlock { abi: u32 },
    /// The root is an empty directory that no longer exists on disk (needs CAP_SYS_CHROOT).
    EmptyRoot,
}

impl fmt::Display for FsIsolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsIsolation::Landlock { abi } => {
                write!(f, "Landlock ABI {abi} (no file system access)")
            }
            FsIsolation::EmptyRoot => {
                f.write_str("an empty root (no Landlock; chroot with CAP_SYS_CHROOT)")
            }
        }
    }
}

/// `LANDLOCK_CREATE_RULESET_VERSION`: ask for the ABI version instead of a ruleset.
const CREATE_RULESET_VERSION: libc::c_ulong = 1;

/// The kernel's Landlock ABI version, or why there is none.
pub(super) fn landlock_abi() -> Result<u32, Unavailable> {
    // SAFETY: with this flag the kernel reads no attribute (NULL, size 0) and returns the
    // version.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    match check(rc) {
        Ok(v) => u32::try_from(v).map_err(|_| Unavailable::Error(format!("ABI version {v}"))),
        Err(e) => Err(match e.raw_os_error() {
            Some(libc::ENOSYS) => Unavailable::NotInKernel,
            Some(libc::EOPNOTSUPP) => Unavailable::DisabledAtBoot,
            _ => Unavailable::Error(format!("landlock_create_ruleset: {e}")),
        }),
    }
}

/// Takes the file system away: Landlock where `landlock` says the kernel has it, else (or
/// if Landlock enforced nothing) the empty root.
pub(super) fn isolate(landlock: &Result<u32, Unavailable>) -> Result<FsIsolation, SandboxError> {
    let why_not = match landlock {
        Ok(abi) => match deny_all() {
            Ok(true) => return Ok(FsIsolation::Landlock { abi: *abi }),
            Ok(false) => "enforced nothing".to_string(),
            Err(e) => return Err(e),
        },
        Err(why) => format!("is not available: {why}"),
    };
    empty_root()
        .map(|()| FsIsolation::EmptyRoot)
        .map_err(|e| SandboxError::NoFsIsolation {
            landlock: why_not,
            chroot: e.to_string(),
        })
}

/// Restricts the calling thread (and its future children) with a ruleset that handles
/// every access right the crate knows, with no rule allowing any: the kernel ignores the
/// rights it does not know (best effort), so each kernel enforces all it can. Sets
/// no_new_privs, which landlock_restrict_self needs without CAP_SYS_ADMIN. `Ok(false)`
/// when the kernel enforced nothing.
pub(super) fn deny_all() -> Result<bool, SandboxError> {
    let newest = ABI::V10;
    let landlock = |e: landlock::RulesetError| SandboxError::os("Landlock", io::Error::other(e));
    let status = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(newest))
        .map_err(landlock)?
        .handle_access(AccessNet::from_all(newest))
        .map_err(landlock)?
        .scope(Scope::from_all(newest))
        .map_err(landlock)?
        .create()
        .map_err(landlock)?
        .no_new_privs(true)
        .restrict_self()
        .map_err(landlock)?;
    Ok(status.ruleset != RulesetStatus::NotEnforced)
}

/// chroot into an empty directory that is gone: make a fresh one (mode 0700, root's), step
/// into it, remove it, chroot to `.`. Nothing can be created in a removed directory, no
/// path leads anywhere, and nothing is left on disk to clean up. Needs CAP_SYS_CHROOT.
pub(super) fn empty_root() -> io::Result<()> {
    let mut template = std::env::temp_dir()
        .join("knockd-lite-root.XXXXXX")
        .into_os_string()
        .into_encoded_bytes();
    template.push(0);
    // SAFETY: template is NUL-terminated and writable; mkdtemp fills in the X's in place.
    let dir = unsafe { libc::mkdtemp(template.as_mut_ptr().cast()) };
    if dir.is_null() {
        return Err(named("mkdtemp", io::Error::last_os_error()));
    }
    // SAFETY: dir points into template, a NUL-terminated path.
    check(unsafe { libc::chdir(dir) }).map_err(|e| named("chdir(new empty directory)", e))?;
    // SAFETY: as above.
    check(unsafe { libc::rmdir(dir) }).map_err(|e| named("rmdir(new empty directory)", e))?;
    // SAFETY: a NUL-terminated literal.
    check(unsafe { libc::chroot(c".".as_ptr()) }).map_err(|e| named("chroot", e))?;
    // SAFETY: a NUL-terminated literal.
    check(unsafe { libc::chdir(c"/".as_ptr()) }).map_err(|e| named("chdir(/)", e))?;
    Ok(())
}

fn named(op: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{op}: {e}"))
}

/// `openat(AT_FDCWD, "/", O_RDONLY | O_DIRECTORY)` as the raw system call (so it is
/// openat whatever the libc), then close: the forbidden call of the test hook.
#[cfg(any(test, feature = "sandbox-test"))]
pub(super) fn open_root() -> io::Result<()> {
    // SAFETY: a NUL-terminated literal path; the kernel only reads it.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            c"/".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    let fd = check(fd)?;
    // SAFETY: fd was just opened here and is closed once.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}
