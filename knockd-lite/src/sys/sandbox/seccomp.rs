//! The seccomp filter: the allow-list (`policy.rs`) compiled to BPF with `seccompiler`,
//! any other call (or another architecture's calling convention) killing the process.

use std::collections::BTreeMap;
use std::io;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::policy::{Allow, Only, allow_list};
use super::{SandboxError, Unavailable};
use crate::sys::check;

/// Whether the kernel has seccomp filters that can kill the whole process.
pub(super) fn available() -> Result<(), Unavailable> {
    let action: u32 = libc::SECCOMP_RET_KILL_PROCESS;
    // SAFETY: SECCOMP_GET_ACTION_AVAIL reads one u32 through the pointer, which is valid.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_ACTION_AVAIL,
            0,
            &action as *const u32,
        )
    };
    let Err(e) = check(rc) else {
        return Ok(());
    };
    Err(match e.raw_os_error() {
        Some(libc::ENOSYS) => Unavailable::NotInKernel,
        Some(libc::EOPNOTSUPP) => Unavailable::NoKillProcess,
        // EINVAL: no CONFIG_SECCOMP, or a kernel too old to know the question.
        Some(libc::EINVAL) => {
            // SAFETY: PR_GET_SECCOMP takes no pointer.
            let mode = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) };
            if mode < 0 {
                Unavailable::NotInKernel
            } else {
                Unavailable::NoKillProcess
            }
        }
        _ => Unavailable::Error(format!("seccomp(SECCOMP_GET_ACTION_AVAIL): {e}")),
    })
}

/// The BPF program for this process: the allow-list for the target's architecture, with
/// the pid and thread id of the caller where an entry signals only itself.
pub(super) fn program() -> Result<BpfProgram, SandboxError> {
    let bpf = |e: seccompiler::BackendError| {
        SandboxError::os("seccomp filter", io::Error::other(e.to_string()))
    };
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(bpf)?;
    let pid = std::process::id();
    // SAFETY: gettid takes nothing and cannot fail.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u32;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for allow in allow_list() {
        rules.insert(allow.nr, rules_for(&allow, pid, tid).map_err(bpf)?);
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        arch,
    )
    .map_err(bpf)?;
    filter.try_into().map_err(bpf)
}

/// The conditions under which `allow` matches (no rules: always).
fn rules_for(
    allow: &Allow,
    pid: u32,
    tid: u32,
) -> Result<Vec<SeccompRule>, seccompiler::BackendError> {
    let eq32 = |arg: u8, value: u32| {
        SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, value.into())
    };
    Ok(match allow.only {
        Only::Always => Vec::new(),
        Only::ArgIn(arg, values) => values
            .iter()
            .map(|&v| SeccompRule::new(vec![eq32(arg, v)?]))
            .collect::<Result<_, _>>()?,
        Only::PairIn(a, b, pairs) => pairs
            .iter()
            .map(|&(x, y)| SeccompRule::new(vec![eq32(a, x)?, eq32(b, y)?]))
            .collect::<Result<_, _>>()?,
        Only::BitsClear(arg, mask) => vec![SeccompRule::new(vec![SeccompCondition::new(
            arg,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq(mask.into()),
            0,
        )?])?],
        Only::AbortSelf {
            target,
            thread,
            sig,
        } => {
            let me = if thread { tid } else { pid };
            vec![SeccompRule::new(vec![
                eq32(target, me)?,
                eq32(sig, libc::SIGABRT as u32)?,
            ])?]
        }
    })
}

/// Installs `program` on every thread (TSYNC). seccompiler sets no_new_privs first.
pub(super) fn install(program: &BpfProgram) -> Result<(), SandboxError> {
    seccompiler::apply_filter_all_threads(program).map_err(|e| {
        SandboxError::os(
            "seccomp(SECCOMP_SET_MODE_FILTER, TSYNC)",
            io::Error::other(e.to_string()),
        )
    })
}
