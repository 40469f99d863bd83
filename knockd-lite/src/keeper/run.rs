//! The keeper process itself, `knockd-lite --stop-keeper JOURNAL`: it listens to its daemon
//! and, if the daemon ends without saying goodbye, runs the stops it was told of when they
//! are due, taking each out of the stop journal once it has run.

use std::collections::HashMap;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use knockd_engine::{CommandId, Event, Now};

use super::book::{Book, Entry};
use super::msg::{self, DecodeError};
use crate::exec::{self, Executor, Runner};
use crate::log::{Kind, LogConfig, Logger};
use crate::serve::clock_now;
use crate::stops;
use crate::sys::{self, PollFd, SignalFd};

/// The process name `ps` and `pidof` show: not `knockd-lite`, so `pidof knockd-lite` and
/// `killall -9 knockd-lite` find the daemon alone, and the keeper outlives such a kill
/// (which is its purpose).
const NAME: &str = "knockd-keeper";

/// How long to sleep when nothing is due: any signal or completion wakes the keeper first.
const IDLE: Duration = Duration::from_secs(3600);

/// Runs the keeper on the channel that is its stdin; returns the exit code.
pub(crate) fn run(journal: PathBuf) -> i32 {
    sys::set_name(NAME);
    // Blocked before any thread exists (the executor's threads inherit the mask).
    let signals = SignalFd::new(&[libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGUSR1]);
    let (mut signals, channel) = match (signals, channel()) {
        (Ok(s), Ok(c)) => (s, c),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("knockd-lite: stop keeper: {e}");
            return 2;
        }
    };
    let mut keeper = Keeper {
        journal,
        book: Book::default(),
        buf: Vec::new(),
    };
    match keeper.listen(&channel, &mut signals) {
        Ending::Bye | Ending::TakenOver => 0,
        Ending::Orphaned { at_once } => keeper.orphaned(&mut signals, at_once),
        Ending::Garbled(e) => {
            let mut log = keeper.logger();
            let line = format!(
                "stop keeper (pid {}): message from knockd-lite: {e}; the keeper exits, \
                 knockd-lite starts another",
                std::process::id()
            );
            log.event(clock_now(), &line, Kind::Error);
            1
        }
    }
}

/// The keeper's end of the socket pair, which the daemon made its stdin.
fn channel() -> io::Result<UnixStream> {
    let fd = io::stdin().as_fd().try_clone_to_owned()?;
    let file = std::fs::File::from(fd);
    if !file.metadata()?.file_type().is_socket() {
        return Err(io::Error::other(
            "--stop-keeper is started by knockd-lite itself, with a socket for stdin",
        ));
    }
    let sock = UnixStream::from(std::os::fd::OwnedFd::from(file));
    sock.set_nonblocking(true)?;
    Ok(sock)
}

/// How listening to the daemon ended.
#[derive(Debug)]
enum Ending {
    /// A clean shutdown: the daemon ran its stops.
    Bye,
    /// The daemon is gone without a goodbye: the stops are the keeper's. `at_once` after a
    /// SIGTERM or SIGINT: run them now, as the daemon would have.
    Orphaned {
        at_once: bool,
    },
    /// SIGUSR1: a new knockd-lite for the same config takes over the journal.
    TakenOver,
    Garbled(DecodeError),
}

struct Keeper {
    journal: PathBuf,
    book: Book,
    /// Bytes read from the daemon, not yet a whole message.
    buf: Vec<u8>,
}

impl Keeper {
    /// Reads the daemon's messages until it says goodbye or goes away, or SIGUSR1 ends it.
    ///
    /// SIGTERM and SIGINT are remembered, not obeyed, while the daemon lives: a unit stop
    /// sends SIGTERM to both, and the daemon runs its stops and says goodbye; should the
    /// daemon die instead, the keeper runs the stops at once, as asked.
    fn listen(&mut self, channel: &UnixStream, signals: &mut SignalFd) -> Ending {
        let mut terminate = false;
        loop {
            let mut fds = [
                PollFd::readable(std::os::fd::AsRawFd::as_raw_fd(channel)),
                PollFd::readable(std::os::fd::AsRawFd::as_raw_fd(signals)),
            ];
            if let Err(e) = sys::poll(&mut fds, IDLE)
                && e.kind() != io::ErrorKind::Interrupted
            {
                // Not expected; a short pause keeps an error that persists from spinning.
                std::thread::sleep(Duration::from_millis(100));
            }
            let open = match self.read(channel) {
                Ok(open) => open,
                Err(e) => return Ending::Garbled(e),
            };
            for sig in signals.pending() {
                match sig {
                    libc::SIGTERM | libc::SIGINT => terminate = true,
                    libc::SIGUSR1 => return Ending::TakenOver,
                    _ => {}
                }
            }
            if !open {
                return if self.book.bye {
                    Ending::Bye
                } else {
                    Ending::Orphaned { at_once: terminate }
                };
            }
        }
    }

    /// Reads what the daemon sent; false once its end is closed.
    fn read(&mut self, channel: &UnixStream) -> Result<bool, DecodeError> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match (&*channel).read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    let mut at = 0;
                    while let Some((m, used)) = msg::decode(&self.buf[at..])? {
                        self.book.apply(m);
                        at += used;
                    }
                    self.buf.drain(..at);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A reset is the daemon gone.
                Err(_) => return Ok(false),
            }
        }
    }

    fn logger(&self) -> Logger {
        Logger::open(LogConfig {
            file: self.book.log_file.clone(),
            syslog: self.book.syslog.clone(),
            ..LogConfig::default()
        })
    }

    /// The daemon is gone: runs each stop when due (all at once after SIGTERM or SIGINT),
    /// until none is left or a new knockd-lite takes over; returns the exit code.
    fn orphaned(&mut self, signals: &mut SignalFd, at_once: bool) -> i32 {
        if self.book.is_empty() {
            return 0;
        }
        let mut log = self.logger();
        let daemon = self.book.daemon_pid.map_or_else(
            || "knockd-lite".to_string(),
            |p| format!("knockd-lite (pid {p})"),
        );
        let n = self.book.len();
        let line = format!(
            "{daemon} ended without a clean stop: its stop keeper (pid {}) runs the {n} pending \
             stop command{} when due",
            std::process::id(),
            if n == 1 { "" } else { "s" }
        );
        log.event(clock_now(), &line, Kind::Error);
        let limit = self.book.limit.unwrap_or(exec::DEFAULT_LIMIT);
        let mut exec = match Executor::new(limit) {
            Ok(e) => e,
            Err(e) => {
                let line = format!("stop keeper: cannot run commands: {e}");
                log.event(clock_now(), &line, Kind::Error);
                return 1;
            }
        };
        let mut running: HashMap<CommandId, Entry> = HashMap::new();
        if at_once {
            self.run_all_now(&mut log, &mut exec, &mut running);
        }
        loop {
            let now = clock_now();
            for e in self.book.take_due(now.mono.as_millis()) {
                let timeout = Event::CommandTimeout {
                    src: e.stop.src,
                    door: e.stop.door.as_str().into(),
                };
                log.event(now, &timeout.to_string(), Kind::Event);
                start(now, &mut log, &mut exec, &mut running, e);
            }
            if self.book.is_empty() && running.is_empty() {
                return 0;
            }
            let wait = self.book.next_due().map_or(IDLE, |due| {
                Duration::from_millis(due.saturating_sub(now.mono.as_millis()))
            });
            let mut fds = [
                PollFd::readable(std::os::fd::AsRawFd::as_raw_fd(signals)),
                PollFd::readable(exec.wake_fd()),
            ];
            let _ = sys::poll(&mut fds, wait);
            for c in exec.completions() {
                let Some(e) = running.remove(&c.id) else {
                    continue;
                };
                let now = clock_now();
                if let Some(body) = c.failure_body(&e.stop.door) {
                    log.event(now, &body, Kind::Error);
                }
                self.forget(now, &mut log, &e);
            }
            for sig in signals.pending() {
                match sig {
                    libc::SIGTERM | libc::SIGINT => {
                        self.run_all_now(&mut log, &mut exec, &mut running);
                    }
                    libc::SIGUSR1 => {
                        let left = self.book.take_all().len();
                        let line = format!(
                            "stop keeper (pid {}): a new knockd-lite takes over the stop \
                             journal, {left} pending stop command{} left to it",
                            std::process::id(),
                            if left == 1 { "" } else { "s" }
                        );
                        log.event(clock_now(), &line, Kind::Event);
                    }
                    _ => {}
                }
            }
        }
    }

    /// SIGTERM or SIGINT with the daemon gone: every pending stop runs now, as the daemon
    /// runs them at a clean stop.
    fn run_all_now(
        &mut self,
        log: &mut Logger,
        exec: &mut Executor,
        running: &mut HashMap<CommandId, Entry>,
    ) {
        let now = clock_now();
        for e in self.book.take_all() {
            let line = Event::StopAtShutdown {
                src: e.stop.src,
                door: e.stop.door.as_str().into(),
            };
            log.event(now, &line.to_string(), Kind::Event);
            start(now, log, exec, running, e);
        }
    }

    /// A stop has run: it leaves the journal, so a restart does not run it again.
    fn forget(&self, now: Now, log: &mut Logger, e: &Entry) {
        if let Err(err) = stops::forget(&self.journal, &e.stop) {
            let line = format!("stop keeper: cannot update the stop journal: {err}");
            log.event(now, &line, Kind::Error);
        }
    }
}

/// Logs and starts one stop command, `%IP%` replaced with the numeric address only.
fn start(
    now: Now,
    log: &mut Logger,
    exec: &mut Executor,
    running: &mut HashMap<CommandId, Entry>,
    e: Entry,
) {
    let command = exec::expand(&e.stop.template, e.stop.src);
    log.event(
        now,
        &exec::running_line(&e.stop.door, &command),
        Kind::Event,
    );
    let id = CommandId(e.id);
    exec.spawn(id, &command);
    running.insert(id, e);
}
