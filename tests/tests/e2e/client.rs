//! End-to-end tests of `knock`: it runs in the client namespace, tcpdump in the server
//! namespace says what arrived.

use std::process::Stdio;
use std::time::Duration;

use knock_e2e::capture::{Capture, Record, show};
use knock_e2e::{CLIENT_V4, CLIENT_V6, Pair, SERVER_V4, SERVER_V6, WAIT, netns_test, output};

/// Captures while `knock ARGS` runs, until `n` packets went from client to server, and
/// returns those packets and knock's stdout. With `settle`, keeps capturing that much
/// longer so late extras (a retransmitted SYN) would be seen too.
fn knock_and_capture(
    pair: &Pair,
    args: &[&str],
    n: usize,
    settle: Duration,
) -> (Vec<Record>, String) {
    let capture = Capture::start(pair, &["tcp", "or", "udp"]);
    let stdout = pair.knock(args);
    let (sent, _) = capture.stop_after(
        n,
        WAIT,
        settle,
        Record::is_client_to_server,
        &format!("knock {args:?}"),
    );
    (sent, stdout)
}

fn mixed_sequence(pair: &Pair, client: &str, server: &str) {
    // A silent server, as behind a dropping firewall: nothing answers, nothing else is sent.
    pair.silence_server();
    let (sent, _) = knock_and_capture(
        pair,
        &[server, "7000,8000:udp,9000", "8001:udp", "9001"],
        5,
        Duration::from_millis(300),
    );
    let seen: Vec<String> = sent.iter().map(Record::summary).collect();
    assert_eq!(
        seen,
        [
            "tcp 7000 S",
            "udp 8000 len=1",
            "tcp 9000 S",
            "udp 8001 len=1",
            "tcp 9001 S"
        ],
        "{}",
        show(&sent)
    );
    for r in &sent {
        assert_eq!(
            (r.src.to_string(), r.dst.to_string()),
            (client.to_string(), server.to_string()),
            "{}",
            r.line
        );
    }
}

netns_test!(
    mixed_sequence_over_ipv4_is_one_syn_or_one_byte_per_hit_in_order,
    |pair| {
        mixed_sequence(&pair, CLIENT_V4, SERVER_V4);
    }
);

netns_test!(
    mixed_sequence_over_ipv6_is_one_syn_or_one_byte_per_hit_in_order,
    |pair| {
        mixed_sequence(&pair, CLIENT_V6, SERVER_V6);
    }
);

netns_test!(
    an_unanswered_syn_is_not_retransmitted_while_knock_runs_on,
    |pair| {
        pair.silence_server();
        // Linux retransmits an unanswered SYN after 1 s. knock is still running then (in the
        // delay), so a socket left open would show a second SYN for 7000 before 7001.
        let (sent, _) = knock_and_capture(
            &pair,
            &["-d", "1500", SERVER_V4, "7000", "7001"],
            2,
            Duration::ZERO,
        );
        let seen: Vec<String> = sent.iter().map(Record::summary).collect();
        assert_eq!(seen, ["tcp 7000 S", "tcp 7001 S"], "{}", show(&sent));
    }
);

netns_test!(delay_separates_hits_on_the_wire, |pair| {
    let (sent, _) = knock_and_capture(
        &pair,
        &["-d", "300", SERVER_V4, "7000", "8000:udp", "9000"],
        3,
        Duration::ZERO,
    );
    // The capture stamps each packet as the server receives it, a few microseconds after
    // the send; 10 ms of slack absorbs that without hiding a missing delay.
    for pair_of_hits in sent.windows(2) {
        let gap = pair_of_hits[1].time - pair_of_hits[0].time;
        assert!(gap >= 0.290, "gap {gap:.6} s < 300 ms:\n{}", show(&sent));
    }
});

const DUAL_HOSTS: &str = "192.0.2.2 dual.test\n2001:db8::2 dual.test\n192.0.2.2 v4only.test\n";

/// The name really has both addresses in the client namespace.
fn assert_dual(pair: &Pair) {
    let mut getent = pair.client_cmd("getent");
    getent.args(["ahosts", "dual.test"]);
    let answers = knock_e2e::check(&mut getent);
    for addr in [SERVER_V4, SERVER_V6] {
        assert!(answers.contains(addr), "dual.test lacks {addr}:\n{answers}");
    }
}

netns_test!(a_dual_stack_name_gets_every_hit_at_one_address, |pair| {
    pair.set_client_hosts(DUAL_HOSTS);
    assert_dual(&pair);
    let (sent, stdout) = knock_and_capture(
        &pair,
        &[
            "-v",
            "dual.test",
            "7000,8000:udp,9000",
            "8001:udp,9001,9002",
        ],
        6,
        Duration::ZERO,
    );
    let dst = sent[0].dst;
    assert!(
        sent.iter().all(|r| r.dst == dst),
        "hits went to several addresses:\n{}",
        show(&sent)
    );
    let ports: Vec<u16> = sent.iter().map(|r| r.dport.unwrap()).collect();
    assert_eq!(ports, [7000, 8000, 9000, 8001, 9001, 9002]);
    // -v names the address the packets really went to.
    let shown = match dst {
        std::net::IpAddr::V4(a) => format!("{a}:7000"),
        std::net::IpAddr::V6(a) => format!("[{a}]:7000"),
    };
    assert!(
        stdout.starts_with(&format!("hitting tcp {shown}\n")),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 6, "{stdout}");
});

netns_test!(
    ipv4_and_ipv6_flags_pick_the_family_of_a_dual_stack_name,
    |pair| {
        pair.set_client_hosts(DUAL_HOSTS);
        assert_dual(&pair);
        for (flag, client, server) in [("-4", CLIENT_V4, SERVER_V4), ("-6", CLIENT_V6, SERVER_V6)] {
            let (sent, _) = knock_and_capture(
                &pair,
                &[flag, "dual.test", "7000,8000:udp,9000"],
                3,
                Duration::ZERO,
            );
            for r in &sent {
                assert!(
                    r.is_from_to(client, server),
                    "{flag}: {}\n{}",
                    r.line,
                    show(&sent)
                );
            }
        }
    }
);

netns_test!(
    lookup_and_send_failures_exit_1_and_say_what_failed,
    |pair| {
        pair.set_client_hosts(DUAL_HOSTS);
        // The namespaces have no route to 198.51.100.0/24, so these fail before any packet
        // leaves.
        let err = pair.knock_fails(&["198.51.100.1", "7000"], 1);
        assert_eq!(
            err,
            "knock: hit 1 of 1 (7000:tcp): connect 198.51.100.1:7000: \
         Network is unreachable (os error 101)\n"
        );
        let err = pair.knock_fails(&["-u", "198.51.100.1", "8000"], 1);
        assert_eq!(
            err,
            "knock: hit 1 of 1 (8000:udp): sendto 198.51.100.1:8000: \
         Network is unreachable (os error 101)\n"
        );
        let err = pair.knock_fails(&["-6", "v4only.test", "7000"], 1);
        assert_eq!(err, "knock: resolve v4only.test: no IPv6 address\n");
        let err = pair.knock_fails(&["no-such-host.test", "7000"], 1);
        assert!(
            err.starts_with("knock: resolve no-such-host.test: "),
            "{err}"
        );
    }
);

netns_test!(refused_and_dry_runs_send_nothing, |pair| {
    pair.set_client_hosts(DUAL_HOSTS);
    let capture = Capture::start(&pair, &["tcp", "or", "udp"]);
    // A bad hit after a good one: refused whole, before the good one is sent.
    let err = pair.knock_fails(&[SERVER_V4, "7000", "8000:udp:fin", "9000"], 2);
    assert_eq!(
        err,
        "knock: bad hit \"8000:udp:fin\": flags are only for tcp hits, not udp\n"
    );
    let json = pair.knock(&["--dry-run", "--json", "-4", "dual.test", "7000"]);
    assert_eq!(
        json,
        "{\"host\":\"dual.test\",\"address\":\"192.0.2.2\",\"delay_ms\":0,\"hits\":\
         [{\"port\":7000,\"proto\":\"tcp\",\"flags\":[\"syn\"],\"raw\":false,\
         \"refused\":null}]}\n"
    );
    let text = pair.knock(&["--dry-run", "-6", "dual.test", "7000,8000:udp"]);
    assert_eq!(
        text,
        "would hit tcp [2001:db8::2]:7000\nwould hit udp [2001:db8::2]:8000\n"
    );
    // A last, real hit marks the end: everything before it was captured if it was sent.
    pair.knock(&[SERVER_V4, "7777"]);
    capture.wait_for(1, WAIT, |r| r.dport == Some(7777));
    let all = capture.stop();
    let sent: Vec<String> = all
        .iter()
        .filter(|r| r.is_client_to_server())
        .map(Record::summary)
        .collect();
    assert_eq!(sent, ["tcp 7777 S"], "{}", show(&all));
});

netns_test!(a_closed_stdout_still_sends_everything_and_exits_0, |pair| {
    let capture = Capture::start(&pair, &["tcp", "or", "udp"]);
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let mut cmd = pair.knock_cmd(&["-v", SERVER_V4, "7000,8000:udp,9000"]);
    cmd.stdout(writer).stderr(Stdio::piped());
    let out = output(&mut cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{cmd:?} (stdout closed)\nstderr:\n{stderr}"
    );
    assert!(
        stderr.is_empty(),
        "{cmd:?} (stdout closed)\nstderr:\n{stderr}"
    );
    capture.wait_for(3, WAIT, Record::is_client_to_server);
    let all = capture.stop();
    let ports: Vec<u16> = all
        .iter()
        .filter(|r| r.is_client_to_server())
        .map(|r| r.dport.unwrap())
        .collect();
    assert_eq!(ports, [7000, 8000, 9000], "{}", show(&all));
});
