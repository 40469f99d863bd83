//! knockd-lite's matching engine: knockd's semantics with knockd's bugs fixed, as a pure
//! state machine, and the capture filter it derives from the doors.
//!
//! * [`Engine`]: packets and time in, [`Action`]s out;
//! * [`filter`]: [`CaptureRule`](filter::CaptureRule), which packets can matter at all;
//! * [`bpf`]: capture rules compiled to a classic BPF program for the kernel, and an
//!   interpreter that runs such a program the way the kernel does.
//!
//! No syscalls, no clock reads, no file I/O: the runtime passes time and packets in and
//! carries out the returned [`Action`]s, so traces replay on a virtual clock. Per-packet cost
//! is O(1) in the number of live attempts, and live attempts are capped. At the cap the
//! oldest attempt still at its first step moves into a fixed-size, time-sliced Bloom filter
//! (`first_steps`), where a spoofed flood from any number of sources cannot push it out;
//! its second step brings it back as an exact attempt.
//!
//! Matching, per packet:
//! 1. A packet counts only if some door's step has its protocol and port, its TCP flags
//!    satisfy that step's rule, and it is sent to a local address (or to the door's `Target`).
//! 2. Each attempt of the packet's source then looks at it: a TCP packet whose flags do not
//!    satisfy the attempt's current rule (the step's own flags, else the door's `TCPFlags`)
//!    is ignored; the expected step advances the attempt; anything else cancels it.
//! 3. If the source had no attempt, or the packet cancelled one, every door whose first
//!    step it is starts a fresh attempt (so a retransmitted first knock starts over).
//! 4. `Seq_Timeout` bounds the whole sequence from the first knock, in milliseconds.
//! 5. Under pressure (a first step moved to the filter) a source's second step finds the
//!    first one there, with a deadline up to `Seq_Timeout / 16` earlier than the exact one;
//!    packets between the two steps do not cancel it. `docs/knockd-lite-matching.md` says
//!    why that is safe.
//!
//! Time comes in as [`Now`], both clocks read at one moment: every timer and timeout
//! (`Seq_Timeout`, `Cmd_Timeout`, when a stop is due) runs on the monotonic one, and only
//! HMAC windows follow the wall clock, so a step of the wall clock in either direction
//! neither freezes a timer nor fires one early.

pub mod bpf;
pub mod filter;

mod action;
mod attempt;
mod door;
mod first_steps;
mod hmac_door;
mod time;
mod timers;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use knock_core::conf::Config;
use knock_core::hit::{HitError, Proto};
use knock_core::otp::{self, OtpLine};
use knock_core::secret::Secret;
use knock_core::wire::KnockPacket;

pub use action::{Action, CommandId, CommandKind, Event};
pub use hmac_door::used_counter_lifetime_ms;
pub use time::{MAX_PACKET_AGE_MS, Mono, Now, Timestamp};

use crate::filter::CaptureRule;
use attempt::{Attempt, Table};
use door::{Door, Index, Kind};
use first_steps::FirstSteps;
use timers::{Deadlines, PendingStop, Stops};

/// While HMAC doors exist, the longest the engine goes without looking at the wall clock
/// for a window move, in ms (see [`Engine::next_deadline`]).
pub const HMAC_RECHECK_MS: u64 = 1000;

/// Default cap on live attempts (`--max-attempts`): about 2 MiB. Beyond it first steps go
/// to the first-step filter, so the cap bounds memory, not the flood a knock survives.
pub const DEFAULT_MAX_ATTEMPTS: usize = 20_000;

/// Default memory for first steps beyond the cap (`--first-step-memory`): 8 MiB, shared by
/// the doors' `Seq_Timeout`s in proportion to their length. About 1% false positives at
/// 720,000 distinct first steps a second with a 5-second timeout (see
/// `docs/knockd-lite-matching.md`).
pub const DEFAULT_FIRST_STEP_MEMORY: usize = 8 << 20;

/// What the engine needs besides the config: things the runtime reads from the system.
#[derive(Debug, Default)]
pub struct Inputs {
    /// The interface's addresses: knocks must be sent to one of them (or a door's Target).
    pub local_addrs: Vec<IpAddr>,
    /// The text of each one-time door's list, by door name.
    pub one_time: HashMap<String, String>,
    /// The secret and used counters of each HMAC door, by door name.
    pub hmac: HashMap<String, HmacInput>,
    /// HMAC doors whose windows are supplied ([`Engine::set_hmac_window`]) instead of
    /// derived from a secret, with their used counters, by door name: knockd-lite's
    /// sandboxed worker, which never holds a secret.
    pub hmac_supplied: HashMap<String, BTreeSet<u64>>,
}

/// An HMAC door's secret and the counters already used (as persisted by the runtime).
#[derive(Debug)]
pub struct HmacInput {
    pub secret: Secret,
    pub used: BTreeSet<u64>,
}

/// Tunables from the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Cap on live attempts; at least 1.
    pub max_attempts: usize,
    /// Bytes for first steps beyond the cap; 0 forgets them (the oldest is dropped).
    pub first_step_memory: usize,
    /// Keys the first-step filter's hash. The runtime passes a random one, so nobody
    /// outside can pick sources that collide; replays pass a fixed one.
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            first_step_memory: DEFAULT_FIRST_STEP_MEMORY,
            seed: 0,
        }
    }
}

/// Why a config and its inputs cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("door [{door}]: no one-time list was given to the engine")]
    MissingOneTimeList { door: String },
    /// The message says what is wrong without quoting the line (a one-time list is a
    /// secret); it is not also the `source()`.
    #[error(
        "{}:{line}: {} (one-time list of door [{door}])",
        path.display(),
        error.without_text()
    )]
    OneTimeLine {
        door: String,
        path: PathBuf,
        line: usize,
        error: HitError,
    },
    #[error("door [{door}]: no HMAC secret was given to the engine")]
    MissingHmacSecret { door: String },
    #[error("door [{door}]: the HMAC secret in {} is empty", path.display())]
    EmptyHmacSecret { door: String, path: PathBuf },
    #[error("door [{door}]: {message}")]
    HmacParams { door: String, message: String },
}

/// One HMAC door's live window ([`Engine::hmac_windows`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HmacWindow {
    pub door: Arc<str>,
    pub center: u64,
    pub sequences: Vec<(u64, Vec<knock_core::hit::Hit>)>,
}

/// What a completion reported by another process claims ([`Engine::on_completed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proof {
    /// A door with one fixed sequence.
    Fixed,
    /// A one-time door's active line, by its 1-based line number.
    OneTime { line_no: usize },
    /// An HMAC door's counter, one of its live window.
    Hmac { counter: u64 },
}

impl fmt::Display for Proof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Proof::Fixed => f.write_str("its fixed sequence"),
            Proof::OneTime { line_no } => write!(f, "one-time line {line_no}"),
            Proof::Hmac { counter } => write!(f, "HMAC counter {counter}"),
        }
    }
}

/// Why [`Engine::on_completed`] refused a completion.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The name is quoted: it comes from the other process, not from the config.
    #[error("no door {} in the configuration", knock_core::text::quoted(door))]
    NoSuchDoor { door: String },
    /// The door exists but `proof` is not what it takes now: another kind of door, a
    /// line that is not the active one, a counter outside the live window.
    #[error("door [{door}] does not take {proof} now")]
    Proof { door: String, proof: Proof },
}

/// A config's doors, built by [`Engine::prepare`] and not yet in use.
pub struct Prepared {
    doors: Vec<Door>,
    local: Vec<IpAddr>,
}

impl Prepared {
    /// The capture rules the engine will have once this is committed.
    pub fn capture_rules(&self) -> Vec<CaptureRule> {
        door::capture_rules(&self.doors)
    }
}

/// Counters for `-D` output and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets given to `on_packet`.
    pub packets: u64,
    /// Packets that matched no door (wrong port, flags or destination).
    pub ignored: u64,
    pub live_attempts: usize,
    /// Sources with at least one live attempt.
    pub sources: usize,
    /// First-step attempts moved into the first-step filter at the cap.
    pub first_steps_filed: u64,
    /// First-step attempts forgotten at the cap (no filter memory, or already expired).
    pub first_steps_dropped: u64,
    /// Second steps whose first step was found in the filter.
    pub first_steps_recalled: u64,
    /// Bytes the first-step filter has allocated.
    pub first_step_bytes: usize,
    /// Attempts evicted at the cap further along (only when no first-step attempt was left).
    pub evicted_later: u64,
}

/// The matching engine. See the module documentation for the rules.
pub struct Engine {
    doors: Vec<Door>,
    /// The HMAC doors' indexes: timers look at these, not at every door, so a config with
    /// 100,000 fixed doors costs nothing per packet.
    hmac_doors: Vec<usize>,
    index: Index,
    local: HashSet<IpAddr>,
    attempts: Table,
    first_steps: FirstSteps,
    /// The next door's `uid`.
    next_uid: u64,
    deadlines: Deadlines,
    stops: Stops,
    /// Latest monotonic time seen, in ms: it never runs backwards inside the engine.
    mono: u64,
    /// The wall clock at the latest call, as given (it may step either way): for HMAC
    /// windows only.
    wall: u64,
    next_command: u64,
    max_attempts: usize,
    stats: Stats,
    scratch: Vec<u32>,
    starts: Vec<(u32, u64)>,
}

impl Engine {
    /// Builds an engine for `config`. The returned actions are start-up events (for
    /// example a one-time door with no sequences left).
    pub fn new(
        config: &Config,
        inputs: Inputs,
        options: Options,
        now: Now,
    ) -> Result<(Engine, Vec<Action>), EngineError> {
        let mut engine = Engine {
            doors: Vec::new(),
            hmac_doors: Vec::new(),
            index: Index::new(),
            local: HashSet::new(),
            attempts: Table::with_capacity(options.max_attempts),
            first_steps: FirstSteps::new(options.first_step_memory, options.seed),
            next_uid: 1,
            deadlines: Deadlines::default(),
            stops: Stops::default(),
            mono: now.mono.as_millis(),
            wall: now.wall.as_millis(),
            next_command: 1,
            max_attempts: options.max_attempts.max(1),
            stats: Stats::default(),
            scratch: Vec::new(),
            starts: Vec::new(),
        };
        let actions = engine.reload(config, inputs, now)?;
        Ok((engine, actions))
    }

    /// Switches to a new config. Attempts at doors whose definition (and one-time line or
    /// HMAC secret) did not change carry over; others are dropped. Pending stop commands
    /// always survive. On error the engine is unchanged.
    ///
    /// [`Engine::prepare`] then [`Engine::commit`], for a runtime that has nothing else to
    /// apply with the new doors.
    pub fn reload(
        &mut self,
        config: &Config,
        inputs: Inputs,
        now: Now,
    ) -> Result<Vec<Action>, EngineError> {
        let next = self.prepare(config, inputs, now)?;
        Ok(self.commit(next))
    }

    /// The first half of a reload: builds the new doors, and changes nothing the engine
    /// matches with. The runtime can look at them ([`Prepared::capture_rules`]), install
    /// what goes with them (the capture filter), and [`Engine::commit`] them only if that
    /// worked, so doors and filter change together or not at all.
    pub fn prepare(
        &mut self,
        config: &Config,
        mut inputs: Inputs,
        now: Now,
    ) -> Result<Prepared, EngineError> {
        self.advance(now);
        let (mono, wall) = (self.mono, self.wall);
        let mut doors = config
            .doors
            .iter()
            .map(|c| Door::build(c, &mut inputs, mono, wall))
            .collect::<Result<Vec<_>, _>>()?;
        for door in &mut doors {
            door.queue = self.deadlines.queue_for(door.seq_timeout_ms);
        }
        Ok(Prepared {
            doors,
            local: inputs.local_addrs,
        })
    }

    /// The second half of a reload: switches to the doors `next` holds.
    pub fn commit(&mut self, next: Prepared) -> Vec<Action> {
        let Prepared { mut doors, local } = next;
        let mut out = Vec::new();
        for door in &doors {
            if let Kind::OneTime(ot) = &door.kind
                && ot.lines.is_empty()
            {
                out.push(Action::Log(Event::OneTimeExhausted {
                    door: door.name.clone(),
                }));
            }
        }
        // Old door index -> new door index, for doors that did not change. Each new door
        // takes at most one old one: two identical doors (one name, one definition) stay
        // two doors, each with its own attempts. Candidates are looked up by name, so this
        // is linear in the number of doors.
        let mut by_name: HashMap<&str, Vec<usize>> = HashMap::with_capacity(doors.len());
        for (i, door) in doors.iter().enumerate() {
            by_name.entry(&door.name).or_default().push(i);
        }
        let mut taken = vec![false; doors.len()];
        let mapping: Vec<Option<u32>> = self
            .doors
            .iter()
            .map(|old| {
                let candidates = by_name.get(&*old.name)?;
                let i = candidates
                    .iter()
                    .copied()
                    .find(|&i| !taken[i] && old.same_as(&doors[i]))?;
                taken[i] = true;
                Some(i as u32)
            })
            .collect();
        drop(by_name);
        for (old, new) in self.doors.iter().zip(&mapping) {
            if let Some(new) = new {
                doors[*new as usize].uid = old.uid;
            }
            if let (Kind::Hmac(old), Some(new)) = (&old.kind, new)
                && let Kind::Hmac(new) = &mut doors[*new as usize].kind
            {
                new.merge_used(old);
            }
        }
        for door in doors.iter_mut().filter(|d| d.uid == 0) {
            door.uid = self.next_uid;
            self.next_uid += 1;
        }
        let timeouts: Vec<u64> = doors.iter().map(|d| d.seq_timeout_ms).collect();
        self.first_steps.configure(&timeouts);
        for slot in self.attempts.all_slots() {
            let door = self.attempts.get(slot).map(|a| a.door as usize);
            match door.and_then(|d| mapping.get(d).copied().flatten()) {
                Some(new) => {
                    if let Some(a) = self.attempts.get_mut(slot) {
                        a.door = new;
                    }
                }
                None => {
                    self.attempts.remove(slot);
                }
            }
        }
        self.doors = doors;
        self.hmac_doors = (0..self.doors.len())
            .filter(|&i| matches!(self.doors[i].kind, Kind::Hmac(_)))
            .collect();
        self.local = local.into_iter().collect();
        self.index = door::build_index(&self.doors);
        self.deadlines.prune(&self.attempts);
        out.push(Action::CaptureRulesChanged);
        out
    }

    /// Replaces the interface's addresses (after an address change).
    pub fn set_local_addrs(&mut self, addrs: impl IntoIterator<Item = IpAddr>) {
        self.local = addrs.into_iter().collect();
    }

    /// The packets that can matter, for the capture filter. Deduplicated, in door order.
    pub fn capture_rules(&self) -> Vec<CaptureRule> {
        door::capture_rules(&self.doors)
    }

    /// For output others may see (`--check`): the capture rules of the doors that are not
    /// HMAC doors, and each HMAC door's name with the number of rules of its live window.
    /// An HMAC door's rules are its live sequences: anyone who saw them could knock them.
    pub fn capture_rules_without_hmac(&self) -> (Vec<CaptureRule>, Vec<(Arc<str>, usize)>) {
        let shown = door::capture_rules(self.doors.iter().filter(|d| !d.is_hmac()));
        let hidden = self
            .hmac_doors
            .iter()
            .map(|&i| {
                let d = &self.doors[i];
                (d.name.clone(), door::capture_rules([d]).len())
            })
            .collect();
        (shown, hidden)
    }

    /// When `on_tick` next has something to do, on the monotonic clock: an attempt
    /// expiring, a stop command due, or an HMAC window moving. The wall clock can step, so
    /// while HMAC doors exist the window is looked at again at least every
    /// [`HMAC_RECHECK_MS`]: after a step it follows within that time, not a step later.
    pub fn next_deadline(&self) -> Option<Mono> {
        let attempts = self.deadlines.earliest(&self.attempts).map(|(d, _)| d);
        let hmac = self
            .hmac_doors
            .iter()
            .filter_map(|&i| match &self.doors[i].kind {
                Kind::Hmac(h) => h.next_change().map(|wall| {
                    let wait = wall.saturating_sub(self.wall).min(HMAC_RECHECK_MS);
                    self.mono.saturating_add(wait)
                }),
                _ => None,
            });
        attempts
            .into_iter()
            .chain(self.stops.earliest())
            .chain(hmac)
            .min()
            .map(Mono::from_millis)
    }

    /// Runs what is due at `now`: expired attempts, stop commands, HMAC window moves.
    pub fn on_tick(&mut self, now: Now) -> Vec<Action> {
        let now = self.advance(now);
        let mut out = Vec::new();
        self.run_timers(now, &mut out);
        self.tidy();
        out
    }

    /// The start command `id` finished at `now`; its stop command (if any) is due
    /// `Cmd_Timeout` later. Returns what is due already (a zero `Cmd_Timeout`).
    pub fn on_command_done(&mut self, now: Now, id: CommandId) -> Vec<Action> {
        let now = self.advance(now);
        let mut out = Vec::new();
        if let Some((stop, due)) = self.stops.start_finished(id, now) {
            out.push(scheduled(stop, due));
        }
        self.run_timers(now, &mut out);
        out
    }

    /// The one-time list of `door` as it is on disk now, `text`, read again because marking
    /// a line failed (the file is immutable, was replaced or edited): the door follows the
    /// file from its first unused line, so memory and disk stay in step and a restart
    /// changes nothing. `path` names the file in errors. On error nothing changes.
    pub fn set_one_time(
        &mut self,
        door: &str,
        path: &Path,
        text: &str,
    ) -> Result<Vec<Action>, EngineError> {
        let lines = otp::unused_lines(text)
            .collect::<Result<VecDeque<_>, _>>()
            .map_err(|e| EngineError::OneTimeLine {
                door: door.to_string(),
                path: path.to_path_buf(),
                line: e.line_no,
                error: e.error,
            })?;
        Ok(self.replace_one_time(door, |_| lines.clone()))
    }

    /// Puts `line` back as the active line of `door`, after marking it failed and the list
    /// could not be read again: the disk still has it unused, so memory does too.
    pub fn restore_one_time(&mut self, door: &str, line: OtpLine) -> Vec<Action> {
        self.replace_one_time(door, |lines| {
            let mut lines = lines.clone();
            if lines.front() != Some(&line) {
                lines.push_front(line.clone());
            }
            lines
        })
    }

    /// Gives the one-time doors named `door` the lines `f` makes from their current ones.
    fn replace_one_time(
        &mut self,
        door: &str,
        f: impl Fn(&VecDeque<OtpLine>) -> VecDeque<OtpLine>,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        for d in self.doors.iter_mut().filter(|d| &*d.name == door) {
            let flags = d.flags();
            if let Kind::OneTime(ot) = &mut d.kind {
                ot.lines = f(&ot.lines);
                d.variants = ot.variants(flags);
                out.push(Action::Log(match ot.lines.front() {
                    Some(line) => Event::OneTimeNext {
                        door: d.name.clone(),
                        line_no: line.line_no,
                    },
                    None => Event::OneTimeExhausted {
                        door: d.name.clone(),
                    },
                }));
            }
        }
        if !out.is_empty() {
            self.index = door::build_index(&self.doors);
            out.push(Action::CaptureRulesChanged);
        }
        out
    }

    /// The start command `id` was not run after all (its one-time line or HMAC counter could
    /// not be recorded): its stop command must not run either.
    pub fn cancel_start(&mut self, id: CommandId) {
        self.stops.cancel(id);
    }

    /// Takes over a stop command pending from before a restart (the runtime keeps them on
    /// disk): it runs at `due`, or at once, in the returned actions, if `due` is not later
    /// than `now`. Returns the id its `CommandKind::Stop { start }` will carry; there is no
    /// start command to wait for.
    pub fn restore_stop(
        &mut self,
        now: Now,
        door: Arc<str>,
        src: IpAddr,
        template: String,
        due: Mono,
    ) -> (CommandId, Vec<Action>) {
        let now = self.advance(now);
        let start = CommandId(self.next_command);
        self.next_command += 1;
        let stop = PendingStop {
            start,
            door,
            src,
            template,
            delay: std::time::Duration::ZERO,
        };
        let mut out = Vec::new();
        if due.as_millis() <= now {
            self.push_stop(stop, &mut out);
        } else {
            self.stops.schedule(stop, due.as_millis());
        }
        (start, out)
    }

    /// For SIGTERM: every pending stop command, to run now so no door is left open.
    pub fn shutdown(&mut self, now: Now) -> Vec<Action> {
        self.advance(now);
        let mut out = Vec::new();
        for stop in self.stops.drain() {
            out.push(Action::Log(Event::StopAtShutdown {
                src: stop.src,
                door: stop.door.clone(),
            }));
            self.push_stop(stop, &mut out);
        }
        out
    }

    pub fn stats(&self) -> Stats {
        let counts = self.first_steps.counts;
        Stats {
            live_attempts: self.attempts.live(),
            sources: self.attempts.sources(),
            first_steps_filed: counts.inserted,
            first_steps_dropped: counts.dropped,
            first_steps_recalled: counts.recalled,
            first_step_bytes: self.first_steps.allocated(),
            ..self.stats
        }
    }

    /// Each HMAC door's live window, derived again from its secret: the door, the counter
    /// the window is centred on, and each live counter's sequence. For a process that
    /// supplies windows to an engine without the secret ([`Engine::set_hmac_window`]).
    pub fn hmac_windows(&self) -> Vec<HmacWindow> {
        self.hmac_doors
            .iter()
            .filter_map(|&i| match &self.doors[i].kind {
                Kind::Hmac(h) => h.window().map(|(center, sequences)| HmacWindow {
                    door: self.doors[i].name.clone(),
                    center,
                    sequences,
                }),
                _ => None,
            })
            .collect()
    }

    /// The centre of each HMAC door's window, in door order: cheap, to tell when
    /// [`Engine::hmac_windows`] changed.
    pub fn hmac_centers(&self) -> Vec<Option<u64>> {
        self.hmac_doors
            .iter()
            .map(|&i| match &self.doors[i].kind {
                Kind::Hmac(h) => h.center(),
                _ => None,
            })
            .collect()
    }

    /// Gives the HMAC doors named `door` whose windows are supplied
    /// ([`Inputs::hmac_supplied`]) the window centred on `center`, with `sequences` by
    /// counter. Attempts at counters that left the window end with it.
    pub fn set_hmac_window(
        &mut self,
        now: Now,
        door: &str,
        center: u64,
        sequences: &[(u64, Vec<knock_core::hit::Hit>)],
    ) -> Vec<Action> {
        let mono = self.advance(now);
        let mut changed = false;
        for d in self.doors.iter_mut().filter(|d| &*d.name == door) {
            let flags = d.flags();
            if let Kind::Hmac(h) = &mut d.kind
                && h.is_supplied()
            {
                d.variants = h.supply(center, sequences, mono, flags);
                changed = true;
            }
        }
        if !changed {
            return Vec::new();
        }
        self.index = door::build_index(&self.doors);
        vec![Action::CaptureRulesChanged]
    }

    /// Whether a door is called `name`.
    pub fn has_door(&self, name: &str) -> bool {
        self.doors.iter().any(|d| &*d.name == name)
    }

    /// A sequence of `door` completed by `src` in another process (knockd-lite's
    /// sandboxed worker, which runs its own engine on the packets), with what it claims as
    /// `proof`. This engine, which has seen no packet, checks the claim against its own
    /// doors and, if it holds, completes the door as [`Engine::on_packet`] would have:
    /// the same actions (log, one-time line or HMAC counter, set, commands, stop) in the
    /// same order. A refused claim changes nothing.
    ///
    /// The first door named `door` whose `proof` holds is taken: a fixed door takes
    /// [`Proof::Fixed`], a one-time door the line number of its active line, an HMAC door
    /// a counter of its live window (a used one gives the replay line, as a knock would).
    pub fn on_completed(
        &mut self,
        now: Now,
        door: &str,
        src: IpAddr,
        proof: Proof,
    ) -> Result<Vec<Action>, Refused> {
        let now = self.advance(now);
        let mut out = Vec::new();
        self.run_timers(now, &mut out);
        let mut named = false;
        let mut found = None;
        for (i, d) in self.doors.iter().enumerate() {
            if &*d.name != door {
                continue;
            }
            named = true;
            let variant = match (&d.kind, proof) {
                (Kind::Fixed, Proof::Fixed) => d.variants.first().map(|v| v.key),
                (Kind::OneTime(ot), Proof::OneTime { line_no }) => ot
                    .lines
                    .front()
                    .filter(|l| l.line_no == line_no)
                    .map(|l| l.line_no as u64),
                (Kind::Hmac(_), Proof::Hmac { counter }) => {
                    d.variants.iter().find(|v| v.key == counter).map(|v| v.key)
                }
                _ => None,
            };
            if let Some(variant) = variant {
                found = Some((i as u32, variant));
                break;
            }
        }
        let Some((d, variant)) = found else {
            return Err(if named {
                Refused::Proof {
                    door: door.to_string(),
                    proof,
                }
            } else {
                Refused::NoSuchDoor {
                    door: door.to_string(),
                }
            });
        };
        // The door's live attempts from `src` are finished with it, as in `on_packet`.
        self.complete(src, d, variant, &mut out);
        self.tidy();
        Ok(out)
    }

    /// Feeds one captured packet; `now` is when it was received ([`Now::of_packet`]).
    pub fn on_packet(&mut self, now: Now, p: &KnockPacket) -> Vec<Action> {
        let now = self.advance(now);
        let mut out = Vec::new();
        self.run_timers(now, &mut out);
        self.stats.packets += 1;
        if !self.visible(p) {
            self.stats.ignored += 1;
            return out;
        }
        if self.first_steps.live(now) {
            self.recall_first_steps(p, now);
        }
        let mut slots = std::mem::take(&mut self.scratch);
        self.attempts.slots_of(&p.src, &mut slots);
        let mut had_attempt = false;
        let mut cancelled = false;
        for &slot in &slots {
            let Some(a) = self.attempts.get(slot) else {
                continue; // completed earlier in this loop along with a sibling
            };
            let door = &self.doors[a.door as usize];
            let Some(seq) = door.seq_of(a.variant) else {
                self.attempts.remove(slot);
                continue;
            };
            // An attempt at a door for another destination does not see the packet at all.
            if !door.accepts_dst(&p.dst, &self.local) {
                continue;
            }
            had_attempt = true;
            let next = seq[a.stage as usize];
            if p.proto == Proto::Tcp {
                let rule = if next.proto == Proto::Tcp {
                    next.rule
                } else {
                    door.flags()
                };
                if !rule.matches(p.tcp_flags) {
                    continue;
                }
            }
            if next.proto == p.proto && next.port == p.dst_port {
                let len = seq.len();
                self.advance_attempt(slot, len, &mut out);
            } else {
                self.attempts.remove(slot);
                cancelled = true;
            }
        }
        self.scratch = slots;
        if !had_attempt || cancelled {
            self.start_attempts(p, now, &mut out);
        }
        self.tidy();
        out
    }

    /// Takes in both clocks; returns the monotonic time, which never goes back (packets
    /// of one batch may come a millisecond out of order).
    fn advance(&mut self, now: Now) -> u64 {
        self.mono = self.mono.max(now.mono.as_millis());
        self.wall = now.wall.as_millis();
        self.mono
    }

    fn visible(&self, p: &KnockPacket) -> bool {
        self.index
            .get(&(p.proto, p.dst_port))
            .is_some_and(|entries| {
                entries.iter().any(|e| {
                    e.matches_flags(p.proto, p.tcp_flags)
                        && self.doors[e.door as usize].accepts_dst(&p.dst, &self.local)
                })
            })
    }

    /// If `p` is the second step of a sequence whose first step from `p.src` was moved to
    /// the first-step filter, brings that attempt back (at its first step, with the filter's
    /// deadline) so the packet advances it as if it had never left the table.
    fn recall_first_steps(&mut self, p: &KnockPacket, now: u64) {
        let mut starts = std::mem::take(&mut self.starts);
        starts.clear();
        if let Some(entries) = self.index.get(&(p.proto, p.dst_port)) {
            for e in entries {
                let door = &self.doors[e.door as usize];
                if e.step == 1
                    && e.matches_flags(p.proto, p.tcp_flags)
                    && door.accepts_dst(&p.dst, &self.local)
                {
                    starts.push((e.door, door.variants[e.variant as usize].key));
                }
            }
        }
        for &(d, variant) in &starts {
            if self.attempts.has_attempt(&p.src, d, variant) {
                continue;
            }
            let door = &self.doors[d as usize];
            let (timeout, queue) = (door.seq_timeout_ms, door.queue);
            let key = self.first_steps.key(p.src, door.uid, variant);
            let Some(deadline) = self.first_steps.recall(timeout, key, now) else {
                continue;
            };
            self.make_room();
            let attempt = Attempt {
                src: p.src,
                door: d,
                variant,
                stage: 1,
                deadline,
            };
            let handle = self.attempts.insert(attempt);
            self.deadlines.push(queue, handle, deadline, &self.attempts);
        }
        self.starts = starts;
    }

    fn advance_attempt(&mut self, slot: u32, len: usize, out: &mut Vec<Action>) {
        let Some(a) = self.attempts.get_mut(slot) else {
            return;
        };
        a.stage += 1;
        let (src, door, variant, stage) = (a.src, a.door, a.variant, a.stage);
        out.push(Action::Log(Event::Stage {
            src,
            door: self.doors[door as usize].name.clone(),
            stage,
        }));
        if stage as usize == len {
            self.attempts.remove(slot);
            self.complete(src, door, variant, out);
        }
    }

    /// Starts an attempt at every door whose first step this packet is.
    fn start_attempts(&mut self, p: &KnockPacket, now: u64, out: &mut Vec<Action>) {
        let mut starts = std::mem::take(&mut self.starts);
        starts.clear();
        if let Some(entries) = self.index.get(&(p.proto, p.dst_port)) {
            for e in entries {
                let door = &self.doors[e.door as usize];
                if e.step == 0
                    && e.matches_flags(p.proto, p.tcp_flags)
                    && door.accepts_dst(&p.dst, &self.local)
                {
                    starts.push((e.door, door.variants[e.variant as usize].key));
                }
            }
        }
        for &(d, key) in &starts {
            let door = &self.doors[d as usize];
            // A completion earlier in this packet may have moved a one-time door on.
            let Some(variant) = door.variants.iter().find(|v| v.key == key) else {
                continue;
            };
            if self.attempts.has_attempt(&p.src, d, key) {
                continue;
            }
            let single = variant.seq.len() == 1;
            let (name, queue, timeout) = (door.name.clone(), door.queue, door.seq_timeout_ms);
            out.push(Action::Log(Event::Stage {
                src: p.src,
                door: name,
                stage: 1,
            }));
            if single {
                self.complete(p.src, d, key, out);
                continue;
            }
            self.make_room();
            let deadline = now.saturating_add(timeout);
            let handle = self.attempts.insert(Attempt {
                src: p.src,
                door: d,
                variant: key,
                stage: 1,
                deadline,
            });
            self.deadlines.push(queue, handle, deadline, &self.attempts);
        }
        self.starts = starts;
    }

    /// Makes room for one more attempt under the cap.
    fn make_room(&mut self) {
        while self.attempts.live() >= self.max_attempts && self.evict_one() {}
    }

    /// Makes room for one attempt: the oldest still at its first step moves to the
    /// first-step filter, else the one closest to its deadline goes. False if there was
    /// nothing to evict.
    fn evict_one(&mut self) -> bool {
        if let Some(slot) = self.attempts.oldest_first_step() {
            if let Some(a) = self.attempts.remove(slot) {
                let door = &self.doors[a.door as usize];
                let key = self.first_steps.key(a.src, door.uid, a.variant);
                let start = a.deadline.saturating_sub(door.seq_timeout_ms);
                self.first_steps.insert(door.seq_timeout_ms, key, start);
            }
            return true;
        }
        self.deadlines.prune(&self.attempts);
        match self.deadlines.earliest(&self.attempts) {
            Some((_, h)) => {
                self.attempts.remove(h.slot);
                self.stats.evicted_later += 1;
                true
            }
            None => false,
        }
    }

    /// `src` finished sequence `variant` of door `d`.
    fn complete(&mut self, src: IpAddr, d: u32, variant: u64, out: &mut Vec<Action>) {
        // Other live sequences of the same door (HMAC windows) are finished too.
        let mut slots = std::mem::take(&mut self.scratch);
        self.attempts.slots_of(&src, &mut slots);
        for &slot in &slots {
            if self.attempts.get(slot).is_some_and(|a| a.door == d) {
                self.attempts.remove(slot);
            }
        }
        self.scratch = slots;

        let mono = self.mono;
        let door = &mut self.doors[d as usize];
        let name = door.name.clone();
        let mut consumed = false;
        match &mut door.kind {
            Kind::Hmac(h) => {
                if !h.mark_used(variant, mono) {
                    out.push(Action::Log(Event::HmacReplay {
                        src,
                        door: name,
                        counter: variant,
                    }));
                    return;
                }
                out.push(Action::Log(Event::OpenSesame {
                    src,
                    door: name.clone(),
                }));
                out.push(Action::HmacCounterUsed {
                    door: name.clone(),
                    counter: variant,
                });
            }
            Kind::OneTime(ot) => {
                out.push(Action::Log(Event::OpenSesame {
                    src,
                    door: name.clone(),
                }));
                if let Some(line) = ot.lines.pop_front() {
                    out.push(Action::ConsumeOneTime {
                        door: name.clone(),
                        path: ot.path.clone(),
                        line,
                    });
                    consumed = true;
                }
            }
            Kind::Fixed => out.push(Action::Log(Event::OpenSesame {
                src,
                door: name.clone(),
            })),
        }
        let ipv6 = src.is_ipv6();
        let start = door.conf.start_command_for(ipv6).map(str::to_string);
        let stop = door.conf.stop_command_for(ipv6).map(str::to_string);
        let delay = door.conf.cmd_timeout;
        match (door.conf.nft_set_for(ipv6), door.conf.nft_set_for(!ipv6)) {
            (Some(d), _) => out.push(Action::AddToSet {
                door: name.clone(),
                src,
                set: d.set.clone(),
                timeout: delay,
            }),
            (None, Some(_)) => out.push(Action::Log(Event::NoSetForFamily {
                src,
                door: name.clone(),
            })),
            (None, None) => {}
        }
        if let Some(start) = start {
            let id = CommandId(self.next_command);
            self.next_command += 1;
            // knockd runs a stop only after a start: both belong to one fork.
            if let Some(template) = stop {
                let stop = PendingStop {
                    start: id,
                    door: name.clone(),
                    src,
                    template,
                    delay,
                };
                out.push(scheduled(
                    &stop,
                    self.mono.saturating_add(time::millis(delay)),
                ));
                self.stops.wait_for(stop);
            }
            out.push(Action::RunCommand {
                id,
                door: name.clone(),
                src,
                template: start,
                kind: CommandKind::Start,
            });
        }
        if consumed {
            let door = &mut self.doors[d as usize];
            let flags = door.flags();
            if let Kind::OneTime(ot) = &door.kind {
                door.variants = ot.variants(flags);
                out.push(Action::Log(match ot.lines.front() {
                    Some(line) => Event::OneTimeNext {
                        door: name,
                        line_no: line.line_no,
                    },
                    None => Event::OneTimeExhausted { door: name },
                }));
            }
            self.index = door::build_index(&self.doors);
            out.push(Action::CaptureRulesChanged);
        }
    }

    fn run_timers(&mut self, now: u64, out: &mut Vec<Action>) {
        let mut moved = false;
        let wall = self.wall;
        for &i in &self.hmac_doors {
            let door = &mut self.doors[i];
            let flags = door.flags();
            if let Kind::Hmac(h) = &mut door.kind
                && let Some(variants) = h.refresh(wall, now, flags, &door.variants)
            {
                door.variants = variants;
                moved = true;
            }
        }
        if moved {
            self.index = door::build_index(&self.doors);
            out.push(Action::CaptureRulesChanged);
        }
        while let Some(h) = self.deadlines.pop_due(now, &self.attempts) {
            if let Some(a) = self.attempts.remove(h.slot) {
                out.push(Action::Log(Event::SequenceTimeout {
                    src: a.src,
                    door: self.doors[a.door as usize].name.clone(),
                    stage: a.stage,
                }));
            }
        }
        while let Some(stop) = self.stops.pop_due(now) {
            out.push(Action::Log(Event::CommandTimeout {
                src: stop.src,
                door: stop.door.clone(),
            }));
            self.push_stop(stop, out);
        }
    }

    fn push_stop(&mut self, stop: PendingStop, out: &mut Vec<Action>) {
        let id = CommandId(self.next_command);
        self.next_command += 1;
        out.push(Action::RunCommand {
            id,
            door: stop.door,
            src: stop.src,
            template: stop.template,
            kind: CommandKind::Stop { start: stop.start },
        });
    }

    /// Keeps `next_deadline` exact and queue memory proportional to live attempts.
    fn tidy(&mut self) {
        self.deadlines.prune(&self.attempts);
        let kept = self.deadlines.entries() + self.attempts.first_step_entries();
        if kept > 4 * self.attempts.live() + 4096 {
            self.deadlines.compact(&self.attempts);
            self.attempts.compact();
        }
    }
}

/// The action that tells the runtime `stop` is pending until `due`.
fn scheduled(stop: &PendingStop, due: u64) -> Action {
    Action::StopScheduled {
        start: stop.start,
        door: stop.door.clone(),
        src: stop.src,
        template: stop.template.clone(),
        delay: stop.delay,
        due: Mono::from_millis(due),
    }
}

#[cfg(test)]
mod tests;
