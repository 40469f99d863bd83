//! SIGTERM and SIGINT: pending stop commands run at once (each after its start command,
//! if that is still running), shutdown waits for them within a bound, and the last line
//! is `shutting down`.

use std::time::{Duration, Instant};

use knock_core::wire::ParseError;

use super::{LAST_STOPS_WAIT, SHUTDOWN_WAIT, Server};
use crate::capture::PacketSource;
use crate::exec::Runner;
use crate::log::Kind;

impl<S: PacketSource, R: Runner> Server<S, R> {
    /// SIGTERM/SIGINT: run every pending stop now, wait for them (bounded), log
    /// `shutting down`.
    pub(super) fn shutdown(&mut self) {
        let now = self.now();
        let actions = self.engine.shutdown(now);
        self.apply(now, actions);
        let mut deadline = Instant::now() + SHUTDOWN_WAIT;
        let mut forced = false;
        while self.commands.busy() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                if forced {
                    break;
                }
                forced = true;
                deadline = Instant::now() + LAST_STOPS_WAIT;
                // Better a stop after a start that hangs than a door left open.
                for d in self.commands.take_all_deferred() {
                    let line = format!(
                        "{}: start command still running after {} s, running its stop command anyway",
                        d.door,
                        SHUTDOWN_WAIT.as_secs()
                    );
                    self.journal.line(self.now(), &line, Kind::Error);
                    self.run_command(self.now(), d);
                }
                continue;
            }
            for (c, r) in self.commands.wait(left.min(Duration::from_millis(100))) {
                self.finished(&c, &r);
            }
        }
        let now = self.now();
        if self.commands.running() > 0 {
            let line = format!(
                "{} command(s) still running at exit, left to finish on their own",
                self.commands.running()
            );
            self.journal.line(now, &line, Kind::Error);
        }
        if self.journal.debug_enabled() {
            self.debug_stats(now);
        }
        self.journal.line(now, "shutting down", Kind::Event);
        self.journal.flush(now);
    }

    fn debug_stats(&mut self, now: knockd_engine::Now) {
        let c = self.capture.stats();
        let e = self.engine.stats();
        self.journal.debug(
            now,
            &format!(
                "capture: {} frames, {} dropped by the kernel; engine: {} packets, {} ignored, {} live attempts",
                c.delivered, c.kernel_drops, e.packets, e.ignored, e.live_attempts
            ),
        );
        for (reason, n) in ParseError::ALL.iter().zip(self.turn.refused) {
            if n > 0 {
                self.journal
                    .debug(now, &format!("frames not used ({reason}): {n}"));
            }
        }
    }
}
