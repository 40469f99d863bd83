//! Whole runs of `knock profile ...` against a scratch profile directory: each kind of
//! profile knocked and dry-run, precedence of the command line, one-time consumption, HMAC
//! secrets, and the management subcommands.

use std::time::Duration;

use knock_core::hit::{Hit, Proto, format_sequence, parse_sequence};
use knock_core::send::{Privilege, SendOptions};

use super::{Outcome, Scratch, World, ip, sent};
use crate::execute::testing::{Event, Recorder};

/// The knock-hmac-v1 test vectors' secret (docs/knock-hmac-v1.md).
const K: &str = "correct horse battery staple";

/// A profile directory with some profiles in it.
struct Dir(Scratch);

impl Dir {
    fn new(tag: &str) -> Dir {
        Dir(Scratch::new(tag))
    }

    fn write(&self, name: &str, text: &str) -> &Dir {
        std::fs::write(self.0.join(name), text).unwrap();
        self
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.0.join(name)).unwrap()
    }

    fn arg(&self) -> String {
        self.0.path().display().to_string()
    }

    /// `knock profile --profiles DIR ARGS...` in `world`.
    fn run_in(&self, world: World, args: &[&str]) -> Outcome {
        let dir = self.arg();
        let mut line = vec!["profile", "--profiles", dir.as_str()];
        line.extend_from_slice(args);
        world.run(&line)
    }

    fn run(&self, args: &[&str]) -> Outcome {
        self.run_in(World::default(), args)
    }
}

fn seq(text: &str) -> Vec<Hit> {
    parse_sequence(text, Proto::Tcp).unwrap()
}

fn to(hits: &[Hit], addr: &str) -> Vec<(Hit, knock_core::send::Dest)> {
    hits.iter().map(|h| (*h, ip(addr))).collect()
}

#[test]
fn a_sequence_profile_knocks_like_the_command_line() {
    let d = Dir::new("seq");
    d.write(
        "ssh.toml",
        "host = \"192.0.2.2\"\nsequence = \"7000,8000:udp,9000\"\ndelay_ms = 100\n",
    );
    let o = d.run(&["ssh"]);
    assert_eq!((o.code, o.err.as_str(), o.out.as_str()), (0, "", ""));
    let a = ip("192.0.2.2");
    let wait = Event::Slept(Duration::from_millis(100));
    assert_eq!(
        o.events,
        [
            Event::Sent(Hit::tcp(7000), a),
            wait.clone(),
            Event::Sent(Hit::udp(8000), a),
            wait,
            Event::Sent(Hit::tcp(9000), a),
        ]
    );
    // The same run as `knock -d 100 192.0.2.2 7000,8000:udp,9000`.
    let plain = super::knock("-d 100 192.0.2.2 7000,8000:udp,9000");
    assert_eq!(plain.events, o.events);

    let o = d.run(&["ssh", "-v"]);
    assert_eq!(
        o.out,
        "hitting tcp 192.0.2.2:7000\nhitting udp 192.0.2.2:8000\nhitting tcp 192.0.2.2:9000\n"
    );
}

#[test]
fn dry_runs_of_a_sequence_profile() {
    let d = Dir::new("seq-dry");
    d.write(
        "ssh.toml",
        "host = \"192.0.2.2\"\nsequence = \"7000,8000:udp,tcp:110:up\"\ndelay_ms = 50\n",
    );
    let o = d.run(&["ssh", "--dry-run"]);
    assert_eq!(o.code, 0, "{}", o.err);
    assert!(o.events.is_empty());
    assert_eq!(
        o.out,
        "would hit tcp 192.0.2.2:7000\n\
         wait 50 ms\n\
         would hit udp 192.0.2.2:8000\n\
         wait 50 ms\n\
         would hit tcp 192.0.2.2:110 [psh,urg]\n"
    );
    let o = d.run(&["ssh", "--dry-run", "--json"]);
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(
        o.out,
        "{\"host\":\"192.0.2.2\",\"address\":\"192.0.2.2\",\"delay_ms\":50,\"hits\":[\
         {\"port\":7000,\"proto\":\"tcp\",\"flags\":[\"syn\"],\"raw\":false,\"refused\":null},\
         {\"port\":8000,\"proto\":\"udp\",\"flags\":[],\"raw\":false,\"refused\":null},\
         {\"port\":110,\"proto\":\"tcp\",\"flags\":[\"psh\",\"urg\"],\"raw\":true,\
         \"refused\":\"exact TCP flags need a raw socket, which needs root or CAP_NET_RAW\"}]}\n"
    );
}

#[test]
fn a_dry_run_of_a_profile_notes_the_hits_a_real_run_would_refuse() {
    let d = Dir::new("seq-dry-refused");
    d.write(
        "flags.toml",
        "host = \"192.0.2.2\"\nsequence = \"tcp:110:x,7000\"\n",
    );
    let o = d.run(&["flags", "--dry-run"]);
    assert_eq!(o.code, 0);
    assert!(o.events.is_empty());
    assert_eq!(
        o.out,
        "would hit tcp 192.0.2.2:110 [fin,syn,rst,psh,ack,urg]\nwould hit tcp 192.0.2.2:7000\n"
    );
    assert_eq!(
        o.err,
        "knock: note: a real run would refuse hit 1 of 2 (110:tcp:fin+syn+rst+psh+ack+urg): \
         exact TCP flags need a raw socket, which needs root or CAP_NET_RAW\n"
    );
}

#[test]
fn the_command_line_wins_over_the_profile() {
    let d = Dir::new("precedence");
    d.write(
        "p.toml",
        "host = \"2001:db8::2\"\nsequence = \"7000,8000:tcp\"\ndelay_ms = 100\nfamily = \"ipv6\"\n",
    );
    // The profile alone.
    let o = d.run(&["p"]);
    assert_eq!(o.code, 0, "{}", o.err);
    let v6 = ip("2001:db8::2");
    assert_eq!(
        o.events,
        [
            Event::Sent(Hit::tcp(7000), v6),
            Event::Slept(Duration::from_millis(100)),
            Event::Sent(Hit::tcp(8000), v6),
        ]
    );
    // Every value from the command line: host, family, delay and udp for bare ports.
    let o = d.run(&["p", "--host", "192.0.2.2", "-4", "-d", "7", "-u"]);
    assert_eq!(o.code, 0, "{}", o.err);
    let v4 = ip("192.0.2.2");
    assert_eq!(
        o.events,
        [
            Event::Sent(Hit::udp(7000), v4),
            Event::Slept(Duration::from_millis(7)),
            Event::Sent(Hit::tcp(8000), v4),
        ]
    );
    // One value from the command line, the rest from the profile: -4 against the
    // profile's IPv6 host fails to resolve, proving the profile's host was kept.
    let o = d.run(&["p", "-d", "0"]);
    assert_eq!(sent(&o.events), to(&seq("7000,8000"), "2001:db8::2"));
    assert!(!o.events.iter().any(|e| matches!(e, Event::Slept(_))));
    let o = d.run(&["p", "-4"]);
    assert_eq!(
        (o.code, o.err.as_str()),
        (1, "knock: resolve 2001:db8::2: no IPv4 address\n")
    );
    // --raw sends plain TCP hits raw, as SYNs: refused before sending without the
    // privilege, sent raw with it.
    let o = d.run(&["p", "--raw", "--dry-run"]);
    assert_eq!(
        o.out,
        "would hit tcp [2001:db8::2]:7000\nwait 100 ms\nwould hit tcp [2001:db8::2]:8000\n"
    );
    let o = d.run(&["p", "--raw"]);
    assert_eq!(o.code, 2);
    assert!(o.events.is_empty());
    assert!(
        o.err.starts_with(
            "knock: hit 1 of 2 (7000:tcp): sending a TCP hit raw needs a raw socket, which \
             needs root or CAP_NET_RAW\n"
        ),
        "{}",
        o.err
    );
    assert!(o.err.ends_with(", or drop --raw\n"), "{}", o.err);
    let root = World {
        privilege: Privilege::Raw,
        ..World::default()
    };
    let o = d.run_in(root, &["p", "--raw", "-d", "0"]);
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    let v6 = ip("2001:db8::2");
    assert_eq!(
        o.events,
        [
            Event::SentRaw(Hit::tcp(7000), v6),
            Event::SentRaw(Hit::tcp(8000), v6)
        ]
    );
    assert_eq!(o.options.map(|s| s.raw_tcp), Some(true));
}

#[test]
fn source_port_reaches_the_sender_with_the_profiles_raw() {
    let d = Dir::new("source-port");
    d.write(
        "p.toml",
        "host = \"192.0.2.2\"\nsequence = \"7000,8000:udp\"\nraw = true\n",
    );
    let root = World {
        privilege: Privilege::Raw,
        ..World::default()
    };
    let o = d.run_in(root, &["p", "--source-port", "40000"]);
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    let want = SendOptions {
        raw_tcp: true,
        source_port: Some(40000),
    };
    assert_eq!(o.options, Some(want));
    let a = ip("192.0.2.2");
    assert_eq!(
        o.events,
        [
            Event::SentRaw(Hit::tcp(7000), a),
            Event::Sent(Hit::udp(8000), a)
        ]
    );
    // Without the option the sender picks its own ports.
    let o = d.run_in(
        World {
            privilege: Privilege::Raw,
            ..World::default()
        },
        &["p"],
    );
    assert_eq!(o.options.and_then(|s| s.source_port), None);
}

#[test]
fn a_profile_without_a_host_needs_one_on_the_command_line() {
    let d = Dir::new("nohost");
    d.write("h.toml", "sequence = \"7000\"\n");
    let o = d.run(&["h"]);
    assert_eq!(
        (o.code, o.err.as_str()),
        (
            2,
            "knock: profile \"h\": the profile has no host: give one with --host HOST, or add host = \"...\" to the profile\n"
        )
    );
    let o = d.run(&["h", "--host", "192.0.2.7"]);
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(sent(&o.events), to(&[Hit::tcp(7000)], "192.0.2.7"));
}

/// A profile directory with a one-time list of three lines after a comment.
fn one_time_dir(tag: &str) -> Dir {
    let d = Dir::new(tag);
    d.write(
        "vpn.toml",
        "host = \"192.0.2.2\"\none_time_sequences = \"vpn.otp\"\n",
    )
    .write(
        "vpn.otp",
        "# list\n 1001,1002:udp\n\n 2001,2002\n 3001:udp\n",
    );
    d
}

#[test]
fn one_time_lines_are_used_in_order_and_marked() {
    let d = one_time_dir("otp-order");
    let o = d.run(&["vpn"]);
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    assert_eq!(sent(&o.events), to(&seq("1001,1002:udp"), "192.0.2.2"));
    assert_eq!(
        d.read("vpn.otp"),
        "# list\n#1001,1002:udp\n\n 2001,2002\n 3001:udp\n"
    );
    let o = d.run(&["vpn"]);
    assert_eq!(sent(&o.events), to(&seq("2001,2002"), "192.0.2.2"));
    // The last line: knocked, marked, and a warning that the list is used up.
    let o = d.run(&["vpn"]);
    assert_eq!(o.code, 0);
    assert_eq!(sent(&o.events), to(&seq("3001:udp"), "192.0.2.2"));
    let path = d.0.join("vpn.otp");
    assert_eq!(
        o.err,
        format!(
            "knock: warning: that was the last unused line of {}; generate a new list with \
             `knock otp generate` and give the server a copy\n",
            path.display()
        )
    );
    assert_eq!(
        d.read("vpn.otp"),
        "# list\n#1001,1002:udp\n\n#2001,2002\n#3001:udp\n"
    );
    let o = d.run(&["vpn"]);
    assert_eq!(o.code, 2);
    assert!(o.events.is_empty());
    assert_eq!(
        o.err,
        format!(
            "knock: one-time list {} is used up (every sequence is marked with '#'); \
             generate a new list with `knock otp generate` and give the server the same list\n",
            path.display()
        )
    );
}

#[test]
fn list_and_show_say_how_many_one_time_lines_are_left() {
    let d = one_time_dir("otp-left");
    let left = |d: &Dir| {
        let list = d.run(&["list"]).out;
        let show = d.run(&["show", "vpn"]).out;
        let line = show
            .lines()
            .find(|l| l.starts_with("lines left"))
            .unwrap_or_else(|| panic!("{show}"))
            .to_string();
        (list, line)
    };
    let (list, line) = left(&d);
    assert_eq!(
        list,
        "NAME  HOST       KIND              DESCRIPTION\nvpn   192.0.2.2  one-time, 3 left\n"
    );
    assert_eq!(line, "lines left          3");
    assert_eq!(d.run(&["vpn"]).code, 0);
    assert!(left(&d).0.contains("one-time, 2 left"));
    assert_eq!(left(&d).1, "lines left          2");
    // A dry run uses nothing.
    assert_eq!(d.run(&["vpn", "--dry-run"]).code, 0);
    assert!(left(&d).0.contains("one-time, 2 left"));
    d.write("vpn.otp", "#1001\n");
    let (list, line) = left(&d);
    assert!(list.contains("one-time, used up"), "{list}");
    assert_eq!(
        line,
        "lines left          0: the list is used up; make a new one with `knock otp \
         generate` and give the server a copy"
    );
    std::fs::remove_file(d.0.join("vpn.otp")).unwrap();
    let (list, line) = left(&d);
    assert!(list.contains("one-time, list unreadable"), "{list}");
    assert!(
        line.starts_with("lines left          unknown: open one-time list "),
        "{line}"
    );
}

#[test]
fn a_failed_send_uses_no_line() {
    let d = one_time_dir("otp-fail");
    let before = d.read("vpn.otp");
    let o = d.run_in(
        World {
            sender: Recorder::failing_at(1),
            ..World::default()
        },
        &["vpn"],
    );
    assert_eq!(o.code, 1);
    assert_eq!(
        o.err,
        "knock: hit 2 of 2 (1002:udp): sendto 192.0.2.2:1002: permission denied\n"
    );
    assert_eq!(d.read("vpn.otp"), before, "the line stays unused");
    // The next run sends the same line again.
    let o = d.run(&["vpn"]);
    assert_eq!(sent(&o.events), to(&seq("1001,1002:udp"), "192.0.2.2"));
}

#[test]
fn a_refused_line_is_not_used() {
    let d = Dir::new("otp-refused");
    d.write(
        "vpn.toml",
        "host = \"192.0.2.2\"\none_time_sequences = \"vpn.otp\"\n",
    )
    .write("vpn.otp", " 1001:tcp:fin\n 2001\n");
    let o = d.run(&["vpn"]);
    assert_eq!(o.code, 2);
    assert!(o.events.is_empty());
    assert_eq!(
        o.err,
        "knock: hit 1 of 1 (1001:tcp:fin): exact TCP flags need a raw socket, which needs \
         root or CAP_NET_RAW\n\
         knock: nothing was sent; to send these hits, run knock as root, give it \
         CAP_NET_RAW once with `sudo setcap cap_net_raw+ep $(command -v knock)`, or drop \
         the flags\n"
    );
    assert_eq!(d.read("vpn.otp"), " 1001:tcp:fin\n 2001\n");
    // With the privilege the same line is the one sent, and only then marked.
    let root = World {
        privilege: Privilege::Raw,
        ..World::default()
    };
    let o = d.run_in(root, &["vpn"]);
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    assert_eq!(sent(&o.events), to(&seq("1001:tcp:fin"), "192.0.2.2"));
    assert_eq!(d.read("vpn.otp"), "#1001:tcp:fin\n 2001\n");
}

#[test]
fn dry_runs_of_a_one_time_profile_use_nothing() {
    let d = one_time_dir("otp-dry");
    let before = d.read("vpn.otp");
    let o = d.run(&["vpn", "--dry-run"]);
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(
        o.out,
        format!(
            "next unused line: {}:2\n\
             would hit tcp 192.0.2.2:1001\n\
             would hit udp 192.0.2.2:1002\n",
            d.0.join("vpn.otp").display()
        )
    );
    let o = d.run(&["vpn", "--dry-run", "--json"]);
    assert_eq!(
        o.out,
        "{\"host\":\"192.0.2.2\",\"address\":\"192.0.2.2\",\"delay_ms\":0,\"hits\":[\
         {\"port\":1001,\"proto\":\"tcp\",\"flags\":[\"syn\"],\"raw\":false,\"refused\":null},\
         {\"port\":1002,\"proto\":\"udp\",\"flags\":[],\"raw\":false,\"refused\":null}]}\n"
    );
    assert!(o.events.is_empty());
    assert_eq!(d.read("vpn.otp"), before);
}

#[test]
fn options_that_do_not_fit_the_kind_are_refused() {
    let d = one_time_dir("kind-options");
    d.write("ssh.toml", "host = \"192.0.2.2\"\nsequence = \"1\"\n");
    let o = d.run(&["vpn", "-u"]);
    assert_eq!(
        (o.code, o.err.as_str()),
        (
            2,
            "knock: -u applies only to sequence profiles; \"vpn\" is a one-time profile, \
             whose hits carry their own protocols\n"
        )
    );
    let o = d.run(&["ssh", "--dry-run", "--at", "5"]);
    assert_eq!(
        (o.code, o.err.as_str()),
        (
            2,
            "knock: --at applies only to hmac profiles; \"ssh\" is a sequence profile\n"
        )
    );
}

/// An HMAC profile `ssh` on 192.0.2.2 with the default parameters, reading its secret
/// from the variable KNOCK_TEST_SECRET.
fn hmac_dir(tag: &str) -> Dir {
    let d = Dir::new(tag);
    d.write(
        "ssh.toml",
        "host = \"192.0.2.2\"\n[hmac]\ndoor = \"ssh\"\nsecret_env = \"KNOCK_TEST_SECRET\"\n",
    );
    d
}

fn with_secret() -> World {
    World {
        vars: vec![("KNOCK_TEST_SECRET".into(), K.into())],
        ..World::default()
    }
}

#[test]
fn hmac_dry_run_at_a_moment_matches_the_knock_hmac_v1_vectors() {
    let d = hmac_dir("hmac-vectors");
    d.write(
        "six.toml",
        "host = \"192.0.2.2\"\n[hmac]\ndoor = \"ssh\"\nsecret_env = \"KNOCK_TEST_SECRET\"\n\
         length = 6\nports = \"7000-7009\"\nprotocols = \"mixed\"\n",
    )
    .write(
        "web.toml",
        "host = \"192.0.2.2\"\n[hmac]\ndoor = \"web door ✓\"\nsecret_env = \"KNOCK_TEST_SECRET\"\n\
         length = 3\nprotocols = \"udp\"\nstep = 60\n",
    )
    .write(
        "flags.toml",
        "host = \"192.0.2.2\"\n[hmac]\ndoor = \"flags\"\nsecret_env = \"KNOCK_TEST_SECRET\"\n\
         protocols = \"mixed\"\nflags = \"fin+psh\"\n",
    );
    // (profile, --at, the vector's sequence)
    let table = [
        (
            "ssh",
            "1700000000",
            "58063:tcp,26352:tcp,27769:tcp,27170:tcp",
        ),
        (
            "six",
            "0",
            "7004:tcp,7009:udp,7007:tcp,7003:tcp,7006:udp,7001:udp",
        ),
        ("web", "1800000000", "22056:udp,63631:udp,54293:udp"),
        // Counter 123456 at the default step of 30 s.
        (
            "flags",
            "3703680",
            "38509:tcp:fin+psh,52309:udp,21747:udp,14401:tcp:fin+psh",
        ),
    ];
    for (name, at, want) in table {
        let o = d.run_in(with_secret(), &[name, "--dry-run", "--json", "--at", at]);
        assert_eq!(o.code, 0, "{name}: {}", o.err);
        let doc: crate::json::DryRun = serde_json::from_str(o.out.trim_end()).unwrap();
        let hits: Vec<String> = doc
            .hits
            .iter()
            .map(|h| match (h.proto.as_str(), h.flags.as_slice()) {
                ("tcp", [syn]) if syn == "syn" => format!("{}:tcp", h.port),
                ("tcp", flags) => format!("{}:tcp:{}", h.port, flags.join("+")),
                (proto, _) => format!("{}:{proto}", h.port),
            })
            .collect();
        assert_eq!(hits.join(","), want, "{name} at {at}");
        assert!(o.events.is_empty());
    }
    // The text form says which counter and which moments it covers.
    let o = d.run_in(with_secret(), &["ssh", "--dry-run", "--at", "1700000000"]);
    assert_eq!(
        o.out,
        "door \"ssh\", counter 56666666: 2023-11-14 22:13:00 to 22:13:29 UTC, 10 s left\n\
         would hit tcp 192.0.2.2:58063\n\
         would hit tcp 192.0.2.2:26352\n\
         would hit tcp 192.0.2.2:27769\n\
         would hit tcp 192.0.2.2:27170\n"
    );
    let o = d.run_in(with_secret(), &["web", "--dry-run", "--at", "1800000000"]);
    assert!(
        o.out.starts_with(
            "door \"web door ✓\", counter 30000000: 2027-01-15 08:00:00 to 08:00:59 UTC, 60 s \
             left\n"
        ),
        "{}",
        o.out
    );
}

#[test]
fn a_second_hmac_knock_in_the_same_step_waits_for_the_next() {
    let d = hmac_dir("hmac-repeat");
    let at = |now: u64| World {
        now,
        ..with_secret()
    };
    let first = d.run_in(at(1_700_000_000), &["ssh"]);
    assert_eq!((first.code, first.err.as_str()), (0, ""));
    assert_eq!(d.read("ssh.hmac-used"), "56666666\n");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(d.0.join("ssh.hmac-used")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    // The dry run of now says what a real run would do, on stderr; stdout is the listing.
    let dry = d.run_in(at(1_700_000_003), &["ssh", "--dry-run"]);
    assert_eq!(dry.code, 0);
    assert_eq!(
        dry.err,
        "knock: note: the sequence of counter 56666666 was sent already; a real run would \
         wait 7 s for counter 56666667\n"
    );
    assert!(
        dry.out.starts_with("door \"ssh\", counter 56666666: "),
        "{}",
        dry.out
    );
    // Three seconds later, in the same step: it waits seven, a second at a time, then
    // sends the next step's sequence, and says so.
    let second = d.run_in(at(1_700_000_003), &["ssh"]);
    assert_eq!(second.code, 0, "{}", second.err);
    assert_eq!(
        second.err,
        "knock: note: the sequence of counter 56666666 was sent already, and the door takes \
         each sequence once: waiting 7 s for counter 56666667 (from 2023-11-14 22:13:30 UTC; \
         Ctrl-C to stop)\n"
    );
    let waits: Vec<&Event> = second
        .events
        .iter()
        .filter(|e| matches!(e, Event::Slept(_)))
        .collect();
    assert_eq!(waits, [&Event::Slept(Duration::from_secs(1)); 7]);
    let next = d.run_in(at(1_700_000_010), &["ssh", "--dry-run"]);
    let want: Vec<u16> = next
        .out
        .lines()
        .skip(1)
        .map(|l| l.rsplit(':').next().unwrap().parse::<u16>().unwrap())
        .collect();
    let got: Vec<u16> = sent(&second.events).iter().map(|(h, _)| h.port).collect();
    assert_eq!(got, want);
    assert_eq!(d.read("ssh.hmac-used"), "56666667\n");
    // -q waits without a word.
    let quiet = d.run_in(at(1_700_000_011), &["ssh", "-q"]);
    assert_eq!((quiet.code, quiet.err.as_str()), (0, ""));
    assert_eq!(d.read("ssh.hmac-used"), "56666668\n");

    // Ctrl-C during the wait: nothing is sent, nothing recorded.
    let world = World {
        interrupt_at: Some(2),
        ..at(1_700_000_045)
    };
    let o = d.run_in(world, &["ssh"]);
    assert_eq!(o.code, 130);
    assert!(
        o.err
            .ends_with("knock: interrupted before hit 1 of 4; nothing was sent\n"),
        "{}",
        o.err
    );
    assert!(sent(&o.events).is_empty());
    assert_eq!(d.read("ssh.hmac-used"), "56666668\n");

    // A record far ahead of the clock (the clock went back): refused, and said why.
    d.write("ssh.hmac-used", "56666700\n");
    let o = d.run_in(at(1_700_000_100), &["ssh"]);
    assert_eq!(o.code, 1);
    assert_eq!(
        o.err,
        format!(
            "knock: the last sequence sent for door \"ssh\" used counter 56666700, ahead of \
             this clock's counter 56666670: check the clock, or remove {} if it came from \
             another machine\n",
            d.0.join("ssh.hmac-used").display()
        )
    );
    // A record that makes no sense is reported, and the knock goes ahead.
    d.write("ssh.hmac-used", "garbage\n");
    let o = d.run_in(at(1_700_000_100), &["ssh"]);
    assert_eq!(o.code, 0);
    assert!(o.err.starts_with("knock: warning: "), "{}", o.err);
    assert_eq!(d.read("ssh.hmac-used"), "56666670\n");
    // Removing the profile removes its record.
    assert_eq!(d.run(&["remove", "ssh"]).code, 0);
    assert!(!d.0.join("ssh.hmac-used").exists());
}

#[test]
fn hmac_knocks_send_the_sequence_of_now() {
    let d = hmac_dir("hmac-now");
    let world = World {
        now: 1_700_000_000,
        ..with_secret()
    };
    let o = d.run_in(world, &["ssh"]);
    assert_eq!((o.code, o.err.as_str(), o.out.as_str()), (0, "", ""));
    assert_eq!(
        sent(&o.events),
        to(&seq("58063,26352,27769,27170"), "192.0.2.2")
    );
    // Without --at a dry run shows now: exactly what --at now shows. The last second of
    // the step still lists the sequence just sent; the next second starts a new one.
    let listing = |now: u64| {
        let o = d.run_in(
            World {
                now,
                ..with_secret()
            },
            &["ssh", "--dry-run"],
        );
        let at = d.run_in(
            with_secret(),
            &["ssh", "--dry-run", "--at", &now.to_string()],
        );
        assert_eq!((o.code, at.code), (0, 0), "{} {}", o.err, at.err);
        assert_eq!(o.out, at.out, "now {now}");
        o.out
    };
    let last = listing(1_700_000_009);
    assert!(
        last.starts_with("door \"ssh\", counter 56666666: "),
        "{last}"
    );
    let sent_lines: Vec<String> = seq("58063,26352,27769,27170")
        .iter()
        .map(|h| format!("would hit tcp 192.0.2.2:{}", h.port))
        .collect();
    assert_eq!(last.lines().skip(1).collect::<Vec<_>>(), sent_lines);
    let next = listing(1_700_000_010);
    assert!(
        next.starts_with("door \"ssh\", counter 56666667: "),
        "{next}"
    );
    assert_eq!(next.lines().count(), 5, "{next}");
    assert_ne!(next.lines().skip(1).collect::<Vec<_>>(), sent_lines);
}

#[test]
fn hmac_secrets_from_a_file_or_the_terminal_and_never_shown() {
    let d = Dir::new("hmac-sources");
    d.write(
        "file.toml",
        "host = \"192.0.2.2\"\n[hmac]\ndoor = \"ssh\"\nsecret_file = \"ssh.secret\"\n",
    )
    .write("ask.toml", "host = \"192.0.2.2\"\n[hmac]\ndoor = \"ssh\"\n")
    .write("ssh.secret", &format!("{K}\n"));
    // Only unix has mode bits to check; elsewhere the file is private by its ACL.
    #[cfg(unix)]
    set_mode(&d.0.join("ssh.secret"), 0o600);
    let want = "58063:tcp,26352:tcp,27769:tcp,27170:tcp";
    let derived = |o: &Outcome| {
        let hits: Vec<Hit> = o
            .out
            .lines()
            .filter_map(|l| l.strip_prefix("would hit tcp 192.0.2.2:"))
            .map(|p| Hit::tcp(p.parse().unwrap()))
            .collect();
        format_sequence(&hits)
    };
    let o = d.run(&["file", "--dry-run", "--at", "1700000000"]);
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(derived(&o), want);
    assert!(!o.out.contains(K) && !o.err.contains(K));

    // Asked on the terminal, without echo, when the profile names no source.
    let world = World {
        terminal: Some(K.into()),
        ..World::default()
    };
    let o = d.run_in(world, &["ask", "--dry-run", "--at", "1700000000"]);
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(o.asked, ["Secret for door ssh: "]);
    assert_eq!(derived(&o), want);
    // Not a terminal: a clear error, exit 2, nothing sent.
    let o = d.run(&["ask"]);
    assert_eq!(
        (o.code, o.err.as_str()),
        (
            2,
            "knock: no secret: the profile has neither secret_file nor secret_env, and \
             stdin is not a terminal to ask on\n"
        )
    );
    assert!(o.events.is_empty() && o.asked.is_empty());

    // The variable is not set.
    let d2 = hmac_dir("hmac-unset");
    let o = d2.run(&["ssh"]);
    assert_eq!(
        (o.code, o.err.as_str()),
        (
            2,
            "knock: environment variable KNOCK_TEST_SECRET (secret_env) is not set\n"
        )
    );
}

#[cfg(unix)]
fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
#[test]
fn a_secret_file_others_can_read_is_refused_with_exit_2() {
    let d = Dir::new("hmac-mode");
    d.write(
        "ssh.toml",
        "host = \"192.0.2.2\"\n[hmac]\ndoor = \"ssh\"\nsecret_file = \"ssh.secret\"\n",
    )
    .write("ssh.secret", &format!("{K}\n"));
    let secret = d.0.join("ssh.secret");
    set_mode(&secret, 0o644);
    for args in [&["ssh"][..], &["ssh", "--dry-run", "--at", "0"]] {
        let o = d.run(args);
        assert_eq!(o.code, 2, "{args:?}");
        assert_eq!(
            o.err,
            format!(
                "knock: secret file {p} is readable by group/others (mode 0644); run: chmod 600 {p}\n",
                p = secret.display()
            )
        );
        assert!(o.events.is_empty() && o.out.is_empty());
        assert!(!o.err.contains(K));
    }
    set_mode(&secret, 0o600);
    assert_eq!(d.run(&["ssh"]).code, 0);
}

#[test]
fn show_describes_a_profile_without_its_secret() {
    let d = hmac_dir("show");
    let world = with_secret();
    let o = d.run_in(world, &["show", "ssh"]);
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(
        o.out,
        format!(
            "name             ssh\n\
             file             {}\n\
             kind             hmac\n\
             host             192.0.2.2\n\
             hmac.door        ssh\n\
             hmac.secret_env  KNOCK_TEST_SECRET\n\
             hmac.length      4\n\
             hmac.ports       1024-65535\n\
             hmac.protocols   tcp\n\
             hmac.step        30\n\
             hmac.flags       plain SYN\n",
            d.0.join("ssh.toml").display()
        )
    );
    assert!(!o.out.contains(K));
}

#[test]
fn save_list_show_remove() {
    let d = Dir::new("manage");
    let o = d.run(&["list"]);
    assert_eq!(o.code, 0);
    assert_eq!(o.out, "");
    assert_eq!(
        o.err,
        format!(
            "knock: no profiles in {} (save one with `knock profile save`)\n",
            d.arg()
        )
    );

    let o = d.run(&[
        "save",
        "ssh-home",
        "home.example.net",
        "7000,8000:udp",
        "9000",
        "-d",
        "100",
        "--description",
        "SSH at home",
    ]);
    let path = d.0.join("ssh-home.toml");
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(
        o.out,
        format!("saved profile ssh-home: {}\n", path.display())
    );
    assert_eq!(
        d.read("ssh-home.toml"),
        "description = \"SSH at home\"\nhost = \"home.example.net\"\n\
         sequence = \"7000,8000:udp,9000\"\ndelay_ms = 100\n"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let o = d.run(&["save", "raw", "192.0.2.2", "1", "-u", "-6", "--raw"]);
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(
        d.read("raw.toml"),
        "host = \"192.0.2.2\"\nsequence = \"1\"\nudp = true\nfamily = \"ipv6\"\nraw = true\n"
    );

    // Service names are saved as their numbers; a bare one stays bare, so `udp` decides.
    let o = d.run(&[
        "save",
        "named",
        "192.0.2.2",
        "ssh,http:udp",
        "www:tcp:fin",
        "-u",
    ]);
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(
        d.read("named.toml"),
        "host = \"192.0.2.2\"\nsequence = \"22,80:udp,80:tcp:fin\"\nudp = true\n"
    );
    std::fs::remove_file(d.0.join("named.toml")).unwrap();

    // No overwrite without --force.
    let o = d.run(&["save", "ssh-home", "192.0.2.9", "1"]);
    assert_eq!(
        (o.code, o.err.clone()),
        (
            2,
            format!(
                "knock: profile \"ssh-home\" already exists ({}); use --force to replace it\n",
                path.display()
            )
        )
    );
    assert!(d.read("ssh-home.toml").contains("home.example.net"));

    let o = d.run(&["list"]);
    assert_eq!(
        o.out,
        "NAME      HOST              KIND      DESCRIPTION\n\
         raw       192.0.2.2         sequence\n\
         ssh-home  home.example.net  sequence  SSH at home\n"
    );
    let o = d.run(&["show", "ssh-home"]);
    assert_eq!(
        o.out,
        format!(
            "name         ssh-home\n\
             file         {}\n\
             kind         sequence\n\
             description  SSH at home\n\
             host         home.example.net\n\
             delay_ms     100\n\
             sequence     7000,8000:udp,9000\n",
            path.display()
        )
    );
    let o = d.run(&["save", "ssh-home", "192.0.2.9", "1", "--force"]);
    assert_eq!(o.code, 0, "{}", o.err);
    assert!(d.read("ssh-home.toml").contains("192.0.2.9"));

    let o = d.run(&["remove", "ssh-home"]);
    assert_eq!(
        (o.code, o.out.clone()),
        (0, format!("removed profile ssh-home: {}\n", path.display()))
    );
    assert!(!path.exists());
    let o = d.run(&["remove", "ssh-home"]);
    assert_eq!(
        (o.code, o.err.clone()),
        (
            2,
            format!(
                "knock: no profile named \"ssh-home\" (looked for {}); `knock profile list` \
                 shows the profiles there are\n",
                path.display()
            )
        )
    );
}

#[test]
fn errors_of_the_management_subcommands() {
    let d = Dir::new("manage-errors");
    d.write(
        "bad.toml",
        "host = \"192.0.2.2\"\n\nsequence = \"7000,abc\"\n",
    );
    let bad = d.0.join("bad.toml");
    let table: &[(&[&str], String)] = &[
        (
            &["show", "nope"],
            format!(
                "knock: no profile named \"nope\" (looked for {}); `knock profile list` shows \
                 the profiles there are\n",
                d.0.join("nope.toml").display()
            ),
        ),
        (
            &["bda", "--dry-run"],
            format!(
                "knock: no profile named \"bda\" (looked for {}); did you mean \"bad\"? \
                 `knock profile list` shows them all\n",
                d.0.join("bda.toml").display()
            ),
        ),
        (
            &["bad"],
            format!(
                "knock: {}:3: sequence: bad hit \"abc\": port \"abc\" is not a number \
                 (expected 1-65535)\n",
                bad.display()
            ),
        ),
        (
            &["save", "x", "192.0.2.2", "7000", "-1", "-4"],
            "knock: bad hit \"-1\": port -1 is negative (expected 1-65535)\n".into(),
        ),
        (
            &["save", "x", "7000", "8000"],
            "error: invalid value '7000' for '<HOST>': \"7000\" looks like a port, not a host: \
             HOST comes first, as in `knock HOST 7000 ...` (to knock the address 0.0.27.88, \
             write it so)\n\nFor more information, try '--help'.\n"
                .into(),
        ),
        (
            &["save", "x", "192.0.2.2", "7000", "0"],
            "knock: bad hit \"0\": port 0 is out of range (expected 1-65535)\n".into(),
        ),
        (
            &["save", "show", "192.0.2.2", "7000"],
            "knock: profile name \"show\" is reserved (list, show, save, remove, import and help \
             are profile subcommands)\n"
                .into(),
        ),
        (
            &["save", "../x", "192.0.2.2", "7000"],
            "knock: profile name \"../x\" may not contain path separators\n".into(),
        ),
        (
            &["-v", "list"],
            "error: the subcommand 'list' cannot be used with a profile NAME or the options \
             for knocking\n\n\
             Usage: knock profile [OPTIONS] <NAME>\n       \
             knock profile [--profiles <DIR>] <COMMAND>\n\n\
             For more information, try '--help'.\n"
                .into(),
        ),
    ];
    for (args, want) in table {
        let o = d.run(args);
        assert_eq!((o.code, &o.err), (2, want), "{args:?}");
        assert!(o.events.is_empty() && o.out.is_empty(), "{args:?}");
    }
    // A broken profile is listed with its error.
    let o = d.run(&["list"]);
    assert_eq!(o.code, 0);
    assert!(o.out.contains("bad   -     broken  "), "{}", o.out);
}

#[test]
fn the_profile_directory_comes_from_the_option_or_the_environment() {
    let d = Dir::new("dir-choice");
    d.write("p.toml", "host = \"192.0.2.2\"\nsequence = \"7000\"\n");
    let env = World {
        vars: vec![("KNOCK_PROFILES".into(), d.arg())],
        ..World::default()
    };
    let o = env.run(&["profile", "p"]);
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(sent(&o.events), to(&[Hit::tcp(7000)], "192.0.2.2"));
    // --profiles before the word profile, and after it, beats the environment.
    let other = Dir::new("dir-choice-other");
    other.write("p.toml", "host = \"192.0.2.3\"\nsequence = \"8000\"\n");
    let dir = other.arg();
    for line in [
        vec!["--profiles", dir.as_str(), "profile", "p"],
        vec!["profile", "p", "--profiles", dir.as_str()],
        vec!["profile", &format!("--profiles={dir}"), "p"],
        vec![&format!("--profiles={dir}"), "profile", "p"],
    ] {
        let env = World {
            vars: vec![("KNOCK_PROFILES".into(), d.arg())],
            ..World::default()
        };
        let o = env.run(&line);
        assert_eq!(o.code, 0, "{line:?}: {}", o.err);
        assert_eq!(
            sent(&o.events),
            to(&[Hit::tcp(8000)], "192.0.2.3"),
            "{line:?}"
        );
    }
    // --profiles belongs to knock profile only.
    let o = World::default().run(&["--profiles", &dir, "192.0.2.2", "7000"]);
    assert_eq!(o.code, 2);
    assert!(
        o.err.contains("unexpected argument '--profiles'"),
        "{}",
        o.err
    );
}

#[test]
fn help_for_the_profile_command() {
    let o = World::default().run(&["profile", "--help"]);
    assert_eq!(o.code, 0);
    assert!(o.out.starts_with("Knock from a saved profile"), "{}", o.out);
    // Where profiles live, and how secrets are asked for and checked, per system.
    let flat = o.out.split_whitespace().collect::<Vec<_>>().join(" ");
    for said in [
        "$XDG_CONFIG_HOME or ~/.config on Linux and FreeBSD, ~/Library/Application Support \
         on macOS, and %APPDATA% on Windows",
        "without echo when stdin is a terminal (a console on Windows)",
        "is refused on Linux, macOS and FreeBSD; Windows has no mode bits",
    ] {
        assert!(flat.contains(said), "help lacks {said:?}:\n{}", o.out);
    }
    let o = World::default().run(&["profile", "save", "--help"]);
    assert_eq!(o.code, 0);
    assert!(o.out.contains("--description <TEXT>"), "{}", o.out);
}

#[test]
fn the_flag_vector_needs_raw_privileges_to_be_sent() {
    // Exact flags from [hmac] flags go out raw: refused before sending without privileges.
    let d = Dir::new("hmac-flags");
    d.write(
        "f.toml",
        "host = \"192.0.2.2\"\n[hmac]\ndoor = \"flags\"\nsecret_env = \"KNOCK_TEST_SECRET\"\n\
         protocols = \"mixed\"\nflags = \"fin+psh\"\n",
    );
    let world = World {
        now: 123_456 * 30,
        ..with_secret()
    };
    let o = d.run_in(world, &["f"]);
    assert_eq!(o.code, 2);
    assert!(o.events.is_empty());
    let why = "exact TCP flags need a raw socket, which needs root or CAP_NET_RAW";
    assert_eq!(
        o.err,
        format!(
            "knock: hit 1 of 4 (38509:tcp:fin+psh): {why}\n\
             knock: hit 4 of 4 (14401:tcp:fin+psh): {why}\n\
             knock: nothing was sent; to send these hits, run knock as root, give it \
             CAP_NET_RAW once with `sudo setcap cap_net_raw+ep $(command -v knock)`, or drop \
             the flags\n"
        )
    );
    let world = World {
        now: 123_456 * 30,
        privilege: Privilege::Raw,
        ..with_secret()
    };
    let o = d.run_in(world, &["f"]);
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    let raw = o
        .events
        .iter()
        .filter(|e| matches!(e, Event::SentRaw(..)))
        .count();
    assert_eq!(raw, 2, "{:?}", o.events);
}

#[test]
fn list_names_prints_only_the_names_for_completion() {
    let d = Dir::new("names");
    // An empty directory: nothing at all, not even the note (completion runs it on TAB).
    let o = d.run(&["list", "--names"]);
    assert_eq!((o.code, o.out.as_str(), o.err.as_str()), (0, "", ""));
    d.write("office.toml", "host = \"192.0.2.2\"\nsequence = \"7000\"\n")
        .write("home ssh.toml", "sequence = \"7000\"\n")
        .write("broken.toml", "sequence = 5\n")
        .write("notes.txt", "not a profile\n");
    let o = d.run(&["list", "--names"]);
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    // Sorted, one a line, a name with a space whole, a broken profile too.
    assert_eq!(o.out, "broken\nhome ssh\noffice\n");
    // --names belongs to list only.
    assert_eq!(d.run(&["office", "--names"]).code, 2);
}
