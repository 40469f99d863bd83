//! The pidfile of `-d`: who holds it, writing ours, removing it at exit.
//!
//! With `-d`, [`Pidfile::check`] runs before detaching (so a refusal reaches the terminal)
//! and [`Pidfile::create`] after it, since the pid changes.

use std::fs;
use std::path::{Path, PathBuf};

use knock_core::files::{self, Overwrite, WriteError};

/// The name a live knockd-lite has in `/proc/PID/comm`.
const PROGRAM: &str = "knockd-lite";

/// A pidfile problem.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PidfileError {
    #[error("{}: knockd-lite is already running as pid {pid}", path.display())]
    AlreadyRunning { path: PathBuf, pid: u32 },
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// A pidfile is for everyone to read.
const MODE: u32 = 0o644;

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
    // A pid is a few bytes; a FIFO or anything large planted here is never waited on.
    let Ok(text) = files::read_regular(path, 64).map(|b| String::from_utf8_lossy(&b).into_owned())
    else {
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
    /// is replaced. The file appears whole or not at all, and a symlink planted at its name
    /// (or at a temporary one) is replaced, never written through: it goes through
    /// `knock_core::files::write_atomic`.
    pub(crate) fn create(path: &Path) -> Result<Pidfile, PidfileError> {
        Pidfile::check(path)?;
        let pid = std::process::id();
        let text = format!("{pid}\n");
        // Refuse is one atomic step, so two daemons starting together cannot both win.
        match files::write_atomic(path, text.as_bytes(), MODE, Overwrite::Refuse) {
            Ok(()) => {}
            Err(WriteError::Exists(_)) => {
                Pidfile::check(path)?;
                files::write_atomic(path, text.as_bytes(), MODE, Overwrite::Replace)?;
            }
            Err(e) => return Err(e.into()),
        }
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
        let ours = files::read_regular(&self.path, 64)
            .is_ok_and(|b| String::from_utf8_lossy(&b).trim().parse::<u32>() == Ok(self.pid));
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Scratch, assert_not_followed, plant_symlinks};
    use std::os::unix::fs::PermissionsExt;
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
    fn a_planted_symlink_is_replaced_not_followed() {
        let scratch = Scratch::new("pidfile-symlink");
        let path = scratch.path().join("knockd.pid");
        let victim = plant_symlinks(&path);
        let pf = Pidfile::create(&path).unwrap();
        assert_not_followed(&path, &victim, 0o644);
        drop(pf);
        assert!(fs::symlink_metadata(&path).is_err(), "removed at exit");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
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
                .starts_with("create /nonexistent-dir/knockd.pid: no folder /nonexistent-dir: "),
            "{err}"
        );
        let chain = format!("{:#}", anyhow::Error::from(err));
        assert_eq!(chain.matches("(os error 2)").count(), 1, "{chain}");
    }
}
