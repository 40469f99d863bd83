//! Files only their owner can read: atomic private writes, and the permission check that
//! refuses secret files others can read.
//!
//! The OS-specific half sits behind the private `Platform` trait, one module per OS, so
//! no `cfg` reaches the logic here.

use std::fs::{File, Metadata};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

#[cfg(not(unix))]
mod other;
#[cfg(unix)]
mod unix;

#[cfg(not(unix))]
use other::Native;
#[cfg(unix)]
use unix::Native;

/// What the file code needs from the OS.
trait Platform {
    /// Creates a new file (failing if it exists) that only its owner can read and write,
    /// from the moment it exists.
    fn create_private(path: &Path) -> io::Result<File>;
    /// Creates a directory and its parents; new ones are private to the owner.
    fn create_private_dir(path: &Path) -> io::Result<()>;
    /// The permission bits, when group or others have any access; `None` when only the
    /// owner does or the OS has no such bits.
    fn shared_mode(meta: &Metadata) -> Option<u32>;
    /// Makes a rename or link inside `dir` durable.
    fn sync_dir(dir: &Path) -> io::Result<()>;
}

/// The permission bits of a file that group or others can access, if any (always `None`
/// where the OS has no unix permission bits).
pub fn shared_mode(meta: &Metadata) -> Option<u32> {
    Native::shared_mode(meta)
}

/// Creates `dir` and its missing parents, new ones with mode 0700.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    Native::create_private_dir(dir)
}

/// A failed private write: which step failed, on which path.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The destination exists and overwriting was not asked for.
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

static TEMP_SEQ: AtomicU32 = AtomicU32::new(0);

/// Writes `bytes` to `path` with mode 0600, atomically: readers see the old file or the
/// whole new one, never a part. The data goes to a private temporary file next to `path`,
/// is synced, and is then moved into place. Without `overwrite` an existing `path` is left
/// alone and [`WriteError::Exists`] is returned.
pub fn write_private(path: &Path, bytes: &[u8], overwrite: bool) -> Result<(), WriteError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file_name = path.file_name().ok_or_else(|| WriteError::Io {
        op: "write",
        path: path.to_path_buf(),
        error: io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
    })?;
    // A leading dot keeps the temporary file out of profile listings.
    let temp = dir.join(format!(
        ".{}.tmp-{}-{}",
        file_name.to_string_lossy(),
        std::process::id(),
        TEMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = write_temp(&temp, bytes).and_then(|()| publish(&temp, path, overwrite));
    // After a successful publish by rename the temporary name is already gone.
    let _ = std::fs::remove_file(&temp);
    result?;
    Native::sync_dir(dir).map_err(io_err("sync directory", dir))
}

fn write_temp(temp: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let mut file = Native::create_private(temp).map_err(io_err("create", temp))?;
    file.write_all(bytes).map_err(io_err("write", temp))?;
    file.sync_all().map_err(io_err("sync", temp))
}

fn publish(temp: &Path, path: &Path, overwrite: bool) -> Result<(), WriteError> {
    if overwrite {
        return std::fs::rename(temp, path).map_err(io_err("rename into", path));
    }
    // A hard link fails if the destination exists, so refusing to overwrite is atomic.
    match std::fs::hard_link(temp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Err(WriteError::Exists(path.to_path_buf()))
        }
        // Some file systems have no hard links; fall back to check-then-rename.
        Err(_) if path.exists() => Err(WriteError::Exists(path.to_path_buf())),
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
    fn missing_directory_names_the_step_and_path() {
        let dir = Scratch::new("missing");
        let path = dir.join("nope").join("a.toml");
        let err = write_private(&path, b"x", false).unwrap_err();
        // The message holds the OS error; a `{:#}` chain must not repeat it.
        assert!(std::error::Error::source(&err).is_none());
        let msg = err.to_string();
        let want = format!("create {}", dir.join("nope").display());
        assert!(msg.starts_with(&want), "{msg}");
    }
}
