//! What a door does besides its commands: knockers put in nftables sets (and taken out again
//! at a clean stop), and pending stop commands kept in the stop journal, mirrored to the
//! stop keeper, and taken over after a restart.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use knock_core::conf::seconds_text as seconds;
use knock_core::conf::{Config, NftSet};
use knockd_engine::{Mono, Now};

use super::Server;
use crate::capture::PacketSource;
use crate::exec::Runner;
use crate::keeper::link::Note;
use crate::log::{Kind, LocalTime};
use crate::stops::Pending;

/// The elements this process put in sets, until they expire: a clean stop removes those
/// still live, as it runs pending stop commands.
#[derive(Debug, Default)]
pub(crate) struct OpenSets {
    live: HashMap<(NftSet, IpAddr), (Arc<str>, Instant)>,
}

impl OpenSets {
    /// Forgets elements the kernel has expired by now.
    fn prune(&mut self, now: Instant) {
        self.live.retain(|_, (_, until)| *until > now);
    }
}

impl<S: PacketSource, R: Runner> Server<S, R> {
    /// Puts `src` in `set` for `timeout` (restarting the timeout if it is there) and logs
    /// it in knockd's style, or the kernel's reason it failed.
    pub(super) fn add_to_set(
        &mut self,
        now: Now,
        door: Arc<str>,
        src: IpAddr,
        set: NftSet,
        timeout: Duration,
    ) {
        let what = format!(
            "{src}: {door}: nft add {set} {src} timeout {}",
            seconds(timeout)
        );
        match self.sets.add(&set, src, timeout) {
            Ok(()) => {
                self.journal.line(now, &what, Kind::Event);
                let at = Instant::now();
                self.open_sets.prune(at);
                self.open_sets.live.insert((set, src), (door, at + timeout));
            }
            Err(e) => {
                let line = format!("{what}: failed: {e}");
                self.journal.line(now, &line, Kind::Error);
            }
        }
    }

    /// At a clean stop: takes every element this process added, and that has not expired,
    /// out of its set.
    pub(super) fn close_sets(&mut self, now: Now) {
        self.open_sets.prune(Instant::now());
        let mut live: Vec<_> = self.open_sets.live.drain().collect();
        live.sort_by(|a, b| (a.1.1, &a.0.1).cmp(&(b.1.1, &b.0.1)));
        for ((set, src), (door, _)) in live {
            let what = format!("{src}: {door}: shutting down, nft delete {set} {src}");
            match self.sets.delete(&set, src) {
                Ok(true) => self.journal.line(now, &what, Kind::Event),
                Ok(false) => {
                    let line = format!("{what}: already gone");
                    self.journal.line(now, &line, Kind::Event);
                }
                Err(e) => {
                    let line = format!("{what}: failed: {e}");
                    self.journal.line(now, &line, Kind::Error);
                }
            }
        }
    }

    /// The engine says the stop of start command `start` is pending until `due` (on the
    /// monotonic clock, as of `now`): keep it in the journal. False if a new entry could
    /// not be written, and then the start command must not run.
    pub(super) fn record_stop(&mut self, now: Now, start: u64, stop: Pending, due: Mono) -> bool {
        let update = self.stops.has(start);
        let door = stop.door.clone();
        // Persisted times are wall-clock (PHASE2 decision 3).
        let left = due.as_millis().saturating_sub(now.mono.as_millis());
        let due_ms = now.wall.as_millis().saturating_add(left);
        let stop = Pending { due_ms, ..stop };
        match self.stops.put(start, stop.clone()) {
            Ok(()) => {
                // The keeper holds what the journal holds, no more.
                let notes = self.keeper.schedule(start, due, &stop);
                self.keeper_notes(notes);
                true
            }
            Err(e) => {
                let tail = if update {
                    "a crash before it runs loses it"
                } else {
                    "command not run"
                };
                let line = format!(
                    "{door}: cannot record the pending stop command in {}, {tail}: {e}",
                    self.stops.path().display()
                );
                self.journal.line(now, &line, Kind::Error);
                update
            }
        }
    }

    /// A stop command has run: it leaves the journal.
    pub(super) fn stop_done(&mut self, start: u64) {
        if let Err(e) = self.stops.remove(start) {
            let line = format!("cannot update the stop journal: {e}");
            self.journal.line(self.now(), &line, Kind::Error);
        }
        let notes = self.keeper.done(start);
        self.keeper_notes(notes);
    }

    /// Starts the stop keeper if one is needed and none runs (once a second, and at
    /// start-up before stops are taken over).
    pub(super) fn sync_keeper(&mut self) {
        let notes = self.keeper.sync();
        self.keeper_notes(notes);
    }

    /// Logs what the keeper link reports.
    pub(super) fn keeper_notes(&mut self, notes: Vec<Note>) {
        for (kind, line) in notes {
            self.journal.line(self.now(), &line, kind);
        }
    }

    /// Takes over the stops pending when the last process ended: overdue ones run now,
    /// the others when due, but never later than their door's Cmd_Timeout from now.
    pub(super) fn restore_stops(&mut self, pending: Vec<Pending>) {
        for stop in pending {
            let now = self.now();
            let wall = now.wall.as_millis();
            let delay = if stop.due_ms <= wall {
                let line = format!(
                    "{}: {}: running overdue stop command (was due {})",
                    stop.src,
                    stop.door,
                    LocalTime::from_unix_ms(stop.due_ms).second_stamp()
                );
                self.journal.line(now, &line, Kind::Event);
                0
            } else {
                let delay = (stop.due_ms - wall).min(stop.delay_ms);
                let line = format!(
                    "{}: {}: stop command pending from before the restart, due in {}",
                    stop.src,
                    stop.door,
                    seconds(Duration::from_millis(delay))
                );
                self.journal.line(now, &line, Kind::Event);
                delay
            };
            let due = now.mono.plus(delay);
            let (key, actions) = self.engine.restore_stop(
                now,
                Arc::from(stop.door.as_str()),
                stop.src,
                stop.template.clone(),
                due,
            );
            let notes = self.keeper.schedule(key.0, due, &stop);
            self.keeper_notes(notes);
            self.stops.adopt(key.0, stop);
            self.apply(now, actions);
        }
    }
}

/// Whether a door of `config` has a stop command: its daemon wants a stop keeper.
pub(super) fn has_stop_commands(config: &Config) -> bool {
    config
        .doors
        .iter()
        .any(|d| d.stop_command.is_some() || d.stop_command_6.is_some())
}
