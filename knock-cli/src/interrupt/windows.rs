//! Ctrl-C and Ctrl-Break on a Windows console: a console control handler that sets the
//! flag and tells Windows the event is handled, removed again on drop. Windows runs it on
//! a thread of its own.
#![allow(unsafe_code)]

use windows_sys::Win32::System::Console::{CTRL_BREAK_EVENT, CTRL_C_EVENT, SetConsoleCtrlHandler};
use windows_sys::core::BOOL;

pub(super) struct Installed;

unsafe extern "system" fn on_ctrl(event: u32) -> BOOL {
    match event {
        CTRL_C_EVENT | CTRL_BREAK_EVENT => {
            super::note_interrupt();
            1
        }
        // Closing the console, logoff, shutdown: Windows ends the process as before.
        _ => 0,
    }
}

impl Installed {
    pub(super) fn new() -> Option<Installed> {
        // SAFETY: `on_ctrl` is a valid handler for the life of the process; it only stores
        // to an atomic.
        let ok = unsafe { SetConsoleCtrlHandler(Some(on_ctrl), 1) };
        (ok != 0).then_some(Installed)
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        // SAFETY: removes the handler `new` added.
        unsafe { SetConsoleCtrlHandler(Some(on_ctrl), 0) };
    }
}
