//! Carrying out the engine's actions in order: log lines, one-time lines and HMAC counters
//! made durable before the start command they belong to, commands, filter changes; and
//! reporting finished commands back to the engine.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use knock_core::otp::{self, OtpLine};
use knockd_engine::{Action, CommandId, CommandKind, Event, Now};

use super::Server;
use super::commands::{Deferred, Running};
use super::gate::Verdict;
use crate::capture::PacketSource;
use crate::door_files;
use crate::exec::{self, Completion, Runner};
use crate::log::Kind;
use crate::stops::Pending;

impl<S: PacketSource, R: Runner> Server<S, R> {
    /// Carries out `actions`, which the engine produced at `now`.
    pub(super) fn apply(&mut self, now: Now, actions: Vec<Action>) {
        // Doors whose knock could not be recorded: their start command must not run, or a
        // used one-time line or HMAC counter could open the door again after a restart.
        let mut unrecorded: Vec<Arc<str>> = Vec::new();
        // Start commands in this batch, and what the limits decided for those whose stop
        // came first: a start that will not run gets no stop in the journal.
        let starts: Vec<CommandId> = actions
            .iter()
            .filter_map(|a| match a {
                Action::RunCommand {
                    id,
                    kind: CommandKind::Start,
                    ..
                } => Some(*id),
                _ => None,
            })
            .collect();
        let mut decided: Vec<(CommandId, Verdict)> = Vec::new();
        let completions = completion_lines(&actions);
        // One-time lists a line could not be marked in: read again once this batch is done.
        let mut resync = Vec::new();
        for (i, action) in actions.into_iter().enumerate() {
            match action {
                Action::Log(event) => match completions.get(i).unwrap_or(&Line::Other) {
                    Line::Other => self.journal.event(now, &event),
                    Line::Completion(None) => self.journal.completion(now, &event),
                    Line::Completion(Some((start, door, src))) => {
                        // Decided now, so a dropped start's lines can be left out: the
                        // gate's line a second counts them.
                        let verdict = self.verdict(now, *start, door, *src, &mut decided);
                        if verdict != Verdict::Drop {
                            self.journal.completion(now, &event);
                        }
                    }
                },
                Action::ConsumeOneTime { door, path, line } => {
                    // Only in the file that was read: one replaced since is never written.
                    let marked = match self.lists.get(&path) {
                        Some(read) => otp::file::mark_used_in(&path, &line, read),
                        None => otp::file::mark_used(&path, &line),
                    };
                    if let Err(e) = marked {
                        let text = format!(
                            "{door}: cannot mark line {} of {} used, command not run: {e}",
                            line.line_no,
                            path.display()
                        );
                        self.journal.line(now, &text, Kind::Error);
                        unrecorded.push(door.clone());
                        resync.push((door, path, line));
                    }
                }
                Action::HmacCounterUsed { door, counter } => {
                    if let Err(e) = self.counters.record(&self.config, &door, counter, now.mono) {
                        let line = format!(
                            "{door}: cannot record HMAC counter {counter} in {}, command not run: {e}",
                            self.counters.path().display()
                        );
                        self.journal.line(now, &line, Kind::Error);
                        unrecorded.push(door);
                    }
                }
                Action::RunCommand {
                    id,
                    door,
                    src,
                    template,
                    kind,
                } => {
                    if kind == CommandKind::Start
                        && let Some(i) = unrecorded.iter().position(|d| *d == door)
                    {
                        unrecorded.swap_remove(i);
                        self.engine.cancel_start(id);
                        continue;
                    }
                    let d = Deferred {
                        id,
                        door,
                        src,
                        template,
                        kind,
                    };
                    match kind {
                        // Only at shutdown can a stop come while its start still runs.
                        CommandKind::Stop { start } if self.commands.is_running(start) => {
                            self.commands.defer(start, d);
                        }
                        // Stops are never limited: a stop whose start ran always runs.
                        CommandKind::Stop { .. } => self.run_command(now, d),
                        CommandKind::Start => {
                            let verdict = match decided.iter().position(|(s, _)| *s == id) {
                                Some(i) => decided.swap_remove(i).1,
                                None => self.decide(now, &d.door, d.src),
                            };
                            match verdict {
                                Verdict::Run => self.run_command(now, d),
                                Verdict::Queue => self.commands.enqueue(d),
                                // Its stop must not run: the door was never opened.
                                Verdict::Drop => self.engine.cancel_start(id),
                            }
                        }
                    }
                }
                Action::CaptureRulesChanged => self.turn.rules_dirty = true,
                Action::AddToSet {
                    door,
                    src,
                    set,
                    timeout,
                } => {
                    // A knock that could not be recorded opens nothing.
                    if !unrecorded.contains(&door) {
                        self.add_to_set(now, door, src, set, timeout);
                    }
                }
                Action::StopScheduled {
                    start,
                    door,
                    src,
                    template,
                    delay,
                    due,
                } => {
                    if unrecorded.contains(&door) {
                        continue; // its start is cancelled below
                    }
                    if starts.contains(&start)
                        && self.verdict(now, start, &door, src, &mut decided) == Verdict::Drop
                    {
                        continue; // its start is dropped below
                    }
                    let stop = Pending {
                        door: door.to_string(),
                        src,
                        template,
                        due_ms: 0,
                        delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    };
                    if !self.record_stop(now, start.0, stop, due) {
                        unrecorded.push(door);
                    }
                }
            }
        }
        for (door, path, line) in resync {
            self.resync_one_time(now, &door, &path, line);
        }
    }

    /// After a line could not be marked used in `path`: the door follows the list as it is
    /// on disk now (read again), so memory and disk agree and a restart changes nothing. If
    /// the list cannot be read, `line`, still unused on disk, is the active line again.
    fn resync_one_time(&mut self, now: Now, door: &str, path: &Path, line: OtpLine) {
        let reread = door_files::read_list(path)
            .map_err(|e| format!("cannot read it again: {e}"))
            .and_then(|(text, id)| {
                let actions = self
                    .engine
                    .set_one_time(door, path, &text)
                    .map_err(|e| e.to_string())?;
                Ok((actions, id))
            });
        let actions = match reread {
            Ok((actions, id)) => {
                self.lists.insert(path.to_path_buf(), id);
                let text = format!("{door}: read {} again, and follow it", path.display());
                self.journal.line(now, &text, Kind::Event);
                // The worker follows the list as read now, too.
                self.send_fresh_load(now);
                actions
            }
            Err(why) => {
                let text = format!(
                    "{door}: one-time list {}: {why}; line {} stays the active line",
                    path.display(),
                    line.line_no
                );
                self.journal.line(now, &text, Kind::Error);
                self.tell_worker_line_back(door, &line);
                self.engine.restore_one_time(door, line)
            }
        };
        self.apply(now, actions);
    }

    /// What the limits say about a start command of `door` for `src`; the rate runs on the
    /// monotonic clock, like every timer.
    fn decide(&mut self, now: Now, door: &Arc<str>, src: IpAddr) -> Verdict {
        self.commands.decide(now.mono.as_millis(), door, src)
    }

    /// The verdict on the start command `start`, decided at the first of its completion's
    /// actions that needs it and kept in `decided` for the others.
    fn verdict(
        &mut self,
        now: Now,
        start: CommandId,
        door: &Arc<str>,
        src: IpAddr,
        decided: &mut Vec<(CommandId, Verdict)>,
    ) -> Verdict {
        if let Some(&(_, v)) = decided.iter().find(|(s, _)| *s == start) {
            return v;
        }
        let v = self.decide(now, door, src);
        decided.push((start, v));
        v
    }

    /// Logs and starts one command, with `%IP%` replaced by the numeric source address.
    pub(super) fn run_command(&mut self, now: Now, d: Deferred) {
        let command = exec::expand(&d.template, d.src);
        let line = exec::running_line(&d.door, &command);
        self.journal.line(now, &line, Kind::Event);
        self.commands.spawn(
            &command,
            Running {
                id: d.id,
                door: d.door,
                kind: d.kind,
            },
        );
    }

    /// Collects finished commands without waiting, and starts queued ones in the slots
    /// they freed.
    pub(super) fn collect_completions(&mut self) {
        for (c, r) in self.commands.completions() {
            self.finished(&c, &r);
        }
        self.run_queued();
    }

    /// Starts queued start commands while slots are free.
    pub(super) fn run_queued(&mut self) {
        while let Some(d) = self.commands.next_queued() {
            let now = self.now();
            self.run_command(now, d);
        }
    }

    /// The once-a-second line per door whose start commands were queued or dropped.
    pub(super) fn report_held_back(&mut self, now: Now) {
        for (line, dropped) in self.commands.report() {
            let kind = if dropped { Kind::Error } else { Kind::Event };
            self.journal.line(now, &line, kind);
        }
    }

    /// A command finished: log a failure as knockd does; a start's stop is now scheduled
    /// `Cmd_Timeout` later (or, at shutdown, released at once).
    pub(super) fn finished(&mut self, c: &Completion, r: &Running) {
        let now = self.now();
        if let Some(body) = c.failure_body(&r.door) {
            self.journal.line(now, &body, Kind::Error);
        }
        if let CommandKind::Stop { start } = r.kind {
            self.stop_done(start.0);
        }
        if r.kind == CommandKind::Start {
            let actions = self.engine.on_command_done(now, r.id);
            self.apply(now, actions);
            for d in self.commands.take_deferred(r.id) {
                self.run_command(now, d);
            }
        }
    }
}

/// What a log action is part of.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Line {
    Other,
    /// The last `Stage` line or the `OPEN SESAME` of a completion, with its start command,
    /// door and source if it has a start command.
    Completion(Option<(CommandId, Arc<str>, IpAddr)>),
}

/// For each of `actions`, what it is part of; empty when none is a completion (the case of
/// every packet of a flood that completes nothing, which then costs no allocation). A
/// completion is, in the engine's order: its last `Stage` line, `OPEN SESAME`, what records
/// it, then its start command (if the door has one) before the next completion's lines.
fn completion_lines(actions: &[Action]) -> Vec<Line> {
    if !actions
        .iter()
        .any(|a| matches!(a, Action::Log(Event::OpenSesame { .. })))
    {
        return Vec::new();
    }
    let mut lines = vec![Line::Other; actions.len()];
    for (i, action) in actions.iter().enumerate() {
        let Action::Log(Event::OpenSesame { src, door }) = action else {
            continue;
        };
        let start = actions[i + 1..]
            .iter()
            .take_while(|a| !matches!(a, Action::Log(Event::OpenSesame { .. })))
            .find_map(|a| match a {
                Action::RunCommand {
                    id,
                    door: d,
                    src: s,
                    kind: CommandKind::Start,
                    ..
                } if d == door && s == src => Some((*id, d.clone(), *src)),
                _ => None,
            });
        lines[i] = Line::Completion(start.clone());
        if let Some(Action::Log(Event::Stage {
            src: s, door: d, ..
        })) = i.checked_sub(1).map(|j| &actions[j])
            && s == src
            && d == door
        {
            lines[i - 1] = Line::Completion(start);
        }
    }
    lines
}
