//! Interoperability of raw knocks with Debian's knockd 0.8: doors with `TCPFlags`, and a
//! tportknockd-style flag sequence on one port, checked on the wire and by knockd.

use std::thread;
use std::time::Duration;

use knock_e2e::capture::{Capture, Record, show};
use knock_e2e::knockd::Knockd;
use knock_e2e::{CLIENT_V4, CLIENT_V6, Need, Pair, SERVER_V4, SERVER_V6, Server, WAIT, netns_test};

/// knockd's own example of a door knocked with FIN packets.
const FIN_DOOR: &str = "[fin]
\tsequence = 7000,8000
\tseq_timeout = 10
\ttcpflags = fin,!ack
\tcommand = echo %IP% >> @DIR@/events
";

/// Waits for the door to open, once, for `client`.
fn opened_for(knockd: &Knockd, client: &str) {
    assert_eq!(knockd.wait_events(1, WAIT), [client], "{}", knockd.output());
}

fn fin_hits_open(pair: &Pair, server: &str, client: &str) {
    let knockd = Knockd::start(pair, FIN_DOOR);
    pair.knock(&[server, "7000:tcp:fin", "8000:tcp:fin+psh"]);
    opened_for(&knockd, client);
}

netns_test!(
    fin_hits_open_a_fin_not_ack_door_over_ipv4,
    [Need::Knockd],
    |pair| {
        fin_hits_open(&pair, SERVER_V4, CLIENT_V4);
    }
);

netns_test!(
    fin_hits_open_a_fin_not_ack_door_over_ipv6,
    [Need::Knockd],
    |pair| {
        fin_hits_open(&pair, SERVER_V6, CLIENT_V6);
    }
);

netns_test!(
    fin_ack_hits_do_not_open_a_fin_not_ack_door,
    [Need::Knockd],
    |pair| {
        let knockd = Knockd::start(&pair, FIN_DOOR);
        let capture = Capture::start(&pair, &["tcp", "and", "dst", SERVER_V4]);
        pair.knock(&[SERVER_V4, "7000:tcp:fin+ack", "8000:tcp:fin+ack"]);
        // The right knock afterwards: knockd handles packets in order, so once its door has
        // opened for this one, it has judged the two before. Had it taken them, the door
        // would have opened twice.
        pair.knock(&[SERVER_V4, "7000:tcp:fin", "8000:tcp:fin"]);
        opened_for(&knockd, CLIENT_V4);
        thread::sleep(Duration::from_millis(500));
        assert_eq!(knockd.events(), [CLIENT_V4], "{}", knockd.output());
        assert_eq!(
            knockd.log().matches("OPEN SESAME").count(),
            1,
            "{}",
            knockd.output()
        );
        // And the fin+ack hits did reach knockd's interface, with their flags.
        capture.wait_for(4, WAIT, |r| r.is_from_to(CLIENT_V4, SERVER_V4));
        let seen: Vec<(Option<u16>, Option<String>)> = capture
            .stop()
            .iter()
            .filter(|r| r.is_from_to(CLIENT_V4, SERVER_V4))
            .map(|r| (r.dport, r.tcp_flags.clone()))
            .collect();
        let flags = |f: &str| Some(f.to_string());
        assert_eq!(
            seen,
            [
                (Some(7000), flags("F.")),
                (Some(8000), flags("F.")),
                (Some(7000), flags("F")),
                (Some(8000), flags("F")),
            ]
        );
    }
);

/// A door on port 110 three times over, without `TCPFlags`: knockd counts any TCP packet
/// there, so it opens once all three hits have arrived.
const POP3_DOOR: &str = "[pop3]
\tsequence = 110,110,110
\tseq_timeout = 10
\tcommand = echo %IP% >> @DIR@/events
";

netns_test!(
    a_tportknockd_flag_sequence_on_one_port_reaches_the_wire_as_written,
    [Need::Knockd],
    |pair| {
        let knockd = Knockd::start(&pair, POP3_DOOR);
        let capture = Capture::start(&pair, &["tcp", "port", "110"]);
        pair.knock(&[SERVER_V4, "tcp:110:x", "tcp:110:up", "tcp:110:n"]);
        opened_for(&knockd, CLIENT_V4);
        capture.wait_for(3, WAIT, |r| r.is_from_to(CLIENT_V4, SERVER_V4));
        thread::sleep(Duration::from_millis(300));
        let all = capture.stop();
        let sent: Vec<&Record> = all
            .iter()
            .filter(|r| r.is_from_to(CLIENT_V4, SERVER_V4))
            .collect();
        let seen: Vec<(Option<u16>, Option<&str>)> = sent
            .iter()
            .map(|r| (r.dport, r.tcp_flags.as_deref()))
            .collect();
        // x: all six classic flags; up: URG and PSH; n: none.
        assert_eq!(
            seen,
            [
                (Some(110), Some("FSRP.U")),
                (Some(110), Some("PU")),
                (Some(110), Some("none")),
            ],
            "{}",
            show(&all)
        );
    }
);
