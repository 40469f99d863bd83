//! The worker process (`knockd-lite --worker IFNAME`, started by the monitor with the
//! channel as its stdin): it waits for its load and its capture socket, enters the sandbox,
//! then reads frames, runs its engine on them and tells the monitor what happened. It reads
//! no file and runs nothing; whatever goes wrong ends it, and the monitor starts another.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use knock_core::conf;
use knock_core::otp::OtpLine;
use knock_core::wire::parse_frame;
use knockd_engine::bpf::Families;
use knockd_engine::{Engine, Inputs, Mono, Now, Options, Timestamp};

use super::msg::{self, Down, Load, Up};
use super::report::{Report, report};
use crate::capture::{AfPacket, CaptureError, CaptureOptions, PacketSource};
use crate::log::{DEFAULT_FIRST_STAGE_BUDGET, Folder, Held};
use crate::sys::{self, PollFd, Received, SeqPacket};

/// The hidden argument that starts a worker (not in `--help`).
pub(crate) const ARG: &str = "--worker";

/// How the worker ends: 0 when told to (or when the monitor is gone), else a code the
/// monitor logs.
const EXIT_BAD_MESSAGE: i32 = 3;
const EXIT_BAD_LOAD: i32 = 4;
const EXIT_CHANNEL: i32 = 5;
const EXIT_SANDBOX: i32 = 6;

/// The longest wait in the loop, so timers run even on a quiet link.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// Runs the worker on the channel at stdin, to become `uid`/`gid`; returns the exit code.
pub(crate) fn run(ifname: &str, uid: u32, gid: u32) -> i32 {
    // What `ps` and /proc/PID/comm show (an exec of /proc/self/exe would say `exe`).
    sys::set_name("knockd-worker");
    let chan = SeqPacket::from_stdin();
    let mut w = Worker {
        chan,
        ifname: ifname.to_string(),
        engine: None,
        generation: 0,
        debug: false,
        only_ipv4: false,
        capture: None,
        load: Vec::new(),
        rules_dirty: false,
        link_down: false,
        last_error: None,
        out: Vec::new(),
        buf: vec![0; msg::MAX_MESSAGE + 1],
        clock: None,
        folder: Folder::new(DEFAULT_FIRST_STAGE_BUDGET),
        #[cfg(feature = "sandbox-test")]
        forbidden_port: std::env::var(FORBIDDEN_PORT_VAR)
            .ok()
            .and_then(|p| p.parse().ok()),
    };
    // Everything it needs before the sandbox closes: a load, and a capture.
    while w.engine.is_none() || w.capture.is_none() {
        if let Err(code) = w.receive(true) {
            return code;
        }
    }
    // std's hash maps take their keys from the OS on a thread's first use: taken now.
    drop(std::collections::HashMap::<u8, u8>::new());
    if let Err(e) = super::confine::enter(uid, gid) {
        w.out
            .push(Up::Failed(format!("cannot enter the sandbox: {e}")));
        let _ = w.send();
        return EXIT_SANDBOX;
    }
    w.out.push(Up::Ready {
        version: msg::VERSION,
        generation: w.generation,
    });
    loop {
        if let Err(code) = w.turn() {
            return code;
        }
    }
}

struct Worker {
    chan: SeqPacket,
    ifname: String,
    engine: Option<Engine>,
    generation: u32,
    debug: bool,
    only_ipv4: bool,
    capture: Option<AfPacket>,
    /// A load coming in chunks.
    load: Vec<u8>,
    rules_dirty: bool,
    /// `LinkDown` was sent and the capture has not delivered since.
    link_down: bool,
    last_error: Option<String>,
    /// Messages for the monitor, sent at the end of each turn.
    out: Vec<Up>,
    buf: Vec<u8>,
    /// The monitor's clocks at one moment (`Down::Clock`): ms since boot, wall ms.
    clock: Option<(u64, u64)>,
    /// First-stage lines folded here, with the log's own rule (`log::Folder`).
    folder: Folder,
    /// Test builds only: a UDP packet to this port makes the worker try a forbidden
    /// system call (the end-to-end test of the seccomp kill).
    #[cfg(feature = "sandbox-test")]
    forbidden_port: Option<u16>,
}

/// Test builds only: the environment variable naming [`Worker::forbidden_port`].
#[cfg(feature = "sandbox-test")]
pub(crate) const FORBIDDEN_PORT_VAR: &str = "KNOCKD_LITE_TEST_FORBIDDEN_UDP_PORT";

impl Worker {
    /// One loop turn: frames (or a wait), the channel, timers, the filter, messages up.
    fn turn(&mut self) -> Result<(), i32> {
        let mut timeout = MAX_WAIT;
        if let Some(d) = self.engine.as_ref().and_then(Engine::next_deadline) {
            let now = self.now().mono.as_millis();
            timeout = timeout.min(Duration::from_millis(d.as_millis().saturating_sub(now)));
        }
        // What the monitor sent (a load, a window, a clock) goes in before frames are read.
        self.receive(false)?;
        self.capture_batch(timeout);
        self.receive(false)?;
        let now = self.now();
        if let Some(engine) = &mut self.engine
            && engine.next_deadline().is_some_and(|d| d <= now.mono)
        {
            let actions = engine.on_tick(now);
            let r = report(engine, self.generation, actions);
            self.take(r);
        }
        self.sync_rules();
        if let Some(held) = self.folder.flush(now.mono.as_millis()) {
            self.out.push(suppressed(held));
        }
        self.send()
    }

    fn take(&mut self, r: Report) {
        let mono = self.now().mono.as_millis();
        fold_into(&mut self.out, &mut self.folder, mono, r.up);
        self.rules_dirty |= r.rules_changed;
    }

    fn capture_batch(&mut self, timeout: Duration) {
        let Worker {
            capture,
            engine,
            out,
            generation,
            debug,
            only_ipv4,
            rules_dirty,
            chan,
            folder,
            ..
        } = self;
        #[cfg(feature = "sandbox-test")]
        let forbidden = self.forbidden_port;
        let clock = self.clock;
        let (Some(capture), Some(engine)) = (capture.as_mut(), engine.as_mut()) else {
            let mut fds = [PollFd::readable(chan.as_raw_fd())];
            let _ = sys::poll(&mut fds, timeout);
            return;
        };
        let mut read_at = None;
        let result = capture.next_batch(timeout, &mut |frame| {
            let batch_now = *read_at.get_or_insert_with(|| now_from(clock));
            let at = batch_now.of_packet(Timestamp::from_millis(frame.ts_ns / 1_000_000));
            match parse_frame(frame.link, frame.data) {
                Ok(p) if *only_ipv4 && p.src.is_ipv6() => {}
                Ok(p) => {
                    #[cfg(feature = "sandbox-test")]
                    if forbidden.is_some_and(|port| {
                        p.proto == knock_core::hit::Proto::Udp && p.dst_port == port
                    }) {
                        // Kills a sandboxed worker (SIGSYS) before it returns.
                        let _ = crate::sys::sandbox::forbidden_call();
                    }
                    if *debug {
                        out.push(Up::Packet {
                            packet: p,
                            vlan: frame.vlan,
                        });
                    }
                    let actions = engine.on_packet(at, &p);
                    if !actions.is_empty() {
                        let r = report(engine, *generation, actions);
                        fold_into(out, folder, at.mono.as_millis(), r.up);
                        *rules_dirty |= r.rules_changed;
                    }
                }
                Err(e) => {
                    if *debug {
                        out.push(Up::Refused(e));
                    }
                }
            }
        });
        match result {
            Ok(n) => {
                self.last_error = None;
                if n > 0 {
                    self.link_down = false;
                }
            }
            Err(CaptureError::InterfaceDown { .. }) => {
                if !self.link_down {
                    self.link_down = true;
                    self.out.push(Up::LinkDown);
                }
            }
            Err(e) => {
                let text = e.to_string();
                if self.last_error.as_ref() != Some(&text) {
                    self.out.push(Up::CaptureFailed(text.clone()));
                    self.last_error = Some(text);
                }
                // Do not spin on an error that persists.
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Rebuilds the capture filter when the engine's rules changed.
    fn sync_rules(&mut self) {
        if !std::mem::take(&mut self.rules_dirty) {
            return;
        }
        let (Some(capture), Some(engine)) = (self.capture.as_mut(), self.engine.as_ref()) else {
            return;
        };
        let rules = engine.capture_rules();
        match capture.set_rules(&rules) {
            // Whether the filter is coarser than the rules, the monitor works out from the
            // same rules (and logs it when it would without a worker).
            Ok(_) => {}
            Err(e) => self.out.push(Up::FilterFailed(e.to_string())),
        }
    }

    fn send(&mut self) -> Result<(), i32> {
        for m in self.out.drain(..) {
            if self.chan.send(&msg::encode_up(&m), None).is_err() {
                // The monitor is gone: nothing left to do.
                return Err(0);
            }
        }
        Ok(())
    }

    /// Handles what the monitor sent: every message waiting, or (`wait`) at least one. A
    /// load begun is waited for to its last chunk, so no frame meets a half-loaded engine.
    fn receive(&mut self, wait: bool) -> Result<(), i32> {
        let mut wait = wait;
        loop {
            let got = self.chan.recv(&mut self.buf, wait || !self.load.is_empty());
            wait = false;
            let (n, fd) = match got {
                Ok(Received::Message(n, fd)) => (n, fd),
                Ok(Received::Empty) => return Ok(()),
                Ok(Received::Closed) => return Err(0),
                Err(_) => return Err(EXIT_CHANNEL),
            };
            let message = msg::decode_down(&self.buf[..n]).map_err(|_| EXIT_BAD_MESSAGE)?;
            self.handle(message, fd)?;
        }
    }

    fn handle(&mut self, message: Down, fd: Option<OwnedFd>) -> Result<(), i32> {
        match message {
            Down::Chunk { last, bytes } => {
                if self.load.len() + bytes.len() > msg::MAX_LOAD {
                    return Err(EXIT_BAD_LOAD);
                }
                self.load.extend_from_slice(&bytes);
                if last {
                    let bytes = std::mem::take(&mut self.load);
                    let load = msg::decode_load(&bytes).map_err(|_| EXIT_BAD_LOAD)?;
                    self.apply_load(load)?;
                }
            }
            Down::Capture { ifindex, link } => {
                let (Some(fd), Some(link)) = (fd, msg::link_of(link)) else {
                    return Err(EXIT_BAD_MESSAGE);
                };
                let Some(engine) = &self.engine else {
                    return Err(EXIT_BAD_MESSAGE);
                };
                let opts = CaptureOptions {
                    families: families(self.only_ipv4),
                    ..CaptureOptions::default()
                };
                let rules = engine.capture_rules();
                // Drop the old socket (and its ring) first.
                self.capture = None;
                match AfPacket::adopt(fd, &self.ifname, ifindex, link, &rules, &opts) {
                    Ok(mut c) => {
                        c.add_wake_fd(self.chan.as_raw_fd());
                        self.capture = Some(c);
                        self.link_down = false;
                    }
                    Err(e) => self.out.push(Up::CaptureFailed(e.to_string())),
                }
            }
            Down::DropCapture => self.capture = None,
            Down::LocalAddrs(addrs) => {
                if let Some(engine) = &mut self.engine {
                    engine.set_local_addrs(addrs);
                }
            }
            Down::OneTimeBack {
                door,
                line_no,
                offset,
                hits,
            } => {
                let hits = knock_core::hit::parse_sequence(&hits, knock_core::hit::Proto::Tcp)
                    .map_err(|_| EXIT_BAD_MESSAGE)?;
                if let Some(engine) = &mut self.engine {
                    let line = OtpLine {
                        line_no: line_no as usize,
                        offset,
                        hits,
                    };
                    let actions = engine.restore_one_time(&door, line);
                    let r = report(engine, self.generation, actions);
                    self.take(r);
                }
            }
            Down::Shutdown => return Err(0),
            Down::Clock { mono_ms, wall_ms } => self.clock = Some((mono_ms, wall_ms)),
            Down::HmacWindow {
                door,
                center,
                sequences,
            } => {
                let mut parsed = Vec::with_capacity(sequences.len());
                for (counter, hits) in sequences {
                    let hits = knock_core::hit::parse_sequence(&hits, knock_core::hit::Proto::Tcp)
                        .map_err(|_| EXIT_BAD_MESSAGE)?;
                    parsed.push((counter, hits));
                }
                let now = self.now();
                if let Some(engine) = &mut self.engine {
                    let actions = engine.set_hmac_window(now, &door, center, &parsed);
                    let r = report(engine, self.generation, actions);
                    self.take(r);
                }
            }
        }
        // A descriptor that came with any other message is closed as `fd` drops here.
        Ok(())
    }

    /// Builds the engine from a load, or carries the running one over to it (attempts at
    /// doors that did not change survive, as in a SIGHUP in-process).
    fn apply_load(&mut self, load: Load) -> Result<(), i32> {
        let config = conf::parse(&load.config_text, Path::new(&load.config_name))
            .map_err(|_| EXIT_BAD_LOAD)?;
        let mut inputs = Inputs {
            local_addrs: load.local_addrs,
            ..Inputs::default()
        };
        inputs.one_time.extend(load.one_time);
        for h in load.hmac {
            // No secret: the monitor sends each window (`Down::HmacWindow`).
            inputs
                .hmac_supplied
                .insert(h.door, h.used.into_iter().collect());
        }
        let now = self.now();
        let actions = match &mut self.engine {
            Some(engine) => engine
                .reload(&config, inputs, now)
                .map_err(|_| EXIT_BAD_LOAD)?,
            None => {
                let options = Options {
                    max_attempts: usize::try_from(load.max_attempts).unwrap_or(usize::MAX),
                    first_step_memory: usize::try_from(load.first_step_memory)
                        .unwrap_or(usize::MAX),
                    seed: load.seed,
                };
                let (engine, actions) =
                    Engine::new(&config, inputs, options, now).map_err(|_| EXIT_BAD_LOAD)?;
                self.engine = Some(engine);
                actions
            }
        };
        self.generation = load.generation;
        self.debug = load.debug;
        self.only_ipv4 = load.only_ipv4;
        if let Some(engine) = &mut self.engine {
            let r = report(engine, self.generation, actions);
            self.take(r);
        }
        if self.capture.is_some() {
            self.out.push(Up::Ready {
                version: msg::VERSION,
                generation: self.generation,
            });
        }
        Ok(())
    }
}

/// Adds `ups` to `out`, folding first-stage lines at `mono_ms` as the log would (a spoofed
/// flood makes one a packet): those the bucket holds back are only counted, and a second
/// that held some back ends with [`Up::Suppressed`].
fn fold_into(out: &mut Vec<Up>, folder: &mut Folder, mono_ms: u64, ups: Vec<Up>) {
    for up in ups {
        let timeout = match &up {
            Up::Stage { stage: 1, .. } => false,
            Up::Timeout { stage: 1, .. } => true,
            _ => {
                out.push(up);
                continue;
            }
        };
        let fold = folder.admit(mono_ms, timeout);
        if let Some(held) = fold.summary {
            out.push(suppressed(held));
        }
        if fold.write {
            out.push(up);
        }
    }
}

fn suppressed(held: Held) -> Up {
    Up::Suppressed {
        knocks: held.knocks,
        timeouts: held.timeouts,
    }
}

impl Worker {
    fn now(&self) -> Now {
        now_from(self.clock)
    }
}

/// Both clocks: the time since boot, read here, and the monitor's wall clock carried
/// forward from its last `Clock` (before one came, this process's own).
fn now_from(clock: Option<(u64, u64)>) -> Now {
    let mono = sys::boot_ms();
    let wall = match clock {
        Some((at_mono, at_wall)) => at_wall.saturating_add_signed(mono as i64 - at_mono as i64),
        None => Timestamp::from_system_time(std::time::SystemTime::now()).as_millis(),
    };
    Now::new(Mono::from_millis(mono), Timestamp::from_millis(wall))
}

fn families(only_ipv4: bool) -> Families {
    if only_ipv4 {
        Families::V4Only
    } else {
        Families::Both
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(stage: u32) -> Up {
        Up::Stage {
            src: "198.18.0.1".parse().unwrap(),
            door: "d".into(),
            stage,
        }
    }

    #[test]
    fn a_flood_of_first_stages_is_folded_before_it_is_sent() {
        let mut folder = Folder::new(DEFAULT_FIRST_STAGE_BUDGET);
        let mut out = Vec::new();
        // 1,000 first steps and a second step in one millisecond: the burst and the
        // second step go up, the rest is counted.
        let mut ups: Vec<Up> = (0..1000).map(|_| stage(1)).collect();
        ups.push(stage(2));
        fold_into(&mut out, &mut folder, 5_000, ups);
        assert_eq!(out.len(), DEFAULT_FIRST_STAGE_BUDGET as usize + 1);
        assert_eq!(out.last(), Some(&stage(2)));
        // A second later: the count of the second that ended, then the one line it allows.
        out.clear();
        fold_into(&mut out, &mut folder, 6_000, vec![stage(1)]);
        assert_eq!(
            out,
            [
                Up::Suppressed {
                    knocks: 1000 - u64::from(DEFAULT_FIRST_STAGE_BUDGET),
                    timeouts: 0
                },
                stage(1)
            ]
        );
    }
}
