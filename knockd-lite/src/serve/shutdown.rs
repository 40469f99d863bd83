//! SIGTERM and SIGINT: knockers this process put in nftables sets are taken out, pending
//! stop commands run at once (each after its start command, which is killed with its
//! process group if it is still running after a while), shutdown waits for them within a
//! bound, the stop keeper is told goodbye (so it runs none of them again), and the last
//! line is `shutting down`.

use std::time::Duration;

use knock_core::wire::ParseError;

use super::{KILL_WAIT, LAST_STOPS_WAIT, SHUTDOWN_WAIT, Server};

/// What shutdown is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Stops and the starts they are held behind.
    Starts,
    /// Starts it killed, so their stops can run.
    Killed,
    /// The last stops.
    Last,
}
use crate::capture::PacketSource;
use crate::exec::Runner;
use crate::log::Kind;

impl<S: PacketSource, R: Runner> Server<S, R> {
    /// SIGTERM/SIGINT: run every pending stop now, wait for them (bounded), log
    /// `shutting down`.
    ///
    /// A stop whose start is still running waits for it, for [`SHUTDOWN_WAIT`]; then the
    /// start is killed with its process group and the stop runs once it is gone, so a
    /// start cannot finish after its stop and leave the door open. Should a killed start
    /// still not be reported within [`KILL_WAIT`], its stop runs anyway. Stops get
    /// [`LAST_STOPS_WAIT`] more to finish. Waiting runs on the monotonic clock.
    pub(super) fn shutdown(&mut self) {
        // No completion is taken from here on: the worker goes first.
        self.stop_worker();
        let now = self.now();
        self.close_sets(now);
        // Queued starts never ran: they are dropped, and so are their stops.
        let queued = self.commands.take_queued();
        if !queued.is_empty() {
            for d in &queued {
                self.engine.cancel_start(d.id);
                // Its stop was journalled when it was queued.
                self.stop_done(d.id.0);
            }
            let line = format!(
                "shutting down: {} queued start command(s) not run",
                queued.len()
            );
            self.journal.line(now, &line, Kind::Error);
        }
        self.report_held_back(now);
        let actions = self.engine.shutdown(now);
        self.apply(now, actions);
        let mut stage = Stage::Starts;
        let mut since = now.mono;
        while self.commands.busy() {
            let now = self.now();
            let waited =
                Duration::from_millis(now.mono.as_millis().saturating_sub(since.as_millis()));
            let limit = match stage {
                Stage::Starts => SHUTDOWN_WAIT,
                Stage::Killed => KILL_WAIT,
                Stage::Last => LAST_STOPS_WAIT,
            };
            if waited >= limit {
                match stage {
                    Stage::Starts => {
                        for start in self.commands.blocking_starts() {
                            let line = format!(
                                "start command {start} still running after {} s at shutdown: \
                                 killed with its process group, its stop command runs next",
                                SHUTDOWN_WAIT.as_secs()
                            );
                            self.journal.line(now, &line, Kind::Error);
                            self.commands.kill(start);
                        }
                        stage = Stage::Killed;
                    }
                    Stage::Killed => {
                        // Better a stop after a start that will not die than a door left
                        // open.
                        for d in self.commands.take_all_deferred() {
                            let line = format!(
                                "{}: start command still running after it was killed, \
                                 running its stop command anyway",
                                d.door
                            );
                            self.journal.line(now, &line, Kind::Error);
                            self.run_command(now, d);
                        }
                        stage = Stage::Last;
                    }
                    Stage::Last => break,
                }
                since = now.mono;
                continue;
            }
            let left = limit - waited;
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
        // Every pending stop ran here: the keeper leaves without running any.
        self.keeper.bye();
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
