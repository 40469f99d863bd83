//! One-time list files on disk: marking a line used (the one routine both `knock` and
//! knockd-lite call), consuming the first unused line under a file lock, and writing fresh
//! lists from the OS's random generator.
//!
//! Marking follows knockd: the line's first byte becomes `#`, so a list shared by client
//! and server advances the same way on both ends.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{GenProtocols, OtpLine, first_unused, generate, unused_lines};
use crate::files::{self, FileId, WriteError};
use crate::hit::HitError;
use crate::hmac::{DEFAULT_PORTS, PortRange};

/// A problem with a list file itself. Each message holds its cause, so none is also the
/// `source()`: a context chain (`{:#}`) would print it twice.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtpFileError {
    #[error("{op} one-time list {}: {error}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    /// Never quotes the line ([`HitError::without_text`]).
    #[error("{}:{line_no}: {}", path.display(), error.without_text())]
    BadLine {
        path: PathBuf,
        line_no: usize,
        error: HitError,
    },
    #[error("{}:{line_no}: not valid UTF-8", path.display())]
    NotUtf8 { path: PathBuf, line_no: usize },
    /// Marking would overwrite the first byte of a multi-byte character and corrupt the file.
    #[error(
        "{}:{line_no}: the line starts with a non-ASCII character; start it with a space",
        path.display()
    )]
    NotAsciiStart { path: PathBuf, line_no: usize },
    #[error(
        "one-time list {} is used up (every sequence is marked with '#'); \
         generate a new list with `knock otp generate` and give the server the same list",
        path.display()
    )]
    Exhausted { path: PathBuf },
    /// The knock went out, but the line could not be marked; the next run would repeat it.
    #[error(
        "{}:{line_no}: the sequence was sent but could not be marked used: {error}",
        path.display()
    )]
    Mark {
        path: PathBuf,
        line_no: usize,
        error: MarkError,
    },
    #[error("one-time list {} already exists (use --force to replace it)", path.display())]
    Exists { path: PathBuf },
    #[error("cannot generate a list: {0}")]
    Params(String),
    #[error("read random bytes from the OS: {0}")]
    Random(getrandom::Error),
}

/// Why [`mark_used`] left a line alone: the reason alone, because each caller names the file
/// and the line and says what the failure means for it (`knock`: the sequence went out
/// unmarked, [`OtpFileError::Mark`]; knockd-lite: the door's command is not run). The
/// message holds the OS error, so it is not also the `source()`.
#[derive(Debug, thiserror::Error)]
pub enum MarkError {
    #[error("{op}: {error}")]
    Io { op: &'static str, error: io::Error },
    /// The bytes at the line's offset are no longer that unused line: it was used, or the
    /// file was edited or replaced since it was read.
    #[error("the line is no longer there unused (the file changed since it was read)")]
    Changed,
    /// Writing `#` over the first byte would cut a multi-byte character in half.
    #[error("the line starts with a non-ASCII character; start it with a space")]
    NotAsciiStart,
    /// The file at the path is not the one the line was read from: another file (replaced)
    /// or one of another length (edited) since.
    #[error("the list was replaced or edited since it was read")]
    Replaced,
}

/// Why [`consume`] used nothing.
#[derive(Debug)]
pub enum ConsumeError<E> {
    /// The list could not be read, is used up, or has a bad line.
    List(OtpFileError),
    /// The send callback failed; the line stays unused.
    Send(E),
}

impl<E: std::fmt::Display> std::fmt::Display for ConsumeError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConsumeError::List(e) => e.fmt(f),
            ConsumeError::Send(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for ConsumeError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConsumeError::List(e) => e.source(),
            ConsumeError::Send(e) => e.source(),
        }
    }
}

/// A line that was sent and marked used.
#[derive(Debug)]
pub struct Used<T> {
    pub line: OtpLine,
    /// What the send callback returned.
    pub value: T,
    /// Unused lines left after this one.
    pub remaining: usize,
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> OtpFileError {
    let path = path.to_path_buf();
    move |error| OtpFileError::Io { op, path, error }
}

/// Marks `line`, read earlier from the list at `path`, as used: `#` over its first byte,
/// synced to disk before this returns. Both ends of a shared list call this, `knock` after
/// it sent the line (through [`consume`]) and knockd-lite before it runs the door's command.
///
/// The file is locked exclusively (the lock [`consume`] takes) for the check and the
/// write. The check: the bytes at `line.offset` must still be the start of line
/// `line.line_no`, unused, with the same hits; otherwise the file changed since it was read
/// and is left alone. One byte written at a known offset cannot be torn, so after a crash
/// the line is either still unused or used, never half-written.
///
/// A failure leaves the file as it was.
pub fn mark_used(path: &Path, line: &OtpLine) -> Result<(), MarkError> {
    with_locked(
        path,
        None,
        |op, error| MarkError::Io { op, error },
        |file| mark_locked(file, line),
    )
}

/// [`mark_used`] for a list read earlier, long before (the server's): the file at `path`
/// must still be the one `read` describes, the same file and the same length, or nothing
/// is written ([`MarkError::Replaced`]). A list replaced on disk is noticed before any `#`
/// lands at offsets that belonged to the old one. The lock is waited for at most
/// [`SERVER_LOCK_WAIT`]: whoever holds the list locked cannot hold up the server's capture.
pub fn mark_used_in(path: &Path, line: &OtpLine, read: &FileId) -> Result<(), MarkError> {
    with_locked(
        path,
        Some(SERVER_LOCK_WAIT),
        |op, error| MarkError::Io { op, error },
        |file| {
            let meta = file
                .metadata()
                .map_err(|error| MarkError::Io { op: "stat", error })?;
            if FileId::of(&meta) != *read {
                return Err(MarkError::Replaced);
            }
            mark_locked(file, line)
        },
    )
}

/// How long [`mark_used_in`] waits for a list someone else holds locked.
pub const SERVER_LOCK_WAIT: Duration = Duration::from_secs(1);

/// Opens the list at `path` for reading and writing, runs `f` on it under an exclusive lock,
/// and unlocks it. The lock is waited for as long as it takes, or at most `wait`. `io`
/// makes the error of a failed open or lock.
fn with_locked<T, E>(
    path: &Path,
    wait: Option<Duration>,
    io: impl Fn(&'static str, io::Error) -> E,
    f: impl FnOnce(&mut File) -> Result<T, E>,
) -> Result<T, E> {
    // A regular file of at most 16 MiB: a FIFO or a device is refused at once.
    let (mut file, _) = files::open_regular(
        path,
        OpenOptions::new().read(true).write(true),
        files::MAX_LIST_BYTES,
    )
    .map_err(|e| io("open", e))?;
    match wait {
        None => file.lock().map_err(|e| io("lock", e))?,
        Some(wait) => lock_within(&file, wait).map_err(|e| io("lock", e))?,
    }
    let result = f(&mut file);
    // Closing the file releases the lock too; unlocking first just makes it prompt.
    let _ = file.unlock();
    result
}

/// Takes the exclusive lock on `file`, trying again every 10 ms for at most `wait`.
fn lock_within(file: &File, wait: Duration) -> io::Result<()> {
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("held locked by another process for {} ms", wait.as_millis()),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

/// The check and the write of [`mark_used`], on a file already open and locked.
fn mark_locked(file: &mut File, line: &OtpLine) -> Result<(), MarkError> {
    let io = |op| move |error| MarkError::Io { op, error };
    file.seek(SeekFrom::Start(0)).map_err(io("read"))?;
    let bytes = files::read_bounded(file, files::MAX_LIST_BYTES).map_err(io("read"))?;
    let at = usize::try_from(line.offset).map_err(|_| MarkError::Changed)?;
    let (before, rest) = bytes.split_at_checked(at).ok_or(MarkError::Changed)?;
    let first_byte = *rest.first().ok_or(MarkError::Changed)?;
    let starts_line = before.last().is_none_or(|&b| b == b'\n');
    let line_no = before.iter().filter(|&&b| b == b'\n').count() + 1;
    if !starts_line || line_no != line.line_no {
        return Err(MarkError::Changed);
    }
    if !first_byte.is_ascii() {
        return Err(MarkError::NotAsciiStart);
    }
    // The line alone, read as a one-line list: unused and with the same hits, or changed.
    let end = rest
        .iter()
        .position(|&b| b == b'\n')
        .map_or(rest.len(), |i| i + 1);
    let now = std::str::from_utf8(&rest[..end])
        .ok()
        .and_then(|text| first_unused(text).ok().flatten());
    if now.is_none_or(|now| now.hits != line.hits) {
        return Err(MarkError::Changed);
    }
    // One byte at a known offset: a write that small is never torn.
    file.seek(SeekFrom::Start(line.offset))
        .map_err(io("write"))?;
    file.write_all(b"#").map_err(io("write"))?;
    file.sync_all().map_err(io("sync"))
}

/// Sends the first unused line of the list at `path` with `send`, then marks it used.
///
/// The list file is locked exclusively from before it is read until after the mark is on
/// disk, so concurrent runs (threads or processes) each get a different line. The line is
/// marked, by [`mark_used`]'s check and write, only when `send` succeeds; a failed send
/// consumes nothing.
pub fn consume<T, E>(
    path: &Path,
    send: impl FnOnce(&OtpLine) -> Result<T, E>,
) -> Result<Used<T>, ConsumeError<E>> {
    with_locked(
        path,
        None,
        |op, error| ConsumeError::List(io_err(op, path)(error)),
        |file| consume_locked(file, path, send),
    )
}

fn consume_locked<T, E>(
    file: &mut File,
    path: &Path,
    send: impl FnOnce(&OtpLine) -> Result<T, E>,
) -> Result<Used<T>, ConsumeError<E>> {
    let text = read_list(file, path).map_err(ConsumeError::List)?;
    let line = first_line(&text, path).map_err(ConsumeError::List)?;
    let first_byte = usize::try_from(line.offset)
        .ok()
        .and_then(|i| text.as_bytes().get(i));
    // Refused before sending, so a line that can never be marked is never sent.
    if !first_byte.is_some_and(u8::is_ascii) {
        return Err(ConsumeError::List(OtpFileError::NotAsciiStart {
            path: path.to_path_buf(),
            line_no: line.line_no,
        }));
    }
    let value = send(&line).map_err(ConsumeError::Send)?;
    mark_locked(file, &line)
        .map_err(|error| OtpFileError::Mark {
            path: path.to_path_buf(),
            line_no: line.line_no,
            error,
        })
        .map_err(ConsumeError::List)?;
    let remaining = unused_lines(&text).count().saturating_sub(1);
    Ok(Used {
        line,
        value,
        remaining,
    })
}

/// How many unused lines the list at `path` has left (`knock profile show` and `list`).
pub fn lines_left(path: &Path) -> Result<usize, OtpFileError> {
    let mut file = File::open(path).map_err(io_err("open", path))?;
    let text = read_list(&mut file, path)?;
    Ok(unused_lines(&text).count())
}

/// The line the next [`consume`] would send, without using it (for dry runs).
pub fn peek(path: &Path) -> Result<OtpLine, OtpFileError> {
    let (mut file, _) =
        files::open_regular(path, OpenOptions::new().read(true), files::MAX_LIST_BYTES)
            .map_err(io_err("open", path))?;
    let text = read_list(&mut file, path)?;
    first_line(&text, path)
}

fn read_list(file: &mut File, path: &Path) -> Result<String, OtpFileError> {
    let bytes = files::read_bounded(file, files::MAX_LIST_BYTES).map_err(io_err("read", path))?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        OtpFileError::NotUtf8 {
            path: path.to_path_buf(),
            line_no: valid.iter().filter(|&&b| b == b'\n').count() + 1,
        }
    })
}

fn first_line(text: &str, path: &Path) -> Result<OtpLine, OtpFileError> {
    match first_unused(text) {
        Ok(Some(line)) => Ok(line),
        Ok(None) => Err(OtpFileError::Exhausted {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(OtpFileError::BadLine {
            path: path.to_path_buf(),
            line_no: e.line_no,
            error: e.error,
        }),
    }
}

/// What `knock otp generate` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Number of sequences (lines).
    pub count: usize,
    /// Hits per sequence.
    pub length: usize,
    pub ports: PortRange,
    pub protocols: GenProtocols,
}

impl GenerateOptions {
    /// `count` sequences of `length` tcp hits from ports 1024-65535.
    pub fn new(count: usize, length: usize) -> GenerateOptions {
        GenerateOptions {
            count,
            length,
            ports: DEFAULT_PORTS,
            protocols: GenProtocols::Tcp,
        }
    }
}

/// The text of a fresh list drawn from the OS's CSPRNG: one sequence per line, each line
/// starting with a space so that marking it used keeps every port intact.
pub(crate) fn generate_text(opts: &GenerateOptions) -> Result<String, OtpFileError> {
    if opts.count == 0 {
        return Err(OtpFileError::Params("count must be at least 1".into()));
    }
    let mut rng = OsRandom::new();
    let text = generate(opts.count, opts.length, opts.ports, opts.protocols, || {
        rng.next_u32()
    });
    // The random source's own error says more than generate's "it failed".
    match rng.error {
        Some(e) => Err(OtpFileError::Random(e)),
        None => text.map_err(OtpFileError::Params),
    }
}

/// Writes a fresh list drawn from the OS's CSPRNG to `path` with mode 0600, atomically:
/// one sequence per line, each line starting with a space so that marking it used keeps
/// every port intact. An existing file is replaced only with `overwrite`.
pub fn generate_file(
    path: &Path,
    opts: &GenerateOptions,
    overwrite: bool,
) -> Result<(), OtpFileError> {
    let text = generate_text(opts)?;
    files::write_private(path, text.as_bytes(), overwrite).map_err(|e| match e {
        WriteError::Exists(path) => OtpFileError::Exists { path },
        WriteError::Io { op, path, error } => OtpFileError::Io { op, path, error },
    })
}

/// u32 values from the OS, fetched in blocks. The first failure is kept and ends the
/// stream; [`generate_text`] reports it instead of returning the list.
struct OsRandom {
    buf: [u8; 256],
    pos: usize,
    error: Option<getrandom::Error>,
}

impl OsRandom {
    fn new() -> OsRandom {
        OsRandom {
            buf: [0; 256],
            pos: 256,
            error: None,
        }
    }

    fn next_u32(&mut self) -> Option<u32> {
        if self.error.is_some() {
            return None;
        }
        if self.pos + 4 > self.buf.len() {
            if let Err(e) = getrandom::fill(&mut self.buf) {
                self.error = Some(e);
                return None;
            }
            self.pos = 0;
        }
        let word = [
            self.buf[self.pos],
            self.buf[self.pos + 1],
            self.buf[self.pos + 2],
            self.buf[self.pos + 3],
        ];
        self.pos += 4;
        Some(u32::from_be_bytes(word))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hit::{Hit, Proto, format_sequence};
    use crate::testutil::Scratch;
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    fn write(dir: &Scratch, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn ok(line: &OtpLine) -> Result<String, String> {
        Ok(format_sequence(&line.hits))
    }

    #[test]
    fn lines_are_used_in_order_and_marked_like_knockd() {
        let dir = Scratch::new("otp-order");
        let path = write(
            &dir,
            "list",
            "# comment\n 1001,1002:udp\n\n 2001\n\t3001,3002\n",
        );
        let used = consume(&path, ok).unwrap();
        assert_eq!(used.value, "1001:tcp,1002:udp");
        assert_eq!((used.line.line_no, used.remaining), (2, 2));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "# comment\n#1001,1002:udp\n\n 2001\n\t3001,3002\n"
        );
        let used = consume(&path, ok).unwrap();
        assert_eq!((used.value.as_str(), used.remaining), ("2001:tcp", 1));
        let used = consume(&path, ok).unwrap();
        assert_eq!(used.line.hits, vec![Hit::tcp(3001), Hit::tcp(3002)]);
        assert_eq!(used.remaining, 0);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "# comment\n#1001,1002:udp\n\n#2001\n#3001,3002\n"
        );
    }

    #[test]
    fn exhausted_list_names_the_file() {
        let dir = Scratch::new("otp-exhausted");
        let path = write(&dir, "list", "#1\n 2\n");
        consume(&path, ok).unwrap();
        let ConsumeError::List(err) = consume(&path, ok).unwrap_err() else {
            panic!("expected a list error");
        };
        assert_eq!(
            err.to_string(),
            format!(
                "one-time list {} is used up (every sequence is marked with '#'); \
                 generate a new list with `knock otp generate` and give the server the same list",
                path.display()
            )
        );
        assert!(matches!(peek(&path), Err(OtpFileError::Exhausted { .. })));
    }

    #[test]
    fn failed_send_consumes_nothing() {
        let dir = Scratch::new("otp-fail");
        let text = " 11,12\n 21,22\n";
        let path = write(&dir, "list", text);
        let err = consume(&path, |_| {
            Err::<(), _>("sendto 192.0.2.2:11: Network is unreachable")
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "sendto 192.0.2.2:11: Network is unreachable"
        );
        assert!(matches!(err, ConsumeError::Send(_)));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        // The same line is offered again, and works this time.
        let used = consume(&path, ok).unwrap();
        assert_eq!(used.value, "11:tcp,12:tcp");
        assert_eq!(peek(&path).unwrap().hits, vec![Hit::tcp(21), Hit::tcp(22)]);
    }

    /// The hostile run's finding: a list replaced on disk (same text, new file) got `#`
    /// written at the old list's offsets. A server's mark now checks it is the same file.
    #[test]
    fn a_list_replaced_or_edited_since_it_was_read_is_not_written() {
        let dir = Scratch::new("otp-replaced");
        let text = " 7000,8000\n 7001,8001\n";
        let path = write(&dir, "list", text);
        let (bytes, _) = files::read_regular_id(&path, files::MAX_LIST_BYTES).unwrap();
        let line = first_unused(std::str::from_utf8(&bytes).unwrap())
            .unwrap()
            .unwrap();
        // Replaced by a copy: the same text, another file (told apart by its inode, which
        // only unix systems give).
        #[cfg(unix)]
        {
            let (_, id) = files::read_regular_id(&path, files::MAX_LIST_BYTES).unwrap();
            let copy = write(&dir, "copy", text);
            std::fs::rename(&copy, &path).unwrap();
            let err = mark_used_in(&path, &line, &id).unwrap_err();
            assert!(matches!(err, MarkError::Replaced), "{err}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        }
        // Grown in place (a line appended): another length.
        let (_, id) = files::read_regular_id(&path, files::MAX_LIST_BYTES).unwrap();
        std::fs::write(&path, format!("{text} 7002\n")).unwrap();
        assert!(matches!(
            mark_used_in(&path, &line, &id),
            Err(MarkError::Replaced)
        ));
        // The file as it was read: marked.
        let (_, id) = files::read_regular_id(&path, files::MAX_LIST_BYTES).unwrap();
        mark_used_in(&path, &line, &id).unwrap();
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .starts_with("#7000,8000\n")
        );
    }

    #[test]
    fn bad_line_gives_path_and_line() {
        let dir = Scratch::new("otp-bad");
        let path = write(&dir, "list", "#1\n 7000,-1\n 8000\n");
        let ConsumeError::List(err) = consume(&path, ok).unwrap_err() else {
            panic!("expected a list error");
        };
        assert_eq!(
            err.to_string(),
            format!(
                "{}:2: not a sequence: a port that is not a number from 1 to 65535 (the line \
                 is not shown: the file may hold a secret)",
                path.display()
            )
        );
        // The message holds the cause; a `{:#}` chain must not repeat it.
        assert!(std::error::Error::source(&err).is_none());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "#1\n 7000,-1\n 8000\n"
        );
    }

    #[test]
    fn non_utf8_line_gives_path_and_line() {
        let dir = Scratch::new("otp-utf8");
        let path = dir.join("list");
        std::fs::write(&path, b"#1\n 2\n 3\xff\n").unwrap();
        let err = peek(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}:3: not valid UTF-8", path.display())
        );
    }

    #[test]
    fn a_line_whose_first_byte_cannot_become_hash_is_refused_before_sending() {
        let dir = Scratch::new("otp-nbsp");
        let text = "#1\n\u{a0}7000,8000\n";
        let path = write(&dir, "list", text);
        let mut sent = false;
        let err = consume(&path, |_| {
            sent = true;
            Ok::<_, String>(())
        })
        .unwrap_err();
        assert!(!sent);
        assert_eq!(
            err.to_string(),
            format!(
                "{}:2: the line starts with a non-ASCII character; start it with a space",
                path.display()
            )
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }

    #[test]
    fn missing_file_names_the_operation_and_path() {
        let dir = Scratch::new("otp-missing");
        let path = dir.join("nope");
        let ConsumeError::List(err) = consume(&path, ok).unwrap_err() else {
            panic!("expected a list error");
        };
        assert!(std::error::Error::source(&err).is_none());
        let err = err.to_string();
        let want = format!("open one-time list {}: ", path.display());
        assert!(err.starts_with(&want), "{err}");
        assert_eq!(err.matches("(os error").count(), 1, "{err}");
    }

    const SHARED: &str = "# one-time sequences for door ssh\n \
                          7000,8000,9000\n \
                          7001,8001:udp,9001\n\n \
                          7002,8002,9002\n";

    #[test]
    fn marking_walks_the_list_in_knockds_format() {
        let dir = Scratch::new("otp-mark-walk");
        let path = write(&dir, "ssh.otp", SHARED);
        let mut text = SHARED.to_string();
        let mut used = Vec::new();
        while let Some(line) = first_unused(&text).unwrap() {
            used.push(line.line_no);
            mark_used(&path, &line).unwrap();
            text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(text.len(), SHARED.len(), "same size, one byte changed");
        }
        assert_eq!(used, vec![2, 3, 5]);
        assert_eq!(
            text,
            "# one-time sequences for door ssh\n#7000,8000,9000\n#7001,8001:udp,9001\n\n#7002,8002,9002\n"
        );
        // The first line of a file, and a last line without a newline.
        let path = write(&dir, "short", " 1,2,3\n 4,5,6");
        for line in unused_lines(" 1,2,3\n 4,5,6").collect::<Vec<_>>() {
            mark_used(&path, &line.unwrap()).unwrap();
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "#1,2,3\n#4,5,6");
    }

    #[test]
    fn a_line_that_changed_since_it_was_read_is_left_alone() {
        let dir = Scratch::new("otp-mark-changed");
        let path = write(&dir, "ssh.otp", SHARED);
        let line = first_unused(SHARED).unwrap().unwrap();
        let changed = |line: &OtpLine| {
            let err = mark_used(&path, line).unwrap_err();
            assert!(matches!(err, MarkError::Changed), "{err}");
            err
        };
        mark_used(&path, &line).unwrap();
        // The same line again: used now.
        let err = changed(&line);
        assert_eq!(
            err.to_string(),
            "the line is no longer there unused (the file changed since it was read)"
        );
        let next = first_unused(&std::fs::read_to_string(&path).unwrap())
            .unwrap()
            .unwrap();
        // Mid-line, past the end, another line number, other hits: all refused.
        changed(&OtpLine {
            offset: next.offset + 2,
            ..next.clone()
        });
        changed(&OtpLine {
            offset: 10_000,
            ..next.clone()
        });
        changed(&OtpLine {
            line_no: 4,
            ..next.clone()
        });
        changed(&OtpLine {
            hits: vec![Hit::tcp(7001), Hit::tcp(8001), Hit::tcp(9001)],
            ..next.clone()
        });
        // A list regenerated in place with the same layout is a different list.
        let regenerated = SHARED.replace("7001,8001:udp", "7101,8101:udp");
        std::fs::write(&path, &regenerated).unwrap();
        changed(&next);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), regenerated);
        // Nothing was written by any refusal.
        std::fs::write(&path, SHARED).unwrap();
        mark_used(&path, &next).unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        assert_eq!(after.matches('#').count(), 2);
    }

    #[test]
    fn a_non_ascii_first_byte_is_never_overwritten() {
        let dir = Scratch::new("otp-mark-nbsp");
        let text = "#1\n\u{a0}7000,8000\n";
        let path = write(&dir, "list", text);
        let line = first_unused(text).unwrap().unwrap();
        let err = mark_used(&path, &line).unwrap_err();
        assert!(matches!(err, MarkError::NotAsciiStart), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }

    #[test]
    fn a_missing_list_names_the_step_and_the_os_error_once() {
        let dir = Scratch::new("otp-mark-missing");
        let line = first_unused(" 1\n").unwrap().unwrap();
        let err = mark_used(&dir.join("nope"), &line).unwrap_err();
        assert!(matches!(err, MarkError::Io { op: "open", .. }), "{err}");
        assert!(std::error::Error::source(&err).is_none());
        let chain = format!("{:#}", anyhow::Error::new(err));
        assert!(chain.starts_with("open: "), "{chain}");
        assert_eq!(chain.matches("(os error").count(), 1, "{chain}");
    }

    #[test]
    fn marking_waits_for_the_lock_a_consuming_client_holds() {
        let dir = Scratch::new("otp-mark-lock");
        let path = write(&dir, "list", " 1\n 2\n");
        let line = first_unused(" 1\n 2\n").unwrap().unwrap();
        let holder = File::open(&path).unwrap();
        holder.lock().unwrap();
        let (done, marked) = std::sync::mpsc::channel();
        let worker = {
            let path = path.clone();
            std::thread::spawn(move || done.send(mark_used(&path, &line)).unwrap())
        };
        // Without the lock the mark takes microseconds; with it, it must still be waiting.
        // (The file is not read meanwhile: Windows locks are mandatory, reads included.)
        assert!(marked.recv_timeout(Duration::from_millis(200)).is_err());
        // Closing releases the lock (an explicit unlock fails under Wine while another
        // handle waits for the lock).
        drop(holder);
        marked.recv().unwrap().unwrap();
        worker.join().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "#1\n 2\n");
    }

    /// A list of `n` lines of one distinct port each (line k holds port 1000 + k).
    fn numbered_list(n: usize) -> String {
        (1..=n).map(|k| format!(" {}\n", 1000 + k)).collect()
    }

    fn assert_each_line_once(used: Vec<usize>, n: usize, path: &Path) {
        let distinct: BTreeSet<usize> = used.iter().copied().collect();
        assert_eq!(used.len(), n, "consumptions");
        assert_eq!(distinct.len(), n, "a line was used twice: {used:?}");
        assert_eq!(distinct, (1..=n).collect());
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.lines().all(|l| l.starts_with('#')), "{text}");
        assert!(matches!(
            consume(path, ok),
            Err(ConsumeError::List(OtpFileError::Exhausted { .. }))
        ));
    }

    #[test]
    fn concurrent_threads_never_share_a_line() {
        const THREADS: usize = 8;
        const EACH: usize = 25;
        let dir = Scratch::new("otp-threads");
        let path = write(&dir, "list", &numbered_list(THREADS * EACH));
        let used = Arc::new(Mutex::new(Vec::new()));
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let (path, used) = (path.clone(), Arc::clone(&used));
                std::thread::spawn(move || {
                    for _ in 0..EACH {
                        let got = consume(&path, |line| {
                            // Widen the window between read and mark.
                            std::thread::yield_now();
                            Ok::<_, String>(line.line_no)
                        })
                        .unwrap();
                        assert_eq!(got.line.hits, vec![Hit::tcp(1000 + got.value as u16)]);
                        used.lock().unwrap().push(got.value);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let used = std::mem::take(&mut *used.lock().unwrap());
        assert_each_line_once(used, THREADS * EACH, &path);
    }

    const WORKER_ENV: &str = "KNOCK_CORE_OTP_WORKER_LIST";

    /// Run by `concurrent_processes_never_share_a_line` in child processes: consumes lines
    /// from the list named in the environment and prints each line number it got.
    #[test]
    #[ignore = "worker for concurrent_processes_never_share_a_line"]
    fn otp_process_worker() {
        let path = PathBuf::from(std::env::var_os(WORKER_ENV).expect("worker needs a list"));
        let count: usize = std::env::var("KNOCK_CORE_OTP_WORKER_COUNT")
            .unwrap()
            .parse()
            .unwrap();
        for _ in 0..count {
            let got = consume(&path, |line| {
                std::thread::sleep(Duration::from_millis(1));
                Ok::<_, String>(line.line_no)
            })
            .unwrap();
            println!("used {}", got.value);
        }
    }

    #[test]
    fn concurrent_processes_never_share_a_line() {
        const PROCS: usize = 4;
        const EACH: usize = 25;
        let dir = Scratch::new("otp-procs");
        let path = write(&dir, "list", &numbered_list(PROCS * EACH));
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = (0..PROCS)
            .map(|_| {
                std::process::Command::new(&exe)
                    .args([
                        "--ignored",
                        "--exact",
                        "otp::file::tests::otp_process_worker",
                    ])
                    .args(["--nocapture", "--test-threads=1"])
                    .env(WORKER_ENV, &path)
                    .env("KNOCK_CORE_OTP_WORKER_COUNT", EACH.to_string())
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut used = Vec::new();
        for child in children {
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8(out.stdout).unwrap();
            assert!(out.status.success(), "worker failed:\n{stdout}");
            used.extend(
                stdout
                    .lines()
                    // libtest's "test NAME ... " shares the first line.
                    .filter_map(|l| l.split_once("used ").map(|(_, n)| n))
                    .map(|n| n.parse::<usize>().unwrap()),
            );
        }
        assert_each_line_once(used, PROCS * EACH, &path);
    }

    #[test]
    fn generated_file_is_private_fresh_and_consumable() {
        let dir = Scratch::new("otp-gen");
        let path = dir.join("list");
        let opts = GenerateOptions {
            count: 50,
            length: 5,
            ports: PortRange {
                lo: 40000,
                hi: 40099,
            },
            protocols: GenProtocols::Mixed,
        };
        generate_file(&path, &opts, false).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 50);
        assert!(text.lines().all(|l| l.starts_with(' ')));
        let lines: Vec<OtpLine> = unused_lines(&text).collect::<Result<_, _>>().unwrap();
        for line in &lines {
            let mut ports: Vec<u16> = line.hits.iter().map(|h| h.port).collect();
            assert!(ports.iter().all(|p| (40000..=40099).contains(p)));
            ports.sort_unstable();
            ports.dedup();
            assert_eq!(ports.len(), 5);
        }
        let protos: BTreeSet<Proto> = lines
            .iter()
            .flat_map(|l| &l.hits)
            .map(|h| h.proto)
            .collect();
        assert_eq!(protos.len(), 2, "mixed lists use both protocols");
        // The OS generator gives a different list each time.
        let again = generate_text(&opts).unwrap();
        assert_ne!(again, text);
        // Lines come out in file order.
        for want in &lines[..3] {
            assert_eq!(
                consume(&path, |l| Ok::<_, ()>(l.hits.clone()))
                    .unwrap()
                    .value,
                want.hits
            );
        }
        let err = generate_file(&path, &opts, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "one-time list {} already exists (use --force to replace it)",
                path.display()
            )
        );
        generate_file(&path, &opts, true).unwrap();
        assert!(!std::fs::read_to_string(&path).unwrap().contains('#'));
        assert!(files::shared_mode(&std::fs::metadata(&path).unwrap()).is_none());
    }

    #[test]
    fn generate_rejects_impossible_requests() {
        let mut opts = GenerateOptions::new(0, 4);
        assert_eq!(
            generate_text(&opts).unwrap_err().to_string(),
            "cannot generate a list: count must be at least 1"
        );
        opts.count = 1;
        opts.length = 0;
        assert_eq!(
            generate_text(&opts).unwrap_err().to_string(),
            "cannot generate a list: length must be at least 1"
        );
        opts.length = 4;
        opts.ports = PortRange { lo: 7, hi: 9 };
        assert_eq!(
            generate_text(&opts).unwrap_err().to_string(),
            "cannot generate a list: port range 7-9 has 3 ports, fewer than the length 4"
        );
    }
}
