//! The pidfile of `-d`: who holds it, writing ours, removing it at exit.
//!
//! With `-d`, [`Pidfile::check`] runs before detaching (so a refusal reaches the terminal)
//! and [`Pidfile::create`] after it, since the pid changes.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The name a live knockd-lite has in `/proc/PID/comm`.
const PROGRAM: &str = "knockd-lite";

/// A pidfile problem.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PidfileError {
    #[error("{}: knockd-lite is already running as pid {pid}", path.display())]
    AlreadyRunning { path: PathBuf, pid: u32 },
    /// The message holds the OS error, so it is not also the `source()`.
    #[error("{op} {}: {error}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        error: io::Error,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> PidfileError + 'a {
    move |error| PidfileError::Io {
        op,
        path: path.to_path_buf(),
        error,
    }
}

/// Who holds a pidfile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Holder {
    /// No file, or one left behind: unreadable, not a pid, a dead pid, or a pid now used
    /// by another program (or by us).
    Stale,
    /// A live knockd-lite with this pid.
    Live(u32),
}

/// Whether a live knockd-lite holds the pidfile at `path`.
pub(crate) fn holder(path: &Path) -> Holder {
    let Ok(text) = fs::read_to_string(path) else {
        return Holder::Stale;
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return Holder::Stale;
    };
    if pid == 0 || pid == std::process::id() || !is_knockd_lite(pid) {
        return Holder::Stale;
    }
    Holder::Live(pid)
}

/// Whether `pid` is a running (not zombie) knockd-lite, by its comm name or executable.
pub(crate) fn is_knockd_lite(pid: u32) -> bool {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let Ok(stat) = fs::read_to_string(proc.join("stat")) else {
        return false;
    };
    // The state follows the parenthesised comm, which may itself contain ')'.
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().next());
    if state == Some("Z") {
        return false;
    }
    let comm = fs::read_to_string(proc.join("comm")).unwrap_or_default();
    if comm.trim_end() == PROGRAM {
        return true;
    }
    fs::read_link(proc.join("exe")).is_ok_and(|exe| {
        exe.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.trim_end_matches(" (deleted)") == PROGRAM)
    })
}

/// Our pidfile, removed when dropped if it still names us.
#[derive(Debug)]
pub(crate) struct Pidfile {
    path: PathBuf,
    pid: u32,
}

impl Pidfile {
    /// Fails if a live knockd-lite holds `path`. Call before detaching, so the error
    /// reaches the terminal; [`Pidfile::create`] checks again.
    pub(crate) fn check(path: &Path) -> Result<(), PidfileError> {
        match holder(path) {
            Holder::Live(pid) => Err(PidfileError::AlreadyRunning {
                path: path.to_path_buf(),
                pid,
            }),
            Holder::Stale => Ok(()),
        }
    }

    /// Writes our pid to `path` (mode 0644) unless a live knockd-lite holds it; a stale file
    /// is replaced. The file appears whole or not at all: it is written to a temporary file
    /// in the same directory, synced, then linked into place (rename for a stale one).
    pub(crate) fn create(path: &Path) -> Result<Pidfile, PidfileError> {
        Pidfile::check(path)?;
        let pid = std::process::id();
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("pid");
        let tmp = dir.join(format!(".{name}.{pid}.tmp"));
        let write = || -> Result<(), PidfileError> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o644)
                .open(&tmp)
                .map_err(io_err("create", &tmp))?;
            // The umask may have narrowed the mode; a pidfile is world-readable.
            f.set_permissions(fs::Permissions::from_mode(0o644))
                .map_err(io_err("chmod", &tmp))?;
            f.write_all(format!("{pid}\n").as_bytes())
                .map_err(io_err("write", &tmp))?;
            f.sync_all().map_err(io_err("fsync", &tmp))
        };
        let placed = write().and_then(|()| {
            // link() refuses to replace, so two daemons starting together cannot both win.
            match fs::hard_link(&tmp, path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    Pidfile::check(path)?;
                    fs::rename(&tmp, path).map_err(io_err("rename", path))
                }
                Err(e) => Err(io_err("link", path)(e)),
            }
        });
        let _ = fs::remove_file(&tmp);
        placed?;
        sync_dir(dir);
        Ok(Pidfile {
            path: path.to_path_buf(),
            pid,
        })
    }

    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        // Leave a file another instance has since written alone.
        let ours =
            fs::read_to_string(&self.path).is_ok_and(|t| t.trim().parse::<u32>() == Ok(self.pid));
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// fsyncs a directory so a rename or link in it is durable; best effort.
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Scratch;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    /// A live process whose comm is `name` (a copy of sleep under that name).
    fn process_named(dir: &Path, name: &str) -> std::process::Child {
        let exe = dir.join(name);
        fs::copy("/bin/sleep", &exe).unwrap();
        Command::new(&exe)
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .unwrap()
    }

    #[test]
    fn create_writes_our_pid_with_mode_0644_and_drop_removes_it() {
        let scratch = Scratch::new("daemon-create");
        let dir = scratch.path();
        let path = dir.join("knockd.pid");
        {
            let pf = Pidfile::create(&path).unwrap();
            assert_eq!(pf.path(), path);
            let text = fs::read_to_string(&path).unwrap();
            assert_eq!(text, format!("{}\n", std::process::id()));
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o644);
            // No temporary file is left behind.
            assert_eq!(fs::read_dir(dir).unwrap().count(), 1);
        }
        assert!(!path.exists());
    }

    #[test]
    fn a_live_knockd_lite_holds_the_pidfile() {
        let scratch = Scratch::new("daemon-live");
        let dir = scratch.path();
        let path = dir.join("knockd.pid");
        let mut other = process_named(dir, "knockd-lite");
        fs::write(&path, format!("{}\n", other.id())).unwrap();
        // Wait until the copy has exec'd and carries its name.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !is_knockd_lite(other.id()) {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(holder(&path), Holder::Live(other.id()));
        let err = Pidfile::create(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: knockd-lite is already running as pid {}",
                path.display(),
                other.id()
            )
        );
        assert!(Pidfile::check(&path).is_err());
        // The file is untouched.
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{}\n", other.id())
        );

        // Once it is dead (a zombie counts as dead), the file is stale and taken over.
        other.kill().unwrap();
        let _ = other.wait();
        assert_eq!(holder(&path), Holder::Stale);
        let pf = Pidfile::create(&path).unwrap();
        assert_eq!(
            fs::read_to_string(pf.path()).unwrap().trim(),
            std::process::id().to_string()
        );
        drop(pf);
    }

    #[test]
    fn stale_pidfiles_are_taken_over() {
        let scratch = Scratch::new("daemon-stale");
        let dir = scratch.path();
        let path = dir.join("knockd.pid");
        let mut not_us = process_named(dir, "sleep-other");
        let dead = {
            let mut c = Command::new("true").spawn().unwrap();
            let pid = c.id();
            c.wait().unwrap();
            pid
        };
        for content in [
            String::new(),
            "garbage\n".into(),
            "0\n".into(),
            format!("{dead}\n"),
            format!("{}\n", not_us.id()),
            format!("{}\n", std::process::id()),
        ] {
            fs::write(&path, &content).unwrap();
            assert_eq!(holder(&path), Holder::Stale, "{content:?}");
            let pf = Pidfile::create(&path).unwrap();
            assert_eq!(
                fs::read_to_string(&path).unwrap(),
                format!("{}\n", std::process::id())
            );
            drop(pf);
            assert!(!path.exists());
        }
        let _ = not_us.kill();
        let _ = not_us.wait();
    }

    #[test]
    fn drop_leaves_a_pidfile_that_is_no_longer_ours() {
        let scratch = Scratch::new("daemon-notours");
        let dir = scratch.path();
        let path = dir.join("knockd.pid");
        let pf = Pidfile::create(&path).unwrap();
        fs::write(&path, "1\n").unwrap();
        drop(pf);
        assert_eq!(fs::read_to_string(&path).unwrap(), "1\n");
    }

    #[test]
    fn unwritable_directory_is_reported_with_the_path_and_the_os_error_once() {
        let err = Pidfile::create(Path::new("/nonexistent-dir/knockd.pid")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("create /nonexistent-dir/.knockd.pid."),
            "{err}"
        );
        let chain = format!("{:#}", anyhow::Error::from(err));
        assert_eq!(chain.matches("(os error 2)").count(), 1, "{chain}");
    }
}
