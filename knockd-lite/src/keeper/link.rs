//! The daemon's side: starting its keeper, telling it of every pending stop as the stop
//! journal changes, starting another if it dies, and saying goodbye at a clean stop; and at
//! start-up, taking the journal back from a keeper an earlier process left behind.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use knock_core::files::{self, Overwrite};
use knockd_engine::Mono;

use super::msg::{self, Message};
use crate::log::Kind;
use crate::stops::Pending;
use crate::sys::{self, Pidfd, PollFd};

/// The argument that makes `knockd-lite` a stop keeper: `knockd-lite --stop-keeper JOURNAL`.
/// Internal: the daemon starts it, with the channel as stdin.
pub(crate) const ARG: &str = "--stop-keeper";

/// How long a write to the keeper may block before the keeper counts as stuck.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the keeper gets to leave after the goodbye.
const BYE_WAIT: Duration = Duration::from_secs(2);
/// How long a keeper must have lived for its death not to count against the next one.
const STABLE: Duration = Duration::from_secs(60);
/// The longest pause between attempts to start a keeper.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// A log line for the daemon's log.
pub(crate) type Note = (Kind, String);

/// How a keeper is started.
#[derive(Debug)]
pub(crate) enum Launch {
    /// This very binary again (`/proc/self/exe`: after an upgrade on disk, the keeper is
    /// still the daemon's own version), with `ARG JOURNAL`.
    Exec {
        program: PathBuf,
        args: Vec<OsString>,
    },
    /// Tests: messages are recorded, no process is started.
    #[cfg(test)]
    Record(std::rc::Rc<std::cell::RefCell<Vec<Message>>>),
}

impl Launch {
    /// The real keeper for the stop journal `journal`.
    pub(crate) fn exec(journal: &Path) -> Launch {
        Launch::Exec {
            program: PathBuf::from("/proc/self/exe"),
            args: vec![ARG.into(), journal.as_os_str().to_owned()],
        }
    }
}

/// A live keeper.
#[derive(Debug)]
enum Conn {
    Process {
        child: Child,
        sock: UnixStream,
        since: Instant,
    },
    #[cfg(test)]
    Record(std::rc::Rc<std::cell::RefCell<Vec<Message>>>),
}

/// The daemon's link to its keeper, and what it has told it.
#[derive(Debug)]
pub(crate) struct KeeperLink {
    launch: Launch,
    /// The state file naming the keeper's pid, for the next process to find it.
    pid_file: PathBuf,
    limit_ms: u64,
    log_file: Option<PathBuf>,
    syslog: Option<PathBuf>,
    /// The pending stops (as in the journal) by key, with their monotonic due times.
    held: BTreeMap<u64, (u64, Pending)>,
    conn: Option<Conn>,
    /// A keeper is wanted even with nothing pending: the config has stop commands.
    wanted: bool,
    /// Keepers that died or failed to start in a row.
    failures: u32,
    /// Not before then, after a failure.
    retry_at: Option<Instant>,
}

impl KeeperLink {
    pub(crate) fn new(launch: Launch, pid_file: PathBuf, limit: Duration) -> KeeperLink {
        KeeperLink {
            launch,
            pid_file,
            limit_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
            log_file: None,
            syslog: None,
            held: BTreeMap::new(),
            conn: None,
            wanted: false,
            failures: 0,
            retry_at: None,
        }
    }

    /// Whether the config has stop commands (a keeper is started before the first one is
    /// pending, off the knock's path).
    pub(crate) fn set_wanted(&mut self, wanted: bool) {
        self.wanted = wanted;
    }

    /// Where the keeper logs.
    pub(crate) fn set_log(&mut self, file: Option<PathBuf>, syslog: Option<PathBuf>) -> Vec<Note> {
        self.log_file = file;
        self.syslog = syslog;
        let m = self.log_message();
        self.send(&m)
    }

    /// The stop `key` is pending as `stop` (its journal entry), due at `due`.
    pub(crate) fn schedule(&mut self, key: u64, due: Mono, stop: &Pending) -> Vec<Note> {
        self.held.insert(key, (due.as_millis(), stop.clone()));
        if self.conn.is_none() {
            return self.sync();
        }
        self.send(&Message::Schedule {
            id: key,
            due_ms: due.as_millis(),
            stop: stop.clone(),
        })
    }

    /// The stop `key` has left the journal.
    pub(crate) fn done(&mut self, key: u64) -> Vec<Note> {
        if self.held.remove(&key).is_none() {
            return Vec::new();
        }
        self.send(&Message::Done { id: key })
    }

    /// Once a second: notices a keeper that died, and starts one when one is needed and
    /// the pause after a failure is over.
    pub(crate) fn sync(&mut self) -> Vec<Note> {
        let mut notes = Vec::new();
        let ended = match &mut self.conn {
            Some(Conn::Process { child, since, .. }) => match child.try_wait() {
                Ok(None) => {
                    if since.elapsed() >= STABLE {
                        self.failures = 0;
                    }
                    None
                }
                Ok(Some(status)) => Some((child.id(), status.to_string())),
                Err(e) => Some((child.id(), format!("cannot be waited for ({e})"))),
            },
            _ => None,
        };
        if let Some((pid, how)) = ended {
            self.lost();
            notes.push((
                Kind::Error,
                format!("stop keeper (pid {pid}) ended: {how}; starting another"),
            ));
        }
        let needed = self.wanted || !self.held.is_empty();
        if self.conn.is_none() && needed && self.retry_at.is_none_or(|t| Instant::now() >= t) {
            notes.extend(self.start());
        }
        notes
    }

    /// A clean shutdown, after every pending stop ran: says goodbye, waits (briefly) for the
    /// keeper to leave and removes its pid file.
    pub(crate) fn bye(&mut self) {
        self.wanted = false;
        #[cfg(test)]
        if let Some(Conn::Record(r)) = &self.conn {
            r.borrow_mut().push(Message::Bye);
        }
        // A keeper already gone (killed with the daemon's unit) needs no goodbye.
        if let Some(Conn::Process {
            mut child,
            mut sock,
            ..
        }) = self.conn.take()
        {
            if let Ok(frame) = msg::encode(&Message::Bye) {
                let _ = sock.write_all(&frame);
            }
            let deadline = Instant::now() + BYE_WAIT;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
            let _ = std::fs::remove_file(&self.pid_file);
        }
    }

    fn log_message(&self) -> Message {
        Message::Log {
            file: self.log_file.clone(),
            syslog: self.syslog.clone(),
        }
    }

    /// Starts a keeper and tells it everything: who we are, where to log, every pending
    /// stop.
    fn start(&mut self) -> Vec<Note> {
        let conn = match &self.launch {
            Launch::Exec { program, args } => match spawn(program, args) {
                Ok((child, sock)) => Conn::Process {
                    child,
                    sock,
                    since: Instant::now(),
                },
                Err(e) => {
                    self.failed();
                    return vec![(
                        Kind::Error,
                        format!(
                            "cannot start the stop keeper: {e}; a stop command due while \
                             knockd-lite is not running waits for its next start"
                        ),
                    )];
                }
            },
            #[cfg(test)]
            Launch::Record(r) => Conn::Record(std::rc::Rc::clone(r)),
        };
        let pid = match &conn {
            Conn::Process { child, .. } => Some(child.id()),
            #[cfg(test)]
            Conn::Record(_) => None,
        };
        self.conn = Some(conn);
        let mut notes = Vec::new();
        if let Some(pid) = pid
            && let Err(e) = self.write_pid(pid)
        {
            notes.push((
                Kind::Error,
                format!(
                    "cannot record the stop keeper's pid in {}: {e}; should knockd-lite be \
                     started again while this keeper runs, both may run its stops",
                    self.pid_file.display()
                ),
            ));
        }
        let mut messages = vec![
            Message::Hello {
                daemon_pid: std::process::id(),
                limit_ms: self.limit_ms,
            },
            self.log_message(),
        ];
        messages.extend(
            self.held
                .iter()
                .map(|(&id, (due_ms, stop))| Message::Schedule {
                    id,
                    due_ms: *due_ms,
                    stop: stop.clone(),
                }),
        );
        for m in &messages {
            notes.extend(self.send(m));
        }
        notes
    }

    fn write_pid(&self, pid: u32) -> io::Result<()> {
        if let Some(dir) = self.pid_file.parent().filter(|d| !d.as_os_str().is_empty()) {
            files::create_private_dir(dir)?;
        }
        files::write_atomic(
            &self.pid_file,
            format!("{pid}\n").as_bytes(),
            files::PRIVATE_MODE,
            Overwrite::Replace,
        )
        .map_err(io::Error::other)
    }

    /// Sends one message; a keeper that cannot take it is killed (the next `sync` starts
    /// another, which is told everything again). A message too long for the channel is not
    /// sent (the keeper would refuse it and end, and so would every keeper after it): said
    /// in the log, and the stop is left to the journal.
    fn send(&mut self, m: &Message) -> Vec<Note> {
        if self.conn.is_none() {
            return Vec::new();
        }
        let frame = match msg::encode(m) {
            Ok(frame) => frame,
            Err(e) => return vec![(Kind::Error, not_sent(m, &e))],
        };
        let result = match &mut self.conn {
            None => return Vec::new(),
            Some(Conn::Process { sock, .. }) => sock.write_all(&frame),
            #[cfg(test)]
            Some(Conn::Record(r)) => {
                r.borrow_mut().push(m.clone());
                Ok(())
            }
        };
        match result {
            Ok(()) => Vec::new(),
            Err(e) => {
                let pid = match &mut self.conn {
                    Some(Conn::Process { child, .. }) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        child.id()
                    }
                    _ => 0,
                };
                self.lost();
                vec![(
                    Kind::Error,
                    format!(
                        "stop keeper (pid {pid}) cannot be told of a stop: {e}; starting another"
                    ),
                )]
            }
        }
    }

    /// The keeper is gone: the next one waits a little longer each time.
    fn lost(&mut self) {
        self.conn = None;
        self.failed();
    }

    fn failed(&mut self) {
        let wait = Duration::from_secs(1 << self.failures.min(9)).min(MAX_BACKOFF);
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(Instant::now() + wait);
    }
}

/// Why `m` was not sent to the keeper.
fn not_sent(m: &Message, e: &msg::TooLong) -> String {
    match m {
        Message::Schedule { stop, .. } => format!(
            "{}: {}: stop command too long for the stop keeper ({e}): should knockd-lite \
             end without a clean stop, this stop runs at its next start, not on time",
            stop.src, stop.door
        ),
        _ => format!("the stop keeper cannot be told: {e}"),
    }
}

/// Starts `program ARGS` in a session of its own with one end of a new socket pair as its
/// stdin; returns the child and the other end.
fn spawn(program: &Path, args: &[OsString]) -> io::Result<(Child, UnixStream)> {
    // Both ends are close-on-exec: no door command ever holds the channel open, so the
    // keeper sees the daemon's end close the moment the daemon dies.
    let (ours, theirs) = UnixStream::pair().map_err(|e| with_op("socketpair", e))?;
    ours.set_write_timeout(Some(SEND_TIMEOUT))
        .map_err(|e| with_op("SO_SNDTIMEO", e))?;
    let mut cmd = Command::new(program);
    cmd.arg0("knockd-lite")
        .args(args)
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // Its own session: a signal to the daemon's process group (or a terminal's hangup)
    // never reaches it. No parent-death signal: outliving the daemon is its purpose.
    sys::new_session(&mut cmd);
    let child = cmd
        .spawn()
        .map_err(|e| with_op(&program.display().to_string(), e))?;
    // `cmd` still holds the keeper's end: dropped here, so only the keeper has it.
    drop(cmd);
    Ok((child, ours))
}

fn with_op(op: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{op}: {e}"))
}

/// How long [`retire_previous`] waits for an earlier keeper to hand over.
pub(crate) const HANDOVER_WAIT: Duration = Duration::from_secs(10);

/// At start-up, before the stop journal is read: if the keeper named in `pid_file` is
/// alive, is the keeper of `journal` and no daemon owns it any more (its daemon died and
/// this process replaces it), asks it to hand over (SIGUSR1). It finishes the stop commands
/// it is running, takes them out of the journal, leaves the rest there and exits; this
/// process then reads the journal and runs every stop in it once. A keeper that does not
/// leave within `wait` is killed. Returns what to log.
pub(crate) fn retire_previous(pid_file: &Path, journal: &Path, wait: Duration) -> Option<Note> {
    let pid: u32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if pid == std::process::id() {
        return None;
    }
    // The pidfd first: from here a signal can only reach that process, never one that
    // took its pid after it exited.
    let pidfd = Pidfd::open(pid).ok()?;
    if !is_keeper_of(pid, journal) {
        return None;
    }
    if let Some(daemon) = live_daemon_parent(pid) {
        return Some((
            Kind::Warning,
            format!(
                "another knockd-lite (pid {daemon}) runs with this config and state folder; \
                 its stop keeper (pid {pid}) is left to it, and both write one stop journal"
            ),
        ));
    }
    pidfd.send_signal(libc::SIGUSR1).ok()?;
    if exited(&pidfd, wait) {
        return Some((
            Kind::Event,
            format!("the stop keeper (pid {pid}) of an earlier knockd-lite handed its stops over"),
        ));
    }
    let _ = pidfd.send_signal(libc::SIGKILL);
    exited(&pidfd, Duration::from_secs(1));
    Some((
        Kind::Error,
        format!(
            "the stop keeper (pid {pid}) of an earlier knockd-lite did not hand over within {} \
             s: killed; a stop command it was running may run again",
            wait.as_secs()
        ),
    ))
}

/// Whether `pid` runs `knockd-lite --stop-keeper JOURNAL` for this `journal`.
fn is_keeper_of(pid: u32, journal: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    matches!(&args[..], [_, arg, path, ..] if *arg == ARG.as_bytes()
        && *path == journal.as_os_str().as_bytes())
}

/// The pid of a live knockd-lite that is `pid`'s parent: a daemon still running.
fn live_daemon_parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the name in parentheses: state, then the parent's pid.
    let ppid: u32 = stat
        .rsplit(')')
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    if ppid <= 1 {
        return None;
    }
    let comm = std::fs::read_to_string(format!("/proc/{ppid}/comm")).ok()?;
    let pstat = std::fs::read_to_string(format!("/proc/{ppid}/stat")).ok()?;
    let zombie = pstat.rsplit(')').next()?.split_whitespace().next() == Some("Z");
    (comm.trim_end() == "knockd-lite" && !zombie).then_some(ppid)
}

/// Waits up to `wait` for the process to exit.
fn exited(pidfd: &Pidfd, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        let mut fds = [PollFd::readable(std::os::fd::AsRawFd::as_raw_fd(pidfd))];
        let left = deadline.saturating_duration_since(Instant::now());
        match sys::poll(&mut fds, left) {
            Ok(n) if n > 0 => return true,
            Ok(_) if left.is_zero() => return false,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}
