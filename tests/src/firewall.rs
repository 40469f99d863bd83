//! Firewalls in the test namespaces, and the proof that the host's was never touched.
//!
//! Every `nft`, `iptables` and `ip6tables` run by the tests goes through [`Firewall`], which
//! runs it with `ip netns exec` in a namespace this process made (a [`Pair`]'s, checked
//! by name and by `ip netns list`). Around each of those runs the host's own ruleset is
//! read (`nft list ruleset` in the host's namespace, read-only) and compared with the copy
//! taken before the first firewall command of the suite: a test that changed the host's
//! firewall fails the next firewall step of any test, and [`Firewall`]'s drop.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::{Pair, output};

/// The host's ruleset before any test's firewall command ran.
static HOST_BEFORE: OnceLock<String> = OnceLock::new();

/// The host's ruleset now: `nft list ruleset` in this process's own namespace. It only
/// reads; nothing in the tests ever writes outside a test namespace.
fn host_ruleset() -> String {
    let out = output(
        Command::new("nft")
            .args(["list", "ruleset"])
            .stdin(Stdio::null()),
    );
    assert!(
        out.status.success(),
        "nft list ruleset (host, read-only): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Panics if the host's ruleset differs from the one before the first firewall command.
pub fn assert_host_untouched() {
    let before = HOST_BEFORE.get_or_init(host_ruleset);
    let now = host_ruleset();
    assert_eq!(
        &now, before,
        "the host's nftables ruleset changed while the tests ran"
    );
}

/// The iptables rule every door's firewall starts with: established connections go on,
/// so a session outlives its door.
pub const ACCEPT_ESTABLISHED: &[&str] = &[
    "-A",
    "INPUT",
    "-m",
    "conntrack",
    "--ctstate",
    "ESTABLISHED,RELATED",
    "-j",
    "ACCEPT",
];

/// The firewall of one test namespace.
pub struct Firewall {
    ns: String,
}

impl Firewall {
    /// The server namespace's firewall.
    pub fn server(pair: &Pair) -> Firewall {
        Firewall::of(&pair.server)
    }

    /// The client namespace's firewall (to lose a packet on its way out, before any
    /// capture of the server's can see it).
    pub fn client(pair: &Pair) -> Firewall {
        Firewall::of(&pair.client)
    }

    fn of(ns: &str) -> Firewall {
        assert!(
            ns.starts_with("kt") && ns.ends_with(['c', 's']),
            "{ns} is not a test namespace"
        );
        let list = output(Command::new("ip").args(["netns", "list"]));
        let listed = String::from_utf8_lossy(&list.stdout)
            .lines()
            .any(|l| l.split_whitespace().next() == Some(ns));
        assert!(listed, "namespace {ns} does not exist");
        HOST_BEFORE.get_or_init(host_ruleset);
        Firewall { ns: ns.to_string() }
    }

    /// Runs `PROGRAM ARGS` in the namespace (`input` on stdin); it must succeed. Returns
    /// stdout.
    fn run(&self, program: &str, args: &[&str], input: Option<&str>) -> String {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns, program])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}"));
        let mut stdin = child.stdin.take().expect("stdin");
        if let Some(text) = input {
            stdin.write_all(text.as_bytes()).expect("write stdin");
        }
        drop(stdin);
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{cmd:?}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            input.unwrap_or_default()
        );
        assert_host_untouched();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `nft ARGS`.
    pub fn nft(&self, args: &[&str]) -> String {
        self.run("nft", args, None)
    }

    /// `nft -f -` with `ruleset` on stdin.
    pub fn nft_apply(&self, ruleset: &str) {
        self.run("nft", &["-f", "-"], Some(ruleset));
    }

    /// `iptables ARGS` (Debian's default, iptables-nft).
    pub fn iptables(&self, args: &[&str]) -> String {
        self.run("iptables", args, None)
    }

    /// `ip6tables ARGS`.
    pub fn ip6tables(&self, args: &[&str]) -> String {
        self.run("ip6tables", args, None)
    }

    /// The milliseconds `addr` has left in `FAMILY TABLE SET`, from `nft list set`, or
    /// `None` if it is not there.
    pub fn expires_ms(&self, set: &str, addr: &str) -> Option<u64> {
        let words: Vec<&str> = set.split_whitespace().collect();
        let mut args = vec!["list", "set"];
        args.extend(&words);
        let text = self.nft(&args);
        expiry_of(&text, addr)
    }
}

impl Drop for Firewall {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert_host_untouched();
        }
    }
}

/// From `nft list set` text: `ADDR timeout 3s expires 2s512ms` -> 2512.
fn expiry_of(text: &str, addr: &str) -> Option<u64> {
    let start = text.find(&format!("{addr} "))?;
    let rest = &text[start..];
    let rest = &rest[rest.find("expires ")? + "expires ".len()..];
    let word: &str = rest.split([',', ' ', '\n', '}']).next()?;
    let mut total = 0u64;
    let mut number = String::new();
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = if c == 'm' && chars.peek() == Some(&'s') {
            chars.next();
            1
        } else {
            match c {
                'd' => 86_400_000,
                'h' => 3_600_000,
                'm' => 60_000,
                's' => 1000,
                _ => return None,
            }
        };
        total += number.parse::<u64>().ok()? * unit;
        number.clear();
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_read_from_nft_list_set() {
        let text = "table inet k {\n\tset s {\n\t\ttype ipv4_addr\n\t\tflags timeout\n\t\t\
                    elements = { 192.0.2.1 timeout 3s expires 2s512ms, 192.0.2.10 timeout 1m expires 59s }\n";
        assert_eq!(expiry_of(text, "192.0.2.1"), Some(2512));
        assert_eq!(expiry_of(text, "192.0.2.10"), Some(59_000));
        assert_eq!(expiry_of(text, "192.0.2.3"), None);
        assert_eq!(
            expiry_of("2001:db8::1 expires 1m2s", "2001:db8::1"),
            Some(62_000)
        );
    }
}
