//! Doors through a real firewall: a default-drop ruleset in the server namespace, a real
//! TCP service behind it, and real connections from the client namespace. Each door is
//! shown shut before the knock, open after it for the knocker only, shut again for new
//! connections after its timeout while a connection made in time keeps working; and what
//! happens when the server is killed with SIGKILL.
//!
//! nftables doors (knockd-lite's `Nft_Set`): the kernel closes them, with or without the
//! daemon. Command doors with iptables, the classic knockd setup: Debian's knockd 0.8 as
//! the reference, then knockd-lite through the same checks; after a SIGKILL its stop keeper
//! closes the door on time, a clean stop runs each stop once, a restart takes the stops
//! over from a surviving keeper, and the stop journal covers the keeper dying too. Every firewall command runs in the test's namespace through
//! `knock_e2e::firewall`, which also checks that the host's ruleset never changes.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use knock_core::hmac::HmacParams;
use knock_core::secret::Secret;
use knock_e2e::firewall::{ACCEPT_ESTABLISHED, Firewall};
use knock_e2e::knockd::Knockd;
use knock_e2e::lite::KnockdLite;
use knock_e2e::service::{Conn, Service, connect};
use knock_e2e::{
    CLIENT_V4, CLIENT_V6, Need, Pair, SERVER_V4, SERVER_V6, Server, TempDir, WAIT, bin, ip,
    netns_test, output,
};

/// The guarded service's port.
const PORT: u16 = 2222;
/// A second client address, which never knocks.
const OTHER_V4: &str = "192.0.2.3";
const OTHER_V6: &str = "2001:db8::3";
/// How long a connection to a shut door is given: the SYN is dropped, so this is how
/// long "shut" takes to show.
const SHUT_WAIT: Duration = Duration::from_millis(700);
/// Cmd_Timeout of every door here: how long a door stays open.
const OPEN_FOR: Duration = Duration::from_secs(3);
/// Cmd_Timeout of the stop keeper's iptables doors (`counted_door`): longer, since those
/// tests knock, see the door open and then signal the server before it is due, which
/// took over 3 s on a loaded 2-core CI machine.
const KEPT_OPEN_FOR: Duration = Duration::from_secs(6);

/// The nftables ruleset: policy drop, established connections, neighbour discovery, and
/// the service for the addresses in the door's sets.
const NFT_RULESET: &str = "
table inet knock {
	set ssh4 {
		type ipv4_addr
		flags timeout
	}
	set ssh6 {
		type ipv6_addr
		flags timeout
	}
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		iif \"lo\" accept
		meta l4proto ipv6-icmp accept
		tcp dport 2222 ip saddr @ssh4 accept
		tcp dport 2222 ip6 saddr @ssh6 accept
	}
}
";

/// The nftables door part of a config: both sets, Cmd_Timeout OPEN_FOR.
const NFT_DOOR: &str =
    "\tnft_set = inet knock ssh4\n\tnft_set_6 = inet knock ssh6\n\tcmd_timeout = 3\n";

/// The server namespace with the default-drop nftables ruleset and the service.
fn nft_server(pair: &Pair) -> (Firewall, Service) {
    let fw = Firewall::server(pair);
    fw.nft_apply(NFT_RULESET);
    (fw, Service::start(&pair.server, PORT))
}

/// The classic knockd firewall: iptables (and ip6tables) INPUT policy DROP, established
/// connections and loopback accepted, ICMPv6 for neighbour discovery.
fn iptables_server(pair: &Pair) -> (Firewall, Service) {
    let fw = Firewall::server(pair);
    for args in [
        ACCEPT_ESTABLISHED,
        &["-A", "INPUT", "-i", "lo", "-j", "ACCEPT"],
        &["-P", "INPUT", "DROP"],
    ] {
        fw.iptables(args);
        fw.ip6tables(args);
    }
    fw.ip6tables(&["-I", "INPUT", "-p", "ipv6-icmp", "-j", "ACCEPT"]);
    (fw, Service::start(&pair.server, PORT))
}

/// The door commands of knockd's own example, for the guarded port.
const IPTABLES_DOOR: &str = "\tstart_command = /usr/sbin/iptables -I INPUT -s %IP% -p tcp --dport 2222 -j ACCEPT\n\
\tcmd_timeout = 3\n\
\tstop_command = /usr/sbin/iptables -D INPUT -s %IP% -p tcp --dport 2222 -j ACCEPT\n";

fn addr(a: &str) -> IpAddr {
    a.parse().unwrap()
}

/// The service's address in the family of `client`.
fn service_of(client: &str) -> SocketAddr {
    let server = if addr(client).is_ipv6() {
        SERVER_V6
    } else {
        SERVER_V4
    };
    SocketAddr::new(addr(server), PORT)
}

/// Connects from `from` in the client namespace.
fn try_connect(pair: &Pair, from: &str, timeout: Duration) -> std::io::Result<Conn> {
    connect(&pair.client, Some(addr(from)), service_of(from), timeout)
}

fn assert_shut(pair: &Pair, from: &str, when: &str, server: &impl Server) {
    if let Ok(_conn) = try_connect(pair, from, SHUT_WAIT) {
        panic!(
            "{when}: {from} got through to the service\n{}",
            server.output()
        );
    }
}

/// Waits until `from` gets through (the door opens) and returns that connection.
fn wait_open(pair: &Pair, from: &str, server: &impl Server) -> Conn {
    let deadline = Instant::now() + WAIT;
    loop {
        match try_connect(pair, from, Duration::from_millis(300)) {
            Ok(conn) => return conn,
            Err(e) if Instant::now() > deadline => {
                panic!("the door never opened for {from}: {e}\n{}", server.output())
            }
            Err(_) => {}
        }
    }
}

/// Waits until a new connection from `from` no longer gets through; returns when that was
/// seen, measured from `since`.
fn wait_shut(pair: &Pair, from: &str, since: Instant, server: &impl Server) -> Duration {
    let deadline = Instant::now() + WAIT + OPEN_FOR;
    loop {
        if try_connect(pair, from, SHUT_WAIT).is_err() {
            return since.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "the door never closed for {from}\n{}",
            server.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The whole story of one door: shut, knock, open for `client` only, shut again for new
/// connections after the timeout while the connection made in time still answers.
fn prove_door(pair: &Pair, server: &impl Server, client: &str, other: &str, knock: impl FnOnce()) {
    assert_shut(pair, client, "before the knock", server);
    let knocked = Instant::now();
    knock();
    let mut kept = wait_open(pair, client, server);
    assert_eq!(kept.echo("in time").unwrap(), "in time");
    assert_shut(pair, other, "another address, after the knock", server);
    let shut_after = wait_shut(pair, client, knocked, server);
    assert!(
        shut_after + SHUT_WAIT >= OPEN_FOR,
        "the door closed after {shut_after:?}, before its {OPEN_FOR:?}\n{}",
        server.output()
    );
    assert_eq!(
        kept.echo("still here")
            .expect("the established connection outlives its door"),
        "still here"
    );
}

fn knock(pair: &Pair, client: &str, hits: &str) {
    let server = if addr(client).is_ipv6() {
        SERVER_V6
    } else {
        SERVER_V4
    };
    pair.knock(&[server, hits]);
}

/// A pair whose client has a second address of each family. The IPv6 one is deprecated
/// (preferred_lft 0), so the kernel never picks it as a source on its own: only a
/// connection bound to it uses it.
fn pair_with_others() -> Pair {
    let pair = Pair::with_client_addrs(&[OTHER_V4]);
    ip(&[
        "-n",
        &pair.client,
        "addr",
        "add",
        &format!("{OTHER_V6}/64"),
        "dev",
        &pair.client_if,
        "nodad",
        "preferred_lft",
        "0",
    ]);
    pair
}

// ---------------------------------------------------------------------------------------
// nftables doors.

netns_test!(
    nft_door_opens_for_the_knocker_only_and_the_kernel_closes_it,
    || {
        let pair = pair_with_others();
        let (fw, _service) = nft_server(&pair);
        let lite = KnockdLite::start(
            &pair,
            &format!("[openSSH]\n\tsequence = 7000,8000:udp,9000\n{NFT_DOOR}"),
            &[],
        );
        prove_door(&pair, &lite, CLIENT_V4, OTHER_V4, || {
            knock(&pair, CLIENT_V4, "7000,8000:udp,9000")
        });
        let log = lite.log_bodies();
        assert!(
            log.contains(
                &"192.0.2.1: openSSH: nft add inet knock ssh4 192.0.2.1 timeout 3s".to_string()
            ),
            "{}",
            lite.output()
        );
        assert!(
            !log.iter().any(|l| l.contains("running command")),
            "no process per knock"
        );
        assert_eq!(fw.expires_ms("inet knock ssh4", CLIENT_V4), None);
    }
);

netns_test!(nft_door_ipv6_one_time, || {
    let pair = pair_with_others();
    let (_fw, _service) = nft_server(&pair);
    let dir = TempDir::new("fw-otp");
    std::fs::write(dir.path().join("otp.list"), "7101,7102\n7201,7202\n").unwrap();
    let lite = KnockdLite::start_in(
        &pair,
        dir,
        &format!("[otp]\n\tone_time_sequences = @DIR@/otp.list\n{NFT_DOOR}"),
        &[],
    );
    prove_door(&pair, &lite, CLIENT_V6, OTHER_V6, || {
        knock(&pair, CLIENT_V6, "7101,7102")
    });
    assert!(
        lite.log_bodies().contains(
            &"2001:db8::1: otp: nft add inet knock ssh6 2001:db8::1 timeout 3s".to_string()
        ),
        "{}",
        lite.output()
    );
    // The used line stays used: knocking it again opens nothing.
    knock(&pair, CLIENT_V6, "7101,7102");
    assert_shut(&pair, CLIENT_V6, "a used one-time sequence", &lite);
});

netns_test!(nft_door_hmac, || {
    let pair = Pair::new();
    let (_fw, _service) = nft_server(&pair);
    let dir = TempDir::new("fw-hmac");
    let secret = "a shared secret for the firewall test";
    let key = dir.path().join("door.key");
    std::fs::write(&key, format!("{secret}\n")).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let lite = KnockdLite::start_in(
        &pair,
        dir,
        &format!("[hdoor]\n\thmac_secret_file = @DIR@/door.key\n\thmac_length = 3\n{NFT_DOOR}"),
        &[],
    );
    assert_shut(&pair, CLIENT_V4, "before the knock", &lite);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut params = HmacParams::new("hdoor");
    params.length = 3;
    let hits = params.derive_at(&Secret::from_text(secret), now).unwrap();
    let hits: Vec<String> = hits.iter().map(|h| h.port.to_string()).collect();
    knock(&pair, CLIENT_V4, &hits.join(","));
    let mut conn = wait_open(&pair, CLIENT_V4, &lite);
    assert_eq!(conn.echo("hmac").unwrap(), "hmac");
    let knocked = Instant::now();
    wait_shut(&pair, CLIENT_V4, knocked, &lite);
});

netns_test!(a_second_knock_refreshes_the_element_timeout, || {
    let pair = Pair::new();
    let (fw, _service) = nft_server(&pair);
    let lite = KnockdLite::start(&pair, &format!("[d]\n\tsequence = 7300\n{NFT_DOOR}"), &[]);
    let added = |n| {
        lite.wait_log("nft add inet knock ssh4 192.0.2.1 timeout 3s", n, WAIT);
    };
    knock(&pair, CLIENT_V4, "7300");
    added(1);
    std::thread::sleep(Duration::from_millis(1500));
    let before = fw
        .expires_ms("inet knock ssh4", CLIENT_V4)
        .expect("the element is there");
    assert!(before <= 1600, "{before} ms left after 1.5 s of 3 s");
    knock(&pair, CLIENT_V4, "7300");
    added(2);
    let after = fw
        .expires_ms("inet knock ssh4", CLIENT_V4)
        .expect("the element is there");
    assert!(
        after >= 2500,
        "the second knock left {after} ms, not a fresh 3 s"
    );
});

netns_test!(nft_door_closes_on_time_after_sigkill, || {
    let pair = Pair::new();
    let (fw, _service) = nft_server(&pair);
    let mut lite = KnockdLite::start(
        &pair,
        &format!("[d]\n\tsequence = 7400,7401\n{NFT_DOOR}"),
        &[],
    );
    let knocked = Instant::now();
    knock(&pair, CLIENT_V4, "7400,7401");
    let _conn = wait_open(&pair, CLIENT_V4, &lite);
    lite.signal(libc::SIGKILL);
    lite.wait_gone(WAIT);
    // No daemon: the door is still open, and the kernel closes it on time.
    let _again =
        try_connect(&pair, CLIENT_V4, Duration::from_secs(1)).expect("open after the kill");
    wait_shut(&pair, CLIENT_V4, knocked, &lite);
    assert_eq!(fw.expires_ms("inet knock ssh4", CLIENT_V4), None);
});

netns_test!(a_clean_stop_takes_the_knockers_out_of_the_set, || {
    let pair = Pair::new();
    let (fw, _service) = nft_server(&pair);
    let mut lite = KnockdLite::start(
        &pair,
        "[d]\n\tsequence = 7500\n\tnft_set = inet knock ssh4\n\tcmd_timeout = 600\n",
        &[],
    );
    knock(&pair, CLIENT_V4, "7500");
    let _conn = wait_open(&pair, CLIENT_V4, &lite);
    lite.signal(libc::SIGTERM);
    assert!(lite.wait_exit(WAIT).success());
    assert_eq!(fw.expires_ms("inet knock ssh4", CLIENT_V4), None);
    assert_shut(&pair, CLIENT_V4, "after SIGTERM", &lite);
    assert!(
        lite.log_bodies().contains(
            &"192.0.2.1: d: shutting down, nft delete inet knock ssh4 192.0.2.1".to_string()
        ),
        "{}",
        lite.output()
    );
});

netns_test!(sets_are_checked_at_start_up_on_sighup_and_by_check, || {
    let pair = Pair::new();
    let fw = Firewall::server(&pair);
    fw.nft_apply(
        "table inet knock {\n\tset ok4 { type ipv4_addr; flags timeout; }\n\
         \tset plain4 { type ipv4_addr; }\n\tset ok6 { type ipv6_addr; flags timeout; }\n}\n",
    );
    let dir = TempDir::new("fw-check");
    let conf = dir.path().join("k.conf");
    let check = |text: &str, unprivileged: bool| {
        std::fs::write(&conf, text).unwrap();
        let mut cmd = pair.server_cmd(if unprivileged { "setpriv" } else { "env" });
        if unprivileged {
            cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
        }
        cmd.arg(bin("knockd-lite"))
            .arg("--check")
            .arg("-c")
            .arg(&conf);
        output(&mut cmd)
    };
    // Wrong sets: exit 2, path:line, the set and what is wrong.
    for (door, want) in [
        (
            "nft_set = inet knock nope",
            "3: Nft_Set = inet knock nope: set nope does not exist in table inet knock",
        ),
        (
            "nft_set = ip knock ok4",
            "3: Nft_Set = ip knock ok4: table ip knock does not exist",
        ),
        (
            "nft_set = inet knock plain4",
            "3: Nft_Set = inet knock plain4: has no \"flags timeout\"",
        ),
        (
            "nft_set_6 = inet knock ok4",
            "3: Nft_Set_6 = inet knock ok4: holds ipv4_addr, not ipv6_addr",
        ),
    ] {
        let out = check(&format!("[d]\nsequence = 1\n{door}\n"), false);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{door}: {stderr}");
        assert!(
            stderr.contains(&format!("{}:{want}", conf.display())),
            "{door}: {stderr}"
        );
    }
    // A good one: the report and the ruleset lines, which nft takes as they are.
    let good = "[d]\nsequence = 1\nnft_set = inet knock ok4\nnft_set_6 = inet knock ok6\n";
    let out = check(good, false);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("  [d] Nft_Set   inet knock ok4: ok (ipv4_addr, flags timeout)\n"),
        "{stdout}"
    );
    let ruleset = &stdout[stdout.find("table inet knock {").expect("ruleset lines")..];
    fw.nft_apply(ruleset);
    // Without CAP_NET_ADMIN: the sets are not checked, and --check says so and why.
    let out = check(good, true);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("  [d] Nft_Set   inet knock ok4: NOT CHECKED: Operation not permitted (os error 1) (nftables doors need CAP_NET_ADMIN"),
        "{stdout}"
    );
    // Start-up refuses a missing set; SIGHUP keeps the running config.
    let mut lite = KnockdLite::start(
        &pair,
        "[d]\n\tsequence = 7600\n\tnft_set = inet knock ok4\n",
        &[],
    );
    std::fs::write(
        lite.config_path(),
        format!(
            "[options]\n\tlogfile = {}\n[d]\n\tsequence = 7600\n\tnft_set = inet knock gone\n",
            lite.path("knockd-lite.log").display()
        ),
    )
    .unwrap();
    lite.signal(libc::SIGHUP);
    lite.wait_log("config not reloaded, the running one stays: ", 1, WAIT);
    assert!(
        lite.log()
            .contains("Nft_Set = inet knock gone: set gone does not exist"),
        "{}",
        lite.output()
    );
    lite.signal(libc::SIGTERM);
    lite.wait_exit(WAIT);
    let bad = output(
        pair.server_cmd(bin("knockd-lite"))
            .args(["-i", &pair.server_if, "-c"])
            .arg(lite.config_path()),
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("set gone does not exist"));
});

// ---------------------------------------------------------------------------------------
// Command doors with iptables.

netns_test!(knockd_iptables_door_reference, [Need::Knockd], || {
    let pair = pair_with_others();
    let (_fw, _service) = iptables_server(&pair);
    let mut knockd = Knockd::start(
        &pair,
        &format!("[openSSH]\n\tsequence = 7000,8000,9000\n{IPTABLES_DOOR}"),
    );
    prove_door(&pair, &knockd, CLIENT_V4, OTHER_V4, || {
        knock(&pair, CLIENT_V4, "7000,8000,9000")
    });
    // SIGKILL right after opening: knockd's forked child still runs the stop.
    let knocked = Instant::now();
    knock(&pair, CLIENT_V4, "7000,8000,9000");
    let _conn = wait_open(&pair, CLIENT_V4, &knockd);
    knockd.kill();
    wait_shut(&pair, CLIENT_V4, knocked, &knockd);
});

netns_test!(lite_iptables_door, || {
    let pair = pair_with_others();
    let (_fw, _service) = iptables_server(&pair);
    let lite = KnockdLite::start(
        &pair,
        &format!("[openSSH]\n\tsequence = 7000,8000,9000\n{IPTABLES_DOOR}"),
        &[],
    );
    prove_door(&pair, &lite, CLIENT_V4, OTHER_V4, || {
        knock(&pair, CLIENT_V4, "7000,8000,9000")
    });
});

/// The iptables door with its stop also appending to `@DIR@/events`, so a test can count
/// how often it ran (a second `iptables -D` would fail, and still count); Cmd_Timeout `secs`.
fn counted_door(sequence: &str, secs: u64) -> String {
    format!(
        "[openSSH]\n\tsequence = {sequence}\n\
         \tstart_command = /usr/sbin/iptables -I INPUT -s %IP% -p tcp --dport 2222 -j ACCEPT\n\
         \tcmd_timeout = {secs}\n\
         \tstop_command = /usr/sbin/iptables -D INPUT -s %IP% -p tcp --dport 2222 -j ACCEPT; \
         echo stop %IP% >> @DIR@/events\n"
    )
}

/// Whether the state folder holds a stop journal.
fn has_journal(lite: &KnockdLite) -> bool {
    std::fs::read_dir(lite.path("state")).is_ok_and(|d| {
        d.flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".stops"))
    })
}

/// Waits `after` more, then checks the stop ran exactly once.
fn assert_stopped_once(lite: &KnockdLite, after: Duration) {
    std::thread::sleep(after);
    assert_eq!(
        lite.events(),
        ["stop 192.0.2.1"],
        "the stop ran once\n{}",
        lite.output()
    );
}

// knockd 0.8's forked child closes the door after a SIGKILL of the daemon (the reference
// above); knockd-lite's stop keeper does the same, with no restart.
netns_test!(lite_iptables_door_closes_on_time_after_sigkill, || {
    let pair = Pair::new();
    let (_fw, _service) = iptables_server(&pair);
    let mut lite = KnockdLite::start(
        &pair,
        &counted_door("7800,7801", KEPT_OPEN_FOR.as_secs()),
        &[],
    );
    let keeper = lite.wait_keeper();
    let knocked = Instant::now();
    knock(&pair, CLIENT_V4, "7800,7801");
    let mut kept = wait_open(&pair, CLIENT_V4, &lite);
    lite.signal(libc::SIGKILL);
    lite.wait_gone(WAIT);
    let _again =
        try_connect(&pair, CLIENT_V4, Duration::from_secs(1)).expect("open after the kill");
    let shut_after = wait_shut(&pair, CLIENT_V4, knocked, &lite);
    assert!(
        shut_after + SHUT_WAIT >= KEPT_OPEN_FOR,
        "the door closed after {shut_after:?}, before its {KEPT_OPEN_FOR:?}\n{}",
        lite.output()
    );
    assert_eq!(kept.echo("kept").unwrap(), "kept");
    lite.wait_for("the keeper to leave", WAIT, || {
        !knock_e2e::lite::is_keeper(keeper)
    });
    let log = lite.log_bodies();
    let orphaned = log
        .iter()
        .position(|l| {
            l.contains(" ended without a clean stop: its stop keeper (pid ")
                && l.ends_with(") runs the 1 pending stop command when due")
        })
        .unwrap_or_else(|| panic!("{}", lite.output()));
    assert_eq!(
        log[orphaned + 1..orphaned + 3],
        [
            "192.0.2.1: openSSH: command timeout".to_string(),
            "openSSH: running command: /usr/sbin/iptables -D INPUT -s 192.0.2.1 -p tcp \
             --dport 2222 -j ACCEPT; echo stop 192.0.2.1 >> "
                .to_string()
                + &lite.path("events").display().to_string()
        ],
        "{}",
        lite.output()
    );
    assert!(
        !has_journal(&lite),
        "the keeper took the stop out of the journal"
    );
    // A start later finds nothing to run again.
    lite.start_again(&pair, &[]);
    assert_stopped_once(&lite, Duration::from_millis(500));
    assert!(!lite.log().contains("overdue"), "{}", lite.output());
});

// -d, a SIGHUP, then a clean stop: the stop runs at the SIGTERM, and the keeper, told
// goodbye, runs nothing.
netns_test!(lite_clean_stop_runs_each_stop_once, || {
    let pair = Pair::new();
    let (_fw, _service) = iptables_server(&pair);
    let dir = TempDir::new("fw-clean");
    let pidfile = dir.path().join("knockd-lite.pid");
    let mut lite = KnockdLite::start_daemon(
        &pair,
        dir,
        &counted_door("7810,7811", KEPT_OPEN_FOR.as_secs()),
        &pidfile,
    );
    let keeper = lite.wait_keeper();
    lite.signal(libc::SIGHUP);
    lite.wait_log("re-read ", 1, WAIT);
    assert_eq!(
        lite.keeper_pid(),
        Some(keeper),
        "the keeper stays across a SIGHUP"
    );
    knock(&pair, CLIENT_V4, "7810,7811");
    let _conn = wait_open(&pair, CLIENT_V4, &lite);
    // A unit stop signals every process of the unit: the keeper waits for the daemon's
    // goodbye.
    lite.signal_keeper(libc::SIGTERM);
    lite.signal(libc::SIGTERM);
    lite.wait_gone(WAIT);
    assert_shut(&pair, CLIENT_V4, "after SIGTERM", &lite);
    assert!(
        !knock_e2e::lite::is_keeper(keeper),
        "the keeper left with the daemon"
    );
    assert_stopped_once(&lite, KEPT_OPEN_FOR);
    let log = lite.log_bodies();
    assert!(
        log.contains(&"192.0.2.1: openSSH: shutting down, running the stop command now".into()),
        "{}",
        lite.output()
    );
    assert!(
        !log.iter().any(|l| l.contains("keeper")),
        "nothing for the keeper to say\n{}",
        lite.output()
    );
});

// Both killed (the unit's processes killed together, a reboot): the journal runs the
// overdue stop at the next start, once.
netns_test!(
    lite_command_door_keeper_and_daemon_killed_then_restart_runs_the_overdue_stop_once,
    || {
        let pair = Pair::new();
        let (_fw, _service) = iptables_server(&pair);
        let mut lite = KnockdLite::start(
            &pair,
            &counted_door("7700,7701", KEPT_OPEN_FOR.as_secs()),
            &[],
        );
        knock(&pair, CLIENT_V4, "7700,7701");
        let _conn = wait_open(&pair, CLIENT_V4, &lite);
        lite.signal(libc::SIGKILL);
        lite.signal_keeper(libc::SIGKILL);
        lite.wait_gone(WAIT);
        // The stop was due KEPT_OPEN_FOR after the start; with neither process the door stays
        // open.
        std::thread::sleep(KEPT_OPEN_FOR + Duration::from_millis(500));
        let _still = try_connect(&pair, CLIENT_V4, Duration::from_secs(1))
            .expect("nothing closed the door while both were dead");
        lite.start_again(&pair, &[]);
        lite.wait_log(
            "192.0.2.1: openSSH: running overdue stop command (was due ",
            1,
            WAIT,
        );
        let knocked = Instant::now();
        wait_shut(&pair, CLIENT_V4, knocked, &lite);
        let log = lite.log_bodies();
        let overdue = log
            .iter()
            .position(|l| l.contains("running overdue stop command"))
            .unwrap();
        assert!(
            log[overdue + 1]
                .starts_with("openSSH: running command: /usr/sbin/iptables -D INPUT -s 192.0.2.1 "),
            "{}",
            lite.output()
        );
        assert_stopped_once(&lite, Duration::from_millis(500));
    }
);

// Started again while the dead daemon's keeper still waits: the keeper hands the stop
// back, the new daemon runs it when due, once.
netns_test!(
    lite_restart_takes_the_stops_over_from_a_surviving_keeper,
    || {
        let pair = Pair::new();
        let (_fw, _service) = iptables_server(&pair);
        let mut lite = KnockdLite::start(&pair, &counted_door("7900,7901", 6), &[]);
        let knocked = Instant::now();
        knock(&pair, CLIENT_V4, "7900,7901");
        let _conn = wait_open(&pair, CLIENT_V4, &lite);
        let old = lite.wait_keeper();
        lite.signal(libc::SIGKILL);
        lite.wait_gone(WAIT);
        lite.start_again(&pair, &[]);
        assert!(!knock_e2e::lite::is_keeper(old), "the old keeper left");
        lite.wait_log(
            &format!(
                "] the stop keeper (pid {old}) of an earlier knockd-lite handed its stops over"
            ),
            1,
            WAIT,
        );
        lite.wait_log(
            "] 192.0.2.1: openSSH: stop command pending from before the restart, due in ",
            1,
            WAIT,
        );
        let shut_after = wait_shut(&pair, CLIENT_V4, knocked, &lite);
        assert!(
            shut_after + SHUT_WAIT >= Duration::from_secs(6),
            "closed after {shut_after:?}\n{}",
            lite.output()
        );
        assert_stopped_once(&lite, Duration::from_millis(500));
        let new = lite.wait_keeper();
        assert_ne!(new, old);
    }
);

// Orphaned, then SIGTERM (systemd stopping what is left of the unit): the keeper runs its
// stops at once, as the daemon's SIGTERM would.
netns_test!(an_orphaned_keeper_runs_its_stops_at_once_on_sigterm, || {
    let pair = Pair::new();
    let (_fw, _service) = iptables_server(&pair);
    let mut lite = KnockdLite::start(&pair, &counted_door("7950,7951", 600), &[]);
    knock(&pair, CLIENT_V4, "7950,7951");
    let _conn = wait_open(&pair, CLIENT_V4, &lite);
    lite.signal(libc::SIGKILL);
    lite.wait_gone(WAIT);
    lite.wait_log(" ended without a clean stop: its stop keeper ", 1, WAIT);
    let keeper = lite.signal_keeper(libc::SIGTERM);
    lite.wait_events(1, WAIT);
    assert_shut(&pair, CLIENT_V4, "after the keeper's SIGTERM", &lite);
    lite.wait_for("the keeper to leave", WAIT, || {
        !knock_e2e::lite::is_keeper(keeper)
    });
    assert!(
        lite.log_bodies()
            .contains(&"192.0.2.1: openSSH: shutting down, running the stop command now".into()),
        "{}",
        lite.output()
    );
    assert!(!has_journal(&lite));
    assert_stopped_once(&lite, Duration::from_millis(300));
});
