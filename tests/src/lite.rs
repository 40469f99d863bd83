//! knockd-lite as a test server: started in the server namespace, in the foreground or
//! detached with `-d`, and killed by a guard on drop. Helpers wait for log lines and files.

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::server::{self, Server};
use crate::{Pair, TempDir, bin};

/// How long start-up may take before a test fails.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A running knockd-lite, killed on drop.
pub struct KnockdLite {
    child: Option<Child>,
    pid: u32,
    dir: TempDir,
}

/// The config `dir/NAME` written for a test: `[options]` with the log file
/// `dir/knockd-lite.log`, then `doors`, in which `@DIR@` stands for `dir`.
pub fn write_config(dir: &Path, name: &str, doors: &str) -> PathBuf {
    server::write_config(dir, name, "knockd-lite", doors)
}

impl KnockdLite {
    /// Writes the config (see [`write_config`]) in a new scratch folder and starts
    /// `knockd-lite -i SERVER_IF -c CONF --state-dir DIR/state EXTRA...` in the server
    /// namespace. Returns once the log says it is listening.
    pub fn start(pair: &Pair, doors: &str, extra: &[&str]) -> KnockdLite {
        KnockdLite::start_in(pair, TempDir::new("lite"), doors, extra)
    }

    /// Like [`KnockdLite::start`], in a scratch folder the test has already filled (one-time
    /// lists, secrets).
    pub fn start_in(pair: &Pair, dir: TempDir, doors: &str, extra: &[&str]) -> KnockdLite {
        KnockdLite::start_with_env(pair, dir, doors, extra, &[])
    }

    /// Like [`KnockdLite::start_in`], with `env` added to the server's environment (say,
    /// a [`crate::faketime::FakeClock`]).
    pub fn start_with_env(
        pair: &Pair,
        dir: TempDir,
        doors: &str,
        extra: &[&str],
        env: &[(String, String)],
    ) -> KnockdLite {
        KnockdLite::start_program(pair, dir, doors, extra, env, &bin("knockd-lite"))
    }

    /// Like [`KnockdLite::start_with_env`], running `program` (a knockd-lite built with
    /// other features, [`sandbox_test_bin`]).
    pub fn start_program(
        pair: &Pair,
        dir: TempDir,
        doors: &str,
        extra: &[&str],
        env: &[(String, String)],
        program: &Path,
    ) -> KnockdLite {
        let conf = write_config(dir.path(), "knockd.conf", doors);
        let mut cmd = command_of(program, pair, dir.path(), &conf, extra);
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {cmd:?}: {e}"));
        let pid = child.id();
        let mut lite = KnockdLite {
            child: Some(child),
            pid,
            dir,
        };
        lite.wait_started();
        lite
    }

    /// Starts it on a config the test wrote in full, `conf` in `dir` (no log file added),
    /// with `-v` so log lines also reach stdout; returns once stdout says it is listening.
    /// For tests of the log file itself.
    pub fn start_config(pair: &Pair, dir: TempDir, conf: &Path, extra: &[&str]) -> KnockdLite {
        let mut args = vec!["-v"];
        args.extend_from_slice(extra);
        let child = spawn(pair, dir.path(), conf, &args);
        let pid = child.id();
        let mut lite = KnockdLite {
            child: Some(child),
            pid,
            dir,
        };
        let out = lite.path("knockd-lite.out");
        let deadline = Instant::now() + START_TIMEOUT;
        while !server::read(&out).contains("starting up, listening on") {
            if let Some(status) = lite.try_exit() {
                panic!("knockd-lite exited with {status}:\n{}", lite.output());
            }
            assert!(
                Instant::now() < deadline,
                "knockd-lite is not listening after {START_TIMEOUT:?}:\n{}",
                lite.output()
            );
            thread::sleep(Duration::from_millis(10));
        }
        lite
    }

    /// Starts it with `-d -p PIDFILE`: the command returns at once, and the daemon's pid is
    /// read from the pidfile once it names a live knockd-lite.
    pub fn start_daemon(pair: &Pair, dir: TempDir, doors: &str, pidfile: &Path) -> KnockdLite {
        let conf = write_config(dir.path(), "knockd.conf", doors);
        let pidarg = pidfile.display().to_string();
        let mut child = spawn(pair, dir.path(), &conf, &["-d", "-p", &pidarg]);
        let status = child.wait().expect("wait for knockd-lite -d");
        let out = std::fs::read_to_string(dir.path().join("knockd-lite.out")).unwrap_or_default();
        assert!(
            status.success(),
            "knockd-lite -d exited with {status}:\n{out}"
        );
        let deadline = Instant::now() + START_TIMEOUT;
        let pid = loop {
            // A stale file may still name a dead process until the daemon replaces it.
            if let Some(pid) = std::fs::read_to_string(pidfile)
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok())
                .filter(|&pid| is_knockd_lite(pid))
            {
                break pid;
            }
            assert!(
                Instant::now() < deadline,
                "no pid in {} after {START_TIMEOUT:?}",
                pidfile.display()
            );
            thread::sleep(Duration::from_millis(20));
        };
        let mut lite = KnockdLite {
            child: None,
            pid,
            dir,
        };
        lite.wait_started();
        lite
    }

    /// Stops a foreground server with SIGTERM and starts it again with the same config,
    /// scratch folder and state folder, and `extra` arguments.
    pub fn restart(&mut self, pair: &Pair, extra: &[&str]) {
        self.signal(libc::SIGTERM);
        let status = self.wait_exit(START_TIMEOUT);
        assert_eq!(status.code(), Some(0), "{}", self.output());
        let child = spawn(pair, self.dir.path(), &self.config_path(), extra);
        self.pid = child.id();
        self.child = Some(child);
        self.wait_started();
    }

    /// Starts the server again with the same config, scratch folder and state folder,
    /// after it died (SIGKILL): returns once the new process says it is listening.
    pub fn start_again(&mut self, pair: &Pair, extra: &[&str]) {
        assert!(!self.alive(), "start_again needs a dead server");
        let starts = self.log().matches("] starting up, listening on").count();
        let child = spawn(pair, self.dir.path(), &self.config_path(), extra);
        self.pid = child.id();
        self.child = Some(child);
        self.wait_for("a new start", START_TIMEOUT, || {
            self.log().matches("] starting up, listening on").count() > starts
        });
    }

    /// Waits for one more `starting up` line than there are `shutting down` lines.
    fn wait_started(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let started = |log: &str| {
            log.matches("] starting up, listening on").count()
                > log.matches("] shutting down\n").count()
        };
        while !started(&self.log()) {
            if let Some(status) = self.try_exit() {
                panic!("knockd-lite exited with {status}:\n{}", self.output());
            }
            if Instant::now() > deadline {
                panic!(
                    "knockd-lite is not listening after {START_TIMEOUT:?}:\n{}",
                    self.output()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The config file; rewrite it and send SIGHUP to test reloads.
    pub fn config_path(&self) -> PathBuf {
        self.path("knockd.conf")
    }

    /// The state file of `kind` (`hmac-used`, `stops`) in the state folder:
    /// `state/knockd.conf.<16 hex digits>.KIND`, the digits a digest of the config's path.
    /// Panics unless there is exactly one.
    pub fn state_file(&self, kind: &str) -> PathBuf {
        let dir = self.path("state");
        let found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        let suffix = format!(".{kind}");
        let ours: Vec<&PathBuf> = found
            .iter()
            .filter(|p| {
                let name = p.file_name().unwrap_or_default().to_string_lossy();
                name.strip_prefix("knockd.conf.")
                    .and_then(|rest| rest.strip_suffix(&suffix))
                    .is_some_and(|hex| {
                        hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit())
                    })
            })
            .collect();
        match ours[..] {
            [one] => one.clone(),
            _ => panic!("one {kind} file in {}: {found:?}", dir.display()),
        }
    }

    /// The stop keeper's pid, from the `keeper` state file, while that process is a live
    /// keeper.
    pub fn keeper_pid(&self) -> Option<u32> {
        let dir = self.path("state");
        let file = std::fs::read_dir(&dir).ok()?.flatten().find(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("knockd.conf.") && name.ends_with(".keeper")
        })?;
        let pid = std::fs::read_to_string(file.path())
            .ok()?
            .trim()
            .parse::<u32>()
            .ok()?;
        is_keeper(pid).then_some(pid)
    }

    /// Waits for the stop keeper to run (under its own name, which it takes as it starts)
    /// and returns its pid.
    pub fn wait_keeper(&self) -> u32 {
        let mut pid = None;
        self.wait_for("the stop keeper", START_TIMEOUT, || {
            pid = self.keeper_pid();
            pid.is_some()
        });
        pid.unwrap_or_default()
    }

    /// Sends `sig` to the stop keeper; returns its pid. Panics if there is none.
    pub fn signal_keeper(&self, sig: i32) -> u32 {
        let pid = self.wait_keeper();
        // SAFETY: kill() with a pid just checked to be a live knockd-keeper.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
        assert_eq!(
            rc,
            0,
            "kill -{sig} {pid}: {}",
            std::io::Error::last_os_error()
        );
        pid
    }

    /// Log lines without their `[YYYY-MM-DD HH:MM] ` stamp.
    pub fn log_bodies(&self) -> Vec<String> {
        self.log()
            .lines()
            .map(|l| l.split_once("] ").map_or(l, |(_, b)| b).to_string())
            .collect()
    }

    /// Sends a signal to the server.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill() with a pid this guard started and a valid signal number.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::kill(self.pid as libc::pid_t, sig) };
        assert_eq!(
            rc,
            0,
            "kill -{sig} {}: {}",
            self.pid,
            std::io::Error::last_os_error()
        );
    }

    fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits for a foreground server to exit and returns its status; panics after
    /// `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit() {
                return status;
            }
            assert!(self.child.is_some(), "wait_exit needs a foreground server");
            if Instant::now() > deadline {
                panic!(
                    "knockd-lite still running after {timeout:?}:\n{}",
                    self.output()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for a daemon (or any server) to be gone; panics after `timeout`.
    pub fn wait_gone(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.alive() {
            if Instant::now() > deadline {
                panic!("knockd-lite {} still running after {timeout:?}", self.pid);
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the server process still exists (a zombie counts as gone).
    pub fn alive(&mut self) -> bool {
        if let Some(child) = &mut self.child {
            return matches!(child.try_wait(), Ok(None));
        }
        is_knockd_lite(self.pid)
    }
}

impl Server for KnockdLite {
    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn name(&self) -> &'static str {
        "knockd-lite"
    }
}

impl Drop for KnockdLite {
    fn drop(&mut self) {
        // The keeper outlives a killed daemon (that is its job): it goes too, so no test
        // leaves a process behind.
        let keeper = self.keeper_pid();
        match &mut self.child {
            Some(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            None if is_knockd_lite(self.pid) => {
                // SAFETY: kill() on the daemon this guard started, checked to still be a
                // live knockd-lite (not a reused pid).
                #[allow(unsafe_code)]
                unsafe {
                    libc::kill(self.pid as libc::pid_t, libc::SIGKILL)
                };
            }
            None => {}
        }
        if let Some(pid) = keeper.filter(|&pid| is_keeper(pid)) {
            // SAFETY: kill() on the keeper of the daemon this guard started, checked to
            // still be a live knockd-keeper (not a reused pid).
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL)
            };
        }
    }
}

/// knockd-lite built with the `sandbox-test` feature (a worker that tries a forbidden
/// system call on a magic packet), which `.ci/test` builds into `target/sandbox-test`;
/// `None` if it was not built.
pub fn sandbox_test_bin() -> Option<PathBuf> {
    let normal = bin("knockd-lite");
    // target/<profile>/knockd-lite -> target/sandbox-test/<profile>/knockd-lite
    let profile_dir = normal.parent()?;
    let profile = profile_dir.file_name()?;
    let target = profile_dir.parent()?;
    let path = target
        .join("sandbox-test")
        .join(profile)
        .join("knockd-lite");
    path.exists().then_some(path)
}

/// The sandboxed worker of the knockd-lite `pid`: its child named `knockd-worker`.
pub fn worker_of(pid: u32) -> Option<u32> {
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    children
        .split_whitespace()
        .filter_map(|c| c.parse::<u32>().ok())
        .find(|&c| is_live(c, "knockd-worker"))
}

/// Whether `pid` is a live (not zombie) knockd-lite.
pub fn is_knockd_lite(pid: u32) -> bool {
    is_live(pid, "knockd-lite")
}

/// Whether `pid` is a live (not zombie) stop keeper, which names itself `knockd-keeper`.
pub fn is_keeper(pid: u32) -> bool {
    is_live(pid, "knockd-keeper")
}

fn is_live(pid: u32, name: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().next());
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    comm.trim_end() == name && !matches!(state, None | Some("Z"))
}

fn spawn(pair: &Pair, dir: &Path, conf: &Path, extra: &[&str]) -> Child {
    let mut cmd = command(pair, dir, conf, extra);
    cmd.spawn()
        .unwrap_or_else(|e| panic!("could not start {cmd:?}: {e}"))
}

/// `knockd-lite -i SERVER_IF -c CONF --state-dir DIR/state EXTRA...` in the server
/// namespace, its stdout and stderr appended to `DIR/knockd-lite.out`.
fn command(pair: &Pair, dir: &Path, conf: &Path, extra: &[&str]) -> std::process::Command {
    command_of(&bin("knockd-lite"), pair, dir, conf, extra)
}

fn command_of(
    program: &Path,
    pair: &Pair,
    dir: &Path,
    conf: &Path,
    extra: &[&str],
) -> std::process::Command {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("knockd-lite.out"))
        .expect("knockd-lite.out");
    let mut cmd = pair.server_cmd(program);
    cmd.args(["-i", &pair.server_if, "-c"])
        .arg(conf)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(extra)
        .stdout(out.try_clone().expect("dup"))
        .stderr(out)
        .stdin(Stdio::null());
    cmd
}
