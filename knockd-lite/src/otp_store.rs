//! Durable state for one-time and HMAC doors: consuming a line of a one-time sequence file
//! in place, and the used HMAC counters in a small state file replaced atomically.
//!
//! Consuming writes `#` over the line's first byte with one `pwrite` and then fsyncs the
//! file, before the door's command runs. A one-byte write cannot be torn, so after a crash
//! the line is either still unused (the command never ran) or used; never half-written.
//! This is knockd's format, so the same file keeps working with knockd and `knock`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A failed read or write of a state file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
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
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn format_err(path: &Path, line: usize, message: impl Into<String>) -> StoreError {
    StoreError::Format {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// Marks the one-time line starting at byte `offset` of `path` as used (`#` over its first
/// byte) and makes that durable.
///
/// The offset comes from the text read earlier ([`knock_core::otp::OtpLine::offset`]). If
/// the file changed since, so that `offset` is no longer the start of an unused line, the
/// file is left alone and an error returned.
pub fn consume_line(path: &Path, offset: u64) -> Result<(), StoreError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err("open", path))?;
    let mut here = [0u8; 2];
    let (start, want) = if offset == 0 { (0, 1) } else { (offset - 1, 2) };
    file.read_exact_at(&mut here[..want], start)
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => format_err(
                path,
                0,
                format!("offset {offset} is past the end of the file"),
            ),
            _ => io_err("read", path)(e),
        })?;
    let (before, first) = if offset == 0 {
        (b'\n', here[0])
    } else {
        (here[0], here[1])
    };
    if before != b'\n' {
        return Err(format_err(
            path,
            0,
            format!("offset {offset} is not the start of a line (the file changed?)"),
        ));
    }
    if first == b'#' || first == b'\n' || !first.is_ascii() {
        return Err(format_err(
            path,
            0,
            format!("the line at offset {offset} is not an unused sequence (the file changed?)"),
        ));
    }
    file.write_all_at(b"#", offset)
        .map_err(io_err("write", path))?;
    file.sync_all().map_err(io_err("fsync", path))
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
    use knock_core::otp::first_unused;

    const LIST: &str = "# one-time sequences for door ssh\n \
                        7000,8000,9000\n \
                        7001,8001:udp,9001\n\n \
                        7002,8002,9002\n";

    #[test]
    fn consuming_walks_the_list_in_knockds_format() {
        let scratch = Scratch::new("store-consume");
        let dir = scratch.path();
        let path = dir.join("ssh.otp");
        fs::write(&path, LIST).unwrap();
        let mut text = LIST.to_string();
        let mut used = Vec::new();
        while let Some(line) = first_unused(&text).unwrap() {
            used.push(line.line_no);
            consume_line(&path, line.offset).unwrap();
            text = fs::read_to_string(&path).unwrap();
            assert_eq!(text.len(), LIST.len(), "same size, one byte changed");
        }
        assert_eq!(used, vec![2, 3, 5]);
        assert_eq!(
            text,
            "# one-time sequences for door ssh\n#7000,8000,9000\n#7001,8001:udp,9001\n\n#7002,8002,9002\n"
        );
    }

    #[test]
    fn a_file_that_changed_since_it_was_read_is_left_alone() {
        let scratch = Scratch::new("store-changed");
        let dir = scratch.path();
        let path = dir.join("ssh.otp");
        fs::write(&path, LIST).unwrap();
        let line = first_unused(LIST).unwrap().unwrap();
        consume_line(&path, line.offset).unwrap();
        // The same offset again: already used.
        let err = consume_line(&path, line.offset).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}:0: the line at offset {} is not an unused sequence (the file changed?)",
                path.display(),
                line.offset
            )
        );
        // Mid-line, and past the end.
        let err = consume_line(&path, line.offset + 2).unwrap_err();
        assert!(
            err.to_string().contains("is not the start of a line"),
            "{err}"
        );
        let err = consume_line(&path, 10_000).unwrap_err();
        assert!(
            err.to_string().contains("past the end of the file"),
            "{err}"
        );
        let after: Vec<u8> = fs::read(&path).unwrap();
        assert_eq!(after.iter().filter(|&&b| b == b'#').count(), 2);
        let missing = consume_line(&dir.join("nope"), 0).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with(&format!("open {}: ", dir.join("nope").display())),
            "{missing}"
        );
    }

    #[test]
    fn the_first_line_of_a_file_can_be_consumed() {
        let scratch = Scratch::new("store-first");
        let dir = scratch.path();
        let path = dir.join("list");
        fs::write(&path, " 1,2,3\n 4,5,6").unwrap();
        consume_line(&path, 0).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "#1,2,3\n 4,5,6");
        consume_line(&path, 7).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "#1,2,3\n#4,5,6");
    }

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
