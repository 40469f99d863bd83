//! The worker's sandbox: which user it runs as ([`WorkerIds`]), what the kernel offers
//! ([`probe`]), and [`enter`], which the worker calls on itself to give up the file system,
//! root, every capability and every system call outside the allow-list (`policy.rs`).
//!
//! The worker is the process that reads packets anyone can send. Once it has entered, a bug
//! in it can at most misuse the descriptors it already holds (the capture socket, the
//! channel to the monitor): it cannot open a file, make a socket, start a program, signal
//! another process or become root again. A forbidden system call kills it with SIGSYS (the
//! kernel logs the call), which the monitor sees and reports.

mod caps;
mod fs;
mod policy;
mod seccomp;
#[cfg(test)]
mod tests;
mod user;

use std::fmt;
use std::io;

pub(crate) use policy::CHANNEL_FD;
pub(crate) use user::{DefaultUser, WorkerIds, default_user};

use fs::FsIsolation;

/// Why the sandbox could not be set up (or a user not chosen). Every message names the step.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SandboxError {
    /// `--user NAME` (or a default) names no user.
    #[error("user {0:?}: no such user (create it, or name another with --user)")]
    NoSuchUser(String),
    /// The user is root: the worker would parse packets as root.
    #[error(
        "user {0:?} has uid 0: the worker never runs as root (name an unprivileged user with --user)"
    )]
    Root(String),
    /// The user's primary group is root's.
    #[error(
        "user {0:?} has primary group 0: the worker never runs in the root group (name another user with --user)"
    )]
    RootGroup(String),
    /// Neither default user exists.
    #[error(
        "neither user \"knockd-lite\" nor \"nobody\" exists: create a system user \"knockd-lite\", or name one with --user"
    )]
    NoDefaultUser,
    /// Capabilities, Landlock and the ids are per thread: a second thread would keep them.
    #[error(
        "the process has {0} threads; the sandbox must be entered while it has exactly one (capabilities and Landlock are per thread)"
    )]
    Threads(usize),
    /// The kernel has no seccomp filters (or no kill-process action): reported, never skipped.
    #[error("seccomp filters are not available: {0} (run with --no-sandbox to go without)")]
    NoSeccomp(String),
    /// Neither Landlock nor the empty root could take the file system away.
    #[error(
        "no file system isolation: Landlock {landlock}, and the empty root failed: {chroot} (the fallback needs CAP_SYS_CHROOT; run with --no-sandbox to go without)"
    )]
    NoFsIsolation { landlock: String, chroot: String },
    /// A system call failed; `op` names it and its arguments.
    #[error("{op}: {source}")]
    Os {
        op: String,
        #[source]
        source: io::Error,
    },
    /// A check after a step found the old privilege still there.
    #[error("{0}")]
    Kept(String),
}

impl SandboxError {
    fn os(op: impl Into<String>, source: io::Error) -> SandboxError {
        SandboxError::Os {
            op: op.into(),
            source,
        }
    }
}

/// What the running kernel offers the sandbox, from [`probe`]: printed once at start-up so
/// a missing layer is reported rather than silently skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Support {
    /// The Landlock ABI version, or why there is none.
    pub(crate) landlock: Result<u32, Unavailable>,
    /// Seccomp filters with the kill-process action, or why not.
    pub(crate) seccomp: Result<(), Unavailable>,
}

/// Why a kernel feature is not there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unavailable {
    /// ENOSYS: the kernel was built without it (or is too old to know the call).
    NotInKernel,
    /// EOPNOTSUPP: built in, but disabled at boot (Landlock missing from `lsm=`).
    DisabledAtBoot,
    /// The kernel knows seccomp filters but not SECCOMP_RET_KILL_PROCESS (before 4.14).
    NoKillProcess,
    /// Any other answer.
    Error(String),
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::NotInKernel => f.write_str("not built into this kernel (ENOSYS)"),
            Unavailable::DisabledAtBoot => {
                f.write_str("disabled at boot (EOPNOTSUPP: not in the kernel's lsm= list)")
            }
            Unavailable::NoKillProcess => {
                f.write_str("no SECCOMP_RET_KILL_PROCESS (the kernel is older than 4.14)")
            }
            Unavailable::Error(e) => f.write_str(e),
        }
    }
}

impl fmt::Display for Support {
    /// One line for the log: `sandbox support: Landlock ABI 7; seccomp filters`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.landlock {
            Ok(abi) => write!(f, "Landlock ABI {abi}")?,
            Err(why) => write!(
                f,
                "Landlock not available ({why}; an empty root replaces it)"
            )?,
        }
        match &self.seccomp {
            Ok(()) => f.write_str("; seccomp filters"),
            Err(why) => write!(f, "; seccomp filters not available ({why})"),
        }
    }
}

/// Asks the running kernel what it offers, without changing anything: the Landlock ABI
/// version (`landlock_create_ruleset` with LANDLOCK_CREATE_RULESET_VERSION) and whether
/// seccomp filters can kill the whole process (SECCOMP_GET_ACTION_AVAIL).
pub(crate) fn probe() -> Support {
    Support {
        landlock: fs::landlock_abi(),
        seccomp: seccomp::available(),
    }
}

/// What [`enter`] did: for the worker's one start-up log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entered {
    /// The ids the worker now runs with (real, effective and saved alike).
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// How the file system was taken away.
    pub(crate) fs: FsIsolation,
    /// Capabilities left in the bounding set: 0, unless the process lacked CAP_SETPCAP to
    /// clear it (harmless under no_new_privs, which stops every exec from gaining them, and
    /// seccomp, which stops every exec; reported all the same).
    pub(crate) bounding_kept: u64,
    /// How many system calls the seccomp filter allows, and its length in BPF instructions.
    pub(crate) syscalls: usize,
    pub(crate) filter_len: usize,
}

impl fmt::Display for Entered {
    /// One line for the log: `uid 65534 gid 65534, no capabilities, no_new_privs, Landlock
    /// ABI 7 (no file access), seccomp: 34 system calls`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "uid {} gid {}, no capabilities, no_new_privs, {}, seccomp: {} system calls ({} BPF instructions)",
            self.uid, self.gid, self.fs, self.syscalls, self.filter_len
        )?;
        if self.bounding_kept != 0 {
            write!(
                f,
                "; bounding set {:#x} kept (no CAP_SETPCAP to clear it)",
                self.bounding_kept
            )?;
        }
        Ok(())
    }
}

/// Sandboxes the calling process for good. The worker calls it on itself once it holds
/// every descriptor it needs (capture socket, channel): nothing can be opened afterwards.
/// It must run while the process has exactly one thread, as root or with CAP_SETUID,
/// CAP_SETGID and CAP_SETPCAP (and CAP_SYS_CHROOT where the kernel has no Landlock).
///
/// The steps, in this order, each for a reason:
/// 1. Build the seccomp program, and check that seccomp and one thread are there, before
///    anything changes: a failure leaves the process as it was.
/// 2. The file system: a Landlock ruleset that handles every access right the kernel
///    knows and allows none (no path can be opened, created, executed, renamed or
///    removed), or, without Landlock, an empty root. First, because the chroot needs
///    CAP_SYS_CHROOT, and Landlock needs no_new_privs or CAP_SYS_ADMIN: it sets
///    no_new_privs itself, so a monitor without CAP_SYS_ADMIN can still do it.
/// 3. The bounding and ambient capability sets: clearing the bounding set needs
///    CAP_SETPCAP, which the change of uid below takes away.
/// 4. setgroups(0), setresgid, setresuid (all three ids; groups before gid before uid,
///    since each needs a privilege the next gives up), then a check that uid 0 cannot be
///    regained, and the process made non-dumpable (no other process of the same user, say
///    another daemon running as `nobody`, may ptrace it or read its memory).
/// 5. capset to zero: effective, permitted and inheritable (setresuid away from 0 already
///    emptied them; this says so explicitly and checks it).
/// 6. PR_SET_NO_NEW_PRIVS (again: the empty-root path has not set it yet), which seccomp
///    needs from a process without CAP_SYS_ADMIN.
/// 7. The seccomp filter, with TSYNC; a call outside the allow-list kills the process.
pub(crate) fn enter(ids: &WorkerIds, support: &Support) -> Result<Entered, SandboxError> {
    if let Err(why) = &support.seccomp {
        return Err(SandboxError::NoSeccomp(why.to_string()));
    }
    let program = seccomp::program()?;
    let threads = caps::thread_count()?;
    if threads != 1 {
        return Err(SandboxError::Threads(threads));
    }

    let fs = fs::isolate(&support.landlock)?;
    let bounding_kept = caps::drop_bounding_and_ambient()?;
    caps::become_user(ids.uid, ids.gid)?;
    caps::clear_capabilities()?;
    caps::set_no_new_privs()?;
    seccomp::install(&program)?;

    Ok(Entered {
        uid: ids.uid,
        gid: ids.gid,
        fs,
        bounding_kept,
        syscalls: policy::allow_list().len(),
        filter_len: program.len(),
    })
}

/// Test-only (`cfg(test)` or the `sandbox-test` feature): makes a system call the worker
/// never makes, `openat("/")`, which the allow-list leaves out. In a sandboxed worker the
/// kernel kills the process with SIGSYS before this returns. Without the sandbox the
/// directory opens and is closed again: `Ok(())`, nothing happened (an `execve` would
/// replace an unsandboxed worker, so it is not the probe). `Err` if something else refused.
#[cfg(any(test, feature = "sandbox-test"))]
pub(crate) fn forbidden_call() -> io::Result<()> {
    fs::open_root()
}
