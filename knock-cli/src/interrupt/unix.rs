//! SIGINT on Unix: a sigaction handler that sets the flag, the previous action restored
//! on drop. Without SA_RESTART, so a terminal read in progress (the secret prompt) returns
//! EINTR and puts the terminal back, instead of waiting for Enter.
#![allow(unsafe_code)]

use std::mem::MaybeUninit;

pub(super) struct Installed {
    previous: libc::sigaction,
}

extern "C" fn on_sigint(_signal: libc::c_int) {
    super::note_interrupt();
}

impl Installed {
    pub(super) fn new() -> Option<Installed> {
        let mut previous = MaybeUninit::<libc::sigaction>::uninit();
        // SAFETY: an all-zero sigaction is a valid value (empty mask, no flags); the
        // fields set after it are the handler's address and an initialised mask.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: sigemptyset writes the mask it is given, which lives in `action`.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: both pointers are valid for the call; the handler only stores to an
        // atomic, which is async-signal-safe.
        let rc = unsafe { libc::sigaction(libc::SIGINT, &action, previous.as_mut_ptr()) };
        if rc != 0 {
            return None;
        }
        // SAFETY: sigaction succeeded, so it wrote the previous action.
        Some(Installed {
            previous: unsafe { previous.assume_init() },
        })
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        // SAFETY: `previous` is the action sigaction reported, valid to install again.
        unsafe { libc::sigaction(libc::SIGINT, &self.previous, std::ptr::null_mut()) };
    }
}
