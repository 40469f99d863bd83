//! Debian's knockd 0.8 as a test server: started in the server namespace in the
//! foreground, stopped by a guard.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{Pair, TempDir};

pub const KNOCKD: &str = "/usr/sbin/knockd";

/// True when knockd is installed. Without it the test is skipped with a message, except
/// under `CI=true` (where `.ci/setup` installs it), where it panics.
pub fn require_knockd(test: &str) -> bool {
    if Path::new(KNOCKD).exists() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {KNOCKD} is missing, and CI=true forbids skipping (run .ci/setup)");
    }
    eprintln!("SKIP {test}: {KNOCKD} is missing (apt-get install knockd)");
    false
}

/// A running knockd, killed on drop.
pub struct Knockd {
    child: Child,
    dir: TempDir,
}

impl Knockd {
    /// Writes a config of `[options]` with a logfile in a scratch folder, followed by
    /// `doors` (in which `@DIR@` stands for that folder), and runs
    /// `knockd -i SERVER_IF -c CONF` in the server namespace. Returns once knockd's log
    /// says it is listening.
    pub fn start(pair: &Pair, doors: &str) -> Knockd {
        let dir = TempDir::new("knockd");
        let conf = dir.path().join("knockd.conf");
        let log = dir.path().join("knockd.log");
        let text = format!(
            "[options]\n\tlogfile = {}\n{}",
            log.display(),
            doors.replace("@DIR@", &dir.path().display().to_string())
        );
        std::fs::write(&conf, text).expect("write knockd.conf");
        let out = std::fs::File::create(dir.path().join("knockd.out")).expect("knockd.out");
        let mut cmd = pair.server_cmd(KNOCKD);
        cmd.args(["-i", &pair.server_if, "-c"])
            .arg(&conf)
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .stdin(Stdio::null());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {cmd:?}: {e}"));
        let mut knockd = Knockd { child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !knockd.log().contains("listening on") {
            if let Ok(Some(status)) = knockd.child.try_wait() {
                panic!("knockd exited with {status}:\n{}", knockd.output());
            }
            if Instant::now() > deadline {
                panic!("knockd is not listening after 10 s:\n{}", knockd.output());
            }
            thread::sleep(Duration::from_millis(20));
        }
        knockd
    }

    /// The scratch folder (`@DIR@`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A path in the scratch folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// knockd's logfile so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("knockd.log")).unwrap_or_default()
    }

    /// Polls `ready` every 20 ms until it holds; panics after `timeout`, saying `what` it
    /// waited for, with knockd's log and output.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !ready() {
            assert!(
                Instant::now() < deadline,
                "waited {timeout:?} for {what}:\n{}",
                self.output()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log and whatever knockd printed, for failure messages.
    pub fn output(&self) -> String {
        format!(
            "knockd.log:\n{}\nknockd stdout/stderr:\n{}",
            self.log(),
            std::fs::read_to_string(self.path("knockd.out")).unwrap_or_default()
        )
    }
}

impl Drop for Knockd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits up to `timeout` for a file to exist with a complete last line, and returns its
/// text; `None` if it never did.
pub fn wait_for_file(path: &Path, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return Some(text);
        }
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}
