//! The sandbox entered for real, each time in a forked child so the test harness stays
//! free: the child reports over a pipe that is its stderr (the allow-list lets the worker
//! write there and on the channel only), waits while the parent reads its
//! `/proc/PID/status`, and its end (exit code or signal) is the verdict. Needs root; skips
//! with a printed reason otherwise, except under `CI=true`.

use std::io::{BufRead, BufReader, PipeReader, PipeWriter, Read, Write};
use std::os::fd::AsRawFd;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use super::*;

/// Whether `test` may run: as root; else a printed skip, or a panic under `CI=true`.
fn as_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: needs root to change ids, and CI=true forbids skipping");
    }
    eprintln!("SKIP {test}: needs root to change ids");
    false
}

fn nobody() -> WorkerIds {
    WorkerIds::lookup("nobody").expect("the test host has a user nobody")
}

/// How a child ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Exit(i32),
    Signal(i32),
}

/// A forked child: its report, the pipe that lets it go on, its pid.
struct Child {
    pid: libc::pid_t,
    report: BufReader<PipeReader>,
    go: Option<PipeWriter>,
}

/// What the child's body gets: a wait for the parent's go (it reports on its stderr).
struct Side {
    go: PipeReader,
}

impl Side {
    /// One line on fd 2, written directly: std's stderr has a lock another thread of the
    /// harness may have held when the child was forked.
    fn say(&mut self, line: &str) {
        let line = format!("{line}\n");
        let mut rest = line.as_bytes();
        while !rest.is_empty() {
            // SAFETY: writes from a live buffer of the given length to fd 2.
            let n = unsafe { libc::write(2, rest.as_ptr().cast(), rest.len()) };
            if n <= 0 {
                break;
            }
            rest = &rest[n as usize..];
        }
    }

    /// Says `line` (the parent waits for it), then blocks until the parent lets it go on.
    fn pause(&mut self, line: &str) {
        self.say(line);
        let mut byte = [0u8; 1];
        let _ = self.go.read(&mut byte);
    }
}

/// Forks; the child runs `body` and exits with its result (0 when it returns `Ok`, 1 with
/// the error reported as `error: ...`, 101 on a panic), never returning to the harness.
fn fork(body: impl FnOnce(&mut Side) -> Result<(), String>) -> Child {
    let (report_r, report_w) = std::io::pipe().unwrap();
    let (go_r, go_w) = std::io::pipe().unwrap();
    // SAFETY: the child only runs `body` and then _exits; glibc's fork leaves malloc usable
    // in the child of a threaded parent, and the child takes no lock another thread of the
    // harness may hold (its output capture is thread-local).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        drop(report_r);
        drop(go_w);
        // SAFETY: both descriptors are open; fd 2 is replaced by the report pipe.
        assert_eq!(unsafe { libc::dup2(report_w.as_raw_fd(), 2) }, 2);
        drop(report_w);
        let mut side = Side { go: go_r };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&mut side)));
        let code = match result {
            Ok(Ok(())) => 0,
            Ok(Err(e)) => {
                side.say(&format!("error: {e}"));
                1
            }
            Err(_) => 101,
        };
        // SAFETY: ends the child at once, without running the harness's exit handlers.
        unsafe { libc::_exit(code) };
    }
    Child {
        pid,
        report: BufReader::new(report_r),
        go: Some(go_w),
    }
}

impl Child {
    /// The child's next report line ("" once it closed the pipe).
    fn line(&mut self) -> String {
        let mut line = String::new();
        self.report.read_line(&mut line).unwrap();
        line.trim_end().to_string()
    }

    /// Its `/proc/PID/status`, read while it waits.
    fn status(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap()
    }

    /// Lets it go on, reads the rest of its report and waits for its end.
    fn finish(mut self) -> (End, String) {
        drop(self.go.take());
        let mut rest = String::new();
        self.report.read_to_string(&mut rest).unwrap();
        let mut status = 0;
        // SAFETY: waits for our own child, writing its status into a valid int.
        let rc = unsafe { libc::waitpid(self.pid, &mut status, 0) };
        assert_eq!(rc, self.pid, "waitpid: {}", std::io::Error::last_os_error());
        let end = if libc::WIFSIGNALED(status) {
            End::Signal(libc::WTERMSIG(status))
        } else {
            End::Exit(libc::WEXITSTATUS(status))
        };
        (end, rest)
    }
}

/// The value of `field` in a /proc status text (`Uid:\t65534\t65534...`).
fn field<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')))
        .unwrap_or_else(|| panic!("no {name} in\n{status}"))
        .trim()
}

fn io_err(what: &str) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

#[test]
fn enter_leaves_no_root_no_capability_and_a_filter() {
    if !as_root("sys::sandbox::tests::enter_leaves_no_root_no_capability_and_a_filter") {
        return;
    }
    let ids = nobody();
    let support = probe();
    let mut child = fork(|side| {
        // Descriptors made before entering stay usable through allowed calls: the channel
        // (a socket pair's end as fd 0, as the worker's stdin), another socket to read.
        let (channel, b) = UnixStream::pair().map_err(io_err("socketpair"))?;
        // SAFETY: both open; fd 0 becomes the channel, the old end is closed.
        if unsafe { libc::dup2(channel.as_raw_fd(), CHANNEL_FD as i32) } != 0 {
            return Err(format!("dup2: {}", std::io::Error::last_os_error()));
        }
        drop(channel);
        let entered = enter(&ids, &support).map_err(|e| e.to_string())?;
        side.pause(&format!("entered: {entered}"));

        let stdin = crate::sys::SeqPacket::from_fd(
            // SAFETY: fd 0 is the channel set up above, owned here from now on.
            unsafe { OwnedFd::from_raw_fd(CHANNEL_FD as i32) },
        );
        let mut buf = [0u8; 2];
        stdin
            .send(b"hi", None)
            .map_err(io_err("sendmsg on the channel"))?;
        // SAFETY: recv into a valid 2-byte buffer on an open socket.
        let n = unsafe { libc::recv(b.as_raw_fd(), buf.as_mut_ptr().cast(), 2, 0) };
        if n != 2 || &buf != b"hi" {
            return Err(format!("recv on a socket pair: {n}"));
        }
        // An allowed socket option: a BPF filter that accepts everything.
        let mut accept = [libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: u32::MAX,
        }];
        let prog = libc::sock_fprog {
            len: 1,
            filter: accept.as_mut_ptr(),
        };
        // SAFETY: a valid sock_fprog of its true size, pointing at a live instruction.
        let rc = unsafe {
            libc::setsockopt(
                b.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                (&prog as *const libc::sock_fprog).cast(),
                std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(format!(
                "setsockopt(SO_ATTACH_FILTER): {}",
                std::io::Error::last_os_error()
            ));
        }
        side.say(&format!("allowed calls work: {entered:?}"));
        Ok(())
    });
    let first = child.line();
    assert!(first.starts_with("entered: uid 65534 gid"), "{first}");
    let status = child.status();
    for name in ["Uid", "Gid"] {
        let ids: Vec<&str> = field(&status, name).split_whitespace().collect();
        assert_eq!(ids, ["65534"; 4], "{name} in\n{status}");
    }
    assert_eq!(field(&status, "Groups"), "", "{status}");
    for name in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(
            field(&status, name),
            "0000000000000000",
            "{name} in\n{status}"
        );
    }
    assert_eq!(field(&status, "NoNewPrivs"), "1");
    assert_eq!(field(&status, "Seccomp"), "2");
    let (end, rest) = child.finish();
    assert_eq!(end, End::Exit(0), "{rest}");
    assert!(rest.contains("allowed calls work"), "{rest}");
    match support.landlock {
        Ok(abi) => assert!(first.contains(&format!("Landlock ABI {abi}")), "{first}"),
        Err(_) => assert!(first.contains("an empty root"), "{first}"),
    }
}

/// Enters, says so, then runs `forbidden` and reports if it came back.
fn killed_by(forbidden: impl FnOnce() -> String) -> (End, String) {
    let ids = nobody();
    let support = probe();
    let mut child = fork(|side| {
        enter(&ids, &support).map_err(|e| e.to_string())?;
        side.say("entered");
        let outcome = forbidden();
        side.say(&format!("came back: {outcome}"));
        Ok(())
    });
    assert_eq!(child.line(), "entered");
    child.finish()
}

#[test]
fn opening_a_file_is_a_seccomp_kill() {
    if !as_root("sys::sandbox::tests::opening_a_file_is_a_seccomp_kill") {
        return;
    }
    // openat is not in the allow-list, so seccomp kills before Landlock is asked.
    let (end, rest) = killed_by(|| format!("{:?}", forbidden_call()));
    assert_eq!(end, End::Signal(libc::SIGSYS), "{rest}");
    let (end, rest) = killed_by(|| format!("{:?}", std::fs::File::open("/etc/passwd")));
    assert_eq!(end, End::Signal(libc::SIGSYS), "{rest}");
}

#[test]
fn execve_is_a_seccomp_kill() {
    if !as_root("sys::sandbox::tests::execve_is_a_seccomp_kill") {
        return;
    }
    let (end, rest) = killed_by(|| {
        let argv = [c"true".as_ptr(), std::ptr::null()];
        let envp = [std::ptr::null()];
        // SAFETY: NUL-terminated path, NULL-terminated argv and envp; if it returns, it
        // failed and changed nothing.
        unsafe { libc::execve(c"/bin/true".as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        std::io::Error::last_os_error().to_string()
    });
    assert_eq!(end, End::Signal(libc::SIGSYS), "{rest}");
}

#[test]
fn arguments_outside_the_list_are_a_seccomp_kill() {
    if !as_root("sys::sandbox::tests::arguments_outside_the_list_are_a_seccomp_kill") {
        return;
    }
    // Executable memory.
    let (end, rest) = killed_by(|| {
        // SAFETY: an anonymous private mapping; never used.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        format!("{p:?}")
    });
    assert_eq!(end, End::Signal(libc::SIGSYS), "{rest}");
    // A socket option not in the list.
    let (a, b) = UnixStream::pair().unwrap();
    let (end, rest) = killed_by(move || {
        let size: libc::c_int = 1 << 20;
        // SAFETY: a valid int option value of its true size on an open socket.
        let rc = unsafe {
            libc::setsockopt(
                a.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        format!("{rc}")
    });
    assert_eq!(end, End::Signal(libc::SIGSYS), "{rest}");
    // A write on any descriptor but the channel and stderr: on the capture socket it
    // would put a raw frame on the wire.
    let (end, rest) = killed_by(move || {
        // SAFETY: writes 5 bytes from a live buffer on an open socket.
        let n = unsafe { libc::write(b.as_raw_fd(), b"frame".as_ptr().cast(), 5) };
        format!("{n}")
    });
    assert_eq!(end, End::Signal(libc::SIGSYS), "{rest}");
}

#[test]
fn a_double_panic_still_dies_of_sigabrt() {
    if !as_root("sys::sandbox::tests::a_double_panic_still_dies_of_sigabrt") {
        return;
    }
    // abort(3) signals itself (tgkill on glibc): allowed at itself with SIGABRT only.
    let (end, rest) = killed_by(|| std::process::abort());
    assert_eq!(end, End::Signal(libc::SIGABRT), "{rest}");
}

#[test]
fn landlock_alone_refuses_every_path() {
    if !as_root("sys::sandbox::tests::landlock_alone_refuses_every_path") {
        return;
    }
    if let Err(why) = fs::landlock_abi() {
        eprintln!("SKIP landlock_alone_refuses_every_path: Landlock {why}");
        return;
    }
    let dir = std::env::temp_dir();
    let child = fork(move |side| {
        if !fs::deny_all().map_err(|e| e.to_string())? {
            return Err("Landlock enforced nothing".into());
        }
        let tries = [
            ("read", std::fs::File::open("/etc/passwd").err()),
            ("list", std::fs::read_dir("/").err()),
            (
                "create",
                std::fs::File::create(dir.join("knockd-lite-landlock-test")).err(),
            ),
            (
                "mkdir",
                std::fs::create_dir(dir.join("knockd-lite-ll")).err(),
            ),
        ];
        for (what, err) in tries {
            side.say(&format!("{what}: {:?}", err.and_then(|e| e.raw_os_error())));
        }
        Ok(())
    });
    let (end, rest) = child.finish();
    assert_eq!(end, End::Exit(0), "{rest}");
    let eacces = Some(libc::EACCES);
    assert_eq!(
        rest,
        format!("read: {eacces:?}\nlist: {eacces:?}\ncreate: {eacces:?}\nmkdir: {eacces:?}\n")
    );
}

#[test]
fn the_empty_root_has_nothing_in_it() {
    if !as_root("sys::sandbox::tests::the_empty_root_has_nothing_in_it") {
        return;
    }
    let child = fork(|side| {
        fs::empty_root().map_err(|e| e.to_string())?;
        let entries = std::fs::read_dir("/")
            .map_err(io_err("read_dir(/)"))?
            .count();
        let errno = |r: std::io::Result<std::fs::File>| r.err().and_then(|e| e.raw_os_error());
        let passwd = errno(std::fs::File::open("/etc/passwd"));
        let create = errno(std::fs::File::create("/x"));
        let up = errno(std::fs::File::open("../../etc/passwd"));
        side.say(&format!(
            "entries {entries}, passwd {passwd:?}, create {create:?}, up {up:?}"
        ));
        Ok(())
    });
    let (end, rest) = child.finish();
    assert_eq!(end, End::Exit(0), "{rest}");
    let enoent = Some(libc::ENOENT);
    assert_eq!(
        rest,
        format!("entries 0, passwd {enoent:?}, create {enoent:?}, up {enoent:?}\n")
    );
}

#[test]
fn without_landlock_enter_uses_the_empty_root() {
    if !as_root("sys::sandbox::tests::without_landlock_enter_uses_the_empty_root") {
        return;
    }
    let ids = nobody();
    let support = Support {
        landlock: Err(Unavailable::DisabledAtBoot),
        seccomp: probe().seccomp,
    };
    let mut child = fork(|side| {
        let entered = enter(&ids, &support).map_err(|e| e.to_string())?;
        side.pause(&format!("entered: {entered}"));
        Ok(())
    });
    let line = child.line();
    assert!(
        line.contains("an empty root (no Landlock; chroot with CAP_SYS_CHROOT)"),
        "{line}"
    );
    let status = child.status();
    assert_eq!(field(&status, "Seccomp"), "2");
    assert_eq!(field(&status, "NoNewPrivs"), "1");
    assert_eq!(field(&status, "CapEff"), "0000000000000000");
    let (end, rest) = child.finish();
    assert_eq!(end, End::Exit(0), "{rest}");
}

#[test]
fn enter_changes_nothing_when_it_cannot_finish() {
    if !as_root("sys::sandbox::tests::enter_changes_nothing_when_it_cannot_finish") {
        return;
    }
    let ids = nobody();
    let child = fork(|side| {
        let no_seccomp = Support {
            landlock: probe().landlock,
            seccomp: Err(Unavailable::NotInKernel),
        };
        side.say(&enter(&ids, &no_seccomp).unwrap_err().to_string());
        let parked = std::thread::spawn(std::thread::park);
        side.say(&enter(&ids, &probe()).unwrap_err().to_string());
        drop(parked);
        // SAFETY: geteuid cannot fail.
        side.say(&format!("euid {}", unsafe { libc::geteuid() }));
        Ok(())
    });
    let (end, rest) = child.finish();
    assert_eq!(end, End::Exit(0), "{rest}");
    assert_eq!(
        rest,
        "seccomp filters are not available: not built into this kernel (ENOSYS) (run with --no-sandbox to go without)\n\
         the process has 2 threads; the sandbox must be entered while it has exactly one (capabilities and Landlock are per thread)\n\
         euid 0\n"
    );
}

#[test]
fn lookup_refuses_root_and_unknown_users() {
    assert_eq!(
        WorkerIds::lookup("root").unwrap_err().to_string(),
        "user \"root\" has uid 0: the worker never runs as root (name an unprivileged user with --user)"
    );
    assert_eq!(
        WorkerIds::lookup("no-such-user-knockd")
            .unwrap_err()
            .to_string(),
        "user \"no-such-user-knockd\": no such user (create it, or name another with --user)"
    );
    assert!(matches!(
        WorkerIds::lookup("bad\0name"),
        Err(SandboxError::NoSuchUser(_))
    ));
    let ids = nobody();
    assert_ne!(ids.uid, 0);
    assert_eq!(ids.name, "nobody");
}

#[test]
fn the_default_user_is_knockd_lite_else_nobody() {
    let chosen = default_user().unwrap();
    match WorkerIds::lookup("knockd-lite") {
        Ok(own) => {
            assert_eq!(chosen.ids, own);
            assert_eq!(chosen.why, "the knockd-lite system user exists");
        }
        Err(_) => {
            assert_eq!(chosen.ids, nobody());
            assert!(
                chosen.why.starts_with("there is no knockd-lite user"),
                "{}",
                chosen.why
            );
        }
    }
}

#[test]
fn probe_reports_what_this_kernel_has() {
    let support = probe();
    assert_eq!(support.seccomp, Ok(()), "this kernel has seccomp filters");
    let line = support.to_string();
    match support.landlock {
        Ok(abi) => assert_eq!(line, format!("Landlock ABI {abi}; seccomp filters")),
        Err(why) => assert!(line.contains(&why.to_string()), "{line}"),
    }
    let none = Support {
        landlock: Err(Unavailable::DisabledAtBoot),
        seccomp: Err(Unavailable::NoKillProcess),
    };
    assert_eq!(
        none.to_string(),
        "Landlock not available (disabled at boot (EOPNOTSUPP: not in the kernel's lsm= list); an empty root replaces it); seccomp filters not available (no SECCOMP_RET_KILL_PROCESS (the kernel is older than 4.14))"
    );
}

#[test]
fn the_filter_compiles_for_this_target() {
    let program = seccomp::program().unwrap();
    assert!(
        program.len() > policy::allow_list().len(),
        "{}",
        program.len()
    );
    assert!(program.len() < 4096, "{}", program.len());
}
