//! Running as a daemon: detaching (`-d`), the pidfile, and SIGHUP/SIGTERM/SIGINT delivered
//! to the main loop through a signalfd.
//!
//! Order matters in `run()`: [`Signals::new`] first (it blocks the signals, and threads
//! started later inherit the block, so no thread ever takes one with its default action),
//! then [`Pidfile::check`] (so a refusal reaches the terminal), then [`detach`] (before any
//! thread exists: fork copies only the calling thread), then [`Pidfile::create`].
//! Commands do not inherit the blocked mask: std resets it in the child before exec.
#![allow(unsafe_code)]

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The name a live knockd-lite has in `/proc/PID/comm`.
const PROGRAM: &str = "knockd-lite";

/// A pidfile problem.
#[derive(Debug, thiserror::Error)]
pub enum PidfileError {
    #[error("{path}: knockd-lite is already running as pid {pid}")]
    AlreadyRunning { path: PathBuf, pid: u32 },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> PidfileError + 'a {
    move |source| PidfileError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Who holds a pidfile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    /// No file, or one left behind: unreadable, not a pid, a dead pid, or a pid now used
    /// by another program (or by us).
    Stale,
    /// A live knockd-lite with this pid.
    Live(u32),
}

/// Whether a live knockd-lite holds the pidfile at `path`.
pub fn holder(path: &Path) -> Holder {
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
pub fn is_knockd_lite(pid: u32) -> bool {
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
pub struct Pidfile {
    path: PathBuf,
    pid: u32,
}

impl Pidfile {
    /// Fails if a live knockd-lite holds `path`. Call before detaching, so the error
    /// reaches the terminal; [`Pidfile::create`] checks again.
    pub fn check(path: &Path) -> Result<(), PidfileError> {
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
    pub fn create(path: &Path) -> Result<Pidfile, PidfileError> {
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

    pub fn path(&self) -> &Path {
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
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Detaches from the terminal: fork (the parent exits 0), setsid, fork again (so the
/// daemon can never reacquire a terminal), chdir `/`, stdin/stdout/stderr to /dev/null.
/// Must run before any thread is started.
pub fn detach() -> io::Result<()> {
    fork_and_exit_parent()?;
    // SAFETY: setsid has no preconditions; we are not a group leader after the fork.
    if unsafe { libc::setsid() } < 0 {
        return Err(io::Error::other(format!(
            "setsid: {}",
            io::Error::last_os_error()
        )));
    }
    fork_and_exit_parent()?;
    std::env::set_current_dir("/")
        .map_err(|e| io::Error::new(e.kind(), format!("chdir /: {e}")))?;
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| io::Error::new(e.kind(), format!("open /dev/null: {e}")))?;
    for fd in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors, which we own; null stays open until
        // the end of this function and the duplicates outlive it, as intended.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
            return Err(io::Error::other(format!(
                "dup2 /dev/null: {}",
                io::Error::last_os_error()
            )));
        }
    }
    Ok(())
}

fn fork_and_exit_parent() -> io::Result<()> {
    // SAFETY: called while the process has a single thread (see `detach`), so the child
    // has every lock and resource the parent had in a consistent state.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::other(format!(
            "fork: {}",
            io::Error::last_os_error()
        ))),
        0 => Ok(()),
        _ => {
            // SAFETY: _exit ends the parent at once, without running atexit handlers or
            // destructors for state that belongs to the child now.
            unsafe { libc::_exit(0) }
        }
    }
}

/// A signal for the main loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGHUP: re-read the config and the interface addresses.
    Reload,
    /// SIGTERM or SIGINT (the number): run pending stop commands and exit 0.
    Shutdown(i32),
}

/// SIGHUP, SIGTERM and SIGINT as readable events on a descriptor.
#[derive(Debug)]
pub struct Signals {
    fd: OwnedFd,
}

const HANDLED: [i32; 3] = [libc::SIGHUP, libc::SIGTERM, libc::SIGINT];

impl Signals {
    /// Blocks the signals in the calling thread (and so in threads it starts later) and
    /// opens a signalfd for them. SIGPIPE is ignored, so a closed stdout or syslog socket
    /// becomes an error, not death.
    pub fn new() -> io::Result<Signals> {
        // SAFETY: sigset_t is plain data initialised by sigemptyset before use; the mask
        // change affects only this thread; signalfd returns a new descriptor or -1;
        // ignoring SIGPIPE installs no handler code.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for sig in HANDLED {
                libc::sigaddset(&mut set, sig);
            }
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if rc != 0 {
                return Err(io::Error::other(format!(
                    "pthread_sigmask: {}",
                    io::Error::from_raw_os_error(rc)
                )));
            }
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            let raw = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
            if raw < 0 {
                return Err(io::Error::other(format!(
                    "signalfd: {}",
                    io::Error::last_os_error()
                )));
            }
            Ok(Signals {
                fd: OwnedFd::from_raw_fd(raw),
            })
        }
    }

    /// Readable when a signal is pending; poll it with the capture socket.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The signals that arrived, oldest first, without waiting.
    pub fn pending(&mut self) -> Vec<Signal> {
        let mut out = Vec::new();
        loop {
            // SAFETY: signalfd_siginfo is plain data, for which all-zero is valid.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            // SAFETY: reads at most `size` bytes into the live `info`.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    (&mut info as *mut libc::signalfd_siginfo).cast(),
                    size,
                )
            };
            if n != size as isize {
                break;
            }
            let sig = i32::try_from(info.ssi_signo).unwrap_or(0);
            out.push(if sig == libc::SIGHUP {
                Signal::Reload
            } else {
                Signal::Shutdown(sig)
            });
        }
        out
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
    fn unwritable_directory_is_reported_with_the_path() {
        let err = Pidfile::create(Path::new("/nonexistent-dir/knockd.pid")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("create /nonexistent-dir/.knockd.pid."),
            "{err}"
        );
    }

    #[test]
    fn signals_arrive_on_the_descriptor() {
        // Runs on its own thread so the blocked mask stays there; the signals are sent to
        // that thread only (raise uses tgkill), never to the whole test process.
        std::thread::spawn(|| {
            let mut sigs = Signals::new().unwrap();
            assert!(sigs.pending().is_empty());
            // SAFETY: raise sends the signal to this thread, which has it blocked, so it
            // waits on the signalfd instead of running a default action.
            unsafe {
                libc::raise(libc::SIGHUP);
                libc::raise(libc::SIGTERM);
            }
            let mut p = libc::pollfd {
                fd: sigs.fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one live pollfd.
            assert_eq!(unsafe { libc::poll(&mut p, 1, 1000) }, 1);
            // Standard signals are dequeued lowest number first.
            assert_eq!(
                sigs.pending(),
                vec![Signal::Reload, Signal::Shutdown(libc::SIGTERM)]
            );
            // SAFETY: as above.
            unsafe { libc::raise(libc::SIGINT) };
            assert_eq!(sigs.pending(), vec![Signal::Shutdown(libc::SIGINT)]);
        })
        .join()
        .unwrap();
    }

    /// Not a test by itself: the body of `detach_leaves_a_daemon_behind`, run in a fresh
    /// copy of this test binary (fork needs a process with one thread).
    #[test]
    #[ignore = "run by detach_leaves_a_daemon_behind in a child process"]
    fn detach_child() {
        let out = PathBuf::from(
            std::env::var_os("KNOCKD_LITE_DETACH_OUT").expect("KNOCKD_LITE_DETACH_OUT"),
        );
        // SAFETY: getsid/getpid have no preconditions.
        let sid_before = unsafe { libc::getsid(0) };
        detach().unwrap();
        let pf = Pidfile::create(&out.with_extension("pid")).unwrap();
        // SAFETY: as above.
        let (pid, sid) = unsafe { (libc::getpid(), libc::getsid(0)) };
        let cwd = std::env::current_dir().unwrap();
        let fds: Vec<String> = (0..3)
            .map(|fd| {
                fs::read_link(format!("/proc/self/fd/{fd}"))
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            })
            .collect();
        let report = format!(
            "{pid} {sid_before} {sid} {} {}\n",
            cwd.display(),
            fds.join(",")
        );
        fs::write(out.with_extension("tmp"), report).unwrap();
        fs::rename(out.with_extension("tmp"), &out).unwrap();
        // Give the test a moment to see the pidfile, then clean up and vanish.
        std::thread::sleep(Duration::from_millis(500));
        drop(pf);
        // SAFETY: ends the daemon without returning into the test harness.
        unsafe { libc::_exit(0) };
    }

    #[test]
    fn detach_leaves_a_daemon_behind() {
        let scratch = Scratch::new("daemon-detach");
        let dir = scratch.path();
        let out = dir.join("report");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "daemon::tests::detach_child",
                "--ignored",
                "--test-threads=1",
            ])
            .env("KNOCKD_LITE_DETACH_OUT", &out)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let child_pid = child.id();
        let status = child.wait().unwrap();
        assert!(status.success(), "the parent exits 0 at once: {status}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !out.exists() {
            assert!(Instant::now() < deadline, "daemon never reported");
            std::thread::sleep(Duration::from_millis(20));
        }
        let report = fs::read_to_string(&out).unwrap();
        let f: Vec<&str> = report.split_whitespace().collect();
        let pid: u32 = f[0].parse().unwrap();
        assert_ne!(pid, child_pid, "the daemon is a grandchild");
        assert_ne!(f[1], f[2], "in a new session");
        assert_ne!(f[0], f[2], "but not its leader");
        assert_eq!(f[3], "/");
        assert_eq!(f[4], "/dev/null,/dev/null,/dev/null");
        let pidfile = out.with_extension("pid");
        assert_eq!(
            fs::read_to_string(&pidfile).unwrap().trim(),
            pid.to_string()
        );
        // The daemon removes its pidfile as it exits.
        while pidfile.exists() {
            assert!(Instant::now() < deadline, "pidfile left behind");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
