//! The stop keeper: a small process that runs a command door's stops on time when the
//! daemon cannot (killed with SIGKILL, OOM-killed, a panic) and is not started again.
//!
//! The daemon starts it (`knockd-lite --stop-keeper JOURNAL`, the daemon's own binary
//! through `/proc/self/exe`) in a session of its own, with one end of a socket pair as its
//! stdin and no parent-death signal, and tells it every change to the stop journal: each
//! pending stop with its due time on the monotonic clock ([`msg::Message::Schedule`]), each
//! stop that has run ([`msg::Message::Done`]). The keeper only listens. When the daemon's
//! end closes:
//!
//! * after a goodbye ([`msg::Message::Bye`], a clean shutdown, which runs pending stops
//!   itself), the keeper exits and runs nothing;
//! * without one, the daemon died: the keeper runs each stop it holds when due (`%IP%`
//!   replaced by the numeric address only, `/bin/sh -c`, the daemon's `--command-limit`),
//!   logs in knockd's words to the daemon's log, takes each stop out of the journal once it
//!   has run, and exits when none is left. A SIGTERM then (systemd stopping what is left of
//!   the unit) runs them all at once, as the daemon's SIGTERM does. While the daemon lives a
//!   SIGTERM is only remembered: a unit stop signals both, and the daemon says goodbye.
//!
//! Never twice: a stop runs either in the daemon or, once the daemon is gone, in the keeper,
//! and whoever runs it takes it out of the journal. A daemon started while an earlier
//! keeper still runs asks that keeper to hand over first ([`link::retire_previous`],
//! SIGUSR1, found through the `keeper` state file), waits for it to leave, and only then
//! reads the journal. Where both die (a reboot, `systemctl restart` killing the unit's
//! processes), the journal runs the stops at the next start, as before. What remains: a
//! daemon killed while one of its stop commands runs; the keeper runs that stop again (twice
//! rather than never).
//!
//! `msg` is pure (the fuzzing hook decodes bytes with it); `book` is the keeper's state,
//! pure; `run` is the keeper process; `link` is the daemon's side. The keeper belongs to
//! the privileged side of the server: it runs door commands.

mod book;
pub(crate) mod link;
pub(crate) mod msg;
mod run;
#[cfg(test)]
mod tests;

pub(crate) use link::{ARG, HANDOVER_WAIT, KeeperLink, Launch, retire_previous};
pub(crate) use run::run;
