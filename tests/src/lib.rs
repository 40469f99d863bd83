//! Test hosts in network namespaces, and helpers to run our binaries and Debian's knockd there.
//!
//! Every test builds its own pair of namespaces joined by a veth pair, named uniquely so
//! tests run in parallel, and removed by [`Pair`]'s `Drop` even when the test panics. The
//! only addresses in play are 192.0.2.0/24 and 2001:db8::/64 on that veth pair.

pub mod aarch64;
pub mod capture;
pub mod faketime;
pub mod firewall;
pub mod knockd;
pub mod lite;
pub mod raw;
pub mod server;
pub mod service;
pub mod sshd;
pub mod terminal;
pub mod wine;

pub use server::Server;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const CLIENT_V4: &str = "192.0.2.1";
pub const SERVER_V4: &str = "192.0.2.2";
pub const CLIENT_V6: &str = "2001:db8::1";
pub const SERVER_V6: &str = "2001:db8::2";

/// How long a test waits for what should follow at once (a packet, a log line, a door
/// opening, a server listening) before it fails: generous, for a loaded two-core CI machine,
/// and only ever a bound on a wait, never a speed a test asserts.
pub const WAIT: Duration = Duration::from_secs(10);

/// What a test needs besides root. [`netns_test!`] checks each before the test starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Debian's knockd 0.8 ([`knockd::KNOCKD`]).
    Knockd,
    /// Debian's knock client ([`knockd::DEBIAN_KNOCK`]).
    DebianKnock,
    /// Wine, mingw and knock.exe, set up once for all tests ([`wine::Wine::get`]).
    Wine,
    /// Debian's libfaketime ([`faketime::library`]).
    Faketime,
    /// Debian's OpenSSH server and client ([`sshd::SSHD`], [`sshd::SSH`]).
    Ssh,
    /// qemu-user and the static aarch64 `knock` ([`aarch64::missing`]).
    Aarch64,
}

impl Need {
    /// Why the test cannot run here, if it cannot.
    fn missing(self) -> Option<String> {
        let (programs, package): (&[&str], _) = match self {
            Need::Knockd => (&[knockd::KNOCKD], "knockd"),
            Need::DebianKnock => (&[knockd::DEBIAN_KNOCK], "knockd"),
            Need::Wine => return wine::Wine::get().err(),
            Need::Aarch64 => return aarch64::missing(),
            Need::Faketime => {
                return faketime::library()
                    .is_none()
                    .then(|| "libfaketime is missing (apt-get install libfaketime)".into());
            }
            Need::Ssh => (
                &[sshd::SSHD, sshd::SSH, sshd::SCP, sshd::SSH_KEYGEN],
                "openssh-server openssh-client",
            ),
        };
        programs
            .iter()
            .find(|p| !std::path::Path::new(p).exists())
            .map(|program| format!("{program} is missing (apt-get install {package})"))
    }
}

/// Whether the test named `test` may run: as root, with everything in `needs` (checked in
/// order). Otherwise it prints `SKIP test: why` and returns false, except under `CI=true`,
/// where a skip would hide a failure, so it panics. [`netns_test!`] calls it.
pub fn may_run(test: &str, needs: &[Need]) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    let euid = unsafe { libc::geteuid() };
    let why = if euid == 0 {
        needs.iter().find_map(|need| need.missing())
    } else {
        Some("needs root to create network namespaces".to_string())
    };
    let Some(why) = why else {
        return true;
    };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {why}, and CI=true forbids skipping");
    }
    eprintln!("SKIP {test}: {why}");
    false
}

/// A test's name as libtest prints it: the module path without the crate, then the
/// function (`client::delay_separates_hits_on_the_wire`).
pub fn test_name(module_path: &str, function: &str) -> String {
    match module_path.split_once("::") {
        Some((_crate, module)) => format!("{module}::{function}"),
        None => function.to_string(),
    }
}

/// Defines a `#[test]` that runs only where it may ([`may_run`]: root, and the [`Need`]s
/// listed), with a fresh [`Pair`] bound to the name between the bars:
///
/// ```ignore
/// netns_test!(delay_separates_hits_on_the_wire, |pair| {
///     pair.knock(&["-d", "300", SERVER_V4, "7000,8000:udp"]);
/// });
/// netns_test!(knock_opens_a_knockd_door, [Need::Knockd], |pair| { /* ... */ });
/// ```
///
/// With `||` the test gets no pair and makes what it needs itself. Attributes (`#[ignore]`,
/// doc comments) may come before the name. The body is the test function's body, not a
/// closure: `return` ends the test. The pair is made first, so it is dropped last, after
/// every server and guard the body made.
#[macro_export]
macro_rules! netns_test {
    ($(#[$attr:meta])* $name:ident, $([$($need:expr),* $(,)?],)? |$pair:ident| $body:expr) => {
        $crate::netns_test!(@test [$(#[$attr])*] $name [$($($need),*)?] ($pair) $body);
    };
    ($(#[$attr:meta])* $name:ident, $([$($need:expr),* $(,)?],)? || $body:expr) => {
        $crate::netns_test!(@test [$(#[$attr])*] $name [$($($need),*)?] () $body);
    };
    (@test [$($attr:tt)*] $name:ident [$($need:expr),*] ($($pair:ident)?) $body:expr) => {
        #[test]
        $($attr)*
        fn $name() {
            let name = $crate::test_name(module_path!(), stringify!($name));
            if !$crate::may_run(&name, &[$($need),*]) {
                return;
            }
            $(let $pair = $crate::Pair::new();)?
            $body
        }
    };
}

/// Whether a program is on PATH (for tests that need Debian's knockd, tcpdump, ...).
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null 2>&1")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A path to one of the workspace's binaries (`knock`, `knockd-lite`), next to this test
/// executable's `deps/` folder.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary lives in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` before the end-to-end tests",
        path.display()
    );
    path
}

/// Runs a command to completion; panics with the command line, stdout and stderr if it
/// could not start.
pub fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}"))
}

/// Runs a command that must succeed, and returns its stdout.
pub fn check(cmd: &mut Command) -> String {
    let out = output(cmd);
    if !out.status.success() {
        panic!("{}", describe(&format!("{cmd:?} failed"), &out));
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command that must succeed and print nothing on stderr, and returns its stdout.
pub fn check_quiet(cmd: &mut Command) -> String {
    let out = output(cmd);
    expect_quiet(&format!("{cmd:?}"), &out)
}

/// Runs a command that must exit with `code` and print nothing on stdout, and returns its
/// stderr.
pub fn check_exit(cmd: &mut Command, code: i32) -> String {
    let out = output(cmd);
    expect_exit(&format!("{cmd:?}"), &out, code)
}

/// Panics, saying what `what` (the command) did, unless `out` is a success with nothing on
/// stderr; returns stdout.
pub fn expect_quiet(what: &str, out: &Output) -> String {
    if !out.status.success() || !out.stderr.is_empty() {
        panic!(
            "{}",
            describe(&format!("{what}: expected success without stderr"), out)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Panics, saying what `what` (the command) did, unless `out` is an exit with `code` and
/// nothing on stdout; returns stderr.
pub fn expect_exit(what: &str, out: &Output, code: i32) -> String {
    if out.status.code() != Some(code) || !out.stdout.is_empty() {
        panic!(
            "{}",
            describe(&format!("{what}: expected exit {code} without stdout"), out)
        );
    }
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `HEADLINE: STATUS`, then stdout and stderr, for failure messages.
fn describe(headline: &str, out: &Output) -> String {
    format!(
        "{headline}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `ip ARGS`, which must succeed (name the namespace with `-n NS`).
pub fn ip(args: &[&str]) {
    check(Command::new("ip").args(args).stdin(Stdio::null()));
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Two test hosts: `client` (192.0.2.1, 2001:db8::1) and `server` (192.0.2.2, 2001:db8::2),
/// each a network namespace, joined by a veth pair. Dropping it deletes both namespaces
/// and with them the veth pair.
pub struct Pair {
    pub client: String,
    pub server: String,
    /// Interface names inside each namespace.
    pub client_if: String,
    pub server_if: String,
    /// More client addresses from 192.0.2.0/24, given to [`Pair::with_client_addrs`].
    extra_client_v4: Vec<String>,
}

impl Pair {
    /// Creates the pair.
    pub fn new() -> Pair {
        Pair::with_client_addrs(&[])
    }

    /// Creates the pair with more client addresses from 192.0.2.0/24 (for tests with
    /// several sources).
    pub fn with_client_addrs(extra_client_v4: &[&str]) -> Pair {
        let id = format!(
            "kt{}x{}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let pair = Pair {
            client: format!("{id}c"),
            server: format!("{id}s"),
            client_if: format!("{id}c0"),
            server_if: format!("{id}s0"),
            extra_client_v4: extra_client_v4.iter().map(|a| a.to_string()).collect(),
        };
        // Leftovers from an earlier run with the same pid would make `ip netns add` fail.
        pair.delete();
        ip(&["netns", "add", &pair.client]);
        ip(&["netns", "add", &pair.server]);
        ip(&["-n", &pair.client, "link", "set", "lo", "up"]);
        ip(&["-n", &pair.server, "link", "set", "lo", "up"]);
        pair.relink();
        pair
    }

    /// Creates the veth pair between the namespaces, with its addresses, and brings it up:
    /// at start, and again in tests that delete an interface to see it come back.
    pub fn relink(&self) {
        let (c, s) = (&self.client, &self.server);
        ip(&[
            "link",
            "add",
            &self.client_if,
            "netns",
            c,
            "type",
            "veth",
            "peer",
            "name",
            &self.server_if,
            "netns",
            s,
        ]);
        let client_v4 =
            std::iter::once(CLIENT_V4).chain(self.extra_client_v4.iter().map(String::as_str));
        for a in client_v4 {
            ip(&[
                "-n",
                c,
                "addr",
                "add",
                &format!("{a}/24"),
                "dev",
                &self.client_if,
            ]);
        }
        ip(&[
            "-n",
            s,
            "addr",
            "add",
            &format!("{SERVER_V4}/24"),
            "dev",
            &self.server_if,
        ]);
        for (ns, ifname, v6) in [
            (c, &self.client_if, CLIENT_V6),
            (s, &self.server_if, SERVER_V6),
        ] {
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                ifname,
                "nodad",
            ]);
        }
        for (ns, ifname) in [(c, &self.client_if), (s, &self.server_if)] {
            ip(&["-n", ns, "link", "set", ifname, "up"]);
        }
        // Spoofed sources from 192.0.2.0/24 must reach the server's capture.
        check(Command::new("ip").args([
            "netns",
            "exec",
            s,
            "sysctl",
            "-qw",
            "net.ipv4.conf.all.rp_filter=0",
            &format!("net.ipv4.conf.{}.rp_filter=0", self.server_if),
        ]));
    }

    /// Gives the server's interface one more address (`192.0.2.22/24`), as a DHCP renewal
    /// would.
    pub fn add_server_addr(&self, addr: &str) {
        ip(&[
            "-n",
            &self.server,
            "addr",
            "add",
            addr,
            "dev",
            &self.server_if,
        ]);
    }

    /// A command run inside the client namespace.
    pub fn client_cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        netns_cmd(&self.client, program)
    }

    /// Our `knock ARGS` in the client namespace, for a test to run as it likes.
    pub fn knock_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.client_cmd(bin("knock"));
        cmd.args(args);
        cmd
    }

    /// Runs our `knock ARGS` in the client namespace. It must exit 0 and print nothing on
    /// stderr; returns what it printed on stdout.
    pub fn knock(&self, args: &[&str]) -> String {
        check_quiet(&mut self.knock_cmd(args))
    }

    /// Runs our `knock ARGS` in the client namespace. It must exit with `code` and print
    /// nothing on stdout; returns what it printed on stderr.
    pub fn knock_fails(&self, args: &[&str], code: i32) -> String {
        check_exit(&mut self.knock_cmd(args), code)
    }

    /// A command run inside the server namespace.
    pub fn server_cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        netns_cmd(&self.server, program)
    }

    /// Gives the client namespace its own `/etc/hosts` (`ip netns exec` bind-mounts the
    /// files in `/etc/netns/NAME/` over `/etc/`), and an nsswitch.conf that looks names up
    /// in that file only, so no lookup in a test ever leaves the namespace as DNS.
    pub fn set_client_hosts(&self, hosts: &str) {
        set_hosts(&self.client, hosts);
    }

    /// [`Pair::set_client_hosts`] for the server namespace (the server's `-l` lookups).
    pub fn set_server_hosts(&self, hosts: &str) {
        set_hosts(&self.server, hosts);
    }

    /// Makes the server answer nothing, like a host whose firewall drops knocks: its
    /// routes back to the client become blackholes (no RST, ICMP error or neighbour
    /// answer leaves it), and the client gets permanent neighbour entries for the server
    /// so it still sends. An unanswered SYN is what a kernel would retransmit, so tests of
    /// "exactly one SYN" use this.
    pub fn silence_server(&self) {
        let link = check(Command::new("ip").args([
            "-n",
            &self.server,
            "-o",
            "link",
            "show",
            "dev",
            &self.server_if,
        ]));
        let mac = link
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .unwrap_or_else(|| panic!("no MAC address in: {link}"))
            .to_string();
        for server in [SERVER_V4, SERVER_V6] {
            ip(&[
                "-n",
                &self.client,
                "neigh",
                "replace",
                server,
                "lladdr",
                &mac,
                "dev",
                &self.client_if,
                "nud",
                "permanent",
            ]);
        }
        ip(&[
            "-n",
            &self.server,
            "route",
            "add",
            "blackhole",
            &format!("{CLIENT_V4}/32"),
        ]);
        ip(&[
            "-n",
            &self.server,
            "-6",
            "route",
            "add",
            "blackhole",
            &format!("{CLIENT_V6}/128"),
        ]);
    }

    /// Kills whatever still runs in the namespaces, then deletes them. The guards of the
    /// servers a test starts run first (they are declared after the pair); this catches
    /// what they could not: a daemon that forked away before its guard knew its pid, or
    /// any process a panicking test left. A process in a deleted namespace would keep it,
    /// and itself, alive unseen.
    fn delete(&self) {
        for ns in [&self.client, &self.server] {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let pids = netns_pids(ns);
                if pids.is_empty() || Instant::now() > deadline {
                    break;
                }
                for pid in pids {
                    // SAFETY: kill() has no memory-safety preconditions; the pid was just
                    // listed as a member of this test's own namespace.
                    #[allow(unsafe_code)]
                    unsafe {
                        libc::kill(pid, libc::SIGKILL)
                    };
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        for ns in [&self.client, &self.server] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
            let _ = std::fs::remove_dir_all(format!("/etc/netns/{ns}"));
        }
    }
}

impl Default for Pair {
    fn default() -> Self {
        Pair::new()
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        self.delete();
    }
}

/// Writes `/etc/netns/NS/hosts` and an nsswitch.conf that reads only that file.
fn set_hosts(ns: &str, hosts: &str) {
    let dir = PathBuf::from(format!("/etc/netns/{ns}"));
    std::fs::create_dir_all(&dir).expect("create /etc/netns/<namespace>");
    std::fs::write(dir.join("hosts"), hosts).expect("write hosts");
    std::fs::write(dir.join("nsswitch.conf"), "hosts: files\n").expect("write nsswitch.conf");
}

/// The processes in namespace `ns` (`ip netns pids`), none if it does not exist.
fn netns_pids(ns: &str) -> Vec<libc::pid_t> {
    Command::new("ip")
        .args(["netns", "pids", ns])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// `ip netns exec NS PROGRAM`.
pub fn netns_cmd(ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns])
        .arg(program)
        .stdin(Stdio::null());
    cmd
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "knock-e2e-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("KNOCK_E2E_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_names_are_libtests() {
        assert_eq!(
            test_name("e2e::client", "delay_separates_hits_on_the_wire"),
            "client::delay_separates_hits_on_the_wire"
        );
        assert_eq!(
            test_name("e2e::server::reload", "sighup"),
            "server::reload::sighup"
        );
        assert_eq!(test_name("e2e", "at_the_root"), "at_the_root");
    }
}
