//! Door commands in flight: which engine command each running process is, start commands
//! waiting behind the limits ([`Gate`]), and stop commands held back until their start
//! command has finished (at shutdown).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use knockd_engine::{CommandId, CommandKind};

use super::gate::{Gate, Limits, Verdict};
use crate::exec::{Completion, Runner};

/// A running command, as the engine knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Running {
    pub(crate) id: CommandId,
    pub(crate) door: Arc<str>,
    pub(crate) kind: CommandKind,
}

/// A command to run later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Deferred {
    pub(crate) id: CommandId,
    pub(crate) door: Arc<str>,
    pub(crate) src: IpAddr,
    pub(crate) template: String,
    pub(crate) kind: CommandKind,
}

/// The commands the runner `R` runs for the engine.
#[derive(Debug)]
pub(crate) struct Commands<R> {
    runner: R,
    running: HashMap<CommandId, Running>,
    /// Stops waiting for their start, by the start's id.
    deferred: Vec<(CommandId, Deferred)>,
    /// The limits on start commands, and the starts queued behind them.
    gate: Gate,
}

impl<R: Runner> Commands<R> {
    pub(crate) fn new(runner: R, limits: Limits) -> Commands<R> {
        Commands {
            runner,
            running: HashMap::new(),
            deferred: Vec::new(),
            gate: Gate::new(limits),
        }
    }

    /// Whether a start command of `door` for `src` may run now, waits in the queue
    /// ([`Commands::enqueue`]), or is dropped; commands running count against the cap,
    /// stops included.
    pub(crate) fn decide(&mut self, now_ms: u64, door: &Arc<str>, src: IpAddr) -> Verdict {
        let running = self.running.len();
        self.gate.decide(now_ms, door, src, running)
    }

    /// Queues a start command that [`Commands::decide`] said to queue.
    pub(crate) fn enqueue(&mut self, d: Deferred) {
        self.gate.enqueue(d);
    }

    /// The next queued start command, once a slot is free.
    pub(crate) fn next_queued(&mut self) -> Option<Deferred> {
        let running = self.running.len();
        self.gate.next(running)
    }

    /// Every queued start command (at shutdown).
    pub(crate) fn take_queued(&mut self) -> Vec<Deferred> {
        self.gate.take_queued()
    }

    /// The once-a-second lines about start commands held back: (body, whether any was
    /// dropped).
    pub(crate) fn report(&mut self) -> Vec<(String, bool)> {
        let running = self.running.len();
        self.gate.report(running)
    }

    pub(crate) fn runner(&self) -> &R {
        &self.runner
    }

    /// Starts `command` (already expanded) for the engine's command `r`.
    pub(crate) fn spawn(&mut self, command: &str, r: Running) {
        self.runner.spawn(r.id, command);
        self.running.insert(r.id, r);
    }

    /// Whether the engine's command `id` is still running.
    pub(crate) fn is_running(&self, id: CommandId) -> bool {
        self.running.contains_key(&id)
    }

    /// Holds `stop` until `start` has finished.
    pub(crate) fn defer(&mut self, start: CommandId, stop: Deferred) {
        self.deferred.push((start, stop));
    }

    /// The commands that were waiting for `start`.
    pub(crate) fn take_deferred(&mut self, start: CommandId) -> Vec<Deferred> {
        let (ready, rest) = std::mem::take(&mut self.deferred)
            .into_iter()
            .partition(|(s, _)| *s == start);
        self.deferred = rest;
        ready.into_iter().map(|(_, d)| d).collect()
    }

    /// The running start commands that stops are held behind.
    pub(crate) fn blocking_starts(&self) -> Vec<CommandId> {
        let mut starts: Vec<CommandId> = self
            .deferred
            .iter()
            .map(|(s, _)| *s)
            .filter(|s| self.running.contains_key(s))
            .collect();
        starts.sort_unstable();
        starts.dedup();
        starts
    }

    /// Kills the running command `id` with its process group; its completion follows.
    pub(crate) fn kill(&mut self, id: CommandId) {
        self.runner.kill(id);
    }

    /// Every held command, whatever it waits for.
    pub(crate) fn take_all_deferred(&mut self) -> Vec<Deferred> {
        self.deferred.drain(..).map(|(_, d)| d).collect()
    }

    /// Commands running or held back.
    pub(crate) fn busy(&self) -> bool {
        !self.running.is_empty() || !self.deferred.is_empty()
    }

    pub(crate) fn running(&self) -> usize {
        self.running.len()
    }

    /// Completions that have arrived, each with what it was; without waiting.
    pub(crate) fn completions(&mut self) -> Vec<(Completion, Running)> {
        let done = self.runner.completions();
        self.match_up(done)
    }

    /// Like [`Commands::completions`], waiting up to `timeout` while any command runs.
    pub(crate) fn wait(&mut self, timeout: Duration) -> Vec<(Completion, Running)> {
        let done = self.runner.wait_idle(timeout);
        self.match_up(done)
    }

    fn match_up(&mut self, done: Vec<Completion>) -> Vec<(Completion, Running)> {
        done.into_iter()
            .filter_map(|c| self.running.remove(&c.id).map(|r| (c, r)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::{DEFAULT_LIMIT, Executor};
    use crate::serve::gate::Limits;
    use std::time::Instant;

    #[test]
    fn completions_name_their_engine_command_and_stops_wait_for_starts() {
        let mut c = Commands::new(Executor::new(DEFAULT_LIMIT).unwrap(), Limits::default());
        let door: Arc<str> = Arc::from("d");
        let start = Running {
            id: CommandId(1),
            door: door.clone(),
            kind: CommandKind::Start,
        };
        c.spawn("sleep 0.2", start.clone());
        assert!(c.is_running(CommandId(1)) && c.busy());
        let stop = Deferred {
            id: CommandId(2),
            door,
            src: "192.0.2.1".parse().unwrap(),
            template: "close %IP%".into(),
            kind: CommandKind::Stop {
                start: CommandId(1),
            },
        };
        c.defer(CommandId(1), stop.clone());
        assert!(c.take_deferred(CommandId(9)).is_empty());
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut done = Vec::new();
        while done.is_empty() {
            assert!(Instant::now() < deadline);
            done = c.wait(Duration::from_millis(100));
        }
        assert_eq!(done.len(), 1);
        assert!(done[0].0.success());
        assert_eq!(done[0].1, start);
        assert!(!c.is_running(CommandId(1)));
        assert!(c.busy(), "the stop is still held");
        assert_eq!(c.take_deferred(CommandId(1)), [stop]);
        assert!(!c.busy());
        assert_eq!(c.running(), 0);
    }
}
