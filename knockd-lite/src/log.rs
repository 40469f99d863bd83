//! Logging in knockd's format: `[YYYY-MM-DD HH:MM] body` lines to the LogFile, RFC 3164
//! datagrams to syslog, bare bodies to stdout with `-v`, and `-D` debug lines; floods of
//! stage lines (first stages, and later ones apart) are folded into one summary a second.
//!
//! Message bodies come in already formatted (`192.0.2.10: door: Stage 1`), so this module
//! does not depend on the engine's event types. The texts knockd 0.8 writes, which the
//! runtime reproduces, are:
//!
//! ```text
//! starting up, listening on eth0
//! 192.0.2.1: door: Stage 1
//! 192.0.2.1: door: OPEN SESAME
//! door: running command: /usr/sbin/iptables -A INPUT -s 192.0.2.1 -j ACCEPT
//! door: command returned non-zero status code (3)
//! 192.0.2.1: door: command timeout
//! 192.0.2.1: door: sequence timeout (stage 2)
//! shutting down
//! ```
//!
//! knockd follows `running command` and `sequence timeout` with a blank line; we don't.

use std::fs::{File, OpenOptions};
use std::io::{self, LineWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use knockd_engine::Now;

use crate::sys::{self, BrokenDown};

/// Where syslog messages go on Linux.
pub(crate) const DEV_LOG: &str = "/dev/log";
/// The syslog tag.
pub(crate) const IDENT: &str = "knockd-lite";
/// First-stage lines written per second before the rest are folded.
pub(crate) const DEFAULT_FIRST_STAGE_BUDGET: u32 = 10;

/// What a line is about: decides folding and syslog severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `Stage 1`: what a spoofed flood produces, so it is folded.
    FirstStage,
    /// `sequence timeout (stage 1)`: the other half of a flood, folded with `FirstStage`.
    FirstStageTimeout,
    /// `Stage 2` and later, of an attempt that has not completed: what a spoofer who knows
    /// the sequence produces, folded like `FirstStage` with a budget of its own, so a
    /// first-port flood does not hide them.
    LaterStage,
    /// `sequence timeout (stage 2)` and later, folded with `LaterStage`.
    LaterStageTimeout,
    /// Any other event: later stages, OPEN SESAME, commands, start-up, shutdown.
    Event,
    /// Something failed (a command's non-zero exit, a broken config on reload).
    Error,
    /// Something to fix that does not stop the server (a log file that cannot be opened,
    /// two doors with one name).
    Warning,
}

/// Local wall-clock time, to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LocalTime {
    pub year: i32,
    /// 1-12.
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl LocalTime {
    /// `ms` (since the Unix epoch) in the local time zone. A year out of range (which
    /// localtime_r refuses) reads as the epoch's fields, all zero.
    pub(crate) fn from_unix_ms(ms: u64) -> LocalTime {
        let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
        let tm = sys::local_time(secs).unwrap_or(BrokenDown {
            year: 1900,
            month: 1,
            day: 0,
            hour: 0,
            minute: 0,
            second: 0,
        });
        LocalTime {
            year: tm.year,
            month: u32::try_from(tm.month).unwrap_or(1),
            day: u32::try_from(tm.day).unwrap_or(1),
            hour: u32::try_from(tm.hour).unwrap_or(0),
            minute: u32::try_from(tm.minute).unwrap_or(0),
            second: u32::try_from(tm.second).unwrap_or(0),
        }
    }

    /// `2026-11-22 05:00`, knockd's LogFile stamp.
    pub(crate) fn minute_stamp(&self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute
        )
    }

    /// `2026-11-22 05:00:07`, the stamp of `-D` lines. (knockd prints the month off by
    /// one there; we print the real one.)
    pub(crate) fn second_stamp(&self) -> String {
        format!("{}:{:02}", self.minute_stamp(), self.second)
    }

    /// `Nov 22 05:00:07` (day padded with a space), RFC 3164's TIMESTAMP.
    pub(crate) fn rfc3164_stamp(&self) -> String {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let month = MONTHS[(self.month.clamp(1, 12) - 1) as usize];
        format!(
            "{month} {:>2} {:02}:{:02}:{:02}",
            self.day, self.hour, self.minute, self.second
        )
    }
}

/// A body on one line: line breaks and other control characters become spaces and
/// trailing white space goes, so no entry ever spans or adds lines.
pub(crate) fn one_line(body: &str) -> String {
    body.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim_end()
        .to_string()
}

/// A LogFile line, with its newline: `[2026-11-22 05:00] 192.0.2.10: door: Stage 1\n`.
pub(crate) fn file_line(t: &LocalTime, body: &str) -> String {
    format!("[{}] {}\n", t.minute_stamp(), one_line(body))
}

/// An RFC 3164 datagram for the local syslog socket, facility daemon:
/// `<29>Nov 22 05:00:07 knockd-lite[812]: 192.0.2.10: door: Stage 1`.
pub(crate) fn syslog_datagram(t: &LocalTime, kind: Kind, pid: u32, body: &str) -> String {
    const DAEMON: u8 = 3 << 3;
    let severity = match kind {
        Kind::Error => 3,   // err
        Kind::Warning => 4, // warning
        Kind::FirstStage
        | Kind::FirstStageTimeout
        | Kind::LaterStage
        | Kind::LaterStageTimeout
        | Kind::Event => 5, // notice
    };
    format!(
        "<{}>{} {IDENT}[{pid}]: {}",
        DAEMON | severity,
        t.rfc3164_stamp(),
        one_line(body)
    )
}

/// Folds first-stage lines in a flood. A token bucket lets a burst of `burst` lines through
/// and then one line a second; what it holds back is counted, and each second that held
/// lines back ends with one summary line. Driven only by the times it is given, on the
/// monotonic clock (a wall clock stepped back would hold every summary until it caught up),
/// so a flood replayed with a virtual clock folds exactly as a live one does.
///
/// A spoofed flood makes two lines per source (`Stage 1`, then `sequence timeout (stage
/// 1)` when the attempt expires), so both go through the same bucket and are counted apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Folder {
    /// Bucket size in milli-lines; it refills at [`REFILL_PER_SECOND`] lines a second.
    capacity: u64,
    tokens: u64,
    last_ms: Option<u64>,
    /// The second (ms / 1000) the counts belong to.
    second: Option<u64>,
    held: Held,
}

/// Lines the bucket refills with each second, once a burst has used it up.
pub(crate) const REFILL_PER_SECOND: u64 = 1;

/// Lines held back in one second, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Held {
    pub knocks: u64,
    pub timeouts: u64,
}

impl Held {
    fn is_empty(self) -> bool {
        self.knocks == 0 && self.timeouts == 0
    }
}

/// What to do with a first-stage line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fold {
    /// Lines held back in an earlier second, to report in a summary line first.
    pub summary: Option<Held>,
    /// Whether to write this line.
    pub write: bool,
}

impl Folder {
    pub(crate) fn new(burst: u32) -> Folder {
        let capacity = u64::from(burst.max(1)) * 1000;
        Folder {
            capacity,
            tokens: capacity,
            last_ms: None,
            second: None,
            held: Held::default(),
        }
    }

    /// Starts a new second if `now_ms` is in a later one, returning what was held back in
    /// the second that ended. A clock that steps back stays in the current second.
    fn roll(&mut self, now_ms: u64) -> Option<Held> {
        let s = now_ms / 1000;
        if self.second.is_some_and(|cur| s <= cur) {
            return None;
        }
        self.second = Some(s);
        let held = std::mem::take(&mut self.held);
        (!held.is_empty()).then_some(held)
    }

    fn refill(&mut self, now_ms: u64) {
        let elapsed = self.last_ms.map_or(0, |last| now_ms.saturating_sub(last));
        self.last_ms = Some(self.last_ms.map_or(now_ms, |last| last.max(now_ms)));
        // elapsed ms * lines/s = milli-lines.
        let gained = elapsed.saturating_mul(REFILL_PER_SECOND);
        self.tokens = self.tokens.saturating_add(gained).min(self.capacity);
    }

    /// Decides about one first-stage line at `now_ms`; `timeout` marks a
    /// `sequence timeout (stage 1)` line.
    pub(crate) fn admit(&mut self, now_ms: u64, timeout: bool) -> Fold {
        let summary = self.roll(now_ms);
        self.refill(now_ms);
        let write = self.tokens >= 1000;
        if write {
            self.tokens -= 1000;
        } else if timeout {
            self.held.timeouts += 1;
        } else {
            self.held.knocks += 1;
        }
        Fold { summary, write }
    }

    /// The summary for a second that has ended by `now_ms`, if lines were held back in it.
    /// Call it from the loop's tick, so a flood that stops still gets its summary.
    pub(crate) fn flush(&mut self, now_ms: u64) -> Option<Held> {
        if self.held.is_empty() {
            return None;
        }
        self.roll(now_ms)
    }

    /// Lines held back in the current second so far.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> Held {
        self.held
    }
}

/// The summary line's body; `what` names the stages, `first-stage` or `later-stage`.
pub(crate) fn summary_body(held: Held, what: &str) -> String {
    match (held.knocks, held.timeouts) {
        (n, 0) => format!("{n} more {what} knocks suppressed"),
        (0, m) => format!("{m} more {what} timeouts suppressed"),
        (n, m) => format!("{n} more {what} knocks and {m} {what} timeouts suppressed"),
    }
}

/// The stages each folder summarises, for [`summary_body`].
pub(crate) const FIRST: &str = "first-stage";
pub(crate) const LATER: &str = "later-stage";

/// Where log lines go.
#[derive(Clone, Debug, Default)]
pub(crate) struct LogConfig {
    /// `LogFile` / `-g`: appended to, one line per entry.
    pub file: Option<PathBuf>,
    /// `UseSyslog`: the syslog socket, normally [`DEV_LOG`].
    pub syslog: Option<PathBuf>,
    /// `-v`: bodies on stdout.
    pub verbose: bool,
    /// `-D`: debug lines on stdout.
    pub debug: bool,
    /// First-stage lines let through in a burst before folding (then one a second); 0 means
    /// [`DEFAULT_FIRST_STAGE_BUDGET`].
    pub first_stage_budget: u32,
}

/// An error opening a log destination. The message holds the OS error, so it is not also
/// the `source()`.
#[derive(Debug, thiserror::Error)]
#[error("open log file {}: {error}", path.display())]
pub(crate) struct LogError {
    pub path: PathBuf,
    pub error: io::Error,
}

impl LogError {
    /// The same error (io::Error is not Clone; an OS error is rebuilt from its number).
    fn copy(&self) -> LogError {
        let e = &self.error;
        LogError {
            path: self.path.clone(),
            error: e.raw_os_error().map_or_else(
                || io::Error::new(e.kind(), e.to_string()),
                io::Error::from_raw_os_error,
            ),
        }
    }

    /// The warning knockd-lite gives (on stderr, in syslog, from `--check`) when its log
    /// file cannot be opened: knockd warns and runs, and so does knockd-lite. `origin` says
    /// where the path came from (`LogFile on line 2 of /etc/knockd.conf`, or `-g`).
    pub(crate) fn warning(&self, origin: &str) -> String {
        format!(
            "warning: cannot open the log file {} ({origin}): {}; running without it until \
             a SIGHUP opens it",
            self.path.display(),
            self.error
        )
    }
}

/// Whether `path` could be opened for appending, found without creating or changing it
/// (for `--check`): an existing file is opened for appending and closed again; for a new
/// one, its folder must exist and be writable (a read-only file system counts).
pub(crate) fn check_file(path: &Path) -> Result<(), LogError> {
    let fail = |error| LogError {
        path: path.to_path_buf(),
        error,
    };
    match std::fs::symlink_metadata(path) {
        Ok(_) => OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
            .map_err(fail),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            sys::can_write(dir).map_err(fail)
        }
        Err(e) => Err(fail(e)),
    }
}

/// The log: every destination the configuration asks for.
#[derive(Debug)]
pub(crate) struct Logger {
    cfg: LogConfig,
    file: Option<LineWriter<File>>,
    /// Why the log file is not open, while it is not: it is tried again on each reopen.
    file_error: Option<LogError>,
    syslog: Option<UnixDatagram>,
    /// Folds first-stage lines.
    folder: Folder,
    /// Folds later-stage lines, with the same budget.
    later: Folder,
    pid: u32,
    /// The first write error, reported once on stderr rather than per line.
    write_failed: bool,
}

/// The mode a new log file gets: it names who knocked when, and what ran for them, so no
/// one but root and the log's group reads it (the umask can only narrow it further). An
/// existing file keeps its mode: it is the administrator's.
pub(crate) const LOG_MODE: u32 = 0o640;

fn open_append(path: &Path) -> Result<LineWriter<File>, LogError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(LOG_MODE)
        .open(path)
        .map(LineWriter::new)
        .map_err(|error| LogError {
            path: path.to_path_buf(),
            error,
        })
}

impl Logger {
    /// Opens the destinations. Neither a missing syslog socket nor a log file that cannot be
    /// opened is fatal, as in knockd: syslog messages are dropped until the socket appears
    /// (syslog daemons restart), and the file is tried again by [`Logger::reopen`] (see
    /// [`Logger::file_error`]).
    pub(crate) fn open(cfg: LogConfig) -> Logger {
        // localtime_r does not read the zone itself.
        sys::reload_time_zone();
        let (file, file_error) = match cfg.file.as_deref().map(open_append) {
            Some(Ok(f)) => (Some(f), None),
            Some(Err(e)) => (None, Some(e)),
            None => (None, None),
        };
        let budget = if cfg.first_stage_budget == 0 {
            DEFAULT_FIRST_STAGE_BUDGET
        } else {
            cfg.first_stage_budget
        };
        Logger {
            syslog: cfg
                .syslog
                .as_ref()
                .and_then(|_| UnixDatagram::unbound().ok()),
            file,
            file_error,
            folder: Folder::new(budget),
            later: Folder::new(budget),
            pid: std::process::id(),
            write_failed: false,
            cfg,
        }
    }

    /// Why the log file could not be opened, while it is not open.
    pub(crate) fn file_error(&self) -> Option<&LogError> {
        self.file_error.as_ref()
    }

    /// Reopens the log file (after rotation, on SIGHUP; a file that could not be opened is
    /// tried again) and re-reads the time zone. On failure a file still open from before
    /// stays in use. `Ok(true)` when a file that was not open is open now.
    pub(crate) fn reopen(&mut self) -> Result<bool, LogError> {
        sys::reload_time_zone();
        self.pid = std::process::id();
        let Some(path) = &self.cfg.file else {
            return Ok(false);
        };
        let was_closed = self.file.is_none();
        match open_append(path) {
            Ok(f) => {
                self.file = Some(f);
                self.file_error = None;
                self.write_failed = false;
                Ok(was_closed)
            }
            Err(e) if was_closed => {
                self.file_error = Some(e.copy());
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) fn debug_enabled(&self) -> bool {
        self.cfg.debug
    }

    /// Logs one entry at `now`: stamped with its wall clock, folded on its monotonic one.
    pub(crate) fn event(&mut self, now: Now, body: &str, kind: Kind) {
        if self.fold(now, kind) {
            self.write(now, body, kind);
        }
    }

    /// Like [`Logger::event`], but the body is only formatted when the entry is written: a
    /// spoofed flood's folded first-stage lines cost no formatting.
    pub(crate) fn event_with(&mut self, now: Now, kind: Kind, body: impl FnOnce() -> String) {
        if self.fold(now, kind) {
            self.write(now, &body(), kind);
        }
    }

    /// Writes the summaries of folded lines that are due, and says whether an entry of
    /// `kind` at `now` is to be written.
    fn fold(&mut self, now: Now, kind: Kind) -> bool {
        let mono = now.mono.as_millis();
        let (folder, what, timeout) = match kind {
            Kind::FirstStage => (&mut self.folder, FIRST, false),
            Kind::FirstStageTimeout => (&mut self.folder, FIRST, true),
            Kind::LaterStage => (&mut self.later, LATER, false),
            Kind::LaterStageTimeout => (&mut self.later, LATER, true),
            Kind::Event | Kind::Error | Kind::Warning => {
                self.tick(now);
                return true;
            }
        };
        let fold = folder.admit(mono, timeout);
        if let Some(n) = fold.summary {
            self.write(now, &summary_body(n, what), Kind::Event);
        }
        fold.write
    }

    /// Writes the summaries of finished seconds of folding, if any. Call it from the loop's
    /// tick (say once a second).
    pub(crate) fn tick(&mut self, now: Now) {
        let mono = now.mono.as_millis();
        if let Some(n) = self.folder.flush(mono) {
            self.write(now, &summary_body(n, FIRST), Kind::Event);
        }
        if let Some(n) = self.later.flush(mono) {
            self.write(now, &summary_body(n, LATER), Kind::Event);
        }
    }

    /// A `-D` line on stdout, `2026-11-22 05:00:07: body`; nothing without `-D`.
    pub(crate) fn debug(&mut self, now: Now, body: &str) {
        if self.cfg.debug {
            let t = LocalTime::from_unix_ms(now.wall.as_millis());
            let mut out = io::stdout().lock();
            let _ = writeln!(out, "{}: {}", t.second_stamp(), one_line(body));
        }
    }

    fn write(&mut self, now: Now, body: &str, kind: Kind) {
        let t = LocalTime::from_unix_ms(now.wall.as_millis());
        if self.cfg.verbose {
            let mut out = io::stdout().lock();
            let _ = writeln!(out, "{}", one_line(body));
        }
        if let Some(f) = &mut self.file
            && let Err(e) = f.write_all(file_line(&t, body).as_bytes())
            && !self.write_failed
        {
            self.write_failed = true;
            let path = self.cfg.file.as_deref().unwrap_or(Path::new("?"));
            eprintln!("knockd-lite: write {}: {e}", path.display());
        }
        if let (Some(sock), Some(path)) = (&self.syslog, &self.cfg.syslog) {
            // A syslog that is down or restarting loses the message, as syslog(3) does.
            let _ = sock.send_to(syslog_datagram(&t, kind, self.pid, body).as_bytes(), path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Scratch;
    use std::process::Command;

    #[test]
    fn stamps() {
        let t = LocalTime {
            year: 2026,
            month: 11,
            day: 2,
            hour: 5,
            minute: 0,
            second: 7,
        };
        assert_eq!(t.minute_stamp(), "2026-11-02 05:00");
        assert_eq!(t.second_stamp(), "2026-11-02 05:00:07");
        assert_eq!(t.rfc3164_stamp(), "Nov  2 05:00:07");
        assert_eq!(
            file_line(&t, "192.0.2.10: door: Stage 1"),
            "[2026-11-02 05:00] 192.0.2.10: door: Stage 1\n"
        );
    }

    #[test]
    fn local_time_agrees_with_date() {
        for secs in [0u64, 1_700_000_000, 1_795_000_000] {
            let ours = LocalTime::from_unix_ms(secs * 1000 + 999).second_stamp();
            let out = Command::new("date")
                .args(["-d", &format!("@{secs}"), "+%Y-%m-%d %H:%M:%S"])
                .output()
                .expect("date");
            assert_eq!(ours, String::from_utf8_lossy(&out.stdout).trim(), "{secs}");
        }
    }

    #[test]
    fn no_entry_spans_or_adds_lines() {
        let t = LocalTime::from_unix_ms(0);
        let line = file_line(&t, "door: running command: echo a\nb\r\n\n");
        assert!(
            line.ends_with("] door: running command: echo a b\n"),
            "{line:?}"
        );
        assert_eq!(line.matches('\n').count(), 1);
        assert_eq!(one_line("x\ty\u{7}"), "x y");
    }

    #[test]
    fn syslog_datagram_format() {
        let t = LocalTime {
            year: 2026,
            month: 1,
            day: 22,
            hour: 23,
            minute: 59,
            second: 0,
        };
        assert_eq!(
            syslog_datagram(&t, Kind::Event, 812, "192.0.2.10: door: OPEN SESAME"),
            "<29>Jan 22 23:59:00 knockd-lite[812]: 192.0.2.10: door: OPEN SESAME"
        );
        assert_eq!(
            syslog_datagram(
                &t,
                Kind::Error,
                1,
                "door: command returned non-zero status code (3)\n"
            ),
            "<27>Jan 22 23:59:00 knockd-lite[1]: door: command returned non-zero status code (3)"
        );
    }

    fn knocks(n: u64) -> Option<Held> {
        Some(Held {
            knocks: n,
            timeouts: 0,
        })
    }

    #[test]
    fn folder_lets_a_burst_through_then_one_line_a_second() {
        let mut f = Folder::new(3);
        let base = 1_000_000;
        let writes: Vec<bool> = (0..5).map(|i| f.admit(base + i, false).write).collect();
        assert_eq!(writes, [true, true, true, false, false]);
        assert_eq!(f.pending(), knocks(2).unwrap());
        // Still in the same second: nothing to flush.
        assert_eq!(f.flush(base + 999), None);
        // The next second: the summary comes first, and one second has refilled one line.
        assert_eq!(
            f.admit(base + 1004, false),
            Fold {
                summary: knocks(2),
                write: true
            }
        );
        assert!(!f.admit(base + 1005, false).write);
        // A quiet spell refills the whole burst, and no more than it.
        assert_eq!(f.flush(base + 2000), knocks(1));
        let writes: Vec<bool> = (0..5)
            .map(|i| f.admit(base + 60_000 + i, false).write)
            .collect();
        assert_eq!(writes, [true, true, true, false, false]);
    }

    #[test]
    fn folder_counts_knocks_and_timeouts_apart() {
        let mut f = Folder::new(1);
        assert!(f.admit(0, false).write);
        assert!(!f.admit(1, false).write);
        assert!(!f.admit(2, true).write);
        assert!(!f.admit(3, true).write);
        let held = f.flush(1000).unwrap();
        assert_eq!(
            held,
            Held {
                knocks: 1,
                timeouts: 2
            }
        );
        assert_eq!(
            summary_body(held, FIRST),
            "1 more first-stage knocks and 2 first-stage timeouts suppressed"
        );
        assert_eq!(
            summary_body(knocks(5).unwrap(), LATER),
            "5 more later-stage knocks suppressed"
        );
        assert_eq!(
            summary_body(
                Held {
                    knocks: 0,
                    timeouts: 4
                },
                FIRST
            ),
            "4 more first-stage timeouts suppressed"
        );
    }

    /// Both clocks at `ms`.
    fn at(ms: u64) -> Now {
        Now::new(
            knockd_engine::Mono::from_millis(ms),
            knockd_engine::Timestamp::from_millis(ms),
        )
    }

    #[test]
    fn a_new_log_file_is_not_world_readable() {
        use std::os::unix::fs::PermissionsExt;
        let scratch = Scratch::new("log-mode");
        let file = scratch.path().join("k.log");
        let mut log = Logger::open(LogConfig {
            file: Some(file.clone()),
            ..LogConfig::default()
        });
        log.event(at(0), "starting up", Kind::Event);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !LOG_MODE, 0, "{mode:o}");
        assert_eq!(mode & 0o007, 0, "{mode:o}");
    }

    #[test]
    fn folding_runs_on_the_monotonic_clock() {
        let scratch = Scratch::new("log-fold-clock");
        let file = scratch.path().join("k.log");
        let mut log = Logger::open(LogConfig {
            file: Some(file.clone()),
            first_stage_budget: 1,
            ..LogConfig::default()
        });
        let t0 = 1_795_000_000_000u64;
        let both = |mono: u64, wall: u64| {
            Now::new(
                knockd_engine::Mono::from_millis(mono),
                knockd_engine::Timestamp::from_millis(wall),
            )
        };
        log.event(both(5_000, t0), "192.0.2.1: d: Stage 1", Kind::FirstStage);
        log.event(both(5_001, t0), "192.0.2.2: d: Stage 1", Kind::FirstStage);
        // The wall clock is set back two hours; a second later on the monotonic clock the
        // summary comes all the same, stamped with the corrected wall clock.
        let back = t0 - 7_200_000;
        log.tick(both(6_001, back));
        let text = std::fs::read_to_string(&file).unwrap();
        let want = format!(
            "[{}] 1 more first-stage knocks suppressed\n",
            LocalTime::from_unix_ms(back).minute_stamp()
        );
        assert!(text.ends_with(&want), "{text}");
    }

    #[test]
    fn later_stages_fold_apart_so_a_first_stage_flood_hides_none_of_them() {
        let scratch = Scratch::new("log-fold-later");
        let file = scratch.path().join("k.log");
        let mut log = Logger::open(LogConfig {
            file: Some(file.clone()),
            first_stage_budget: 2,
            ..LogConfig::default()
        });
        let t0 = 1_795_000_000_000u64;
        for i in 0..100 {
            log.event(at(t0 + i), "198.18.0.1: d: Stage 1", Kind::FirstStage);
        }
        log.event(at(t0 + 200), "192.0.2.1: d: Stage 2", Kind::LaterStage);
        for _ in 0..3 {
            log.event(at(t0 + 300), "198.18.0.2: d: Stage 2", Kind::LaterStage);
        }
        log.event(
            at(t0 + 400),
            "198.18.0.2: d: sequence timeout (stage 2)",
            Kind::LaterStageTimeout,
        );
        log.event(at(t0 + 500), "192.0.2.1: d: OPEN SESAME", Kind::Event);
        log.tick(at(t0 + 1500));
        let text = std::fs::read_to_string(&file).unwrap();
        let bodies: Vec<&str> = text
            .lines()
            .map(|l| l.split_once("] ").unwrap().1)
            .collect();
        assert_eq!(
            bodies,
            [
                "198.18.0.1: d: Stage 1",
                "198.18.0.1: d: Stage 1",
                "192.0.2.1: d: Stage 2",
                "198.18.0.2: d: Stage 2",
                "192.0.2.1: d: OPEN SESAME",
                "98 more first-stage knocks suppressed",
                "2 more later-stage knocks and 1 later-stage timeouts suppressed",
            ]
        );
    }

    #[test]
    fn folder_ignores_a_clock_stepping_back() {
        let mut f = Folder::new(1);
        assert!(f.admit(10_000, false).write);
        assert!(!f.admit(9_000, false).write);
        assert_eq!(f.admit(10_500, false).summary, None);
        assert_eq!(f.flush(11_000), knocks(2));
    }

    /// The line count of a spoofed flood: `rate` first-stage knocks a second for `secs`
    /// seconds, each attempt expiring `timeout_s` seconds later.
    fn flood_lines(rate: u64, secs: u64, timeout_s: u64) -> usize {
        let mut f = Folder::new(DEFAULT_FIRST_STAGE_BUDGET);
        let mut lines = 0;
        let step = 1_000_000 / rate; // microseconds between packets
        let mut events: Vec<(u64, bool)> = Vec::new();
        for i in 0..rate * secs {
            let us = i * step;
            events.push((us / 1000, false));
            events.push((us / 1000 + timeout_s * 1000, true));
        }
        events.sort_unstable();
        for (ms, timeout) in events {
            let fold = f.admit(ms, timeout);
            lines += usize::from(fold.summary.is_some()) + usize::from(fold.write);
        }
        lines + usize::from(f.flush((secs + timeout_s + 1) * 1000).is_some())
    }

    #[test]
    fn a_six_second_flood_makes_few_lines() {
        // Lines arrive in seconds 0 to 10 (the flood, then its expiries 5 s later): a burst
        // of 10, one refilled line in each of seconds 1 to 10, and a summary for each of
        // the 11 seconds.
        assert_eq!(flood_lines(100_000, 6, 5), 10 + 10 + 11);
        assert_eq!(flood_lines(10_000, 6, 5), 10 + 10 + 11);
        // A few knockers a second are never folded.
        assert_eq!(flood_lines(1, 6, 5), 12);
    }

    #[test]
    fn logger_appends_file_lines_and_sends_syslog_datagrams() {
        let scratch = Scratch::new("log-logger");
        let dir = scratch.path();
        let file = dir.join("knockd.log");
        std::fs::write(&file, "[2026-01-01 00:00] earlier line\n").unwrap();
        let sock_path = dir.join("log.sock");
        let server = UnixDatagram::bind(&sock_path).unwrap();
        server.set_nonblocking(true).unwrap();
        let mut log = Logger::open(LogConfig {
            file: Some(file.clone()),
            syslog: Some(sock_path.clone()),
            first_stage_budget: 2,
            ..LogConfig::default()
        });
        let t0 = 1_795_000_000_000u64;
        log.event(at(t0), "starting up, listening on eth0", Kind::Event);
        let mut formatted = 0;
        for i in 0..5 {
            log.event_with(at(t0 + i), Kind::FirstStage, || {
                formatted += 1;
                format!("192.0.2.{i}: door: Stage 1")
            });
        }
        assert_eq!(formatted, 2, "a folded line is never formatted");
        log.event(at(t0 + 10), "192.0.2.9: door: Stage 2", Kind::Event);
        log.tick(at(t0 + 1500));
        log.event(
            at(t0 + 2000),
            "door: command returned non-zero status code (3)",
            Kind::Error,
        );

        let stamp = |ms| format!("[{}]", LocalTime::from_unix_ms(ms).minute_stamp());
        let text = std::fs::read_to_string(&file).unwrap();
        let want = [
            "[2026-01-01 00:00] earlier line".to_string(),
            format!("{} starting up, listening on eth0", stamp(t0)),
            format!("{} 192.0.2.0: door: Stage 1", stamp(t0)),
            format!("{} 192.0.2.1: door: Stage 1", stamp(t0 + 1)),
            format!("{} 192.0.2.9: door: Stage 2", stamp(t0 + 10)),
            format!("{} 3 more first-stage knocks suppressed", stamp(t0 + 1500)),
            format!(
                "{} door: command returned non-zero status code (3)",
                stamp(t0 + 2000)
            ),
        ];
        assert_eq!(text, want.join("\n") + "\n");

        let mut grams = Vec::new();
        let mut buf = [0u8; 512];
        while let Ok(n) = server.recv(&mut buf) {
            grams.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        assert_eq!(grams.len(), 6, "{grams:?}");
        let pid = std::process::id();
        assert!(grams[0].starts_with("<29>"), "{}", grams[0]);
        assert!(
            grams[0].ends_with(&format!(
                " knockd-lite[{pid}]: starting up, listening on eth0"
            )),
            "{}",
            grams[0]
        );
        assert!(grams[5].starts_with("<27>"), "{}", grams[5]);
    }

    #[test]
    fn a_missing_syslog_socket_or_bad_file_path() {
        let scratch = Scratch::new("log-missing");
        let dir = scratch.path();
        let mut log = Logger::open(LogConfig {
            syslog: Some(dir.join("no-such.sock")),
            ..LogConfig::default()
        });
        log.event(at(0), "dropped quietly", Kind::Event);
        let log = Logger::open(LogConfig {
            file: Some(dir.join("no/such/dir/knockd.log")),
            ..LogConfig::default()
        });
        let err = log.file_error().expect("the file could not be opened");
        assert!(
            err.to_string().starts_with(&format!(
                "open log file {}: ",
                dir.join("no/such/dir/knockd.log").display()
            )),
            "{err}"
        );
        let chain = format!("{:#}", anyhow::Error::from(err.copy()));
        assert_eq!(chain.matches("(os error 2)").count(), 1, "{chain}");
    }

    /// A log file that cannot be opened: the server logs on to syslog, warns with the
    /// path's origin, and opens the file when a reopen (SIGHUP) finds it possible.
    #[test]
    fn a_log_file_that_cannot_be_opened_is_tried_again() {
        let scratch = Scratch::new("log-later");
        let dir = scratch.path();
        let file = dir.join("not-yet/knockd.log");
        let sock_path = dir.join("log.sock");
        let server = UnixDatagram::bind(&sock_path).unwrap();
        server.set_nonblocking(true).unwrap();
        let mut log = Logger::open(LogConfig {
            file: Some(file.clone()),
            syslog: Some(sock_path),
            ..LogConfig::default()
        });
        let warning = log
            .file_error()
            .unwrap()
            .warning("LogFile on line 2 of k.conf");
        assert_eq!(
            warning,
            format!(
                "warning: cannot open the log file {} (LogFile on line 2 of k.conf): No such \
                 file or directory (os error 2); running without it until a SIGHUP opens it",
                file.display()
            )
        );
        log.event(at(1_795_000_000_000), &warning, Kind::Warning);
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).unwrap();
        let gram = String::from_utf8_lossy(&buf[..n]);
        assert!(gram.starts_with("<28>"), "{gram}");
        assert!(gram.ends_with(&warning), "{gram}");

        // Still missing: the error again, and nothing open.
        assert!(log.reopen().is_err());
        assert!(log.file_error().is_some());
        std::fs::create_dir(dir.join("not-yet")).unwrap();
        assert!(log.reopen().unwrap(), "opened now");
        assert!(log.file_error().is_none());
        log.event(at(1_795_000_000_000), "now in the file", Kind::Event);
        assert!(
            std::fs::read_to_string(&file)
                .unwrap()
                .ends_with("] now in the file\n")
        );
        // A later reopen of an open file is no news.
        assert!(!log.reopen().unwrap());
    }

    #[test]
    fn check_file_creates_nothing() {
        let scratch = Scratch::new("log-check");
        let dir = scratch.path();
        let new = dir.join("new.log");
        assert!(check_file(&new).is_ok());
        assert!(!new.exists());
        std::fs::write(&new, "kept\n").unwrap();
        assert!(check_file(&new).is_ok());
        assert_eq!(std::fs::read_to_string(&new).unwrap(), "kept\n");
        let err = check_file(&dir.join("missing/k.log")).unwrap_err();
        assert_eq!(err.error.kind(), io::ErrorKind::NotFound);
        // A folder where the file should be.
        std::fs::create_dir(dir.join("sub")).unwrap();
        assert!(check_file(&dir.join("sub")).is_err());
    }
}
