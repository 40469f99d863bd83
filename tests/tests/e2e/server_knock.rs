//! knockd-lite opened by real knocks in network namespaces: our `knock` and Debian's
//! `knock` over TCP, UDP, both, and IPv6; TCP flags sent by `knock`'s raw sender;
//! VLAN-tagged frames; `%IP%` reaching the command; and the knock-to-command latency.

use std::process::Command;

use knock_e2e::capture::Capture;
use knock_e2e::knockd::DEBIAN_KNOCK;
use knock_e2e::lite::KnockdLite;
use knock_e2e::raw::{self, SYN};
use knock_e2e::{
    CLIENT_V4, CLIENT_V6, Need, Pair, SERVER_V4, SERVER_V6, Server, WAIT, check, netns_test,
};

/// A TCP, a UDP and a mixed door, each writing its event line (also knocked by the
/// static aarch64 `knock`).
pub(crate) const DOORS: &str = "[tcp]
\tsequence = 7101,7102,7103
\ttcpflags = syn
\tstart_command = echo tcp %IP% >> @DIR@/events
[udp]
\tsequence = 7201:udp,7202:udp,7203:udp
\tstart_command = echo udp %IP% >> @DIR@/events
[mixed]
\tsequence = 7301,7302:udp,7303
\ttcpflags = syn
\tstart_command = echo mixed %IP% >> @DIR@/events
";

fn debian_knock(pair: &Pair, args: &[&str]) {
    check(pair.client_cmd(DEBIAN_KNOCK).args(args));
}

/// Knocks with `knock` and waits for the door's event line, so each knock is checked on
/// its own.
fn opens<T>(lite: &KnockdLite, knock: impl FnOnce() -> T, want: &str) {
    assert_eq!(lite.next_event(WAIT, knock), want, "{}", lite.output());
}

netns_test!(our_knock_opens_tcp_udp_mixed_and_ipv6_doors, |pair| {
    let lite = KnockdLite::start(&pair, DOORS, &[]);
    for (server, client) in [(SERVER_V4, CLIENT_V4), (SERVER_V6, CLIENT_V6)] {
        opens(
            &lite,
            || pair.knock(&[server, "7101", "7102", "7103"]),
            &format!("tcp {client}"),
        );
        opens(
            &lite,
            || pair.knock(&["-u", server, "7201", "7202", "7203"]),
            &format!("udp {client}"),
        );
        opens(
            &lite,
            || pair.knock(&[server, "7301,7302:udp,7303"]),
            &format!("mixed {client}"),
        );
    }
    let log = lite.log();
    assert_eq!(log.matches("OPEN SESAME").count(), 6, "{log}");
});

netns_test!(
    debian_knock_opens_knockd_lite_doors,
    [Need::DebianKnock],
    |pair| {
        let lite = KnockdLite::start(&pair, DOORS, &[]);
        for (flag, server, client) in [("-4", SERVER_V4, CLIENT_V4), ("-6", SERVER_V6, CLIENT_V6)] {
            opens(
                &lite,
                || debian_knock(&pair, &[flag, server, "7101", "7102", "7103"]),
                &format!("tcp {client}"),
            );
            opens(
                &lite,
                || debian_knock(&pair, &[flag, "-u", server, "7201", "7202", "7203"]),
                &format!("udp {client}"),
            );
            opens(
                &lite,
                || debian_knock(&pair, &[flag, server, "7301:tcp", "7302:udp", "7303:tcp"]),
                &format!("mixed {client}"),
            );
        }
    }
);

netns_test!(the_ip_reaches_the_command_as_a_plain_number, |pair| {
    // Only %IP% is replaced; other %-words and shell syntax reach /bin/sh as written.
    let lite = KnockdLite::start(
        &pair,
        "[door]
\tsequence = 7101,7102
\tstart_command = printf '%s|%s\\n' '%IP%' '%HOST% %ip% %%' >> @DIR@/events
",
        &[],
    );
    opens(
        &lite,
        || pair.knock(&[SERVER_V4, "7101,7102"]),
        "192.0.2.1|%HOST% %ip% %%",
    );
    opens(
        &lite,
        || pair.knock(&[SERVER_V6, "7101,7102"]),
        "2001:db8::1|%HOST% %ip% %%",
    );
    let log = lite.log();
    assert!(
        log.contains("door: running command: printf '%s|%s\\n' '2001:db8::1' '%HOST% %ip% %%'"),
        "{log}"
    );
});

netns_test!(door_flags_and_per_hit_flags_come_from_raw_packets, |pair| {
    let lite = KnockdLite::start(
        &pair,
        "[synack]
\tsequence = 7401,7402
\ttcpflags = syn,ack
\tstart_command = echo synack %IP% >> @DIR@/events
[perhit]
\tsequence = 7501:tcp:fin+psh,7502:udp,7503:tcp:urg
\tstart_command = echo perhit %IP% >> @DIR@/events
",
        &[],
    );
    // Plain SYNs do not satisfy syn,ack: knockd-lite never even sees them.
    pair.knock(&[SERVER_V4, "7401,7402"]);
    pair.knock(&[SERVER_V4, "7401:tcp:syn+ack,7402:tcp:syn+ack"]);
    let events = lite.wait_events(1, WAIT);
    assert_eq!(events, ["synack 192.0.2.1"], "{}", lite.output());

    // Wrong flags on a per-hit step: no door opens.
    pair.knock(&[SERVER_V4, "7501:tcp:syn,7502:udp,7503:tcp:urg"]);
    for server in [SERVER_V4, SERVER_V6] {
        pair.knock(&[server, "7501:tcp:fin+psh,7502:udp,7503:tcp:urg"]);
    }
    let events = lite.wait_events(3, WAIT);
    assert_eq!(
        events,
        ["synack 192.0.2.1", "perhit 192.0.2.1", "perhit 2001:db8::1"],
        "{}",
        lite.output()
    );
    let log = lite.log();
    assert_eq!(log.matches("OPEN SESAME").count(), 3, "{log}");
});

netns_test!(
    vlan_tagged_knocks_open_a_door_on_the_parent_interface,
    |pair| {
        // A VLAN sub-interface hands knockd-lite untagged frames, like any other interface; the
        // case to prove is capture on the parent, where knocks arrive tagged. Sending tagged
        // frames by hand works whether or not this kernel has 802.1Q.
        let lite = KnockdLite::start(
            &pair,
            "[door]
\tsequence = 7101,7102:udp,7103
\ttcpflags = syn
\tstart_command = echo door %IP% >> @DIR@/events
",
            &[],
        );
        let hits = [raw::tcp(7101, SYN), raw::udp(7102), raw::tcp(7103, SYN)];
        raw::send_tagged(&pair, "8100:10", &hits);
        let events = lite.wait_events(1, WAIT);
        assert_eq!(events, ["door 192.0.2.1"], "{}", lite.output());
        // 802.1ad outer tag with an 802.1Q tag inside (the kernel strips only the outer one).
        raw::send_tagged(&pair, "88a8:100,8100:20", &hits);
        let events = lite.wait_events(2, WAIT);
        assert_eq!(events[1], "door 192.0.2.1", "{}", lite.output());
    }
);

/// Seconds since the epoch from `date +%s.%N`.
fn seconds(line: &str) -> f64 {
    line.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

netns_test!(knock_to_command_latency_is_measured, |pair| {
    let lite = KnockdLite::start(
        &pair,
        "[door]
\tsequence = 7101,7102,7103
\ttcpflags = syn
\tstart_command = date +%s.%N >> @DIR@/events
",
        &[],
    );
    let tcpdump = Capture::start(&pair, &["tcp", "dst", "port", "7103"]);
    const KNOCKS: usize = 15;
    for i in 0..KNOCKS {
        pair.knock(&[SERVER_V4, "7101,7102,7103"]);
        lite.wait_events(i + 1, WAIT);
    }
    let sent = tcpdump.stop();
    let last_hits: Vec<f64> = sent
        .iter()
        .filter(|r| r.is_from_to(CLIENT_V4, SERVER_V4) && r.tcp_flags.as_deref() == Some("S"))
        .map(|r| r.time)
        .collect();
    let started: Vec<f64> = lite.events().iter().map(|l| seconds(l)).collect();
    assert_eq!(
        last_hits.len(),
        KNOCKS,
        "{}",
        knock_e2e::capture::show(&sent)
    );
    assert_eq!(started.len(), KNOCKS, "each knock opened the door once");
    let mut ms: Vec<f64> = last_hits
        .iter()
        .zip(&started)
        .map(|(hit, cmd)| (cmd - hit) * 1000.0)
        .collect();
    assert!(
        ms.iter().all(|&d| d > 0.0),
        "a command before its knock? {ms:?}"
    );
    ms.sort_by(f64::total_cmp);
    // Part of that is starting /bin/sh and date themselves: measure it on its own.
    let mut shell: Vec<f64> = (0..KNOCKS)
        .map(|_| {
            let before = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            let out = check(Command::new("/bin/sh").args(["-c", "date +%s.%N >&1"]));
            (seconds(&out) - before) * 1000.0
        })
        .collect();
    shell.sort_by(f64::total_cmp);
    eprintln!(
        "knock-to-command latency over {KNOCKS} idle knocks (last SYN seen by tcpdump -> `date` \
         in the start command): median {:.2} ms, min {:.2} ms, max {:.2} ms; of which starting \
         /bin/sh and date takes a median {:.2} ms",
        ms[KNOCKS / 2],
        ms[0],
        ms[KNOCKS - 1],
        shell[KNOCKS / 2]
    );
});

netns_test!(list_interfaces_shows_the_test_interface, |pair| {
    let out = check(
        pair.server_cmd(knock_e2e::bin("knockd-lite"))
            .arg("--list-interfaces"),
    );
    // The interface's line, then its addresses, indented.
    let iface: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.ends_with(&format!(": {} (ethernet, up)", pair.server_if)))
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .map(str::trim)
        .collect();
    assert!(iface.contains(&SERVER_V4), "{out}");
    assert!(iface.contains(&SERVER_V6), "{out}");
    assert!(
        out.contains(": lo (loopback, up)\n    127.0.0.1\n"),
        "{out}"
    );
});
