//! The monitor's side of its worker: starting it (this binary again, `--worker IFNAME`,
//! the channel as its stdin), handing it loads and capture sockets, following the
//! interface (the worker says when the link went down; the monitor looks whether it came
//! back up, went away or returned), reading what the worker says, and starting a new one,
//! after a backoff, when it dies.
//!
//! To the main loop it is a [`PacketSource`] that never hands up a frame: the loop waits on
//! it as on a capture, and takes the worker's messages with [`PacketSource::worker`].

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use knock_core::wire::LinkType;
use knockd_engine::bpf::{self, Coarse, Families};
use knockd_engine::filter::CaptureRule;

use super::admit::{self, Claim};
use super::backoff::Backoff;
use super::msg::{self, Down, Load, Up};
use crate::capture::{
    AfPacket, CaptureError, CaptureOptions, CaptureStats, Frame, LinkEvent, PacketSource,
};
use crate::log::Kind;
use crate::netif;
use crate::sys::sandbox::WorkerIds;
use crate::sys::{self, PacketSocket, PollFd, Received, SeqPacket};

/// How often a lost or down interface is looked up again (as `capture/follow` does).
const RECHECK: Duration = Duration::from_secs(1);
/// How long a worker told to stop gets before it is killed.
const STOP_WAIT: Duration = Duration::from_secs(2);
/// How long a send to the worker may block. Both ends send blocking; should the worker be
/// stuck (or blocked sending while this process sends it a load), the monitor gives up
/// after this long and replaces it, so the two can never wait on each other for good.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// What the worker said, for the main loop.
#[derive(Debug)]
pub(crate) enum Heard {
    /// A completion admitted for the running configuration: the monitor's engine checks
    /// the door and proof next.
    Claim(Claim),
    /// A log event or capture note (`Stage`, `Timeout`, `Replay`, `Packet`, `Refused`,
    /// `Filter*`, `CaptureFailed`).
    Said(Up),
    /// A line for the log from the link itself (a refusal, the worker's death, a restart).
    Line(Kind, String),
}

/// The worker process and everything the monitor keeps about it.
#[derive(Debug)]
pub(crate) struct WorkerLink {
    program: PathBuf,
    /// The user the worker becomes.
    uid: u32,
    gid: u32,
    ifname: String,
    opts: CaptureOptions,
    /// The rules of the monitor's engine: a capture the monitor opens is filtered with
    /// them until the worker attaches its own (the same rules).
    rules: Vec<CaptureRule>,
    wake: Vec<RawFd>,
    proc: Option<Proc>,
    backoff: Backoff,
    /// When the next worker may start, after one died.
    restart_at: Option<Instant>,
    /// The generation of the last load sent.
    generation: u32,
    only_ipv4: bool,
    /// A new worker needs its load: the monitor builds it from the files as they are now.
    needs_load: bool,
    /// The interface index the worker's capture is bound to; `None` while it is gone.
    bound: Option<u32>,
    /// The link type of the last capture opened.
    link: Option<LinkType>,
    /// A copy of the worker's capture socket: a reload changes the kernel filter from
    /// here, at once, so a knock right after the reload's log line is not dropped by the
    /// old filter while the worker is still loading the new doors.
    socket: Option<PacketSocket>,
    /// The interface went down (the socket stays).
    down: bool,
    last_check: Option<Instant>,
    events: VecDeque<LinkEvent>,
    heard: Vec<Heard>,
    buf: Vec<u8>,
    /// Messages the worker sent that did not decode (counted; logged once a turn).
    garbled: u64,
    /// When the worker was last told the clocks.
    clock_sent: Option<Instant>,
    /// The centres of the HMAC windows last sent; `None`: send them (a new load).
    hmac_centers: Option<Vec<Option<u64>>>,
}

#[derive(Debug)]
struct Proc {
    child: Child,
    chan: SeqPacket,
    started: Instant,
}

impl WorkerLink {
    /// A link that starts its first worker at once (see [`WorkerLink::start`]).
    pub(crate) fn new(
        ifname: &str,
        ids: &WorkerIds,
        opts: CaptureOptions,
        rules: Vec<CaptureRule>,
    ) -> Self {
        WorkerLink {
            uid: ids.uid,
            gid: ids.gid,
            program: PathBuf::from("/proc/self/exe"),
            ifname: ifname.to_string(),
            only_ipv4: opts.families == knockd_engine::bpf::Families::V4Only,
            opts,
            rules,
            wake: Vec::new(),
            proc: None,
            backoff: Backoff::default(),
            restart_at: None,
            generation: 0,
            needs_load: false,
            bound: None,
            link: None,
            socket: None,
            down: false,
            last_check: None,
            events: VecDeque::new(),
            heard: Vec::new(),
            buf: vec![0; msg::MAX_MESSAGE + 1],
            garbled: 0,
            clock_sent: None,
            hmac_centers: None,
        }
    }

    /// Starts a worker; it then waits for [`WorkerLink::send_load`].
    pub(crate) fn start(&mut self) -> io::Result<()> {
        let (ours, theirs) = SeqPacket::pair()?;
        ours.set_send_timeout(SEND_TIMEOUT)?;
        let mut cmd = Command::new(&self.program);
        cmd.arg0("knockd-lite")
            .args([
                OsString::from(super::ARG),
                OsString::from(&self.ifname),
                OsString::from(self.uid.to_string()),
                OsString::from(self.gid.to_string()),
            ])
            .stdin(Stdio::from(theirs.into_fd()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Nothing from the environment reaches the sandboxed worker (no LD_PRELOAD, no
            // locale files to read): it needs none, and takes its wall clock from here.
            .env_clear();
        #[cfg(feature = "sandbox-test")]
        if let Some(port) = std::env::var_os(super::run::FORBIDDEN_PORT_VAR) {
            cmd.env(super::run::FORBIDDEN_PORT_VAR, port);
        }
        // Its own session: a terminal's Ctrl-C or hangup reaches the monitor, which stops
        // the worker itself; the worker ends when the channel closes, so it never outlives
        // the monitor.
        sys::new_session(&mut cmd);
        let child = cmd
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("starting the worker: {e}")))?;
        drop(cmd);
        self.proc = Some(Proc {
            child,
            chan: ours,
            started: Instant::now(),
        });
        self.needs_load = true;
        self.bound = None;
        self.down = false;
        Ok(())
    }

    /// Whether a new worker waits for its load.
    pub(crate) fn needs_load(&self) -> bool {
        self.needs_load && self.proc.is_some()
    }

    /// The generation the next load gets.
    pub(crate) fn next_generation(&self) -> u32 {
        self.generation.wrapping_add(1)
    }

    /// Sends `load` (its generation must be [`WorkerLink::next_generation`]).
    pub(crate) fn send_load(&mut self, load: &Load) {
        self.generation = load.generation;
        self.only_ipv4 = load.only_ipv4;
        self.needs_load = false;
        self.send_clock();
        // The load's HMAC doors have no window yet: they get them right after it.
        self.hmac_centers = None;
        let bytes = msg::encode_load(load);
        for chunk in msg::chunks(&bytes) {
            if !self.send(&chunk, None) {
                return;
            }
        }
    }

    /// Hands a worker that has no capture yet its socket: after its load and HMAC
    /// windows, so it attaches a filter for every door at once.
    pub(crate) fn bind_if_needed(&mut self) {
        if self.proc.is_some() && self.bound.is_none() {
            self.bind(false);
        }
    }

    /// Tells the worker this process's clocks (the worker's engine follows its wall clock).
    fn send_clock(&mut self) {
        let now = crate::serve::clock_now();
        self.clock_sent = Some(Instant::now());
        self.send(
            &Down::Clock {
                mono_ms: now.mono.as_millis(),
                wall_ms: now.wall.as_millis(),
            },
            None,
        );
    }

    /// Whether the HMAC windows with these `centers` differ from those the worker has.
    pub(crate) fn hmac_windows_moved(&self, centers: &[Option<u64>]) -> bool {
        self.proc.is_some() && !self.needs_load && self.hmac_centers.as_deref() != Some(centers)
    }

    /// Sends the worker the HMAC windows (their centres are `centers`).
    pub(crate) fn send_hmac_windows(
        &mut self,
        windows: &[knockd_engine::HmacWindow],
        centers: Vec<Option<u64>>,
    ) {
        for w in windows {
            let sequences = w
                .sequences
                .iter()
                .map(|(counter, hits)| (*counter, knock_core::hit::format_sequence(hits)))
                .collect();
            let m = Down::HmacWindow {
                door: w.door.to_string(),
                center: w.center,
                sequences,
            };
            if !self.send(&m, None) {
                return;
            }
        }
        self.hmac_centers = Some(centers);
    }

    /// Tells the worker the interface's addresses.
    pub(crate) fn send_addrs(&mut self, addrs: Vec<IpAddr>) {
        let mut addrs = addrs;
        addrs.truncate(msg::MAX_ADDRS);
        self.send(&Down::LocalAddrs(addrs), None);
    }

    /// Tells the worker a one-time line stays active.
    pub(crate) fn send_one_time_back(&mut self, door: &str, line: &knock_core::otp::OtpLine) {
        let hits = knock_core::hit::format_sequence(&line.hits);
        self.send(
            &Down::OneTimeBack {
                door: door.to_string(),
                line_no: u32::try_from(line.line_no).unwrap_or(u32::MAX),
                offset: line.offset,
                hits,
            },
            None,
        );
    }

    /// Captures on another interface from now on: the worker is replaced.
    pub(crate) fn move_to(&mut self, ifname: &str) -> io::Result<()> {
        self.stop();
        self.ifname = ifname.to_string();
        self.start()
    }

    /// Tells the worker to exit and waits for it (briefly; then it is killed).
    pub(crate) fn stop(&mut self) {
        let Some(mut p) = self.proc.take() else {
            return;
        };
        let _ = p.chan.send(&msg::encode_down(&Down::Shutdown), None);
        drop(p.chan);
        let deadline = Instant::now() + STOP_WAIT;
        while matches!(p.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if matches!(p.child.try_wait(), Ok(None)) {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }

    /// What the worker said since the last call.
    pub(crate) fn take_heard(&mut self) -> Vec<Heard> {
        if self.garbled > 0 {
            let line = format!(
                "worker: {} message(s) that are not messages, ignored",
                std::mem::take(&mut self.garbled)
            );
            self.heard.push(Heard::Line(Kind::Error, line));
        }
        std::mem::take(&mut self.heard)
    }

    /// Sends one message; false (and the worker counts as dead) if it cannot.
    fn send(&mut self, m: &Down, fd: Option<RawFd>) -> bool {
        let Some(p) = &self.proc else {
            return false;
        };
        match p.chan.send(&msg::encode_down(m), fd) {
            Ok(()) => true,
            Err(e) => {
                let why = if e.kind() == io::ErrorKind::WouldBlock {
                    format!("took no message for {} s: stopped", SEND_TIMEOUT.as_secs())
                } else {
                    format!("cannot be sent to ({e})")
                };
                self.heard.push(Heard::Line(
                    Kind::Error,
                    format!("worker (pid {}) {why}", p.child.id()),
                ));
                self.died();
                false
            }
        }
    }

    /// Opens a capture on the interface and hands it to the worker. `back`: after a loss
    /// (logged as the interface's return).
    fn bind(&mut self, back: bool) {
        if self.proc.is_none() {
            return;
        }
        match AfPacket::open_unmapped(&self.ifname, &self.rules, &self.opts) {
            Ok((fd, index, link)) => {
                let kept = fd.try_clone().ok().map(PacketSocket::from_fd);
                let sent = self.send(
                    &Down::Capture {
                        ifindex: index,
                        link: msg::link_code(link),
                    },
                    Some(fd.as_raw_fd()),
                );
                drop::<OwnedFd>(fd);
                if sent {
                    self.bound = Some(index);
                    self.link = Some(link);
                    self.socket = kept;
                    self.down = false;
                    if back {
                        self.events.push_back(LinkEvent::Restored { index });
                    }
                }
            }
            Err(CaptureError::NoSuchInterface { .. }) => {
                if !back {
                    // Gone between start-up and now: followed like a loss.
                    self.events.push_back(LinkEvent::Lost);
                    self.last_check = Some(Instant::now());
                }
            }
            Err(e) => {
                let line = format!("capture: {e}");
                self.heard.push(Heard::Line(Kind::Error, line));
            }
        }
    }

    /// Reads every message waiting; notices the worker's end.
    fn read(&mut self) {
        loop {
            let Some(p) = &self.proc else {
                return;
            };
            match p.chan.recv(&mut self.buf, false) {
                Ok(Received::Message(n, fd)) => {
                    // A descriptor from the worker means nothing: closed as it drops.
                    drop(fd);
                    match msg::decode_up(&self.buf[..n]) {
                        Ok(up) => self.heard_up(up),
                        Err(_) => self.garbled += 1,
                    }
                }
                Ok(Received::Empty) => return,
                Ok(Received::Closed) | Err(_) => {
                    self.died();
                    return;
                }
            }
        }
    }

    fn heard_up(&mut self, up: Up) {
        match up {
            Up::Ready { .. } => {}
            Up::Completed {
                generation,
                door,
                src,
                proof,
            } => match admit::completion(
                generation,
                self.generation,
                self.only_ipv4,
                &door,
                src,
                proof,
            ) {
                Ok(claim) => self.heard.push(Heard::Claim(claim)),
                Err(why) => {
                    let line = format!(
                        "worker: a completion of {} refused: {why}",
                        knock_core::text::quoted(&door)
                    );
                    self.heard.push(Heard::Line(Kind::Error, line));
                }
            },
            Up::LinkDown => {
                if !self.down {
                    self.down = true;
                    self.events.push_back(LinkEvent::Down);
                }
                // Deleting an interface takes it down first: look now whether it is gone.
                self.last_check = None;
                self.recheck();
            }
            other => self.heard.push(Heard::Said(other)),
        }
    }

    /// The worker's end closed or failed: reap it, say why, and plan the next one.
    fn died(&mut self) {
        let Some(mut p) = self.proc.take() else {
            return;
        };
        drop(p.chan);
        // Its channel is closed: it is exiting, or it is killed now.
        let deadline = Instant::now() + STOP_WAIT;
        let status = loop {
            match p.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                _ => {
                    let _ = p.child.kill();
                    break p.child.wait().ok();
                }
            }
        };
        let lived = p.started.elapsed();
        let lived_ms = u64::try_from(lived.as_millis()).unwrap_or(u64::MAX);
        let delay = Duration::from_millis(self.backoff.died(0, lived_ms));
        self.restart_at = Some(Instant::now() + delay);
        self.bound = None;
        self.socket = None;
        self.down = false;
        let line = format!(
            "worker (pid {}) {}: attempts in progress are lost; a new worker starts {}",
            p.child.id(),
            status.map_or_else(|| "ended".to_string(), describe_exit),
            if delay.is_zero() {
                "now".to_string()
            } else {
                format!("in {} s", delay.as_secs())
            }
        );
        self.heard.push(Heard::Line(Kind::Error, line));
    }

    /// The once-a-second look at the interface while it is down or gone, and a restart
    /// that is due.
    fn housekeep(&mut self) {
        if self.proc.is_none() && self.restart_at.is_some_and(|t| Instant::now() >= t) {
            self.restart_at = None;
            if let Err(e) = self.start() {
                let lived_ms = 0;
                let delay = Duration::from_millis(self.backoff.died(0, lived_ms));
                self.restart_at = Some(Instant::now() + delay);
                let line = format!("{e}; trying again in {} s", delay.as_secs());
                self.heard.push(Heard::Line(Kind::Error, line));
            }
            return;
        }
        if self.proc.is_none() || self.needs_load {
            return;
        }
        // Once a second, as the engine looks at the wall clock (HMAC_RECHECK_MS): a step
        // of the monitor's wall clock reaches the worker within that time.
        if self
            .clock_sent
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.send_clock();
        }
        if !self.due() {
            return;
        }
        if self.bound.is_none() {
            self.bind(true);
        } else if self.down {
            self.recheck();
        }
    }

    fn due(&mut self) -> bool {
        let now = Instant::now();
        if self
            .last_check
            .is_some_and(|t| now.duration_since(t) < RECHECK)
        {
            return false;
        }
        self.last_check = Some(now);
        true
    }

    /// While down: has it come up, or gone away (deleted, or re-created with another
    /// index)? A failed lookup decides nothing.
    fn recheck(&mut self) {
        self.last_check = Some(Instant::now());
        match netif::find(&self.ifname) {
            Ok(Some(i)) if Some(i.index) == self.bound => {
                if i.is_up() {
                    self.down = false;
                    self.events.push_back(LinkEvent::Up);
                }
            }
            Ok(_) => {
                self.send(&Down::DropCapture, None);
                self.socket = None;
                self.bound = None;
                self.down = false;
                self.events.push_back(LinkEvent::Lost);
            }
            Err(_) => {}
        }
    }
}

/// `killed by signal SIGSYS (a system call outside its allow-list)`, `exited with code 3`.
pub(crate) fn describe_exit(status: ExitStatus) -> String {
    if let Some(sig) = status.signal() {
        let name = signal_name(sig);
        return match sig {
            libc::SIGSYS => {
                format!("killed by signal {name} (a system call outside its allow-list)")
            }
            _ => format!("killed by signal {name}"),
        };
    }
    match status.code() {
        Some(0) => "exited".to_string(),
        Some(code) => format!("exited with code {code}"),
        None => "ended".to_string(),
    }
}

/// The name of the signals a worker may die of; others by number.
fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGSYS => "SIGSYS",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGXCPU => "SIGXCPU",
        _ => return format!("{sig}"),
    };
    name.to_string()
}

impl PacketSource for WorkerLink {
    /// Waits up to `timeout` for the worker's messages (or a wake-up descriptor), reads
    /// them, and does the link's own duties; hands up no frame.
    fn next_batch(
        &mut self,
        timeout: Duration,
        _sink: &mut dyn FnMut(&Frame<'_>),
    ) -> Result<usize, CaptureError> {
        let mut timeout = timeout;
        if let Some(t) = self.restart_at {
            timeout = timeout.min(t.saturating_duration_since(Instant::now()));
        }
        if self.down || self.bound.is_none() {
            timeout = timeout.min(RECHECK);
        }
        let mut fds: Vec<PollFd> = self.wake.iter().copied().map(PollFd::readable).collect();
        if let Some(p) = &self.proc {
            fds.push(PollFd::readable(p.chan.as_raw_fd()));
        }
        // Woken early or interrupted, the loop looks again either way.
        let _ = sys::poll(&mut fds, timeout);
        self.read();
        self.housekeep();
        Ok(0)
    }

    /// The worker filters with its own engine's rules, the same as these: whether they
    /// fit the kernel is worked out here, where the log line belongs (the same compiler,
    /// link and families as the worker's).
    fn set_rules(&mut self, rules: &[CaptureRule]) -> Result<Option<Coarse>, CaptureError> {
        let families = if self.only_ipv4 {
            Families::V4Only
        } else {
            Families::Both
        };
        let link = self.link.unwrap_or(LinkType::Ethernet);
        let fitted = bpf::compile_fitting(rules, link, families)?;
        if let Some(s) = &self.socket {
            s.attach_filter(fitted.program.insns())
                .map_err(|error| CaptureError::Io {
                    op: "setsockopt(SO_ATTACH_FILTER)",
                    ifname: self.ifname.clone(),
                    error,
                })?;
        }
        self.rules = rules.to_vec();
        Ok(fitted.coarse)
    }

    fn stats(&mut self) -> CaptureStats {
        CaptureStats::default()
    }

    fn take_events(&mut self) -> Vec<LinkEvent> {
        self.events.drain(..).collect()
    }

    fn worker(&mut self) -> Option<&mut WorkerLink> {
        Some(self)
    }
}

impl WorkerLink {
    /// See `AfPacket::add_wake_fd`: the wait returns when `fd` is readable.
    pub(crate) fn add_wake_fd(&mut self, fd: RawFd) {
        self.wake.push(fd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_are_described_by_signal_name_or_code() {
        let cases = [
            (
                ExitStatus::from_raw(libc::SIGSYS),
                "killed by signal SIGSYS (a system call outside its allow-list)",
            ),
            (
                ExitStatus::from_raw(libc::SIGSEGV),
                "killed by signal SIGSEGV",
            ),
            (ExitStatus::from_raw(64), "killed by signal 64"),
            (ExitStatus::from_raw(3 << 8), "exited with code 3"),
            (ExitStatus::from_raw(0), "exited"),
        ];
        for (status, text) in cases {
            assert_eq!(describe_exit(status), text);
        }
    }
}
