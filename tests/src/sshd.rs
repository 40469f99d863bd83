//! Debian's OpenSSH server as the service behind a door: started in the server namespace
//! on a port, with a host key, a client key and an authorized_keys file made for the test
//! in a scratch folder, its own config (`-f`), and a private tmpfs on /run for the
//! privilege separation folder it insists on, so no file of the machine is read or
//! written. [`Sshd::client_config`] writes the ssh client's side.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{Pair, SERVER_V4, TempDir, WAIT, bin, check, netns_cmd};

/// Debian's OpenSSH server and clients.
pub const SSHD: &str = "/usr/sbin/sshd";
pub const SSH: &str = "/usr/bin/ssh";
pub const SCP: &str = "/usr/bin/scp";
pub const SSH_KEYGEN: &str = "/usr/bin/ssh-keygen";

/// A running sshd in the server namespace, killed on drop, with the files a client needs
/// to reach it.
pub struct Sshd {
    child: Child,
    dir: TempDir,
    pub port: u16,
}

impl Sshd {
    /// Makes the keys and the config in a scratch folder and starts `sshd -D -e -f CONFIG`
    /// on SERVER_V4:`port`. Returns once it listens.
    pub fn start(pair: &Pair, port: u16) -> Sshd {
        let dir = TempDir::new("sshd");
        let d = dir.path();
        for key in ["host_key", "id"] {
            check(
                Command::new(SSH_KEYGEN)
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", key, "-f"])
                    .arg(d.join(key))
                    .stdin(Stdio::null()),
            );
        }
        std::fs::copy(d.join("id.pub"), d.join("authorized_keys")).expect("authorized_keys");
        let config = d.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\n\
                 ListenAddress {SERVER_V4}\n\
                 HostKey {dir}/host_key\n\
                 PidFile {dir}/sshd.pid\n\
                 AuthorizedKeysFile {dir}/authorized_keys\n\
                 # The scratch folder is under /tmp, which StrictModes would refuse.\n\
                 StrictModes no\n\
                 UsePAM no\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 PermitRootLogin prohibit-password\n\
                 Subsystem sftp internal-sftp\n\
                 LogLevel VERBOSE\n",
                dir = d.display()
            ),
        )
        .expect("write sshd_config");
        let log = std::fs::File::create(d.join("sshd.log")).expect("sshd.log");
        // sshd refuses to start without /run/sshd; a tmpfs on /run in a mount namespace of
        // its own gives it one without creating anything on the machine.
        let script = format!(
            "mount -t tmpfs -o mode=0755 tmpfs /run && mkdir /run/sshd && exec {SSHD} -D -e -f {}",
            config.display()
        );
        let mut cmd = netns_cmd(&pair.server, "unshare");
        cmd.args(["--mount", "sh", "-c", &script])
            .stdout(log.try_clone().expect("dup"))
            .stderr(log);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {cmd:?}: {e}"));
        let mut sshd = Sshd { child, dir, port };
        let deadline = Instant::now() + WAIT;
        while !sshd.log().contains("Server listening on") {
            if let Ok(Some(status)) = sshd.child.try_wait() {
                panic!("sshd exited with {status}:\n{}", sshd.log());
            }
            assert!(
                Instant::now() < deadline,
                "sshd is not listening after {WAIT:?}:\n{}",
                sshd.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
        sshd
    }

    /// The scratch folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// sshd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Writes an ssh client config for `Host ALIAS` that logs in as root with the test's
    /// key, knows the host key under that alias, never asks anything, and connects with
    /// `ProxyCommand PROXY`. Returns its path (for `ssh -F`).
    pub fn client_config(&self, alias: &str, proxy: &str) -> PathBuf {
        let d = self.dir();
        let host_key = std::fs::read_to_string(d.join("host_key.pub")).expect("host key");
        let mut words = host_key.split_whitespace();
        let (kind, key) = (words.next().unwrap(), words.next().unwrap());
        std::fs::write(d.join("known_hosts"), format!("{alias} {kind} {key}\n"))
            .expect("known_hosts");
        let config = d.join("ssh_config");
        std::fs::write(
            &config,
            format!(
                "Host {alias}\n\
                 \x20   Port {port}\n\
                 \x20   User root\n\
                 \x20   IdentityFile {dir}/id\n\
                 \x20   IdentitiesOnly yes\n\
                 \x20   UserKnownHostsFile {dir}/known_hosts\n\
                 \x20   StrictHostKeyChecking yes\n\
                 \x20   BatchMode yes\n\
                 \x20   ProxyCommand {proxy}\n",
                port = self.port,
                dir = d.display()
            ),
        )
        .expect("write ssh_config");
        config
    }

    /// `PROGRAM -F CONFIG` (ssh or scp) in the client namespace, with our `knock` first on
    /// PATH and `KNOCK_PROFILES` set, as a user's shell would have them.
    pub fn client(&self, pair: &Pair, program: &str, config: &Path, profiles: &Path) -> Command {
        let knock_dir = bin("knock").parent().expect("bin dir").to_path_buf();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![knock_dir];
        dirs.extend(std::env::split_paths(&path));
        let mut cmd = pair.client_cmd(program);
        cmd.env("PATH", std::env::join_paths(dirs).expect("PATH"))
            .env("KNOCK_PROFILES", profiles)
            .arg("-F")
            .arg(config);
        cmd
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
