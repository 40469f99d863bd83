//! The worker's seccomp allow-list: the one place that says which system calls the worker
//! may make, each with its reason. Anything else kills the process (SIGSYS).
//!
//! How it was made: knockd-lite's serve loop was run under `strace -f` in a test namespace
//! (attached after start-up) while it received knocks, junk and SIGHUP reloads; its main
//! thread's steady state was `ppoll`, `read`, `setsockopt(SO_ATTACH_FILTER)` on a reload,
//! and memory allocation (glibc: `mmap`, `mprotect`, `brk`; musl: `mmap`, `munmap`), with
//! `fcntl(F_GETFD)` before each close in debug builds. The rest of that thread's calls (files, state, netlink, threads
//! for commands, the keeper) are the monitor's work and stay out. Calls the worker makes
//! only in rare paths (a ring rebuilt when the interface comes back, `abort`, the
//! channel's descriptor passing) are in with their reason.
//!
//! Numbers come from libc's `SYS_*` constants, so each target gets its own (x86_64 and
//! aarch64 differ); a call one architecture lacks is listed for the other only.
//!
//! Deliberately absent, so each is a kill:
//! * files: `open`, `openat`, `openat2`, `creat`, `stat` and friends, `getdents64`,
//!   `readlink`, `unlink`, `rename`, `mkdir`, `chdir` (Landlock refuses them too);
//! * programs and processes: `execve`, `execveat`, `fork`, `vfork`, `clone`, `clone3`
//!   (no threads either), `kill` (`tgkill`/`tkill` only at itself, with SIGABRT), `ptrace`,
//!   `process_vm_readv`/`writev`, `pidfd_open`, `wait4`;
//! * new endpoints: `socket`, `socketpair`, `connect`, `bind`, `listen`, `accept4` (the
//!   capture socket and the channel come from the monitor, made and bound there);
//! * sending anywhere but the channel: `write` only on the channel and stderr, `sendmsg`
//!   only on the channel, no `sendto`, `sendmmsg`, `writev`, `pwrite`: the capture socket
//!   is an AF_PACKET socket, and a write or send on it would put a raw frame on the wire;
//! * descriptors: `dup*`, `fcntl` but for F_GETFD, F_GETFL and F_SETFL, `pipe2`,
//!   `eventfd2`, `signalfd4`, `timerfd_*`, `epoll_*`, `memfd_create`, `ioctl` (std's
//!   `set_nonblocking` is an ioctl: call it before entering, or use fcntl);
//! * privileges and the sandbox itself: `setuid` and the rest of the id family, `capset`,
//!   `prctl`, `seccomp`, `landlock_*`, `unshare`, `setns`, `chroot`, `mount`, `bpf`,
//!   `perf_event_open`, `keyctl`, `io_uring_*`, `userfaultfd`;
//! * sleeping other than in `poll` (`nanosleep`, `clock_nanosleep`): the loop's pacing
//!   waits in `poll` with no descriptor.

/// The worker's channel to the monitor: its stdin, a SOCK_SEQPACKET socket (the monitor
/// starts the worker so). The only descriptor it may send on.
pub(crate) const CHANNEL_FD: u32 = 0;
/// Its stderr, for a panic's message.
const STDERR_FD: u32 = 2;

/// One allowed system call.
#[derive(Debug, Clone, Copy)]
pub(super) struct Allow {
    /// libc's constant, `SYS_read`.
    sys: &'static str,
    pub(super) nr: libc::c_long,
    pub(super) only: Only,
    pub(super) why: &'static str,
}

/// Which arguments the call is allowed with.
#[derive(Debug, Clone, Copy)]
pub(super) enum Only {
    /// Any.
    Always,
    /// Argument `arg` (a 32-bit value) is one of these.
    ArgIn(u8, &'static [u32]),
    /// Arguments `a` and `b` (32-bit values) are one of these pairs.
    PairIn(u8, u8, &'static [(u32, u32)]),
    /// Argument `arg` has none of the bits in `mask`.
    BitsClear(u8, u32),
    /// Signals only this process (`target` is the caller's pid, or with `thread` its thread
    /// id), and only with SIGABRT in argument `sig`.
    AbortSelf { target: u8, thread: bool, sig: u8 },
}

/// `allow!(SYS_name, only, why)`: the number from libc for this target, the name from the
/// constant's.
macro_rules! allow {
    ($sys:ident, $only:expr, $why:literal) => {
        Allow {
            sys: stringify!($sys),
            nr: libc::$sys,
            only: $only,
            why: $why,
        }
    };
}

impl Allow {
    /// The call's name (`read` for `SYS_read`).
    pub(super) fn name(&self) -> &'static str {
        self.sys.trim_start_matches("SYS_")
    }
}

/// The socket options the worker sets on the capture socket (`capture/linux.rs`,
/// `capture/ring.rs`): its own BPF filter, and the ring when the monitor hands over a
/// new socket. SO_RCVBUFFORCE needs CAP_NET_ADMIN and is the monitor's.
const SETSOCKOPT: &[(u32, u32)] = &[
    (libc::SOL_SOCKET as u32, libc::SO_ATTACH_FILTER as u32),
    (libc::SOL_SOCKET as u32, libc::SO_RCVBUF as u32),
    (libc::SOL_SOCKET as u32, libc::SO_TIMESTAMPNS as u32),
    (libc::SOL_PACKET as u32, libc::PACKET_VERSION as u32),
    (libc::SOL_PACKET as u32, libc::PACKET_RX_RING as u32),
    (libc::SOL_PACKET as u32, libc::PACKET_COPY_THRESH as u32),
    (libc::SOL_PACKET as u32, libc::PACKET_AUXDATA as u32),
    (libc::SOL_PACKET as u32, libc::PACKET_IGNORE_OUTGOING as u32),
];

/// The socket options the worker reads: a pending socket error, the drop counters.
const GETSOCKOPT: &[(u32, u32)] = &[
    (libc::SOL_SOCKET as u32, libc::SO_ERROR as u32),
    (libc::SOL_PACKET as u32, libc::PACKET_STATISTICS as u32),
];

/// The fcntl commands: reading the descriptor flags, reading and setting the status flags.
const FCNTL: &[u32] = &[
    libc::F_GETFD as u32,
    libc::F_GETFL as u32,
    libc::F_SETFL as u32,
];

/// Calls every architecture has under the same name.
const COMMON: &[Allow] = &[
    // The capture socket and the channel.
    allow!(
        SYS_ppoll,
        Only::Always,
        "waits on the capture socket and the channel until the engine's next timer (glibc's poll on every arch, musl's on aarch64)"
    ),
    allow!(SYS_read, Only::Always, "reads the channel from the monitor"),
    allow!(
        SYS_write,
        Only::ArgIn(0, &[CHANNEL_FD, STDERR_FD]),
        "the channel, and a panic message on stderr: no other descriptor (a write on the capture socket would send a raw frame)"
    ),
    allow!(
        SYS_recvfrom,
        Only::Always,
        "recv(2) is recvfrom: the channel (std's recv) and capture without the ring"
    ),
    allow!(
        SYS_recvmsg,
        Only::Always,
        "the channel's SCM_RIGHTS messages (a capture socket from the monitor); capture without the ring"
    ),
    allow!(
        SYS_recvmmsg,
        Only::Always,
        "capture in batches without the ring (sys/packet.rs RecvBatch)"
    ),
    allow!(
        SYS_sendmsg,
        Only::ArgIn(0, &[CHANNEL_FD]),
        "the channel's messages (sys/seqpacket.rs sends with sendmsg), on the channel only"
    ),
    allow!(
        SYS_close,
        Only::Always,
        "drops a capture socket the monitor replaced, and its ring"
    ),
    allow!(
        SYS_fcntl,
        Only::ArgIn(1, FCNTL),
        "std checks a descriptor is open (F_GETFD) before closing it in debug builds; a received socket made non-blocking (F_GETFL, F_SETFL)"
    ),
    allow!(
        SYS_setsockopt,
        Only::PairIn(1, 2, SETSOCKOPT),
        "attaches its own BPF filter to the capture socket (on each reload), and sets up the ring of a new one: only the options in SETSOCKOPT"
    ),
    allow!(
        SYS_getsockopt,
        Only::PairIn(1, 2, GETSOCKOPT),
        "a capture socket's pending error (SO_ERROR) and drop counters (PACKET_STATISTICS)"
    ),
    // Memory.
    allow!(
        SYS_mmap,
        Only::BitsClear(2, libc::PROT_EXEC as u32),
        "maps the capture ring (MAP_SHARED on the socket) and allocator memory; never executable"
    ),
    allow!(
        SYS_munmap,
        Only::Always,
        "unmaps a replaced ring and freed allocator memory"
    ),
    allow!(
        SYS_mremap,
        Only::Always,
        "the allocator grows or shrinks a large block in place"
    ),
    allow!(
        SYS_mprotect,
        Only::BitsClear(2, libc::PROT_EXEC as u32),
        "glibc's malloc grows a heap by changing its protection; never to executable"
    ),
    allow!(
        SYS_madvise,
        Only::Always,
        "the allocator gives freed pages back (MADV_DONTNEED, MADV_FREE)"
    ),
    allow!(
        SYS_brk,
        Only::Always,
        "the allocator's main heap (glibc and musl)"
    ),
    // Time, locks, randomness.
    allow!(
        SYS_clock_gettime,
        Only::Always,
        "the monotonic and wall clocks when the vDSO does not answer them"
    ),
    allow!(
        SYS_futex,
        Only::Always,
        "std's Mutex, Once and OnceLock wait and wake with it"
    ),
    allow!(
        SYS_getrandom,
        Only::Always,
        "std seeds a thread's HashMap keys (RandomState) on first use"
    ),
    // Signals and the end.
    allow!(
        SYS_rt_sigreturn,
        Only::Always,
        "returns from a signal handler (std's SIGSEGV handler that reports a stack overflow)"
    ),
    allow!(
        SYS_rt_sigprocmask,
        Only::Always,
        "abort(3) unblocks SIGABRT; the libc masks signals around some calls"
    ),
    allow!(
        SYS_restart_syscall,
        Only::Always,
        "the kernel resumes a poll interrupted by a stopped-and-continued process"
    ),
    allow!(
        SYS_getpid,
        Only::Always,
        "abort(3) on glibc names its own process; std::process::id"
    ),
    allow!(SYS_gettid, Only::Always, "abort(3) names its own thread"),
    allow!(
        SYS_tgkill,
        Only::AbortSelf {
            target: 0,
            thread: false,
            sig: 2
        },
        "abort(3) on glibc raises SIGABRT at itself, so a double panic dies of SIGABRT, not SIGSYS"
    ),
    allow!(
        SYS_tkill,
        Only::AbortSelf {
            target: 0,
            thread: true,
            sig: 1
        },
        "abort(3) on musl raises SIGABRT at its own thread"
    ),
    allow!(SYS_exit, Only::Always, "a thread ends"),
    allow!(
        SYS_exit_group,
        Only::Always,
        "the worker ends (the channel closed, SIGTERM, a panic's exit code)"
    ),
];

/// Calls only x86_64 has (aarch64's libcs use the newer call listed in COMMON).
#[cfg(target_arch = "x86_64")]
const ARCH: &[Allow] = &[allow!(
    SYS_poll,
    Only::Always,
    "musl's poll on x86_64 (aarch64 has only ppoll)"
)];

#[cfg(not(target_arch = "x86_64"))]
const ARCH: &[Allow] = &[];

/// Every allowed call for this target.
pub(super) fn allow_list() -> Vec<Allow> {
    COMMON.iter().chain(ARCH).copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_entry_is_unique_and_has_a_reason() {
        let list = allow_list();
        let mut names = HashSet::new();
        let mut numbers = HashSet::new();
        for a in &list {
            assert!(names.insert(a.name()), "{} is listed twice", a.name());
            assert!(
                numbers.insert(a.nr),
                "{} has the number of another entry",
                a.name()
            );
            assert!(
                a.why.split_whitespace().count() >= 3,
                "{} needs a reason: {:?}",
                a.name(),
                a.why
            );
        }
        assert!(list.len() >= 25, "{} entries", list.len());
    }

    #[test]
    fn what_must_stay_out_is_out() {
        let allowed: HashSet<libc::c_long> = allow_list().iter().map(|a| a.nr).collect();
        let forbidden = [
            ("openat", libc::SYS_openat),
            ("openat2", libc::SYS_openat2),
            ("execve", libc::SYS_execve),
            ("execveat", libc::SYS_execveat),
            ("clone", libc::SYS_clone),
            ("clone3", libc::SYS_clone3),
            ("socket", libc::SYS_socket),
            ("connect", libc::SYS_connect),
            ("bind", libc::SYS_bind),
            ("ptrace", libc::SYS_ptrace),
            ("kill", libc::SYS_kill),
            ("ioctl", libc::SYS_ioctl),
            ("setuid", libc::SYS_setuid),
            ("setresuid", libc::SYS_setresuid),
            ("capset", libc::SYS_capset),
            ("prctl", libc::SYS_prctl),
            ("seccomp", libc::SYS_seccomp),
            ("unshare", libc::SYS_unshare),
            ("mount", libc::SYS_mount),
            ("bpf", libc::SYS_bpf),
            ("io_uring_setup", libc::SYS_io_uring_setup),
            ("memfd_create", libc::SYS_memfd_create),
        ];
        for (name, nr) in forbidden {
            assert!(!allowed.contains(&nr), "{name} must not be allowed");
        }
    }
}
