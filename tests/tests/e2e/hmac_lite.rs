//! `knock keygen`'s output used as written: its door snippet in knockd-lite's config (the
//! secret copied to a private server-side file), its profile snippet in a profile folder,
//! and `knock profile NAME` from the client opening the door. HMAC doors over TCP, UDP,
//! both, and with TCP flags, over IPv4 and IPv6; a replayed sequence refused inside its
//! window and the next window opening; the secret kept out of every log, output and
//! argument list.
//!
//! The doors use a 2 s step, so moving on to the next window costs at most 2 s.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use knock_e2e::lite::KnockdLite;
use knock_e2e::server::lines;
use knock_e2e::{
    CLIENT_V4, CLIENT_V6, Pair, SERVER_V4, Server, TempDir, WAIT, bin, netns_test, output,
};

const STEP: u64 = 2;
const HOSTS: &str = "192.0.2.2 server.test\n2001:db8::2 server.test\n";

/// knockd-lite with one keygen door per `(name, keygen options)`, the matching profiles,
/// and the secrets to look for where they must not be.
struct Setup<'p> {
    lite: KnockdLite,
    profiles: TempDir,
    pair: &'p Pair,
    secrets: Vec<String>,
}

impl Setup<'_> {
    fn new<'p>(pair: &'p Pair, doors: &[(&str, &[&str])]) -> Setup<'p> {
        pair.set_client_hosts(HOSTS);
        let profiles = TempDir::new("hmac-profiles");
        let server = TempDir::new("hmac-lite");
        let mut config = String::new();
        let mut secrets = Vec::new();
        for (name, options) in doors {
            let (door, secret) = keygen(name, options, profiles.path(), server.path());
            config.push_str(&door);
            secrets.push(secret);
        }
        // -v and -D: the most the server ever writes, all of it checked for the secrets.
        let lite = KnockdLite::start_in(pair, server, &config, &["-v", "-D"]);
        Setup {
            lite,
            profiles,
            pair,
            secrets,
        }
    }

    /// Panics if `text` holds a secret.
    fn assert_no_secret(&self, what: &str, text: &str) {
        for secret in &self.secrets {
            assert!(!text.contains(secret.as_str()), "the secret is in {what}");
        }
    }

    /// `knock ARGS...` in the client namespace, profiles from `KNOCK_PROFILES`. It must
    /// succeed, and the secret must be in neither its arguments nor its output. Returns
    /// stdout.
    fn knock(&self, args: &[&str]) -> String {
        let mut cmd = self.pair.knock_cmd(args);
        cmd.env("KNOCK_PROFILES", self.profiles.path());
        let argv: Vec<String> = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        self.assert_no_secret("knock's arguments", &argv.join(" "));
        let out = output(&mut cmd);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{cmd:?} failed with {}\nstdout:\n{stdout}\nstderr:\n{stderr}\n{}",
            out.status,
            self.lite.output()
        );
        self.assert_no_secret("knock's output", &format!("{stdout}{stderr}"));
        stdout
    }

    /// Runs `knock` and waits for the door's next event line, which must be `want`.
    fn opens(&self, args: &[&str], want: &str) {
        let event = self.lite.next_event(WAIT, || {
            self.knock(args);
        });
        assert_eq!(event, want, "{}", self.lite.output());
    }

    /// The secret is not in the server's log, its stdout and stderr, its arguments, or what
    /// `knockd-lite --check` prints about the doors.
    fn assert_server_kept_the_secret(&self) {
        self.assert_no_secret("the server's log and output", &self.lite.output());
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.lite.pid()))
            .expect("the server's /proc/PID/cmdline");
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(cmdline.contains("knockd-lite"), "{cmdline}");
        self.assert_no_secret("the server's arguments", &cmdline);
        let check = output(
            Command::new(bin("knockd-lite"))
                .arg("--check")
                .arg("-c")
                .arg(self.lite.config_path()),
        );
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        assert!(check.status.success(), "{printed}");
        assert!(printed.contains("(not shown)"), "{printed}");
        self.assert_no_secret("knockd-lite --check", &printed);
    }

    /// The counters the server recorded as used for `door` (lines `C1,C2\tDOOR`).
    fn used_counters(&self, door: &str) -> Vec<u64> {
        lines(&self.lite.state_file("hmac-used"))
            .iter()
            .filter_map(|l| l.strip_suffix(&format!("\t{door}")))
            .flat_map(|list| list.split(','))
            .map(|c| c.parse().unwrap_or_else(|e| panic!("counter {c:?}: {e}")))
            .collect()
    }
}

/// Runs `knock keygen --door NAME --secret-file PROFILES/NAME.secret
/// --server-secret-file SERVER/NAME.secret --step 2 OPTIONS...` and uses what it prints:
/// the profile snippet becomes PROFILES/NAME.toml, the secret is copied to the server's file
/// with mode 0600, and the door snippet, with a start command that writes `NAME %IP%` to
/// `@DIR@/events`, is returned with the secret.
fn keygen(name: &str, options: &[&str], profiles: &Path, server: &Path) -> (String, String) {
    let client_secret = profiles.join(format!("{name}.secret"));
    let server_secret = server.join(format!("{name}.secret"));
    let out = output(
        Command::new(bin("knock"))
            .args(["keygen", "--door", name, "--host", "server.test"])
            .args(["--step", &STEP.to_string()])
            .arg("--secret-file")
            .arg(&client_secret)
            .arg("--server-secret-file")
            .arg(&server_secret)
            .args(options),
    );
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "knock keygen {name}: {}\n{printed}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = std::fs::read_to_string(&client_secret).expect("keygen wrote the secret file");
    let secret = secret.lines().next().unwrap_or_default().to_string();
    assert_eq!(secret.len(), 44, "32 bytes in base64: {secret:?}");
    assert!(!printed.contains(&secret), "keygen printed the secret");

    // The door: from its section line to the blank line after it.
    let section = format!("[{name}]");
    let door: Vec<&str> = printed
        .lines()
        .skip_while(|l| *l != section)
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(
        door.iter()
            .any(|l| l.trim() == format!("HMAC_Secret_File = {}", server_secret.display())),
        "{printed}"
    );
    let mut commands = 0;
    let door: String = door
        .iter()
        .map(|l| {
            if l.trim_start().starts_with("Start_Command ") {
                commands += 1;
                format!("    Start_Command = echo {name} %IP% >> @DIR@/events\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert_eq!(commands, 1, "one Start_Command in:\n{printed}");

    // The profile: everything after the line that says where to save it.
    let intro = format!("# Client (knock): save this as {name}.toml in the profile directory:");
    let profile: String = printed
        .lines()
        .skip_while(|l| *l != intro)
        .skip(1)
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(profile.contains("[hmac]"), "{printed}");
    std::fs::write(profiles.join(format!("{name}.toml")), profile).unwrap();

    std::fs::copy(&client_secret, &server_secret).unwrap();
    std::fs::set_permissions(&server_secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    (door, secret)
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
}

/// The knock-hmac-v1 counter of this moment.
fn counter_now() -> u64 {
    now().as_secs() / STEP
}

/// Sleeps until the counter is past `counter`, at most one step.
fn wait_for_window_after(counter: u64) {
    let next = Duration::from_secs((counter + 1) * STEP);
    let now = now();
    if now < next {
        std::thread::sleep(next - now + Duration::from_millis(10));
    }
    assert!(counter_now() > counter);
}

/// The hits `knock -v` reported (`hitting tcp 192.0.2.2:20183 [fin,psh]`), in the hit
/// grammar (`20183:tcp:fin+psh`).
fn hits_sent(verbose: &str) -> String {
    let hits: Vec<String> = verbose
        .lines()
        .filter_map(|l| l.strip_prefix("hitting "))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let port = words[1].rsplit(':').next().unwrap();
            match words.get(2) {
                Some(flags) => format!(
                    "{port}:{}:{}",
                    words[0],
                    flags.trim_matches(['[', ']']).replace(',', "+")
                ),
                None => format!("{port}:{}", words[0]),
            }
        })
        .collect();
    assert!(!hits.is_empty(), "no hits in:\n{verbose}");
    hits.join(",")
}

netns_test!(
    keygen_doors_open_over_tcp_udp_mixed_and_flags_on_ipv4_and_ipv6,
    |pair| {
        let doors: [(&str, &[&str]); 4] = [
            ("tcp", &[]),
            ("udp", &["--protocols", "udp"]),
            ("mixed", &["--protocols", "mixed", "--length", "6"]),
            // Exact flags: the client sends them raw, and the door's TCPFlags refuses SYNs.
            ("flags", &["--flags", "fin+psh"]),
        ];
        let s = Setup::new(&pair, &doors);
        let mut v4_counter = None;
        for (family, client) in [("-4", CLIENT_V4), ("-6", CLIENT_V6)] {
            // The IPv6 knocks must not replay the IPv4 knocks' counters.
            if let Some(counter) = v4_counter {
                wait_for_window_after(counter);
            }
            for (name, _) in doors {
                s.opens(&["profile", name, family], &format!("{name} {client}"));
            }
            v4_counter = Some(counter_now());
        }
        let log = s.lite.log();
        assert_eq!(log.matches(": OPEN SESAME").count(), 8, "{log}");
        assert!(!log.contains("replayed"), "{log}");
        s.assert_server_kept_the_secret();
    }
);

netns_test!(
    a_replayed_hmac_knock_runs_nothing_and_the_next_window_opens,
    |pair| {
        let s = Setup::new(&pair, &[("ssh", &["--protocols", "mixed"])]);
        // Nothing that shows the profile shows its secret.
        let shown = s.knock(&["profile", "show", "ssh"]);
        assert!(shown.contains("hmac.secret_file"), "{shown}");
        let dry = s.knock(&["profile", "ssh", "--dry-run", "--json"]);
        assert!(dry.contains("\"hits\""), "{dry}");

        let verbose = s.knock(&["profile", "ssh", "-v", "-4"]);
        assert_eq!(
            s.lite.wait_events(1, WAIT),
            ["ssh 192.0.2.1"],
            "{}",
            s.lite.output()
        );
        let used = s.used_counters("ssh");
        let [counter] = used[..] else {
            panic!("one used counter: {used:?}\n{}", s.lite.output());
        };

        // The same packets again, as someone who saw them would send them: the window (the
        // counter and one step either side) still takes them, but the counter is used.
        s.knock(&[SERVER_V4, &hits_sent(&verbose)]);
        s.lite.wait_log(
            &format!("192.0.2.1: ssh: replayed HMAC sequence (counter {counter}), no command run"),
            1,
            WAIT,
        );

        wait_for_window_after(counter);
        s.knock(&["profile", "ssh", "-4"]);
        assert_eq!(
            s.lite.wait_events(2, WAIT),
            ["ssh 192.0.2.1", "ssh 192.0.2.1"],
            "{}",
            s.lite.output()
        );
        let used = s.used_counters("ssh");
        assert!(used.iter().any(|&c| c > counter), "{counter}: {used:?}");
        let log = s.lite.log();
        assert_eq!(log.matches(": OPEN SESAME").count(), 2, "{log}");
        assert_eq!(log.matches("replayed HMAC sequence").count(), 1, "{log}");
        // The replay's command would have started before the second window's.
        assert_eq!(s.lite.events().len(), 2);
        s.assert_server_kept_the_secret();
    }
);

netns_test!(
    a_second_knock_inside_a_step_waits_for_the_next_and_opens_again,
    |pair| {
        let s = Setup::new(&pair, &[("ssh", &[])]);
        s.knock(&["profile", "ssh", "-4"]);
        s.lite.wait_events(1, WAIT);
        let first = s.used_counters("ssh");
        // At once again, as a second ssh session would: before, the server refused this
        // as a replay and knock exited 0; now knock waits for the next step.
        let mut cmd = pair.knock_cmd(&["profile", "ssh", "-4"]);
        cmd.env("KNOCK_PROFILES", s.profiles.path());
        let before = counter_now();
        let out = output(&mut cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        if before == first[0] {
            assert!(
                stderr.contains("was sent already, and the door takes each sequence once: waiting"),
                "{stderr}"
            );
        }
        assert_eq!(
            s.lite.wait_events(2, WAIT),
            ["ssh 192.0.2.1", "ssh 192.0.2.1"],
            "{}",
            s.lite.output()
        );
        let log = s.lite.log();
        assert!(!log.contains("replayed"), "{log}");
        let used = s.used_counters("ssh");
        assert_eq!(used.len(), 2, "{used:?}");
        // The record next to the profile holds the counter sent last, mode 0600.
        let record = s.profiles.path().join("ssh.hmac-used");
        let text = std::fs::read_to_string(&record).unwrap();
        assert_eq!(
            text.trim().parse::<u64>().unwrap(),
            *used.iter().max().unwrap()
        );
        let mode = std::fs::metadata(&record).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
);
