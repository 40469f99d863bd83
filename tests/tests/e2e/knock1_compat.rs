//! knock(1) command lines run unchanged: Debian's knock 0.8 and ours, given the same line
//! in the client namespace, put the same packets on the wire (tcpdump in the server
//! namespace): options after the hits, service names, and link-local IPv6 with a zone.

use std::net::IpAddr;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use knock_e2e::capture::{Capture, Record, show};
use knock_e2e::knockd::DEBIAN_KNOCK;
use knock_e2e::{Need, Pair, SERVER_V4, SERVER_V6, WAIT, check, netns_test};

/// What one program sent for `args`: the packets from client to `server`, as
/// `tcp 7000 S` / `udp 8000 len=1`, and where they went.
fn sent_by(pair: &Pair, mut cmd: Command, n: usize, server: IpAddr) -> Vec<(String, IpAddr)> {
    let capture = Capture::start(pair, &["tcp", "or", "udp"]);
    check(&mut cmd);
    let to_server = |r: &Record| r.dst == server && (r.proto == "tcp" || r.proto == "udp");
    let (sent, _) = capture.stop_after(
        n,
        WAIT,
        Duration::from_millis(200),
        to_server,
        &format!("{cmd:?}"),
    );
    sent.iter().map(|r| (r.summary(), r.dst)).collect()
}

/// Runs `args` through Debian's knock, then ours, and asserts both sent `want`, in order,
/// to `server`.
fn same_packets(pair: &Pair, args: &[&str], server: &str, want: &[&str]) {
    let server: IpAddr = server.parse().unwrap();
    let mut theirs = pair.client_cmd(DEBIAN_KNOCK);
    theirs.args(args);
    let theirs = sent_by(pair, theirs, want.len(), server);
    let ours = sent_by(pair, pair.knock_cmd(args), want.len(), server);
    let expected: Vec<(String, IpAddr)> = want.iter().map(|w| (w.to_string(), server)).collect();
    assert_eq!(theirs, expected, "knock(1) {args:?}");
    assert_eq!(ours, expected, "ours {args:?} (knock(1) sent {theirs:?})");
}

netns_test!(
    options_after_the_hits_send_what_knock_1_sends,
    [Need::DebianKnock],
    |pair| {
        // UDP hits go to ports tcpdump does not decode as something else (see capture).
        same_packets(
            &pair,
            &[SERVER_V4, "7000", "8001:udp", "9000", "-v", "-d", "100"],
            SERVER_V4,
            &["tcp 7000 S", "udp 8001 len=1", "tcp 9000 S"],
        );
        same_packets(
            &pair,
            &[SERVER_V6, "7100", "-6", "8001", "-u"],
            SERVER_V6,
            &["udp 7100 len=1", "udp 8001 len=1"],
        );
        pair.set_client_hosts("192.0.2.2 dual.test\n2001:db8::2 dual.test\n");
        same_packets(
            &pair,
            &["dual.test", "7000", "8001:udp", "-4"],
            SERVER_V4,
            &["tcp 7000 S", "udp 8001 len=1"],
        );
        same_packets(
            &pair,
            &["dual.test", "7000", "-6", "-d", "50", "8001:udp"],
            SERVER_V6,
            &["tcp 7000 S", "udp 8001 len=1"],
        );
    }
);

netns_test!(
    service_names_send_what_knock_1_sends,
    [Need::DebianKnock],
    |pair| {
        // ssh is 22/tcp and http 80/tcp (alias www) in every services database; knock(1)
        // sends `http:udp` and `-u ssh` to those ports over UDP.
        same_packets(
            &pair,
            &[SERVER_V4, "ssh", "http:udp", "www"],
            SERVER_V4,
            &["tcp 22 S", "udp 80 len=1", "tcp 80 S"],
        );
        same_packets(
            &pair,
            &["-u", SERVER_V6, "ssh", "7100:udp"],
            SERVER_V6,
            &["udp 22 len=1", "udp 7100 len=1"],
        );
        // -v shows the numbers the names stood for.
        let out = pair.knock(&["-v", SERVER_V4, "ssh,http:udp"]);
        assert_eq!(
            out, "hitting tcp 192.0.2.2:22\nhitting udp 192.0.2.2:80\n",
            "{out}"
        );
        // A name the database lacks is refused before anything is sent (knock(1) sends
        // the hits before it, then fails).
        let err = pair.knock_fails(&[SERVER_V4, "ssh", "no-such-service"], 2);
        assert_eq!(
            err,
            "knock: bad hit \"no-such-service\": port \"no-such-service\" is neither a number \
             (1-65535) nor a service name for tcp in /etc/services\n"
        );
    }
);

/// The link-local address of `ifname` in namespace `ns`, once duplicate address detection
/// is over (a tentative address neither sends nor receives).
fn link_local(ns: &str, ifname: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let out = check(Command::new("ip").args([
            "-n", ns, "-6", "-o", "addr", "show", "dev", ifname, "scope", "link",
        ]));
        if !out.is_empty() && !out.contains("tentative") {
            let addr = out
                .split_whitespace()
                .skip_while(|w| *w != "inet6")
                .nth(1)
                .and_then(|a| a.split('/').next())
                .unwrap_or_else(|| panic!("no link-local address in: {out}"));
            return addr.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "{ifname} in {ns} has no usable link-local address: {out}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

netns_test!(
    a_zone_reaches_the_link_as_knock_1_sends_it,
    [Need::DebianKnock],
    |pair| {
        let server = link_local(&pair.server, &pair.server_if);
        // The client's own address must be usable too, or the kernel has no source.
        link_local(&pair.client, &pair.client_if);
        let host = format!("{server}%{}", pair.client_if);
        same_packets(
            &pair,
            &[&host, "7000", "8001:udp", "-6"],
            &server,
            &["tcp 7000 S", "udp 8001 len=1"],
        );
        // -v, --dry-run and the JSON keep the zone as written.
        let out = pair.knock(&["-v", &host, "7000"]);
        assert_eq!(out, format!("hitting tcp [{host}]:7000\n"));
        let out = pair.knock(&["--dry-run", &host, "7000"]);
        assert_eq!(out, format!("would hit tcp [{host}]:7000\n"));
        let out = pair.knock(&["--dry-run", "--json", &host, "7000"]);
        assert!(
            out.starts_with(&format!("{{\"host\":\"{host}\",\"address\":\"{host}\",")),
            "{out}"
        );
        // Raw hits too: built whole for a link-local source and destination. The server's
        // answer to the SYN (an RST from its closed port) shows that its kernel found every
        // checksum right.
        let capture = Capture::start(&pair, &["tcp"]);
        pair.knock(&["--raw", &host, "7002", "7003:tcp:fin"]);
        let ip: IpAddr = server.parse().unwrap();
        capture.wait_for(1, WAIT, |r| r.src == ip && r.sport == Some(7002));
        let all = capture.stop();
        let to_server: Vec<String> = all
            .iter()
            .filter(|r| r.dst == ip)
            .map(Record::summary)
            .collect();
        assert_eq!(to_server, ["tcp 7002 S", "tcp 7003 F"], "{}", show(&all));
        let answer = all
            .iter()
            .find(|r| r.src == ip && r.sport == Some(7002))
            .unwrap();
        assert_eq!(answer.tcp_flags.as_deref(), Some("R."), "{}", show(&all));
    }
);
