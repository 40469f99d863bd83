//! Whole runs with `--wait` and `--proxy` on the virtual clock: when the port is tried,
//! when the knock is sent again and with what, what is printed where, and the exit codes.

use std::net::SocketAddr;
use std::time::Duration;

use knock_core::hit::{Hit, Proto, parse_sequence};
use knock_core::send::Dest;

use super::{Outcome, Scratch, World, ip, knock_in, sent};
use crate::execute::testing::{Door, Event};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn with_door(door: Door) -> World {
    World {
        door,
        ..World::default()
    }
}

const SSH: &str = "192.0.2.2:22";

/// The tries of a run: (virtual time in ms, time given in ms).
fn tries(events: &[Event]) -> Vec<(u128, u128)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Tried(addr, at, within) => {
                assert_eq!(*addr, SSH.parse::<SocketAddr>().unwrap());
                Some((at.as_millis(), within.as_millis()))
            }
            _ => None,
        })
        .collect()
}

fn seq(text: &str) -> Vec<Hit> {
    parse_sequence(text, Proto::Tcp).unwrap()
}

/// `hits` sent `n` times to 192.0.2.2.
fn knocks(hits: &str, n: usize) -> Vec<(Hit, Dest)> {
    let one: Vec<_> = seq(hits)
        .into_iter()
        .map(|h| (h, ip("192.0.2.2")))
        .collect();
    one.iter().cycle().take(one.len() * n).copied().collect()
}

#[test]
fn wait_returns_as_soon_as_the_port_accepts() {
    let o = knock_in(
        "--wait 22 192.0.2.2 7000,8000",
        with_door(Door::At(ms(120))),
    );
    assert_eq!((o.code, o.err.as_str(), o.out.as_str()), (0, "", ""));
    assert_eq!(sent(&o.events), knocks("7000,8000", 1));
    // Tries up to 100 ms get no answer; the one at 200 ms gets in.
    assert_eq!(
        tries(&o.events),
        [(0, 20), (20, 30), (50, 50), (100, 100), (200, 200)]
    );
    assert!(!o.events.contains(&Event::Relayed), "--wait relays nothing");
}

#[test]
fn verbose_says_how_long_it_took_and_how_many_knocks() {
    // The door opens once the second knock's hits are in.
    let o = knock_in(
        "-v --wait 22 192.0.2.2 7000,8000",
        with_door(Door::AfterSends(4)),
    );
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    assert_eq!(sent(&o.events), knocks("7000,8000", 2));
    assert_eq!(
        o.out,
        "hitting tcp 192.0.2.2:7000\n\
         hitting tcp 192.0.2.2:8000\n\
         192.0.2.2:22 still closed after 3.33 s: knocking again (2 of 3)\n\
         hitting tcp 192.0.2.2:7000\n\
         hitting tcp 192.0.2.2:8000\n\
         door open after 2 knocks and 3.33 s: 192.0.2.2:22\n"
    );
}

#[test]
fn a_door_that_never_opens_exits_1_saying_what_was_tried() {
    let o = knock_in(
        "--wait 22 --wait-timeout 1.5 --retries 2 192.0.2.2 7000",
        World::default(),
    );
    assert_eq!(o.code, 1);
    assert_eq!(o.out, "");
    assert_eq!(
        o.err,
        "knock: door still closed after 3 knocks and 1.5 s: 192.0.2.2:22 (last try: no answer)\n"
    );
    assert_eq!(sent(&o.events), knocks("7000", 3));
    // Knocks at 0.5 s and 1 s, each followed by tries from 0 again; nothing after 1.5 s.
    assert_eq!(
        tries(&o.events),
        [
            (0, 20),
            (20, 30),
            (50, 50),
            (100, 100),
            (200, 200),
            (400, 100),
            (500, 20),
            (520, 30),
            (550, 50),
            (600, 100),
            (700, 200),
            (900, 100),
            (1000, 20),
            (1020, 30),
            (1050, 50),
            (1100, 100),
            (1200, 200),
            (1400, 100),
        ]
    );
}

#[test]
fn a_refusing_port_is_named_and_tried_on_the_same_schedule() {
    let o = knock_in(
        "--wait 22 --wait-timeout 0.4 --retries 0 192.0.2.2 7000",
        with_door(Door::Refusing),
    );
    assert_eq!(o.code, 1);
    assert_eq!(
        o.err,
        "knock: door still closed after 1 knock and 0.4 s: 192.0.2.2:22 (last try: connection \
         refused)\n"
    );
    // Refused at once: each try waits for the next one's time.
    assert_eq!(
        o.events[1..],
        [
            Event::Tried(SSH.parse().unwrap(), ms(0), ms(20)),
            Event::Slept(ms(20)),
            Event::Tried(SSH.parse().unwrap(), ms(20), ms(30)),
            Event::Slept(ms(30)),
            Event::Tried(SSH.parse().unwrap(), ms(50), ms(50)),
            Event::Slept(ms(50)),
            Event::Tried(SSH.parse().unwrap(), ms(100), ms(100)),
            Event::Slept(ms(100)),
            Event::Tried(SSH.parse().unwrap(), ms(200), ms(200)),
            Event::Slept(ms(200)),
        ]
    );
}

#[test]
fn the_delay_between_hits_is_kept_in_every_knock() {
    let o = knock_in(
        "-d 100 --wait 22 --wait-timeout 2 --retries 1 192.0.2.2 7000,8000",
        with_door(Door::AfterSends(4)),
    );
    assert_eq!(o.code, 0, "{}", o.err);
    let slept: Vec<_> = o
        .events
        .iter()
        .filter(|e| matches!(e, Event::Slept(_)))
        .collect();
    assert_eq!(slept, [&Event::Slept(ms(100)), &Event::Slept(ms(100))]);
    // The second knock starts at 1 s of the wait (which began at 100 ms) and its tries
    // start after its own pause.
    let t = tries(&o.events);
    assert_eq!(t.last(), Some(&(1200, 20)), "{t:?}");
}

#[test]
fn proxy_relays_the_connection_that_got_in_and_keeps_stdout_for_it() {
    let o = knock_in(
        "--proxy 22 192.0.2.2 7000",
        with_door(Door::At(Duration::ZERO)),
    );
    assert_eq!((o.code, o.err.as_str(), o.out.as_str()), (0, "", ""));
    assert_eq!(
        o.events,
        [
            Event::Sent(Hit::tcp(7000), ip("192.0.2.2")),
            Event::Tried(SSH.parse().unwrap(), ms(0), ms(20)),
            Event::Relayed,
        ]
    );
    // -v: every line on stderr, none on stdout.
    let o = knock_in(
        "-v --proxy 22 192.0.2.2 7000",
        with_door(Door::At(Duration::ZERO)),
    );
    assert_eq!(o.code, 0);
    assert_eq!(o.out, "");
    assert_eq!(
        o.err,
        "hitting tcp 192.0.2.2:7000\n\
         door open after 1 knock and 0 s: 192.0.2.2:22\n\
         connection closed: 0 bytes sent, 0 received\n"
    );
    // A door that stays closed: nothing is relayed, exit 1.
    let o = knock_in(
        "--proxy 22 --wait-timeout 0.2 192.0.2.2 7000",
        World::default(),
    );
    assert_eq!(o.code, 1);
    assert!(!o.events.contains(&Event::Relayed));
    assert!(
        o.err.starts_with("knock: door still closed after "),
        "{}",
        o.err
    );
}

#[test]
fn bad_waits_are_usage_errors() {
    let table: &[(&str, &str)] = &[
        (
            "--proxy 0 192.0.2.2 7000",
            "error: invalid value '0' for '--proxy <PORT>': 0 is not a port (expected 1-65535)",
        ),
        (
            "--proxy 70000 192.0.2.2 7000",
            "error: invalid value '70000' for '--proxy <PORT>': 70000 is not a port (expected \
             1-65535)",
        ),
        (
            "--proxy abc 192.0.2.2 7000",
            "error: invalid value 'abc' for '--proxy <PORT>': \"abc\" is not a port number \
             (expected 1-65535)",
        ),
        (
            "--wait 0 192.0.2.2 7000",
            "error: invalid value '0' for '--wait <PORT>': 0 is not a port (expected 1-65535)",
        ),
        (
            "--wait 22 --proxy 22 192.0.2.2 7000",
            "error: the argument '--wait <PORT>' cannot be used with '--proxy <PORT>'",
        ),
        (
            "--wait 22 --wait-timeout 0 192.0.2.2 7000",
            "error: invalid value '0' for '--wait-timeout <SECONDS>': 0 is not more than 0 \
             seconds",
        ),
        (
            "--wait 22 --wait-timeout soon 192.0.2.2 7000",
            "error: invalid value 'soon' for '--wait-timeout <SECONDS>': \"soon\" is not a \
             number of seconds",
        ),
        (
            "--wait 22 --retries 101 192.0.2.2 7000",
            "error: invalid value '101' for '--retries <N>': 101 is not in 0..=100",
        ),
        (
            "--wait-timeout 3 192.0.2.2 7000",
            "knock: --wait-timeout and --retries apply only to a wait: add --wait PORT or \
             --proxy PORT\n",
        ),
        (
            "--wait 22 --no-wait 192.0.2.2 7000",
            "error: the argument '--wait <PORT>' cannot be used with '--no-wait'",
        ),
    ];
    for (line, want) in table {
        let o = knock_in(line, World::default());
        assert_eq!(o.code, 2, "{line}: {}", o.err);
        assert!(o.err.starts_with(want), "{line}:\n{}", o.err);
        assert!(o.events.is_empty(), "{line}");
    }
}

#[test]
fn dry_runs_say_what_would_be_tried_and_try_nothing() {
    let o = knock_in("--dry-run --wait 22 192.0.2.2 7000", World::default());
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    assert!(o.events.is_empty(), "{:?}", o.events);
    assert_eq!(
        o.out,
        "would hit tcp 192.0.2.2:7000\n\
         would wait for tcp 192.0.2.2:22 to accept, up to 10 s, knocking again at 3.33 s and \
         6.67 s while it is closed\n"
    );
    let o = knock_in(
        "--dry-run --proxy 22 --retries 0 --wait-timeout 4 192.0.2.2 7000",
        World::default(),
    );
    assert_eq!(
        o.out,
        "would hit tcp 192.0.2.2:7000\n\
         would wait for tcp 192.0.2.2:22 to accept, up to 4 s\n\
         would relay stdin and stdout over that connection\n"
    );
    let o = knock_in(
        "--dry-run --json --proxy 22 192.0.2.2 7000",
        World::default(),
    );
    assert_eq!(
        o.out,
        "{\"host\":\"192.0.2.2\",\"address\":\"192.0.2.2\",\"delay_ms\":0,\"hits\":[{\"port\":7000,\
         \"proto\":\"tcp\",\"flags\":[\"syn\"],\"raw\":false,\"refused\":null}],\"wait\":{\"port\":22,\
         \"timeout_ms\":10000,\"retries\":2,\"proxy\":true}}\n"
    );
}

/// A scratch profile directory.
struct Profiles(Scratch);

impl Profiles {
    fn new(tag: &str, files: &[(&str, &str)]) -> Profiles {
        let s = Scratch::new(tag);
        for (name, text) in files {
            std::fs::write(s.join(name), text).unwrap();
        }
        Profiles(s)
    }

    fn run(&self, world: World, args: &[&str]) -> Outcome {
        let dir = self.0.arg("");
        let mut line = vec!["profile", "--profiles", dir.as_str()];
        line.extend_from_slice(args);
        world.run(&line)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.0.join(name)).unwrap()
    }
}

#[test]
fn a_profile_with_open_port_waits_unless_told_not_to() {
    let p = Profiles::new(
        "open-port",
        &[(
            "ssh.toml",
            "host = \"192.0.2.2\"\nsequence = \"7000\"\nopen_port = 22\n",
        )],
    );
    let o = p.run(with_door(Door::At(ms(50))), &["ssh"]);
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    assert_eq!(tries(&o.events), [(0, 20), (20, 30), (50, 50)]);
    let o = p.run(World::default(), &["ssh", "--no-wait"]);
    assert_eq!(o.code, 0);
    assert!(tries(&o.events).is_empty());
    // --proxy PORT and --wait PORT name the port themselves.
    let o = p.run(
        World::default(),
        &["ssh", "--wait", "2222", "--wait-timeout", "0.1"],
    );
    assert_eq!(o.code, 1);
    assert!(o.err.contains(": 192.0.2.2:2222 (last try"), "{}", o.err);
    let o = p.run(World::default(), &["ssh", "--dry-run", "--retries", "1"]);
    assert_eq!(
        o.out.lines().last(),
        Some(
            "would wait for tcp 192.0.2.2:22 to accept, up to 10 s, knocking again at 5 s while it is closed"
        )
    );
    // Without open_port, --retries has nothing to act on.
    let p = Profiles::new(
        "no-open-port",
        &[("ssh.toml", "host = \"192.0.2.2\"\nsequence = \"7000\"\n")],
    );
    let o = p.run(World::default(), &["ssh", "--retries", "1"]);
    assert_eq!(o.code, 2);
    assert_eq!(
        o.err,
        "knock: --wait-timeout and --retries apply only to a wait: add --wait PORT or --proxy \
         PORT, or open_port to the profile\n"
    );
}

#[test]
fn save_keeps_open_port() {
    let p = Profiles::new("save-open-port", &[]);
    let o = p.run(
        World::default(),
        &["save", "ssh", "192.0.2.2", "7000", "--open-port", "22"],
    );
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(
        p.read("ssh.toml"),
        "host = \"192.0.2.2\"\nsequence = \"7000\"\nopen_port = 22\n"
    );
    let o = p.run(
        World::default(),
        &["save", "x", "192.0.2.2", "7000", "--open-port", "0"],
    );
    assert_eq!(o.code, 2);
    assert!(
        o.err.contains("0 is not a port (expected 1-65535)"),
        "{}",
        o.err
    );
}

fn one_time(tag: &str) -> Profiles {
    Profiles::new(
        tag,
        &[
            (
                "vpn.toml",
                "host = \"192.0.2.2\"\none_time_sequences = \"vpn.otp\"\nopen_port = 22\n",
            ),
            ("vpn.otp", " 1001,1002\n 2001,2002\n"),
        ],
    )
}

#[test]
fn a_one_time_line_is_sent_again_and_used_once_the_port_accepts() {
    let p = one_time("otp-again");
    let o = p.run(with_door(Door::AfterSends(4)), &["vpn"]);
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    // The same line twice: the server never saw the first, so it still expects it.
    assert_eq!(sent(&o.events), knocks("1001,1002", 2));
    assert_eq!(p.read("vpn.otp"), "#1001,1002\n 2001,2002\n");
}

#[test]
fn a_one_time_line_stays_unused_when_the_port_never_accepts() {
    let p = one_time("otp-closed");
    let o = p.run(World::default(), &["vpn", "--wait-timeout", "0.3"]);
    assert_eq!(o.code, 1);
    assert_eq!(sent(&o.events), knocks("1001,1002", 3));
    let list = p.0.join("vpn.otp");
    assert_eq!(
        o.err,
        format!(
            "knock: note: line 1 of {} stays unused: a server that never got it still expects \
             it, so the next knock sends it again (if the server did take it, mark it used \
             here too: put # at the start of the line)\n\
             knock: door still closed after 3 knocks and 0.3 s: 192.0.2.2:22 (last try: no \
             answer)\n",
            list.display()
        )
    );
    assert_eq!(p.read("vpn.otp"), " 1001,1002\n 2001,2002\n");
    // The next run sends the same line, and with the relay marks it before relaying.
    let o = p.run(
        with_door(Door::At(Duration::ZERO)),
        &["vpn", "--proxy", "22"],
    );
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    assert_eq!(sent(&o.events), knocks("1001,1002", 1));
    assert_eq!(o.events.last(), Some(&Event::Relayed));
    assert_eq!(p.read("vpn.otp"), "#1001,1002\n 2001,2002\n");
}

#[test]
fn an_hmac_profile_sends_the_sequence_of_the_moment_again() {
    let p = Profiles::new(
        "hmac-again",
        &[(
            "ssh.toml",
            "host = \"192.0.2.2\"\nopen_port = 22\n[hmac]\ndoor = \"ssh\"\n\
             secret_env = \"KNOCK_TEST_SECRET\"\n",
        )],
    );
    let world = |door| World {
        vars: vec![(
            "KNOCK_TEST_SECRET".into(),
            "correct horse battery staple".into(),
        )],
        now: 1_700_000_000,
        door,
        ..World::default()
    };
    // Re-knocks at 10 s and 20 s: the first still in the step of 1700000000 (counter
    // 56666666, until ...009), ...010 starts the next. Each knock is what a dry run at
    // its moment lists.
    let o = p.run(
        world(Door::AfterSends(8)),
        &["ssh", "--wait-timeout", "30", "-v"],
    );
    assert_eq!(o.code, 0, "{}", o.err);
    let listed = |at: &str| -> Vec<Hit> {
        let o = p.run(
            world(Door::Dropping),
            &["ssh", "--dry-run", "--json", "--at", at],
        );
        let doc: crate::json::DryRun = serde_json::from_str(&o.out).unwrap();
        doc.hits
            .iter()
            .map(|h| Hit::parse(&format!("{}:{}", h.port, h.proto), Proto::Tcp).unwrap())
            .collect()
    };
    let first = listed("1700000000");
    let second = listed("1700000010");
    assert_ne!(first, second);
    let want: Vec<_> = first
        .iter()
        .chain(&second)
        .map(|h| (*h, ip("192.0.2.2")))
        .collect();
    assert_eq!(sent(&o.events), want);
    assert!(
        o.out
            .contains("still closed after 10 s: knocking again (2 of 3)"),
        "{}",
        o.out
    );
    // The counter recorded as sent is the highest one: the next knock in that step waits.
    assert_eq!(p.read("ssh.hmac-used"), "56666667\n");
}

#[test]
fn an_hmac_knock_the_door_never_took_is_not_recorded() {
    let p = Profiles::new(
        "hmac-closed",
        &[(
            "ssh.toml",
            "host = \"192.0.2.2\"\nopen_port = 22\n[hmac]\ndoor = \"ssh\"\n\
             secret_env = \"KNOCK_TEST_SECRET\"\n",
        )],
    );
    let world = || World {
        vars: vec![(
            "KNOCK_TEST_SECRET".into(),
            "correct horse battery staple".into(),
        )],
        now: 1_700_000_000,
        ..World::default()
    };
    let o = p.run(world(), &["ssh", "--wait-timeout", "1"]);
    assert_eq!(o.code, 1, "{}", o.err);
    assert!(!p.0.join("ssh.hmac-used").exists(), "nothing recorded");
    // So the next knock in the same step goes at once, with the same sequence.
    let again = p.run(world(), &["ssh", "--wait-timeout", "1", "--retries", "0"]);
    assert_eq!(again.code, 1);
    assert_eq!(sent(&again.events), sent(&o.events)[..4]);
    assert!(!again.err.contains("waiting"), "{}", again.err);
}

#[test]
fn ctrl_c_ends_the_wait_and_the_relay() {
    // Pressed during the first pause of a wait: the knock went out whole.
    let world = World {
        interrupt_at: Some(1),
        door: Door::Refusing,
        ..World::default()
    };
    let o = world.run(&["--wait", "22", "192.0.2.2", "7000,8000"]);
    assert_eq!(
        (o.code, o.err.as_str()),
        (130, "knock: interrupted after hit 2 of 2\n")
    );
    assert_eq!(tries(&o.events), [(0, 20)], "no try after the Ctrl-C");
}

#[test]
fn an_interactive_wait_leaves_one_line_with_the_door() {
    let world = World {
        stderr_terminal: true,
        door: Door::At(ms(20)),
        ..World::default()
    };
    let o = world.run(&["--wait", "22", "192.0.2.2", "7000"]);
    assert_eq!(
        (o.code, o.err.as_str()),
        (
            0,
            "knocked 192.0.2.2: 1 hit; door open after 1 knock and 0.02 s: 192.0.2.2:22\n"
        )
    );
    // --proxy draws no bar and leaves no line: ssh shares that terminal.
    let world = World {
        stderr_terminal: true,
        door: Door::At(Duration::ZERO),
        ..World::default()
    };
    let o = world.run(&["--proxy", "22", "192.0.2.2", "7000"]);
    assert_eq!((o.code, o.err.as_str(), o.out.as_str()), (0, "", ""));
}
