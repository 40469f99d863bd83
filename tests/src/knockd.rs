//! Debian's knockd 0.8 as a test server: started in the server namespace in the
//! foreground, stopped by a guard.

use std::path::Path;
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::server::{Server, write_config};
use crate::{Pair, TempDir, WAIT};

/// Debian's knockd.
pub const KNOCKD: &str = "/usr/sbin/knockd";
/// Debian's knock client, from the same package.
pub const DEBIAN_KNOCK: &str = "/usr/bin/knock";

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
        let conf = write_config(dir.path(), "knockd.conf", "knockd", doors);
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
        let deadline = Instant::now() + WAIT;
        while !knockd.log().contains("listening on") {
            if let Ok(Some(status)) = knockd.child.try_wait() {
                panic!("knockd exited with {status}:\n{}", knockd.output());
            }
            if Instant::now() > deadline {
                panic!(
                    "knockd is not listening after {WAIT:?}:\n{}",
                    knockd.output()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
        knockd
    }
}

impl Knockd {
    /// SIGKILL to the daemon, as a crash or `kill -9` would: the children it forked (the
    /// ones that sleep Cmd_Timeout and run a stop command) live on.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server for Knockd {
    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn name(&self) -> &'static str {
        "knockd"
    }
}

impl Drop for Knockd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
