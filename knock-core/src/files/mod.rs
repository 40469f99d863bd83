//! Files written whole or not at all: the one atomic-write routine every state file,
//! secret, profile, one-time list and pidfile goes through, and the permission check that
//! refuses secret files others can read.
//!
//! The OS-specific half sits behind the private `Platform` trait, one module per OS, so
//! no `cfg` reaches the logic here.

use std::ffi::OsStr;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

#[cfg(not(unix))]
mod other;
#[cfg(unix)]
mod unix;

#[cfg(not(unix))]
use other::Native;
#[cfg(unix)]
use unix::Native;

/// The mode of files only their owner may read: secrets, profiles, lists, state.
pub const PRIVATE_MODE: u32 = 0o600;

/// How many fresh temporary names [`write_atomic`] tries before it gives up: each is
/// random, so only something planting files in the directory makes a second one needed.
const TEMP_ATTEMPTS: usize = 8;

/// What the file code needs from the OS.
trait Platform {
    /// Creates a new file at `path` with permission bits exactly `mode` (where the OS has
    /// them), failing if anything, a symlink included, is already there: the file is never
    /// wider than `mode`, not even for a moment, and never some other file.
    fn create_exclusive(path: &Path, mode: u32) -> io::Result<File>;
    /// Creates a directory and its parents; new ones are private to the owner.
    fn create_private_dir(path: &Path) -> io::Result<()>;
    /// The permission bits, when group or others have any access; `None` when only the
    /// owner does or the OS has no such bits.
    fn shared_mode(meta: &Metadata) -> Option<u32>;
    /// Makes a rename or link inside `dir` durable.
    fn sync_dir(dir: &Path) -> io::Result<()>;
    /// Opens `path` with `options` without ever waiting: a FIFO with no writer, or a
    /// device, opens at once (and is then refused by [`open_regular`]).
    fn open_nonblocking(path: &Path, options: &mut OpenOptions) -> io::Result<File>;
    /// What a file that is not a regular file is, for messages (`a FIFO`).
    fn kind_of(meta: &Metadata) -> &'static str;
    /// Which file this is: (device, inode) where the OS has them.
    fn identity(meta: &Metadata) -> Option<(u64, u64)>;
}

/// Which file was read, and how long it was: compared before a file read earlier is
/// written into, so a file replaced (or grown, or cut) since is noticed, not written at
/// offsets that belonged to the old one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileId {
    /// (device, inode); `None` where the OS has no such numbers.
    node: Option<(u64, u64)>,
    len: u64,
}

impl FileId {
    /// The identity of the file `meta` describes (from the open file, not the name).
    pub fn of(meta: &Metadata) -> FileId {
        FileId {
            node: Native::identity(meta),
            len: meta.len(),
        }
    }
}

/// The permission bits of a file that group or others can access, if any (always `None`
/// where the OS has no unix permission bits).
pub(crate) fn shared_mode(meta: &Metadata) -> Option<u32> {
    Native::shared_mode(meta)
}

/// Creates `dir` and its missing parents, new ones with mode 0700.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    Native::create_private_dir(dir)
}

/// The most a config file may hold: 16 MiB (a config with 100,000 doors is about 5 MB).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// The most a one-time list may hold: 16 MiB (about 300,000 sequences of 4 hits).
pub const MAX_LIST_BYTES: u64 = 16 << 20;
/// The most a secret file may hold: 64 KiB (a secret is one line).
pub const MAX_SECRET_BYTES: u64 = 64 << 10;
/// The most a state file (used HMAC counters, the stop journal, a pidfile) may hold.
pub const MAX_STATE_BYTES: u64 = 16 << 20;

/// Opens `path` with `options` (read, or read and write), for a file the program was told
/// to use: a config, a one-time list, a secret, a state file. Never blocks (a FIFO is not
/// waited on), and refuses what is not a regular file (a FIFO, `/dev/zero`, a directory)
/// and a file larger than `max` bytes, with a message that says which. The checks look at
/// the file that was opened, not at the name.
pub fn open_regular(
    path: &Path,
    options: &mut OpenOptions,
    max: u64,
) -> io::Result<(File, Metadata)> {
    let file = Native::open_nonblocking(path, options)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file ({})", Native::kind_of(&meta)),
        ));
    }
    if meta.len() > max {
        return Err(too_large(meta.len(), max));
    }
    Ok((file, meta))
}

fn too_large(len: u64, max: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{len} bytes, more than the {max} allowed"),
    )
}

/// Reads a whole file opened by [`open_regular`], at most `max` bytes (it may have grown
/// since it was opened).
pub fn read_bounded(file: &mut File, max: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64, max));
    }
    Ok(bytes)
}

/// [`open_regular`] for reading, then [`read_bounded`]: the whole of a regular file of at
/// most `max` bytes.
pub fn read_regular(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    read_regular_id(path, max).map(|(bytes, _)| bytes)
}

/// [`read_regular`], with the identity of the file that was read.
pub fn read_regular_id(path: &Path, max: u64) -> io::Result<(Vec<u8>, FileId)> {
    let (mut file, meta) = open_regular(path, OpenOptions::new().read(true), max)?;
    let bytes = read_bounded(&mut file, max)?;
    // The length read, which is what later writes must match.
    let id = FileId {
        len: bytes.len() as u64,
        ..FileId::of(&meta)
    };
    Ok((bytes, id))
}

/// What [`write_atomic`] does when the destination already exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overwrite {
    /// Replace it, atomically.
    Replace,
    /// Leave it alone and return [`WriteError::Exists`]; the check and the write are one
    /// atomic step, so two writers racing for a new name cannot both win.
    Refuse,
}

/// A failed write: which step failed, on which path.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The destination exists and the policy was [`Overwrite::Refuse`].
    #[error("{} already exists", .0.display())]
    Exists(PathBuf),
    /// The message holds the OS error, so it is not also the `source()`: a context chain
    /// (`{:#}`) would print it twice.
    #[error("{op} {}: {error}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        error: io::Error,
    },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> WriteError {
    let path = path.to_path_buf();
    move |error| WriteError::Io { op, path, error }
}

/// Writes `bytes` to `path` so that readers, and the file after a crash, see the old file
/// or the whole new one, never a part; the new file has permission bits exactly `mode`
/// (ignored where the OS has none), whatever the umask.
///
/// The data goes to a temporary file next to `path`, created exclusively under a random
/// name (a symlink planted there makes the attempt fail and another name be tried, so it
/// can never redirect the write to another file), synced, then moved into place by rename
/// ([`Overwrite::Replace`]) or hard link ([`Overwrite::Refuse`]), and the directory is
/// synced so the new name survives a crash.
pub fn write_atomic(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    overwrite: Overwrite,
) -> Result<(), WriteError> {
    write_atomic_with(path, bytes, mode, overwrite, |_| {
        getrandom::u64().map_err(|e| io::Error::other(format!("random temporary name: {e}")))
    })
}

/// Writes `bytes` to `path` with mode 0600 ([`PRIVATE_MODE`]) through [`write_atomic`].
/// Without `overwrite` an existing `path` is left alone and [`WriteError::Exists`] is
/// returned.
pub fn write_private(path: &Path, bytes: &[u8], overwrite: bool) -> Result<(), WriteError> {
    let policy = if overwrite {
        Overwrite::Replace
    } else {
        Overwrite::Refuse
    };
    write_atomic(path, bytes, PRIVATE_MODE, policy)
}

/// [`write_atomic`] with the source of temporary-name suffixes as a parameter (called with
/// the attempt number), so tests can plant files at the names it will try.
fn write_atomic_with(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    overwrite: Overwrite,
    mut suffix: impl FnMut(usize) -> io::Result<u64>,
) -> Result<(), WriteError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file_name = path.file_name().ok_or_else(|| WriteError::Io {
        op: "write",
        path: path.to_path_buf(),
        error: io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
    })?;
    let (temp, file) = create_temp(path, dir, file_name, mode, &mut suffix)?;
    let result = fill(file, &temp, bytes).and_then(|()| publish(&temp, path, overwrite));
    // The temporary name is ours (it was created exclusively); after a rename it is gone.
    let _ = std::fs::remove_file(&temp);
    result?;
    Native::sync_dir(dir).map_err(io_err("sync directory", dir))
}

/// Creates the temporary file for `path`, trying fresh names while something else holds
/// them. A failure names `path`, the file the user asked for, not the temporary name they
/// never saw, and a missing folder is said as such.
fn create_temp(
    path: &Path,
    dir: &Path,
    file_name: &OsStr,
    mode: u32,
    suffix: &mut impl FnMut(usize) -> io::Result<u64>,
) -> Result<(PathBuf, File), WriteError> {
    let mut attempt = 0;
    loop {
        let n = suffix(attempt).map_err(io_err("create temporary file in", dir))?;
        // A leading dot keeps the temporary file out of profile listings.
        let temp = dir.join(format!(".{}.{n:016x}.tmp", file_name.to_string_lossy()));
        match Native::create_exclusive(&temp, mode) {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt + 1 < TEMP_ATTEMPTS => {
                attempt += 1;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && !dir.exists() => {
                let missing = format!("no folder {}: {e}", dir.display());
                return Err(io_err("create", path)(io::Error::new(e.kind(), missing)));
            }
            Err(e) => return Err(io_err("create", path)(e)),
        }
    }
}

fn fill(mut file: File, temp: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    file.write_all(bytes).map_err(io_err("write", temp))?;
    file.sync_all().map_err(io_err("sync", temp))
}

fn publish(temp: &Path, path: &Path, overwrite: Overwrite) -> Result<(), WriteError> {
    if overwrite == Overwrite::Replace {
        return std::fs::rename(temp, path).map_err(io_err("rename into", path));
    }
    // A hard link fails if the destination exists, so refusing to overwrite is atomic.
    match std::fs::hard_link(temp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Err(WriteError::Exists(path.to_path_buf()))
        }
        // Some file systems have no hard links; fall back to check-then-rename.
        Err(_) if path.symlink_metadata().is_ok() => Err(WriteError::Exists(path.to_path_buf())),
        Err(_) => std::fs::rename(temp, path).map_err(io_err("rename into", path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Scratch;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_refuses_and_overwrites() {
        let dir = Scratch::new("write");
        let path = dir.join("a.toml");
        write_private(&path, b"one\n", false).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one\n");
        let err = write_private(&path, b"two\n", false).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{} already exists", path.display())
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"one\n");
        write_private(&path, b"three\n", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"three\n");
        // No temporary files are left behind, whatever happened.
        assert_eq!(entries(dir.path()), ["a.toml"]);
    }

    #[test]
    fn refusing_keeps_whatever_holds_the_name() {
        let dir = Scratch::new("refuse");
        let path = dir.join("state");
        std::fs::create_dir(&path).unwrap();
        let err = write_atomic(&path, b"x", 0o644, Overwrite::Refuse).unwrap_err();
        assert!(
            matches!(err, WriteError::Exists(ref p) if *p == path),
            "{err}"
        );
        assert!(path.is_dir());
        assert_eq!(entries(dir.path()), ["state"]);
    }

    #[test]
    fn missing_directory_names_the_step_and_path() {
        let dir = Scratch::new("missing");
        let path = dir.join("nope").join("a.toml");
        let err = write_private(&path, b"x", false).unwrap_err();
        // The message holds the OS error; a `{:#}` chain must not repeat it.
        assert!(std::error::Error::source(&err).is_none());
        let msg = err.to_string();
        // It names the file asked for and the folder that is missing, not the temporary
        // file the write goes through.
        let want = format!(
            "create {}: no folder {}: ",
            path.display(),
            dir.join("nope").display()
        );
        assert!(msg.starts_with(&want), "{msg}");
        let chain = format!("{:#}", anyhow::Error::new(err));
        assert_eq!(chain.matches("(os error").count(), 1, "{chain}");
    }

    #[test]
    fn a_name_taken_by_someone_else_is_skipped_and_left_alone() {
        let dir = Scratch::new("taken");
        let path = dir.join("counters");
        // Something already holds the first temporary name.
        let taken = dir.join(&format!(".counters.{:016x}.tmp", 7));
        std::fs::write(&taken, b"not ours").unwrap();
        let mut tried = Vec::new();
        write_atomic_with(&path, b"new", 0o600, Overwrite::Replace, |n| {
            tried.push(n);
            Ok(7 + n as u64)
        })
        .unwrap();
        assert_eq!(tried, [0, 1]);
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read(&taken).unwrap(), b"not ours");
        assert_eq!(
            entries(dir.path()),
            [".counters.0000000000000007.tmp", "counters"]
        );
    }

    #[test]
    fn reads_regular_files_up_to_a_size() {
        let dir = Scratch::new("read-regular");
        let path = dir.join("conf");
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_regular(&path, 10).unwrap(), b"0123456789");
        let err = read_regular(&path, 9).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(err.to_string(), "10 bytes, more than the 9 allowed");
        // A directory: refused (Windows refuses to open it at all).
        let err = read_regular(dir.path(), 100).unwrap_err();
        #[cfg(unix)]
        assert_eq!(err.to_string(), "not a regular file (a directory)");
        #[cfg(not(unix))]
        let _ = err;
        assert_eq!(
            read_regular(&dir.join("missing"), 10).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn gives_up_when_every_name_is_taken() {
        let dir = Scratch::new("all-taken");
        let path = dir.join("f");
        std::fs::write(dir.join(&format!(".f.{:016x}.tmp", 1)), b"x").unwrap();
        let err =
            write_atomic_with(&path, b"new", 0o600, Overwrite::Replace, |_| Ok(1)).unwrap_err();
        let want = format!("create {}: ", path.display());
        assert!(err.to_string().starts_with(&want), "{err}");
        assert!(!path.exists());
    }
}
