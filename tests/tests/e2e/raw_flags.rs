//! End-to-end tests of raw knocks: `knock` sends TCP hits with exact flags from the client
//! namespace, tcpdump in the server namespace says what arrived, and the server's own TCP
//! stack answering each of them with an RST says their checksums were right.

use std::ops::RangeInclusive;
use std::process::Command;
use std::time::Duration;

use knock_core::hit::{Hit, Proto, TcpFlags};
use knock_e2e::capture::{Capture, Record, show};
use knock_e2e::{
    CLIENT_V4, CLIENT_V6, Pair, SERVER_V4, SERVER_V6, TempDir, WAIT, bin, check, check_quiet,
    netns_test, output,
};

/// Where random source ports come from.
const RANDOM_PORTS: RangeInclusive<u16> = 49152..=65535;

/// The user unprivileged runs use.
const NOBODY: &str = "65534";

/// `PROGRAM ARGS` as nobody, without any capability, in the client namespace.
fn as_nobody(pair: &Pair, program: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = pair.client_cmd("setpriv");
    cmd.args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups", "--"])
        .arg(program)
        .args(args);
    cmd
}

/// A TCP or UDP packet from `client` to `server`.
fn from_to(client: &str, server: &str) -> impl Fn(&Record) -> bool {
    let (client, server) = (client.to_string(), server.to_string());
    move |r| r.is_from_to(&client, &server)
}

/// tcpdump's spelling of a flags byte, written here from tcpdump's documentation so the
/// comparison does not lean on our own names: one letter per bit in bit order, `.` for
/// ACK, `none` for no flag.
fn tcpdump_flags(flags: TcpFlags) -> String {
    let letters = ["F", "S", "R", "P", ".", "U", "E", "W"];
    let text: String = (0..8)
        .filter(|bit| flags.bits() & (1 << bit) != 0)
        .map(|bit| letters[bit])
        .collect();
    if text.is_empty() { "none".into() } else { text }
}

/// Runs `cmd` (a knock), and captures until `n` packets went from `client` to `server`
/// and the server answered every one that its TCP stack answers, then a little longer so
/// extras would show. Returns what the client sent and everything captured.
fn capture_run(
    pair: &Pair,
    mut cmd: Command,
    client: &str,
    server: &str,
    n: usize,
) -> (Vec<Record>, Vec<Record>, String) {
    let capture = Capture::start(pair, &["tcp", "or", "udp"]);
    let what = format!("{cmd:?}");
    let stdout = check_quiet(&mut cmd);
    let settle = Duration::from_millis(300);
    let (sent, all) = capture.stop_after(n, WAIT, settle, from_to(client, server), &what);
    (sent, all, stdout)
}

/// Every hit in `hits` (each to its own port) arrived once, in order, with exactly its
/// flags, from the client's own address and a random source port. Each one without RST
/// was answered by the server's kernel with an RST, which it sends only for a segment
/// whose checksums hold.
fn arrive_as_written(pair: &Pair, client: &str, server: &str, hits: &[&str]) {
    let mut args = vec!["-v", server];
    args.extend(hits);
    let (sent, all, stdout) = capture_run(pair, pair.knock_cmd(&args), client, server, hits.len());
    let mut verbose = String::new();
    for (written, r) in hits.iter().zip(&sent) {
        let hit = Hit::parse(written, Proto::Tcp).unwrap();
        let want = tcpdump_flags(hit.wire_flags());
        assert_eq!(
            (r.proto.as_str(), r.dport, r.tcp_flags.as_deref()),
            ("tcp", Some(hit.port), Some(want.as_str())),
            "{written}: {}",
            r.line
        );
        let sport = r.sport.unwrap();
        assert!(RANDOM_PORTS.contains(&sport), "{written}: {}", r.line);
        // Built by us: no TCP options, no payload, our window.
        assert!(
            r.line.ends_with("win 64240, length 0")
                || r.line.contains(", win 64240, urg 0, length 0"),
            "{written}: {}",
            r.line
        );
        if !hit.wire_flags().contains(TcpFlags::RST) {
            let answered = all.iter().any(|a| {
                a.is_from_to(server, client)
                    && a.sport == Some(hit.port)
                    && a.dport == Some(sport)
                    && a.tcp_flags.as_deref().is_some_and(|f| f.starts_with('R'))
            });
            assert!(
                answered,
                "{written}: no RST from the server, so it dropped the segment (bad \
                 checksum?):\n{}",
                show(&all)
            );
        }
        let names: Vec<&str> = hit.wire_flags().names().collect();
        let shown = if names.is_empty() {
            "none".to_string()
        } else {
            names.join(",")
        };
        let target = if server.contains(':') {
            format!("[{server}]:{}", hit.port)
        } else {
            format!("{server}:{}", hit.port)
        };
        verbose.push_str(&format!("hitting tcp {target} [{shown}]\n"));
    }
    assert_eq!(stdout, verbose);
}

const SINGLE_FLAGS: [&str; 8] = [
    "7001:tcp:fin",
    "7002:tcp:syn",
    "7003:tcp:rst",
    "7004:tcp:psh",
    "7005:tcp:ack",
    "7006:tcp:urg",
    "7007:tcp:ece",
    "7008:tcp:cwr",
];

const COMBINATIONS: [&str; 12] = [
    "7101:tcp:fin+psh",
    "7102:tcp:fin+ack",
    "7103:tcp:syn+ack",
    "7104:tcp:syn+fin",
    "7105:tcp:fin+psh+urg",
    "7106:tcp:syn+ece+cwr",
    "7107:tcp:fin+syn+rst+psh+ack+urg+ece+cwr",
    "7108:tcp:none",
    "tcp:7109:x",
    "tcp:7110:n",
    "tcp:110:up",
    "tcp:7111:fsrpau",
];

netns_test!(each_single_flag_arrives_as_written_over_ipv4, |pair| {
    arrive_as_written(&pair, CLIENT_V4, SERVER_V4, &SINGLE_FLAGS);
});

netns_test!(each_single_flag_arrives_as_written_over_ipv6, |pair| {
    arrive_as_written(&pair, CLIENT_V6, SERVER_V6, &SINGLE_FLAGS);
});

netns_test!(flag_combinations_arrive_as_written_over_ipv4, |pair| {
    arrive_as_written(&pair, CLIENT_V4, SERVER_V4, &COMBINATIONS);
});

netns_test!(flag_combinations_arrive_as_written_over_ipv6, |pair| {
    arrive_as_written(&pair, CLIENT_V6, SERVER_V6, &COMBINATIONS);
});

/// `--raw` sends TCP hits without flags as bare SYNs built by us (no options, our
/// window), from random ports; UDP hits stay ordinary datagrams.
fn raw_mode(pair: &Pair, client: &str, server: &str) {
    let cmd = pair.knock_cmd(&["--raw", server, "7000,8000:udp", "9000", "tcp:9001:i"]);
    let (sent, _, _) = capture_run(pair, cmd, client, server, 4);
    let seen: Vec<(String, Option<u16>, Option<&str>)> = sent
        .iter()
        .map(|r| (r.proto.clone(), r.dport, r.tcp_flags.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            ("tcp".into(), Some(7000), Some("S")),
            ("udp".into(), Some(8000), None),
            ("tcp".into(), Some(9000), Some("S")),
            ("tcp".into(), Some(9001), Some("S")),
        ],
        "{}",
        show(&sent)
    );
    for r in sent.iter().filter(|r| r.proto == "tcp") {
        assert!(r.line.ends_with("win 64240, length 0"), "{}", r.line);
        assert!(RANDOM_PORTS.contains(&r.sport.unwrap()), "{}", r.line);
    }
}

netns_test!(raw_sends_plain_hits_as_bare_syns_over_ipv4, |pair| {
    raw_mode(&pair, CLIENT_V4, SERVER_V4);
});

netns_test!(raw_sends_plain_hits_as_bare_syns_over_ipv6, |pair| {
    raw_mode(&pair, CLIENT_V6, SERVER_V6);
});

/// Every hit leaves from `--source-port`: raw ones, plain TCP (a bound connect) and UDP.
fn source_port(client: &str, server: &str) {
    let pair = Pair::new();
    let args = [
        "--source-port",
        "40123",
        server,
        "7000:tcp:fin",
        "8000:udp",
        "9000",
        "9001:tcp:fin+psh",
        "9002",
    ];
    let (sent, _, _) = capture_run(&pair, pair.knock_cmd(&args), client, server, 5);
    let seen: Vec<(Option<u16>, Option<u16>)> = sent.iter().map(|r| (r.sport, r.dport)).collect();
    let want: Vec<(Option<u16>, Option<u16>)> = [7000, 8000, 9000, 9001, 9002]
        .into_iter()
        .map(|d| (Some(40123), Some(d)))
        .collect();
    assert_eq!(seen, want, "{}", show(&sent));
    let pair = Pair::new();
    let args = [
        "--raw",
        "--source-port",
        "40124",
        server,
        "7000,7001:tcp:rst",
    ];
    let (sent, _, _) = capture_run(&pair, pair.knock_cmd(&args), client, server, 2);
    assert!(
        sent.iter().all(|r| r.sport == Some(40124)),
        "{}",
        show(&sent)
    );
}

netns_test!(source_port_is_honoured_over_ipv4, || {
    source_port(CLIENT_V4, SERVER_V4);
});

netns_test!(source_port_is_honoured_over_ipv6, || {
    source_port(CLIENT_V6, SERVER_V6);
});

netns_test!(
    without_privileges_raw_hits_are_refused_and_nothing_is_sent,
    |pair| {
        let capture = Capture::start(&pair, &["tcp", "or", "udp"]);
        let cases: [(&[&str], &str); 2] = [
            (
                &[SERVER_V4, "7000", "8000:tcp:fin", "tcp:110:x", "9000:udp"],
                "knock: hit 2 of 4 (8000:tcp:fin): exact TCP flags need a raw socket, which \
             needs root or CAP_NET_RAW\n\
             knock: hit 3 of 4 (110:tcp:fin+syn+rst+psh+ack+urg): exact TCP flags need a raw \
             socket, which needs root or CAP_NET_RAW\n\
             knock: nothing was sent; to send these hits, run knock as root, give it \
             CAP_NET_RAW once with `sudo setcap cap_net_raw+ep $(command -v knock)`, or drop \
             the flags\n",
            ),
            (
                &["--raw", SERVER_V6, "7000", "8000:udp"],
                "knock: hit 1 of 2 (7000:tcp): sending a TCP hit raw needs a raw socket, which \
             needs root or CAP_NET_RAW\n\
             knock: nothing was sent; to send these hits, run knock as root, give it \
             CAP_NET_RAW once with `sudo setcap cap_net_raw+ep $(command -v knock)`, or drop \
             --raw\n",
            ),
        ];
        for (args, want) in cases {
            let out = output(&mut as_nobody(&pair, &bin("knock"), args));
            assert_eq!(out.status.code(), Some(2), "knock {args:?}: {out:?}");
            assert_eq!(String::from_utf8_lossy(&out.stderr), want, "knock {args:?}");
            assert!(out.stdout.is_empty(), "knock {args:?}: {out:?}");
        }
        // A last hit that needs nothing: everything before it was captured if it was sent.
        check_quiet(&mut as_nobody(&pair, &bin("knock"), &[SERVER_V4, "7777"]));
        capture.wait_for(1, WAIT, |r| r.dport == Some(7777));
        let all = capture.stop();
        let sent: Vec<&Record> = all
            .iter()
            .filter(|r| from_to(CLIENT_V4, SERVER_V4)(r) || from_to(CLIENT_V6, SERVER_V6)(r))
            .collect();
        assert_eq!(sent.len(), 1, "{}", show(&all));
        assert_eq!(sent[0].dport, Some(7777), "{}", show(&all));
    }
);

netns_test!(without_privileges_a_lone_syn_goes_through_connect, |pair| {
    let cmd = as_nobody(
        &pair,
        &bin("knock"),
        &["-v", SERVER_V4, "7000:tcp:syn", "tcp:7001:s"],
    );
    let (sent, _, stdout) = capture_run(&pair, cmd, CLIENT_V4, SERVER_V4, 2);
    assert_eq!(
        stdout,
        "hitting tcp 192.0.2.2:7000 [syn]\nhitting tcp 192.0.2.2:7001 [syn]\n"
    );
    for (r, port) in sent.iter().zip([7000, 7001]) {
        assert_eq!(r.dport, Some(port), "{}", r.line);
        assert_eq!(r.tcp_flags.as_deref(), Some("S"), "{}", r.line);
        // The kernel's own SYN, which carries options (MSS at least).
        assert!(r.line.contains("options [mss"), "{}", r.line);
    }
});

netns_test!(
    a_binary_given_cap_net_raw_sends_flags_without_root,
    |pair| {
        let dir = TempDir::new("setcap");
        let copy = dir.path().join("knock");
        std::fs::copy(bin("knock"), &copy).expect("copy knock");
        check(Command::new("setcap").arg("cap_net_raw+ep").arg(&copy));
        let cmd = as_nobody(&pair, &copy, &[SERVER_V4, "7000:tcp:fin+psh", "tcp:110:up"]);
        let (sent, _, _) = capture_run(&pair, cmd, CLIENT_V4, SERVER_V4, 2);
        let seen: Vec<(Option<u16>, Option<&str>)> = sent
            .iter()
            .map(|r| (r.dport, r.tcp_flags.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [(Some(7000), Some("FP")), (Some(110), Some("PU"))],
            "{}",
            show(&sent)
        );
    }
);
