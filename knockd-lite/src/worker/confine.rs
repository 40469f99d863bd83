//! The worker's one call into the sandbox (issue 17 part A: user, capabilities,
//! no_new_privs, seccomp, Landlock), made once it holds every descriptor it needs and
//! before it reads a frame.
//!
//! The monitor resolved the user (`--user`, or the default) and passes its ids on the
//! worker's command line; the worker asks the kernel what it offers and enters.

use crate::sys::sandbox::{self, SandboxError, WorkerIds};

/// Enters the sandbox as `uid`/`gid`.
pub(crate) fn enter(uid: u32, gid: u32) -> Result<(), SandboxError> {
    let ids = WorkerIds {
        name: String::new(),
        uid,
        gid,
    };
    let support = sandbox::probe();
    sandbox::enter(&ids, &support).map(|_| ())
}
