//! Door commands: `%IP%` expansion, and running commands through `/bin/sh -c` on their own
//! threads with a time limit, reporting each completion over a channel.
//!
//! Each command gets a thread that forks, waits and reports, so a slow, hanging or
//! fork-starved command never holds up capture or matching. A command runs in its own
//! process group with stdin from /dev/null; when it outlives the time limit the whole group
//! is killed. The main loop polls [`Executor::wake_fd`] (an eventfd) with the capture
//! socket and collects completions with [`Executor::completions`].
//!
//! The main loop sees an executor only as a [`Runner`], so its ordering rules are tested
//! with a runner that runs nothing.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use knockd_engine::CommandId;

use crate::sys::{self, EventFd, Pidfd, PollFd};

/// How long a command may run before its process group is killed (`--command-limit`).
pub(crate) const DEFAULT_LIMIT: Duration = Duration::from_secs(5 * 60);
/// The longest `--command-limit`, in seconds: a day. A door command that needs longer is
/// not a door command.
pub(crate) const MAX_LIMIT_SECS: u64 = 24 * 60 * 60;

/// Replaces every `%IP%` in `template` with the numeric address `ip` (IPv6 in its
/// compressed form). Nothing else in the template changes: no other `%` sequence is
/// special, and the inserted text is only digits, hex letters, `.` and `:`.
pub(crate) fn expand(template: &str, ip: IpAddr) -> String {
    template.replace("%IP%", &ip.to_string())
}

/// The log line before a door command runs, in knockd's words:
/// `door: running command: /usr/sbin/iptables -A INPUT -s 192.0.2.1 -j ACCEPT`.
pub(crate) fn running_line(door: &str, command: &str) -> String {
    format!("{door}: running command: {command}")
}

/// How a command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Exited(i32),
    Signaled(i32),
    /// Still running at the time limit; its process group was killed.
    TimedOut(Duration),
    /// Killed with its process group when asked ([`Runner::kill`], at shutdown).
    Killed,
    /// The shell could not be started.
    SpawnFailed(String),
}

/// A finished command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Completion {
    /// The engine's id for the command.
    pub(crate) id: CommandId,
    pub(crate) outcome: Outcome,
    /// From spawn to exit (or to the kill).
    pub(crate) duration: Duration,
}

impl Completion {
    #[cfg(test)]
    pub(crate) fn success(&self) -> bool {
        self.outcome == Outcome::Exited(0)
    }

    /// The log line body for a command that failed, `None` if it succeeded. A non-zero exit
    /// reads as knockd's: `door: command returned non-zero status code (3)`.
    pub(crate) fn failure_body(&self, door: &str) -> Option<String> {
        Some(match &self.outcome {
            Outcome::Exited(0) => return None,
            Outcome::Exited(code) => {
                format!("{door}: command returned non-zero status code ({code})")
            }
            Outcome::Signaled(sig) => format!("{door}: command killed by signal {sig}"),
            Outcome::TimedOut(limit) if limit.subsec_nanos() == 0 => format!(
                "{door}: command still running after {} s, killed",
                limit.as_secs()
            ),
            Outcome::TimedOut(limit) => format!(
                "{door}: command still running after {} ms, killed",
                limit.as_millis()
            ),
            Outcome::Killed => format!("{door}: command killed with its process group"),
            Outcome::SpawnFailed(why) => format!("{door}: command could not be started: {why}"),
        })
    }
}

/// What the main loop needs from whatever runs door commands.
pub(crate) trait Runner {
    /// Starts `command` (already expanded) as the engine's command `id` and returns at
    /// once. Every id is later reported exactly once, even one that could not start.
    fn spawn(&mut self, id: CommandId, command: &str);

    /// Completions that have arrived, without waiting.
    fn completions(&mut self) -> Vec<Completion>;

    /// Waits up to `timeout` for every running command to finish (at shutdown) and returns
    /// the completions collected meanwhile.
    fn wait_idle(&mut self, timeout: Duration) -> Vec<Completion>;

    /// Kills the running command `id` with its process group, at once; its completion
    /// comes as usual, as [`Outcome::Killed`]. Nothing happens if it has finished.
    fn kill(&mut self, id: CommandId);
}

/// Runs commands on threads and collects their completions.
#[derive(Debug)]
pub(crate) struct Executor {
    limit: Duration,
    tx: Sender<Completion>,
    rx: Receiver<Completion>,
    /// Bumped by the command threads after each completion.
    wake: Arc<EventFd>,
    running: Arc<AtomicUsize>,
    /// Each running command's kill switch, watched by its thread.
    kills: HashMap<CommandId, Arc<EventFd>>,
}

impl Executor {
    /// An executor that kills commands still running after `limit`.
    pub(crate) fn new(limit: Duration) -> io::Result<Executor> {
        let wake = EventFd::new().map_err(|e| io::Error::new(e.kind(), format!("eventfd: {e}")))?;
        let (tx, rx) = channel();
        Ok(Executor {
            limit,
            tx,
            rx,
            wake: Arc::new(wake),
            running: Arc::new(AtomicUsize::new(0)),
            kills: HashMap::new(),
        })
    }

    /// Readable while completions wait to be collected.
    pub(crate) fn wake_fd(&self) -> RawFd {
        self.wake.as_raw_fd()
    }

    /// Commands started and not yet reported.
    pub(crate) fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }
}

impl Runner for Executor {
    fn spawn(&mut self, id: CommandId, command: &str) {
        let (tx, wake, running) = (
            self.tx.clone(),
            Arc::clone(&self.wake),
            Arc::clone(&self.running),
        );
        let (command, limit) = (command.to_string(), self.limit);
        // Without an eventfd (out of descriptors) the command cannot be killed early; it
        // still ends at its limit.
        let kill = EventFd::new().ok().map(Arc::new);
        if let Some(k) = &kill {
            self.kills.insert(id, Arc::clone(k));
        }
        running.fetch_add(1, Ordering::SeqCst);
        let report = move |outcome, duration| {
            running.fetch_sub(1, Ordering::SeqCst);
            let _ = tx.send(Completion {
                id,
                outcome,
                duration,
            });
            wake.notify();
        };
        let spawned = std::thread::Builder::new()
            .name(format!("cmd-{}", id.0))
            .spawn({
                let report = report.clone();
                move || {
                    let start = Instant::now();
                    let outcome = run(&command, limit, kill.as_deref());
                    report(outcome, start.elapsed());
                }
            });
        if let Err(e) = spawned {
            report(
                Outcome::SpawnFailed(format!("no thread for the command: {e}")),
                Duration::ZERO,
            );
        }
    }

    fn completions(&mut self) -> Vec<Completion> {
        self.wake.clear();
        let done: Vec<Completion> = self.rx.try_iter().collect();
        self.forget(&done);
        done
    }

    fn wait_idle(&mut self, timeout: Duration) -> Vec<Completion> {
        let deadline = Instant::now() + timeout;
        let mut out = self.completions();
        while self.running() > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if let Ok(c) = self.rx.recv_timeout(left) {
                out.push(c);
            }
        }
        out.extend(self.completions());
        self.forget(&out);
        out
    }

    fn kill(&mut self, id: CommandId) {
        if let Some(k) = self.kills.get(&id) {
            k.notify();
        }
    }
}

impl Executor {
    /// Drops the kill switches of commands that have finished.
    fn forget(&mut self, done: &[Completion]) {
        for c in done {
            self.kills.remove(&c.id);
        }
    }
}

/// Runs one command to completion, to the limit, or until `kill` is notified (on the
/// command's own thread).
fn run(command: &str, limit: Duration, kill: Option<&EventFd>) -> Outcome {
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .process_group(0)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return Outcome::SpawnFailed(format!("/bin/sh: {e}")),
    };
    match wait_with_limit(&mut child, limit, kill) {
        Ok(Waited::Exited(status)) => outcome_of(status),
        Ok(Waited::TimedOut) => {
            kill_group(&child);
            let _ = child.wait();
            Outcome::TimedOut(limit)
        }
        Ok(Waited::Killed) => {
            kill_group(&child);
            let _ = child.wait();
            Outcome::Killed
        }
        Err(e) => {
            kill_group(&child);
            let _ = child.wait();
            Outcome::SpawnFailed(format!("waiting for the command: {e}"))
        }
    }
}

fn outcome_of(status: ExitStatus) -> Outcome {
    match (status.code(), status.signal()) {
        (Some(code), _) => Outcome::Exited(code),
        (None, Some(sig)) => Outcome::Signaled(sig),
        (None, None) => Outcome::Exited(-1),
    }
}

fn kill_group(child: &Child) {
    // The child leads its own process group (process_group(0)) and has not been reaped
    // yet, so the group id cannot have been reused.
    let _ = sys::kill_group(child.id(), libc::SIGKILL);
}

/// How waiting for a command ended.
enum Waited {
    Exited(ExitStatus),
    /// Still running at the limit.
    TimedOut,
    /// Still running when its kill switch was notified.
    Killed,
}

/// Waits for the child for at most `limit`, or until `kill` is notified. A limit too far
/// away for the clock to express is no limit.
fn wait_with_limit(
    child: &mut Child,
    limit: Duration,
    kill: Option<&EventFd>,
) -> io::Result<Waited> {
    let far = Duration::from_secs(MAX_LIMIT_SECS * 365);
    let start = Instant::now();
    let deadline = start
        .checked_add(limit)
        .or_else(|| start.checked_add(far))
        .unwrap_or(start);
    let killed = |kill: Option<&EventFd>| -> bool {
        kill.is_some_and(|k| {
            let mut fds = [PollFd::readable(k.as_raw_fd())];
            sys::poll(&mut fds, Duration::ZERO).is_ok_and(|n| n > 0)
        })
    };
    if let Ok(pidfd) = Pidfd::open(child.id()) {
        let mut fds = vec![PollFd::readable(pidfd.as_raw_fd())];
        fds.extend(kill.map(|k| PollFd::readable(k.as_raw_fd())));
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(match child.try_wait()? {
                    Some(status) => Waited::Exited(status),
                    None => Waited::TimedOut,
                });
            }
            match sys::poll(&mut fds, left) {
                Ok(n) if n > 0 => {
                    if let Some(status) = child.try_wait()? {
                        return Ok(Waited::Exited(status));
                    }
                    if killed(kill) {
                        return Ok(Waited::Killed);
                    }
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    // Kernels before 5.3 have no pidfd: poll the child's state instead.
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Waited::Exited(status));
        }
        if killed(kill) {
            return Ok(Waited::Killed);
        }
        if Instant::now() >= deadline {
            return Ok(Waited::TimedOut);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Scratch;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn expand_replaces_only_the_ip_token() {
        let ip = v4("192.0.2.10");
        let cases = [
            (
                "/usr/sbin/iptables -A INPUT -s %IP% -p tcp --dport 22 -j ACCEPT",
                "/usr/sbin/iptables -A INPUT -s 192.0.2.10 -p tcp --dport 22 -j ACCEPT",
            ),
            ("%IP%%IP%", "192.0.2.10192.0.2.10"),
            ("%%IP%%", "%192.0.2.10%"),
            ("%ip% %Ip% %IP %IP", "%ip% %Ip% %IP %IP"),
            ("%HOST% %DOOR% %s %n %%", "%HOST% %DOOR% %s %n %%"),
            (
                "echo $(id) `id` ; rm -rf /tmp/x %IP% && echo '%IP%'",
                "echo $(id) `id` ; rm -rf /tmp/x 192.0.2.10 && echo '192.0.2.10'",
            ),
            ("", ""),
            ("no token", "no token"),
        ];
        for (template, want) in cases {
            assert_eq!(expand(template, ip), want, "{template:?}");
        }
    }

    #[test]
    fn expand_ipv6_is_the_compressed_numeric_form() {
        let ip: IpAddr = "2001:0db8:0000:0000:0000:0000:0000:0001".parse().unwrap();
        assert_eq!(
            expand("ip6tables -s %IP%/128", ip),
            "ip6tables -s 2001:db8::1/128"
        );
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(expand("%IP%", mapped), "::ffff:192.0.2.1");
        // Whatever the address, the inserted text is harmless to a shell.
        for ip in [
            "0.0.0.0",
            "255.255.255.255",
            "fe80::1",
            "::",
            "ffff:ffff::ffff",
        ] {
            let out = expand("%IP%", ip.parse().unwrap());
            assert!(
                out.chars()
                    .all(|c| c.is_ascii_hexdigit() || c == '.' || c == ':'),
                "{out}"
            );
        }
    }

    fn one(exec: &mut Executor, cmd: &str) -> Completion {
        let id = CommandId(7);
        exec.spawn(id, cmd);
        let mut got = exec.wait_idle(Duration::from_secs(20));
        assert_eq!(got.len(), 1, "{got:?}");
        let c = got.remove(0);
        assert_eq!(c.id, id);
        c
    }

    #[test]
    fn exit_status_and_knockd_failure_line() {
        let mut exec = Executor::new(DEFAULT_LIMIT).unwrap();
        let ok = one(&mut exec, "true");
        assert!(ok.success());
        assert_eq!(ok.failure_body("door"), None);
        let bad = one(&mut exec, "echo hi >/dev/null; exit 3");
        assert_eq!(bad.outcome, Outcome::Exited(3));
        assert_eq!(
            bad.failure_body("door").unwrap(),
            "door: command returned non-zero status code (3)"
        );
        let sig = one(&mut exec, "kill -USR1 $$");
        assert_eq!(sig.outcome, Outcome::Signaled(libc::SIGUSR1));
        assert_eq!(
            sig.failure_body("door").unwrap(),
            format!("door: command killed by signal {}", libc::SIGUSR1)
        );
        assert_eq!(exec.running(), 0);
        let limit = Completion {
            id: CommandId(9),
            outcome: Outcome::TimedOut(DEFAULT_LIMIT),
            duration: DEFAULT_LIMIT,
        };
        assert_eq!(
            limit.failure_body("door").unwrap(),
            "door: command still running after 300 s, killed"
        );
    }

    #[test]
    fn shell_syntax_stdin_and_signal_mask() {
        let scratch = Scratch::new("exec");
        let dir = scratch.path();
        let out = dir.join("out");
        let cmd = format!(
            "readlink /proc/$$/fd/0 > {o}; grep SigBlk /proc/self/status >> {o}; \
             for i in 1 2; do echo $i; done | wc -l >> {o}",
            o = out.display()
        );
        // Block what the daemon blocks for its signalfd (in this test's thread only); the
        // command thread inherits it.
        let _signals = crate::sys::SignalFd::new(&[libc::SIGHUP, libc::SIGTERM]).unwrap();
        assert!(one(&mut Executor::new(DEFAULT_LIMIT).unwrap(), &cmd).success());
        let text = std::fs::read_to_string(&out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "/dev/null");
        // Signals the daemon blocks for its signalfd are not blocked in commands.
        assert_eq!(lines[1].split_whitespace().nth(1), Some("0000000000000000"));
        assert_eq!(lines[2].trim(), "2");
    }

    /// The hostile run's finding: `--command-limit 18446744073709551615` made every command
    /// thread panic (the deadline overflowed), so no completion came and no stop ran.
    #[test]
    fn a_limit_beyond_the_clock_is_no_limit_and_no_panic() {
        for limit in [Duration::MAX, Duration::from_secs(u64::MAX)] {
            let mut exec = Executor::new(limit).unwrap();
            exec.spawn(CommandId(1), "true");
            let done = exec.wait_idle(Duration::from_secs(10));
            assert_eq!(done.len(), 1, "{limit:?}: {done:?}");
            assert!(done[0].success(), "{done:?}");
        }
    }

    #[test]
    fn a_hanging_command_is_killed_with_its_group_at_the_limit() {
        let mut exec = Executor::new(Duration::from_millis(300)).unwrap();
        let scratch = Scratch::new("hang");
        let dir = scratch.path();
        let pidfile = dir.join("pid");
        // A grandchild in the background, which must die with the group.
        let cmd = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let c = one(&mut exec, &cmd);
        assert_eq!(c.outcome, Outcome::TimedOut(Duration::from_millis(300)));
        assert!(c.duration >= Duration::from_millis(300), "{c:?}");
        assert!(c.duration < Duration::from_secs(10), "{c:?}");
        assert_eq!(
            c.failure_body("door").unwrap(),
            "door: command still running after 300 ms, killed"
        );
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The sleep is killed (and reaped by init, or a zombie for a moment).
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let alive = state
                .rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next())
                .is_some_and(|st| st != "Z");
            if !alive {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "sleep {pid} still alive: {state}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What shutdown does to a start command that outlives its patience: `sleep 27; echo
    /// open` must never get to its `echo`, nor a background child of it to its own.
    #[test]
    fn a_command_killed_on_request_dies_with_its_group_and_reports_it() {
        let mut exec = Executor::new(DEFAULT_LIMIT).unwrap();
        let scratch = Scratch::new("kill");
        let dir = scratch.path();
        let cmd = format!(
            "(sleep 1; echo late > {bg}) & echo $! > {pid}; sleep 27; echo open > {fg}",
            bg = dir.join("bg").display(),
            pid = dir.join("pid").display(),
            fg = dir.join("fg").display(),
        );
        exec.spawn(CommandId(7), &cmd);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !dir.join("pid").exists() {
            assert!(Instant::now() < deadline, "the command never started");
            std::thread::sleep(Duration::from_millis(10));
        }
        let start = Instant::now();
        exec.kill(CommandId(7));
        exec.kill(CommandId(99)); // not running: nothing happens
        let done = exec.wait_idle(Duration::from_secs(10));
        assert_eq!(done.len(), 1, "{done:?}");
        assert_eq!(
            (done[0].id, &done[0].outcome),
            (CommandId(7), &Outcome::Killed)
        );
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(
            done[0].failure_body("door").unwrap(),
            "door: command killed with its process group"
        );
        // Past the background child's second: neither it nor the start wrote anything.
        std::thread::sleep(Duration::from_millis(1500));
        assert!(!dir.join("fg").exists() && !dir.join("bg").exists());
        assert!(
            exec.kills.is_empty(),
            "the kill switch is dropped with the command"
        );
    }

    #[test]
    fn slow_commands_do_not_block_the_caller_and_wake_the_loop() {
        let mut exec = Executor::new(DEFAULT_LIMIT).unwrap();
        let start = Instant::now();
        let (slow, fast) = (CommandId(1), CommandId(2));
        exec.spawn(slow, "sleep 1");
        exec.spawn(fast, "exit 0");
        assert!(
            start.elapsed() < Duration::from_millis(500),
            "spawn returned at once"
        );
        assert_eq!(exec.running(), 2);

        // The eventfd becomes readable when the fast one is done.
        let mut fds = [PollFd::readable(exec.wake_fd())];
        assert_eq!(sys::poll(&mut fds, Duration::from_secs(5)).unwrap(), 1);
        let first = exec.completions();
        assert_eq!(first.iter().map(|c| c.id).collect::<Vec<_>>(), vec![fast]);
        // Collected: the eventfd is quiet again.
        assert_eq!(sys::poll(&mut fds, Duration::ZERO).unwrap(), 0);

        let rest = exec.wait_idle(Duration::from_secs(10));
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].id, slow);
        assert!(rest[0].duration >= Duration::from_secs(1));
        assert_eq!(exec.running(), 0);
    }
}
