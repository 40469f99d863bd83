//! Interoperability: our `knock` against Debian's real knockd 0.8 in the server namespace.

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use knock_e2e::knockd::{Knockd, require_knockd, wait_for_file};
use knock_e2e::{Pair, SERVER_V4, SERVER_V6, bin, check, require_root};

const DOOR: &str = "[door]
\tsequence = 7000,8000:udp,9000
\tseq_timeout = 10
\tcommand = echo %IP% >> @DIR@/marker
";

fn knock(pair: &Pair, args: &[&str]) {
    let mut cmd: Command = pair.client_cmd(bin("knock"));
    cmd.args(args);
    check(&mut cmd);
}

fn opens_door(server: &str, client: &str) {
    let pair = Pair::new();
    let knockd = Knockd::start(&pair, DOOR);
    knock(&pair, &[server, "7000,8000:udp,9000"]);
    let marker = wait_for_file(&knockd.path("marker"), Duration::from_secs(10))
        .unwrap_or_else(|| panic!("the door did not open:\n{}", knockd.output()));
    assert_eq!(marker, format!("{client}\n"), "{}", knockd.output());
}

#[test]
fn knock_opens_a_knockd_door_over_ipv4() {
    if !require_root("knock_opens_a_knockd_door_over_ipv4")
        || !require_knockd("knock_opens_a_knockd_door_over_ipv4")
    {
        return;
    }
    opens_door(SERVER_V4, knock_e2e::CLIENT_V4);
}

#[test]
fn knock_opens_a_knockd_door_over_ipv6() {
    if !require_root("knock_opens_a_knockd_door_over_ipv6")
        || !require_knockd("knock_opens_a_knockd_door_over_ipv6")
    {
        return;
    }
    opens_door(SERVER_V6, knock_e2e::CLIENT_V6);
}

#[test]
fn the_wrong_order_does_not_open_the_door() {
    if !require_root("the_wrong_order_does_not_open_the_door")
        || !require_knockd("the_wrong_order_does_not_open_the_door")
    {
        return;
    }
    let pair = Pair::new();
    let knockd = Knockd::start(&pair, DOOR);
    knock(&pair, &[SERVER_V4, "9000,8000:udp,7000"]);
    // knockd logs the last hit (7000) as the door's first stage: proof that it was
    // listening and saw our packets, so the absence of the marker means something.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !knockd.log().contains("192.0.2.1: door: Stage 1") {
        assert!(
            Instant::now() < deadline,
            "knockd never saw the hits:\n{}",
            knockd.output()
        );
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(1500));
    assert!(
        !knockd.path("marker").exists(),
        "the door opened for a wrong order:\n{}",
        knockd.output()
    );
    assert!(!knockd.log().contains("OPEN SESAME"), "{}", knockd.output());
}
