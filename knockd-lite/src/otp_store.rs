//! Durable state for HMAC doors: the used counters in a small state file replaced
//! atomically. (One-time lines are marked used by `knock_core::otp::file::mark_used`, the
//! routine `knock` calls too.)

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A failed read or write of a state file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The message holds the OS error, so it is not also the `source()`.
    #[error("{op} {}: {error}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    /// The file is not what we expected, `path:line: message` (line 0: the whole file).
    #[error("{}:{line}: {message}", path.display())]
    Format {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |error| StoreError::Io {
        op,
        path: path.to_path_buf(),
        error,
    }
}

fn format_err(path: &Path, line: usize, message: impl Into<String>) -> StoreError {
    StoreError::Format {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// Replaces `path` with `contents` so that readers, and the file after a crash, see either
/// the old or the new contents in full: a temporary file in the same directory is written
/// with `mode`, fsynced, renamed over `path`, and the directory is fsynced.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), StoreError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> Result<(), StoreError> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        // The umask may have changed the mode either way; set exactly what was asked.
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io_err("chmod", &tmp))?;
        f.write_all(contents).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("fsync", &tmp))?;
        fs::rename(&tmp, path).map_err(io_err("rename", path))
    };
    let result = write();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync", dir))
}

/// Used HMAC counters per door.
pub type UsedCounters = BTreeMap<String, BTreeSet<u64>>;

const HEADER: &str = "# knockd-lite used HMAC counters, v1: COUNTERS<TAB>DOOR";

/// Reads the used-counter file; a file that does not exist yet means nothing was used.
///
/// The format is one line per door, `counter,counter,...<TAB>door name`, after a header
/// line; the door name is the rest of the line, so it may contain anything but a newline.
pub fn load_counters(path: &Path) -> Result<UsedCounters, StoreError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(UsedCounters::new()),
        Err(e) => return Err(io_err("read", path)(e)),
    };
    let mut out = UsedCounters::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (counters, door) = line
            .split_once('\t')
            .ok_or_else(|| format_err(path, line_no, "expected COUNTERS<TAB>DOOR"))?;
        let set = out.entry(door.to_string()).or_default();
        for c in counters.split(',').filter(|c| !c.is_empty()) {
            let n = c
                .parse::<u64>()
                .map_err(|_| format_err(path, line_no, format!("bad counter {c:?}")))?;
            set.insert(n);
        }
    }
    Ok(out)
}

/// Writes the used-counter file atomically, mode 0600 (it tells when a door was opened).
pub fn save_counters(path: &Path, used: &UsedCounters) -> Result<(), StoreError> {
    let mut text = format!("{HEADER}\n");
    for (door, counters) in used {
        if door.contains('\n') {
            return Err(format_err(
                path,
                0,
                format!("door name {door:?} has a newline"),
            ));
        }
        let list: Vec<String> = counters.iter().map(u64::to_string).collect();
        text.push_str(&format!("{}\t{door}\n", list.join(",")));
    }
    write_atomic(path, text.as_bytes(), 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Scratch;

    #[test]
    fn counters_round_trip_atomically_with_mode_0600() {
        let scratch = Scratch::new("store-counters");
        let dir = scratch.path();
        let path = dir.join("hmac.state");
        assert!(load_counters(&path).unwrap().is_empty());
        let mut used = UsedCounters::new();
        used.entry("ssh".into())
            .or_default()
            .extend([58_000_001, 58_000_000]);
        used.entry("web door\twith tab".into())
            .or_default()
            .insert(7);
        save_counters(&path, &used).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{HEADER}\n58000000,58000001\tssh\n7\tweb door\twith tab\n")
        );
        assert_eq!(load_counters(&path).unwrap(), used);
        // Replacing leaves no temporary file behind.
        used.get_mut("ssh").unwrap().insert(58_000_002);
        save_counters(&path, &used).unwrap();
        assert_eq!(load_counters(&path).unwrap(), used);
        assert_eq!(fs::read_dir(dir).unwrap().count(), 1);
    }

    #[test]
    fn a_broken_counter_file_is_an_error_with_its_line() {
        let scratch = Scratch::new("store-broken");
        let dir = scratch.path();
        let path = dir.join("hmac.state");
        for (text, want) in [
            ("ssh 1,2\n", "1: expected COUNTERS<TAB>DOOR"),
            ("# header\n1,x\tssh\n", "2: bad counter \"x\""),
        ] {
            fs::write(&path, text).unwrap();
            let err = load_counters(&path).unwrap_err();
            assert_eq!(err.to_string(), format!("{}:{want}", path.display()));
        }
        let mut bad = UsedCounters::new();
        bad.insert("a\nb".into(), BTreeSet::from([1]));
        assert!(save_counters(&path, &bad).is_err());
    }

    #[test]
    fn write_atomic_reports_the_path_that_failed() {
        let err = write_atomic(Path::new("/nonexistent-dir/state"), b"x", 0o600).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("create /nonexistent-dir/.state."),
            "{err}"
        );
    }
}
