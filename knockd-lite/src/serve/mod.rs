//! The daemon: start-up, the main loop and shutdown, wiring capture, the engine, commands,
//! the log, state files and signals together.
//!
//! One thread does all the matching. It waits on the capture socket, the signalfd and the
//! command threads' eventfd at once, for at most the time until the engine's next timer
//! (and a once-a-second tick for address changes and log folding). Commands run on their
//! own threads, and `-l` lookups on another, so neither ever holds up capture.
//!
//! Start-up order matters: signals are blocked before any thread exists; everything that
//! can fail (config, interface, capture, pidfile) is checked, and warnings (a log file that
//! cannot be opened) are given, while they still reach the terminal; then `-d` detaches,
//! before the first thread is started.

mod apply;
mod commands;
mod doors;
mod feed;
pub(crate) mod gate;
mod journal;
mod lookup;
mod reload;
mod settings;
mod shutdown;
mod start;
pub(crate) mod state;
#[cfg(test)]
mod tests;
mod worker;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use knock_core::conf::Config;
use knock_core::wire::{KnockPacket, ParseError, parse_frame};
use knockd_engine::bpf::{Coarse, MAX_INSNS};
use knockd_engine::{Action, Engine, Mono, Now, Timestamp};

use crate::args::Args;
use crate::capture::{LinkEvent, PacketSource};
use crate::door_files::ListIds;
use crate::exec::{Executor, Runner};
use crate::hmac_state::HmacCounters;
use crate::keeper::KeeperLink;
use crate::log::Kind;
use crate::netif::{Change, Interface, Watch};
use crate::nft::Sets;
use crate::pidfile::Pidfile;
use crate::signals::{Signal, Signals};
use crate::stops::{Pending, StopJournal};
use commands::Commands;
use doors::OpenSets;
pub(crate) use feed::Feed;
use journal::Journal;
use settings::Settings;

/// How long shutdown waits for pending stop commands (and the start commands they follow)
/// before it kills the starts still running.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(20);
/// How long it then waits for the killed starts to be reported gone.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How long it waits for the last stops.
const LAST_STOPS_WAIT: Duration = Duration::from_secs(5);
/// The once-a-second duties.
const TICK: Duration = Duration::from_secs(1);
/// How often the loop wakes while log lines wait for host names.
const NAME_POLL: Duration = Duration::from_millis(10);

/// Why start-up failed: the error for stderr and the exit code (1 runtime, 2 config).
#[derive(Debug)]
struct Failure {
    code: i32,
    error: anyhow::Error,
}

impl Failure {
    /// A configuration error: exit 2.
    fn config(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code: 2,
            error: error.into(),
        }
    }

    /// A failure while starting: exit 1.
    fn runtime(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code: 1,
            error: error.into(),
        }
    }
}

/// Both clocks: the time since boot for timers, the wall clock (which packet timestamps
/// use) for HMAC windows and log stamps.
pub(crate) fn clock_now() -> Now {
    Now::new(
        Mono::from_millis(crate::sys::boot_ms()),
        Timestamp::from_system_time(SystemTime::now()),
    )
}

/// Runs the server until SIGTERM or SIGINT; returns the exit code.
pub(crate) fn run(args: Args) -> i32 {
    // First: threads started later inherit the blocked signals.
    let mut signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("knockd-lite: {e}");
            return 1;
        }
    };
    let mut server = match Server::start(args, &signals) {
        Ok(server) => server,
        Err(f) => {
            eprintln!("knockd-lite: {:#}", f.error);
            return f.code;
        }
    };
    server.serve(&mut signals);
    server.shutdown();
    0
}

/// What one captured frame led to, carried out after the batch in capture order.
enum Item {
    Actions(Vec<Action>),
    /// A `-D` line.
    Debug(String),
}

/// Looks an interface up by name (`netif::find`; a fixed answer in tests).
type Lookup = fn(&str) -> io::Result<Option<Interface>>;

/// Everything the running server holds: generic over where packets come from and what runs
/// the commands, so the main loop's rules are tested with a replay source and a runner that
/// runs nothing.
struct Server<S, R> {
    args: Args,
    /// The start-up directory, for relative paths on reload.
    base: PathBuf,
    settings: Settings,
    config: Config,
    engine: Engine,
    capture: S,
    watch: Watch,
    lookup: Lookup,
    journal: Journal,
    commands: Commands<R>,
    counters: HmacCounters,
    /// The one-time list files as they were read: a line is marked only in the same file.
    lists: ListIds,
    /// nftables sets: netlink, or a fake in tests.
    sets: Box<dyn Sets>,
    /// Elements this process added and that may still be live.
    open_sets: OpenSets,
    /// Stop commands pending, on disk.
    stops: StopJournal,
    /// The stop keeper, told of every change to `stops`.
    keeper: KeeperLink,
    /// Both clocks (virtual ones in tests).
    clock: Box<dyn Fn() -> Now>,
    /// Kept for its `Drop`, which removes the file.
    _pidfile: Option<Pidfile>,
    /// What the loop keeps between turns.
    turn: Turn,
}

/// What the main loop keeps between turns.
#[derive(Debug)]
struct Turn {
    /// The capture filter must be rebuilt from the engine's rules.
    rules_dirty: bool,
    /// Frames the parser refused, by reason (for `-D`).
    refused: [u64; ParseError::ALL.len()],
    /// The last capture error logged, so a persistent one is logged once.
    last_capture_error: Option<String>,
    /// When the once-a-second duties are next due.
    next_tick: Instant,
    /// The capture filter is coarser than the rules (they do not fit the kernel).
    coarse: bool,
}

impl Default for Turn {
    fn default() -> Self {
        Turn {
            rules_dirty: false,
            refused: [0; ParseError::ALL.len()],
            last_capture_error: None,
            next_tick: Instant::now() + TICK,
            coarse: false,
        }
    }
}

impl Server<Feed, Executor> {
    /// The main loop; returns when asked to shut down.
    fn serve(&mut self, signals: &mut Signals) {
        loop {
            self.receive();
            for signal in signals.pending() {
                match signal {
                    Signal::Reload => self.reload(signals),
                    Signal::Shutdown(_) => return,
                }
            }
            self.housekeep();
        }
    }
}

impl<S: PacketSource, R: Runner> Server<S, R> {
    /// Logs `starting up` and carries out what the engine asked for as it was built.
    fn begin(&mut self, first_actions: Vec<Action>) {
        let now = self.now();
        let line = format!("starting up, listening on {}", self.settings.interface);
        self.journal.line(now, &line, Kind::Event);
        self.apply(now, first_actions);
        // Once at start, so a filter coarser than the rules is said.
        self.turn.rules_dirty = true;
        self.sync_rules();
    }

    fn now(&self) -> Now {
        (self.clock)()
    }

    /// After `begin`: reports a stop journal that had to be set aside, and takes over the
    /// stops pending when the last process ended.
    fn take_over(&mut self, problem: Option<String>, pending: Vec<Pending>) {
        if let Some(problem) = problem {
            self.journal.line(self.now(), &problem, Kind::Error);
        }
        self.sync_keeper();
        self.restore_stops(pending);
    }

    /// Waits for frames (at most until the next timer or tick), feeds them to the engine
    /// and carries out what they asked for, in capture order.
    fn receive(&mut self) {
        let now = self.now();
        let mut timeout = self
            .turn
            .next_tick
            .saturating_duration_since(Instant::now());
        if let Some(d) = self.engine.next_deadline() {
            let left = d.as_millis().saturating_sub(now.mono.as_millis());
            timeout = timeout.min(Duration::from_millis(left));
        }
        if self.journal.waiting() {
            timeout = timeout.min(NAME_POLL);
        }
        let mut batch: Vec<(Now, Item)> = Vec::new();
        self.capture_batch(timeout, &mut batch);
        for (at, item) in batch {
            match item {
                Item::Actions(actions) => self.apply(at, actions),
                Item::Debug(line) => self.journal.debug(at, &line),
            }
        }
        self.hear_worker();
    }

    /// Everything else a loop turn does: finished commands, due timers, the interface's
    /// comings and goings, the once-a-second duties, held log lines, the capture filter.
    fn housekeep(&mut self) {
        self.collect_completions();
        let now = self.now();
        if self.engine.next_deadline().is_some_and(|d| d <= now.mono) {
            let actions = self.engine.on_tick(now);
            self.apply(now, actions);
        }
        self.link_events(now);
        self.feed_worker(now);
        self.sync_hmac_windows();
        if Instant::now() >= self.turn.next_tick {
            self.turn.next_tick = Instant::now() + TICK;
            self.poll_addresses(now);
            self.report_held_back(now);
            self.journal.tick(now);
            self.sync_keeper();
        }
        self.journal.poll();
        self.sync_rules();
    }

    /// Waits up to `timeout` for frames and feeds each to the engine; the actions each
    /// packet asks for (and `-D` lines) are collected in `out` with the packet's time.
    ///
    /// The kernel stamps frames with the wall clock: both clocks are read once, at the
    /// batch's first frame, and each frame is dated back from that reading by its age
    /// ([`Now::of_packet`]), so a wall clock that stepped meanwhile dates nothing wrongly.
    fn capture_batch(&mut self, timeout: Duration, out: &mut Vec<(Now, Item)>) {
        let debug = self.journal.debug_enabled();
        let Server {
            capture,
            engine,
            turn,
            args,
            clock,
            ..
        } = self;
        let only_ipv4 = args.only_ipv4;
        let mut read_at: Option<Now> = None;
        let result = capture.next_batch(timeout, &mut |frame| {
            let batch_now = *read_at.get_or_insert_with(&**clock);
            let at = batch_now.of_packet(Timestamp::from_millis(frame.ts_ms()));
            match parse_frame(frame.link, frame.data) {
                Ok(p) if only_ipv4 && p.src.is_ipv6() => {}
                Ok(p) => {
                    if debug {
                        out.push((at, Item::Debug(describe(&p, frame.vlan))));
                    }
                    let actions = engine.on_packet(at, &p);
                    if !actions.is_empty() {
                        out.push((at, Item::Actions(actions)));
                    }
                }
                Err(e) => {
                    turn.refused[e as usize] += 1;
                    if debug {
                        out.push((at, Item::Debug(format!("frame not used: {e}"))));
                    }
                }
            }
        });
        match result {
            Ok(_) => self.turn.last_capture_error = None,
            Err(e) => {
                let message = format!("capture: {e}");
                if self.turn.last_capture_error.as_ref() != Some(&message) {
                    self.journal.line(self.now(), &message, Kind::Error);
                    self.turn.last_capture_error = Some(message);
                }
                // Do not spin on an error that persists.
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Rebuilds the capture filter if the engine's rules changed. On failure the old filter
    /// stays (the kernel keeps it), and the next change tries again.
    fn sync_rules(&mut self) {
        if !std::mem::take(&mut self.turn.rules_dirty) {
            return;
        }
        let rules = self.engine.capture_rules();
        match self.capture.set_rules(&rules) {
            Ok(coarse) => self.note_filter(self.now(), rules.len(), coarse),
            Err(e) => {
                let line = format!("capture filter: {e}");
                self.journal.line(self.now(), &line, Kind::Error);
            }
        }
    }

    /// Logs when the capture filter becomes coarser than the rules (they need more than the
    /// kernel's 4,096 instructions) or exact again; not on every change (HMAC windows move
    /// every step).
    fn note_filter(&mut self, now: Now, rules: usize, coarse: Option<Coarse>) {
        let coarse = coarse.map(|c| (c.needed, c.keeps.len()));
        let was = std::mem::replace(&mut self.turn.coarse, coarse.is_some());
        let line = match (was, coarse) {
            (false, Some((needed, ranges))) => format!(
                "capture filter: the doors' {rules} rules need {needed} BPF instructions, more \
                 than the kernel's {MAX_INSNS}: using a coarser filter of {ranges} port \
                 ranges, and checking the rest here (--check shows it)"
            ),
            (true, None) => "capture filter: the rules fit the kernel again, exact filter".into(),
            _ => return,
        };
        self.journal.line(now, &line, Kind::Warning);
    }

    /// Logs the capture's interface events (down, up, gone, back), and looks at the
    /// addresses at once when there are any: a returning interface brings its own.
    fn link_events(&mut self, now: Now) {
        let events = self.capture.take_events();
        if events.is_empty() {
            return;
        }
        for event in events {
            let kind = match event {
                LinkEvent::Down | LinkEvent::Lost => Kind::Error,
                LinkEvent::Up | LinkEvent::Restored { .. } => Kind::Event,
            };
            let line = event.describe(&self.settings.interface);
            self.journal.line(now, &line, kind);
        }
        self.poll_addresses(now);
    }

    /// Picks up address changes (a DHCP renewal, an address added by hand).
    fn poll_addresses(&mut self, now: Now) {
        let Ok(current) = (self.lookup)(self.watch.name()) else {
            return;
        };
        let changes = self.watch.update(current);
        if changes.is_empty() {
            return;
        }
        for change in &changes {
            // The capture reports the link's own comings and goings.
            if let Change::AddressesChanged { .. } = change {
                let line = change.describe(self.watch.name());
                self.journal.line(now, &line, Kind::Event);
            }
        }
        self.engine
            .set_local_addrs(self.watch.addrs().iter().copied());
        self.tell_worker_addrs();
    }
}

/// A `-D` line for one packet: `tcp 192.0.2.1 -> 192.0.2.2:7000 flags syn`.
pub(super) fn describe(p: &KnockPacket, vlan: Option<u16>) -> String {
    let dst = SocketAddr::new(p.dst, p.dst_port);
    let mut s = format!("{} {} -> {dst}", p.proto, p.src);
    if p.proto == knock_core::hit::Proto::Tcp {
        s.push_str(&format!(" flags {}", p.tcp_flags));
    }
    if let Some(v) = vlan {
        s.push_str(&format!(" vlan {v}"));
    }
    s
}
