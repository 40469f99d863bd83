//! Processes: detaching from the terminal, process groups, sessions, names, and pidfds to
//! wait on (and signal) a process.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Detaches from the terminal: fork, setsid, fork again (so the daemon can never reacquire
/// a terminal), chdir `/`, stdin/stdout/stderr to /dev/null.
///
/// The first parent does not exit at once: it waits until the daemon says, through the
/// returned [`Detached`], that it is ready (exit 0) or why it is not (the message on the
/// terminal, exit 1), so `-d` fails loudly when the daemon cannot start (a pidfile that
/// cannot be written). A daemon that dies before saying either makes it exit 1 too.
///
/// fork copies only the calling thread, so this refuses to run while the process has any
/// other thread: call it before the first thread starts.
pub(crate) fn detach() -> io::Result<Detached> {
    let threads = std::fs::read_dir("/proc/self/task")
        .map_err(|e| io::Error::new(e.kind(), format!("read /proc/self/task: {e}")))?
        .count();
    if threads != 1 {
        return Err(io::Error::other(format!(
            "fork: the process has {threads} threads; detaching needs exactly one"
        )));
    }
    // Both ends are close-on-exec: door commands never inherit them.
    let (reader, writer) = io::pipe().map_err(|e| io::Error::other(format!("pipe: {e}")))?;
    // SAFETY: the process has one thread (checked above), so the children fork makes have
    // every lock and resource in the state the parent had them.
    let writer = unsafe { detach_unchecked(reader, writer)? };
    Ok(Detached(Some(writer)))
}

/// The daemon's end of the start-up report [`detach`] waits on.
#[derive(Debug)]
pub(crate) struct Detached(Option<io::PipeWriter>);

/// What the daemon writes first: ready, or a message follows.
const READY: u8 = 0;
const FAILED: u8 = 1;

impl Detached {
    /// Start-up is done: the waiting parent exits 0.
    pub(crate) fn ready(mut self) {
        if let Some(mut w) = self.0.take() {
            let _ = w.write_all(&[READY]);
        }
    }

    /// Start-up failed: the waiting parent prints `knockd-lite: MESSAGE` and exits 1.
    pub(crate) fn failed(mut self, message: &str) {
        if let Some(mut w) = self.0.take() {
            let mut report = vec![FAILED];
            report.extend_from_slice(message.as_bytes());
            let _ = w.write_all(&report);
        }
    }
}

/// What the first parent does with the daemon's report: the exit code, after printing any
/// message. `report` is everything read until the daemon closed its end.
fn parent_exit_code(report: &[u8], stderr: &mut impl Write) -> i32 {
    match report.split_first() {
        Some((&READY, _)) => 0,
        Some((&FAILED, message)) => {
            let _ = writeln!(stderr, "knockd-lite: {}", String::from_utf8_lossy(message));
            1
        }
        _ => {
            let _ = writeln!(
                stderr,
                "knockd-lite: the daemon stopped during start-up (see its log)"
            );
            1
        }
    }
}

/// [`detach`] without the thread check. The report pipe's `reader` stays with the first
/// parent, `writer` goes to the daemon (and is returned there).
///
/// # Safety
/// No other thread may be running code that could hold a lock or be midway through
/// changing shared state: the forked children continue without it.
unsafe fn detach_unchecked(
    mut reader: io::PipeReader,
    writer: io::PipeWriter,
) -> io::Result<io::PipeWriter> {
    // SAFETY: as promised by the caller.
    match unsafe { fork()? } {
        Fork::Child => drop(reader),
        Fork::Parent => {
            // The read below ends when every write end is closed: ours first, then the
            // daemon's (after its report, or when it dies).
            drop(writer);
            let mut report = Vec::new();
            let _ = reader.read_to_end(&mut report);
            let code = parent_exit_code(&report, &mut io::stderr());
            // SAFETY: _exit ends the first parent at once, without running atexit handlers
            // or destructors for state that belongs to the daemon now.
            unsafe { libc::_exit(code) }
        }
    }
    // SAFETY: setsid has no preconditions; we are not a group leader after the fork.
    super::check(unsafe { libc::setsid() })
        .map_err(|e| io::Error::other(format!("setsid: {e}")))?;
    // SAFETY: as promised by the caller; the first child has one thread, this one.
    if let Fork::Parent = unsafe { fork()? } {
        // SAFETY: _exit ends the intermediate child at once, without running atexit
        // handlers or destructors for state that belongs to the daemon now.
        unsafe { libc::_exit(0) }
    }
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
    Ok(writer)
}

/// Which side of a fork this is.
enum Fork {
    Parent,
    Child,
}

/// # Safety
/// As for [`detach_unchecked`].
unsafe fn fork() -> io::Result<Fork> {
    // SAFETY: the caller promises no other thread is running.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::other(format!(
            "fork: {}",
            io::Error::last_os_error()
        ))),
        0 => Ok(Fork::Child),
        _ => Ok(Fork::Parent),
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

impl Pidfd {
    /// Sends `sig` to the process, or fails with `ESRCH` once it has exited: unlike
    /// kill(2), never to another process that took over its pid.
    pub(crate) fn send_signal(&self, sig: i32) -> io::Result<()> {
        // SAFETY: pidfd_send_signal takes our descriptor, a signal number, a null siginfo
        // (the kernel fills in one as for kill) and flags 0; it touches no memory of ours.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        super::check(rc).map(drop)
    }
}

/// Makes the child `cmd` starts the leader of a new session (setsid between fork and exec):
/// no controlling terminal, and no signal sent to the parent's process group or session
/// reaches it.
pub(crate) fn new_session(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and calls only setsid, which
    // is async-signal-safe and touches no memory shared with the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Sets the calling thread's name, which `ps`, `pidof` and `/proc/PID/comm` show for the
/// process when it is the main thread (at most 15 bytes; longer names are cut).
pub(crate) fn set_name(name: &str) {
    let mut buf = [0u8; 16];
    let n = name.len().min(15);
    buf[..n].copy_from_slice(&name.as_bytes()[..n]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes from buf, which
    // is 16 bytes long and ends in at least one NUL.
    unsafe { libc::prctl(libc::PR_SET_NAME, buf.as_ptr()) };
}

impl AsRawFd for Pidfd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Whether this process runs as root (effective uid 0).
#[cfg(test)]
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_waiting_parent_exits_with_the_daemons_word() {
        let mut err = Vec::new();
        assert_eq!(parent_exit_code(&[READY], &mut err), 0);
        assert!(err.is_empty());
        let mut report = vec![FAILED];
        report.extend_from_slice(b"create /run/x/.knockd.pid.1.tmp: No such file (os error 2)");
        assert_eq!(parent_exit_code(&report, &mut err), 1);
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "knockd-lite: create /run/x/.knockd.pid.1.tmp: No such file (os error 2)\n"
        );
        let mut err = Vec::new();
        assert_eq!(parent_exit_code(&[], &mut err), 1);
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "knockd-lite: the daemon stopped during start-up (see its log)\n"
        );
    }

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
        let (reader, writer) = io::pipe().unwrap();
        // SAFETY: the harness's other thread (main) is parked waiting for this test, holds
        // no lock this code needs, and the forked daemon never returns into it.
        let writer = unsafe { detach_unchecked(reader, writer) }.unwrap();
        let detached = Detached(Some(writer));
        if std::env::var_os("KNOCKD_LITE_DETACH_FAIL").is_some() {
            detached.failed("no pidfile for you");
            // SAFETY: ends the daemon without returning into the test harness.
            unsafe { libc::_exit(1) };
        }
        let pf = crate::pidfile::Pidfile::create(&out.with_extension("pid")).unwrap();
        detached.ready();
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
    fn detach_reports_the_daemons_failure_on_the_terminal() {
        let scratch = Scratch::new("daemon-detach-fail");
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sys::process::tests::detach_child",
                "--ignored",
                "--test-threads=1",
                "--quiet",
            ])
            .env("KNOCKD_LITE_DETACH_OUT", scratch.path().join("report"))
            .env("KNOCKD_LITE_DETACH_FAIL", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr, "knockd-lite: no pidfile for you\n");
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
        assert!(
            status.success(),
            "the parent exits 0 once the daemon is ready: {status}"
        );
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
