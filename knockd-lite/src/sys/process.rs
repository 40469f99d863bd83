//! Processes: detaching from the terminal, process groups, and pidfds to wait on a child.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Detaches from the terminal: fork (the parent exits 0), setsid, fork again (so the
/// daemon can never reacquire a terminal), chdir `/`, stdin/stdout/stderr to /dev/null.
///
/// fork copies only the calling thread, so this refuses to run while the process has any
/// other thread: call it before the first thread starts.
pub(crate) fn detach() -> io::Result<()> {
    let threads = std::fs::read_dir("/proc/self/task")
        .map_err(|e| io::Error::new(e.kind(), format!("read /proc/self/task: {e}")))?
        .count();
    if threads != 1 {
        return Err(io::Error::other(format!(
            "fork: the process has {threads} threads; detaching needs exactly one"
        )));
    }
    // SAFETY: the process has one thread (checked above), so the children fork makes have
    // every lock and resource in the state the parent had them.
    unsafe { detach_unchecked() }
}

/// [`detach`] without the thread check.
///
/// # Safety
/// No other thread may be running code that could hold a lock or be midway through
/// changing shared state: the forked children continue without it.
unsafe fn detach_unchecked() -> io::Result<()> {
    // SAFETY: as promised by the caller.
    unsafe { fork_and_exit_parent()? };
    // SAFETY: setsid has no preconditions; we are not a group leader after the fork.
    super::check(unsafe { libc::setsid() })
        .map_err(|e| io::Error::other(format!("setsid: {e}")))?;
    // SAFETY: as promised by the caller; the first child has one thread, this one.
    unsafe { fork_and_exit_parent()? };
    std::env::set_current_dir("/")
        .map_err(|e| io::Error::new(e.kind(), format!("chdir /: {e}")))?;
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| io::Error::new(e.kind(), format!("open /dev/null: {e}")))?;
    for fd in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors, which this process owns; null stays
        // open until the end of this function and the duplicates outlive it, as intended.
        super::check(unsafe { libc::dup2(null.as_raw_fd(), fd) })
            .map_err(|e| io::Error::other(format!("dup2 /dev/null: {e}")))?;
    }
    Ok(())
}

/// # Safety
/// As for [`detach_unchecked`].
unsafe fn fork_and_exit_parent() -> io::Result<()> {
    // SAFETY: the caller promises no other thread is running.
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

/// Sends `sig` to every process in the group `pgid`.
pub(crate) fn kill_group(pgid: u32, sig: i32) -> io::Result<()> {
    let pgid = libc::pid_t::try_from(pgid).map_err(|_| io::ErrorKind::InvalidInput)?;
    if pgid <= 1 {
        // killpg(0) is our own group and killpg(1) would be init's: never meant here.
        return Err(io::ErrorKind::InvalidInput.into());
    }
    // SAFETY: killpg takes two integers and touches no memory of ours.
    super::check(unsafe { libc::killpg(pgid, sig) }).map(drop)
}

/// A descriptor for a child process that becomes readable when the child exits (Linux 5.3
/// and later).
#[derive(Debug)]
pub(crate) struct Pidfd(OwnedFd);

impl Pidfd {
    pub(crate) fn open(pid: u32) -> io::Result<Pidfd> {
        let pid = libc::pid_t::try_from(pid).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let raw = super::check(raw)? as RawFd;
        // SAFETY: raw is a fresh descriptor that nothing else owns.
        Ok(Pidfd(unsafe { OwnedFd::from_raw_fd(raw) }))
    }
}

impl AsRawFd for Pidfd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{PollFd, poll};
    use crate::testutil::Scratch;
    use std::fs;
    use std::path::PathBuf;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    #[test]
    fn a_pidfd_is_readable_once_the_child_exits() {
        let mut child = Command::new("sleep").arg("0.2").spawn().unwrap();
        let fd = Pidfd::open(child.id()).unwrap();
        let mut fds = [PollFd::readable(fd.as_raw_fd())];
        assert_eq!(poll(&mut fds, Duration::ZERO).unwrap(), 0);
        assert_eq!(poll(&mut fds, Duration::from_secs(10)).unwrap(), 1);
        assert!(child.wait().unwrap().success());
    }

    #[test]
    fn kill_group_refuses_our_group_and_inits() {
        for pgid in [0, 1] {
            let err = kill_group(pgid, 0).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{pgid}");
        }
    }

    #[test]
    fn detach_refuses_a_process_with_threads() {
        // The test harness runs this on a thread of its own: there are at least two.
        let err = detach().unwrap_err();
        assert!(
            err.to_string().starts_with("fork: the process has "),
            "{err}"
        );
    }

    /// The session id of this process (field 6 of /proc/self/stat; state is field 3).
    fn session_id() -> String {
        let stat = fs::read_to_string("/proc/self/stat").unwrap();
        let after_comm = stat.rsplit(')').next().unwrap();
        after_comm.split_whitespace().nth(3).unwrap().to_string()
    }

    /// Not a test by itself: the body of `detach_leaves_a_daemon_behind`, run in a fresh
    /// copy of this test binary.
    #[test]
    #[ignore = "run by detach_leaves_a_daemon_behind in a child process"]
    fn detach_child() {
        let out = PathBuf::from(
            std::env::var_os("KNOCKD_LITE_DETACH_OUT").expect("KNOCKD_LITE_DETACH_OUT"),
        );
        let sid_before = session_id();
        // SAFETY: the harness's other thread (main) is parked waiting for this test, holds
        // no lock this code needs, and the forked daemon never returns into it.
        unsafe { detach_unchecked() }.unwrap();
        let pf = crate::pidfile::Pidfile::create(&out.with_extension("pid")).unwrap();
        let (pid, sid) = (std::process::id(), session_id());
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
                "sys::process::tests::detach_child",
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
