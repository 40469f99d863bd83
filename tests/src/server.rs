//! What a test reads from a server it started, Debian's knockd or knockd-lite: the scratch
//! folder with its config, its log, its output, and the events its doors' commands append.

use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// A server started in a scratch folder (`@DIR@` in its config), which holds its config,
/// its log (`NAME.log`), its stdout and stderr (`NAME.out`), and `events`, where the tests'
/// doors append a line from their commands.
pub trait Server {
    /// The scratch folder.
    fn dir(&self) -> &Path;

    /// The program's name, which names its files: `knockd` or `knockd-lite`.
    fn name(&self) -> &'static str;

    /// A path in the scratch folder.
    fn path(&self, name: &str) -> PathBuf {
        self.dir().join(name)
    }

    /// The log file so far.
    fn log(&self) -> String {
        read(&self.path(&format!("{}.log", self.name())))
    }

    /// The log, stdout and stderr, for failure messages.
    fn output(&self) -> String {
        let name = self.name();
        format!(
            "{name}.log:\n{}\n{name} stdout/stderr:\n{}",
            self.log(),
            read(&self.path(&format!("{name}.out")))
        )
    }

    /// Polls `ready` every 10 ms until it holds; panics after `timeout`, saying `what` it
    /// waited for, with the server's output.
    fn wait_for(&self, what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !ready() {
            assert!(
                Instant::now() < deadline,
                "waited {timeout:?} for {what}:\n{}",
                self.output()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the log has `n` lines containing `needle`; panics with the output after
    /// `timeout`.
    fn wait_log(&self, needle: &str, n: usize, timeout: Duration) {
        self.wait_for(&format!("{n} log line(s) with {needle:?}"), timeout, || {
            self.log().lines().filter(|l| l.contains(needle)).count() >= n
        });
    }

    /// The lines in `@DIR@/events` so far.
    fn events(&self) -> Vec<String> {
        lines(&self.path("events"))
    }

    /// Waits until `@DIR@/events` has `n` complete lines and returns them; panics with the
    /// server's output after `timeout`.
    fn wait_events(&self, n: usize, timeout: Duration) -> Vec<String> {
        poll_lines(&self.path("events"), n, timeout)
            .unwrap_or_else(|e| panic!("{e}\n{}", self.output()))
    }

    /// Runs `knock` and returns the one line it added to `@DIR@/events` (waiting up to
    /// `timeout` for it), so each knock is checked on its own. What `knock` returns is
    /// dropped.
    fn next_event<T>(&self, timeout: Duration, knock: impl FnOnce() -> T) -> String {
        let before = self.events().len();
        knock();
        self.wait_events(before + 1, timeout).swap_remove(before)
    }
}

/// Writes the config `dir/NAME` for a server called `server`: `[options]` with its log file
/// `dir/SERVER.log`, then `doors`, in which `@DIR@` stands for `dir`.
pub fn write_config(dir: &Path, name: &str, server: &str, doors: &str) -> PathBuf {
    let conf = dir.join(name);
    let text = format!(
        "[options]\n\tlogfile = {}\n{}",
        dir.join(format!("{server}.log")).display(),
        doors.replace("@DIR@", &dir.display().to_string())
    );
    std::fs::write(&conf, text).unwrap_or_else(|e| panic!("write {}: {e}", conf.display()));
    conf
}

/// The text of `path` now (empty if it does not exist).
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The lines of `path` now (none if it does not exist).
pub fn lines(path: &Path) -> Vec<String> {
    read(path).lines().map(str::to_string).collect()
}

/// Waits until `path` has at least `n` complete lines and returns them; panics after
/// `timeout`.
pub fn wait_lines(path: &Path, n: usize, timeout: Duration) -> Vec<String> {
    poll_lines(path, n, timeout).unwrap_or_else(|e| panic!("{e}"))
}

/// [`wait_lines`], with the reason it gave up as the error.
fn poll_lines(path: &Path, n: usize, timeout: Duration) -> Result<Vec<String>, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let text = read(path);
        let complete = match text.rfind('\n') {
            Some(i) => &text[..=i],
            None => "",
        };
        let lines: Vec<String> = complete.lines().map(str::to_string).collect();
        if lines.len() >= n {
            return Ok(lines);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "waited {timeout:?} for {n} lines in {}; have:\n{text}",
                path.display()
            ));
        }
        thread::sleep(Duration::from_millis(10));
    }
}
