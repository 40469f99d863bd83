//! Interoperability: our `knock` against Debian's real knockd 0.8 in the server namespace.

use std::thread;
use std::time::Duration;

use knock_e2e::knockd::Knockd;
use knock_e2e::{CLIENT_V4, CLIENT_V6, Need, Pair, SERVER_V4, SERVER_V6, Server, WAIT, netns_test};

const DOOR: &str = "[door]
\tsequence = 7000,8000:udp,9000
\tseq_timeout = 10
\tcommand = echo %IP% >> @DIR@/events
";

fn opens_door(pair: &Pair, server: &str, client: &str) {
    let knockd = Knockd::start(pair, DOOR);
    pair.knock(&[server, "7000,8000:udp,9000"]);
    assert_eq!(knockd.wait_events(1, WAIT), [client], "{}", knockd.output());
}

netns_test!(
    knock_opens_a_knockd_door_over_ipv4,
    [Need::Knockd],
    |pair| {
        opens_door(&pair, SERVER_V4, CLIENT_V4);
    }
);

netns_test!(
    knock_opens_a_knockd_door_over_ipv6,
    [Need::Knockd],
    |pair| {
        opens_door(&pair, SERVER_V6, CLIENT_V6);
    }
);

netns_test!(
    the_wrong_order_does_not_open_the_door,
    [Need::Knockd],
    |pair| {
        let knockd = Knockd::start(&pair, DOOR);
        pair.knock(&[SERVER_V4, "9000,8000:udp,7000"]);
        // knockd logs the last hit (7000) as the door's first stage: proof that it was
        // listening and saw our packets, so the absence of an event means something.
        knockd.wait_log("192.0.2.1: door: Stage 1", 1, WAIT);
        thread::sleep(Duration::from_millis(1500));
        assert!(
            !knockd.path("events").exists(),
            "the door opened for a wrong order:\n{}",
            knockd.output()
        );
        assert!(!knockd.log().contains("OPEN SESAME"), "{}", knockd.output());
    }
);
