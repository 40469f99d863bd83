//! knockd-lite's commands and files, end to end: start and stop timing, stops run at
//! SIGTERM, one-time lists consumed in place, and the log file in knockd's format.

use std::path::{Path, PathBuf};
use std::time::Duration;

use knock_e2e::knockd::DEBIAN_KNOCK;
use knock_e2e::lite::KnockdLite;
use knock_e2e::server::wait_lines;
use knock_e2e::{Pair, SERVER_V4, SERVER_V6, Server, TempDir, WAIT, check, netns_test};

fn seconds(path: &Path) -> f64 {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{}: {text:?}: {e}", path.display()))
}

/// The index of the first log line (without its stamp) that starts with `prefix`.
fn position(lite: &KnockdLite, prefix: &str) -> usize {
    lite.log_bodies()
        .iter()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?}:\n{}", lite.output()))
}

netns_test!(
    the_stop_command_runs_cmd_timeout_after_the_start_finished,
    |pair| {
        let lite = KnockdLite::start(
        &pair,
        "[door]
\tsequence = 7101,7102
\tcmd_timeout = 1
\tstart_command = date +%s.%N > @DIR@/began; sleep 0.5; date +%s.%N > @DIR@/done; echo start %IP% >> @DIR@/events
\tstop_command = date +%s.%N > @DIR@/stopped; echo stop %IP% >> @DIR@/events
",
        &[],
    );
        pair.knock(&[SERVER_V6, "7101,7102"]);
        let events = lite.wait_events(2, WAIT);
        assert_eq!(
            events,
            ["start 2001:db8::1", "stop 2001:db8::1"],
            "{}",
            lite.output()
        );
        let (began, done, stopped) = (
            seconds(&lite.path("began")),
            seconds(&lite.path("done")),
            seconds(&lite.path("stopped")),
        );
        // Lower bounds only: the stop waits Cmd_Timeout from the end of the start command,
        // not from its beginning.
        assert!(
            stopped - done >= 1.0,
            "the stop ran {} s after the start finished",
            stopped - done
        );
        assert!(
            stopped - began >= 1.5,
            "the stop ran {} s after the start began",
            stopped - began
        );
        let opened = position(&lite, "2001:db8::1: door: OPEN SESAME");
        let start_cmd = position(&lite, "door: running command: date +%s.%N > ");
        let timeout = position(&lite, "2001:db8::1: door: command timeout");
        let stop_cmd = position(
            &lite,
            &format!(
                "door: running command: date +%s.%N > {}/stopped",
                lite.dir().display()
            ),
        );
        assert!(
            opened < start_cmd && start_cmd < timeout && timeout < stop_cmd,
            "{}",
            lite.output()
        );
    }
);

netns_test!(sigterm_runs_pending_stop_commands_then_exits_0, |pair| {
    let mut lite = KnockdLite::start(
        &pair,
        "[quick]
\tsequence = 7101,7102
\tcmd_timeout = 3600
\tstart_command = echo open %IP% >> @DIR@/events
\tstop_command = echo close %IP% >> @DIR@/events
[slow]
\tsequence = 7201,7202
\tcmd_timeout = 3600
\tstart_command = sleep 1; echo slow-open %IP% >> @DIR@/events
\tstop_command = echo slow-close %IP% >> @DIR@/events
",
        &[],
    );
    pair.knock(&[SERVER_V4, "7101,7102"]);
    lite.wait_events(1, WAIT);
    // The slow door's start is still running when the signal comes: its stop waits for it.
    pair.knock(&[SERVER_V6, "7201,7202"]);
    lite.wait_log(": slow: OPEN SESAME", 1, WAIT);
    lite.signal(libc::SIGTERM);
    let status = lite.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", lite.output());
    // The quick door's stop may come before or after the slow door's start; the slow
    // door's stop always comes after its start.
    let events = lite.events();
    let mut sorted = events.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "close 192.0.2.1",
            "open 192.0.2.1",
            "slow-close 2001:db8::1",
            "slow-open 2001:db8::1"
        ],
        "{}",
        lite.output()
    );
    let slow_open = events
        .iter()
        .position(|e| e.starts_with("slow-open"))
        .unwrap();
    let slow_close = events
        .iter()
        .position(|e| e.starts_with("slow-close"))
        .unwrap();
    assert!(slow_open < slow_close, "{events:?}");
    let bodies = lite.log_bodies();
    assert!(
        bodies.contains(&"192.0.2.1: quick: shutting down, running the stop command now".into()),
        "{}",
        lite.output()
    );
    assert_eq!(bodies.last().map(String::as_str), Some("shutting down"));
});

// The hostile run's finding: SIGTERM while `sleep 27; echo open` ran: the stop ran at
// 20 s, the process exited, and the start finished afterwards, leaving the door open. The
// start is now killed with its process group (20 s after the signal), then its stop runs.
netns_test!(
    sigterm_kills_a_start_still_running_before_its_stop_so_the_door_ends_closed,
    |pair| {
        let mut lite = KnockdLite::start(
            &pair,
            "[door]
	sequence = 7301,7302
	start_command = sleep 22; echo open %IP% >> @DIR@/events
	stop_command = echo close %IP% >> @DIR@/events
",
            &[],
        );
        pair.knock(&[SERVER_V4, "7301,7302"]);
        lite.wait_log("door: running command: sleep 22", 1, WAIT);
        let signalled = std::time::Instant::now();
        lite.signal(libc::SIGTERM);
        let status = lite.wait_exit(Duration::from_secs(40));
        assert_eq!(status.code(), Some(0), "{}", lite.output());
        // Past the moment the start would have finished.
        let until = Duration::from_secs(23);
        if let Some(left) = until.checked_sub(signalled.elapsed()) {
            std::thread::sleep(left);
        }
        assert_eq!(lite.events(), ["close 192.0.2.1"], "{}", lite.output());
        let bodies = lite.log_bodies();
        assert!(
            bodies
                .iter()
                .any(|l| l.contains("still running after 20 s at shutdown: killed")),
            "{}",
            lite.output()
        );
        assert_eq!(bodies.last().map(String::as_str), Some("shutting down"));
    }
);

/// Starts knockd-lite with one door on the one-time list `@DIR@/otp.list`, which holds
/// `list`; returns the server and the list's path.
fn start_otp(pair: &Pair, list: &str) -> (KnockdLite, PathBuf) {
    let dir = TempDir::new("lite-otp");
    let path = dir.path().join("otp.list");
    std::fs::write(&path, list).unwrap();
    let door = "[otp]
\tone_time_sequences = @DIR@/otp.list
\tstart_command = echo otp %IP% >> @DIR@/events
";
    (KnockdLite::start_in(pair, dir, door, &[]), path)
}

netns_test!(one_time_lines_are_consumed_in_place, |pair| {
    let original = "# three one-time sequences\n7101,7102:udp\n 7201,7202\n7301:udp,7302\n";
    let (lite, list) = start_otp(&pair, original);
    pair.knock(&[SERVER_V4, "7101,7102:udp"]);
    lite.wait_events(1, WAIT);
    assert_eq!(
        std::fs::read_to_string(&list).unwrap(),
        "# three one-time sequences\n#101,7102:udp\n 7201,7202\n7301:udp,7302\n"
    );
    // A used line never opens again; the next one does (with Debian's knock too).
    pair.knock(&[SERVER_V4, "7101,7102:udp"]);
    if Path::new(DEBIAN_KNOCK).exists() {
        check(
            pair.client_cmd(DEBIAN_KNOCK)
                .args(["-6", SERVER_V6, "7201", "7202"]),
        );
    } else {
        pair.knock(&[SERVER_V6, "7201,7202"]);
    }
    let events = lite.wait_events(2, WAIT);
    assert_eq!(
        events,
        ["otp 192.0.2.1", "otp 2001:db8::1"],
        "{}",
        lite.output()
    );
    assert_eq!(
        std::fs::read_to_string(&list).unwrap(),
        "# three one-time sequences\n#101,7102:udp\n#7201,7202\n7301:udp,7302\n"
    );
    pair.knock(&[SERVER_V4, "7301:udp,7302"]);
    lite.wait_events(3, WAIT);
    lite.wait_log("otp: no one-time sequences left, door disabled", 1, WAIT);
    assert_eq!(
        std::fs::read_to_string(&list).unwrap(),
        "# three one-time sequences\n#101,7102:udp\n#7201,7202\n#301:udp,7302\n"
    );
    let bodies = lite.log_bodies();
    for want in [
        "otp: next one-time sequence is on line 3",
        "otp: next one-time sequence is on line 4",
    ] {
        assert!(bodies.contains(&want.to_string()), "{}", lite.output());
    }
    assert_eq!(lite.events().len(), 3);
});

netns_test!(
    a_one_time_line_that_cannot_be_marked_runs_no_command,
    |pair| {
        let (lite, list) = start_otp(&pair, "7101,7102\n7201,7202\n");
        // The file changes under the server: the line it would mark is no longer there.
        std::fs::write(&list, "\n").unwrap();
        pair.knock(&[SERVER_V4, "7101,7102"]);
        lite.wait_log("otp: cannot mark line 1 of ", 1, WAIT);
        assert!(lite.log().contains("command not run"), "{}", lite.output());
        std::thread::sleep(Duration::from_millis(300));
        assert!(lite.events().is_empty(), "{}", lite.output());
        assert!(!lite.log().contains("running command"), "{}", lite.output());
    }
);

/// `[YYYY-MM-DD HH:MM] ` at the start of a log line.
fn has_knockd_stamp(line: &str) -> bool {
    let b = line.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() > 19
        && b[0] == b'['
        && digits(1..5)
        && b[5] == b'-'
        && digits(6..8)
        && b[8] == b'-'
        && digits(9..11)
        && b[11] == b' '
        && digits(12..14)
        && b[14] == b':'
        && digits(15..17)
        && &b[17..19] == b"] "
}

netns_test!(the_log_file_has_knockd_lines_and_no_blank_ones, |pair| {
    let mut lite = KnockdLite::start(
        &pair,
        "[door]
\tsequence = 7101,7102:udp,7103
\tseq_timeout = 1
\tstart_command = echo opened %IP% >> @DIR@/events
[failing]
\tsequence = 7201
\tstart_command = exit 3
",
        &[],
    );
    pair.knock(&[SERVER_V4, "7101,7102:udp,7103"]);
    lite.wait_events(1, WAIT);
    // Two steps of three, then silence: the attempt expires on the timer.
    pair.knock(&[SERVER_V4, "7101,7102:udp"]);
    lite.wait_log("sequence timeout (stage 2)", 1, WAIT);
    pair.knock(&[SERVER_V4, "7201"]);
    lite.wait_log("non-zero status code", 1, WAIT);
    lite.signal(libc::SIGINT);
    assert_eq!(lite.wait_exit(WAIT).code(), Some(0), "{}", lite.output());

    let log = lite.log();
    assert!(log.ends_with("] shutting down\n"), "{log:?}");
    for line in log.lines() {
        assert!(has_knockd_stamp(line), "{line:?} in\n{log}");
    }
    let events =
        format!("echo opened %IP% >> {}/events", lite.dir().display()).replace("%IP%", "192.0.2.1");
    let all = lite.log_bodies();
    // The sandbox's start-up lines come first (what the kernel offers, the worker's user);
    // `sandbox.rs` pins them.
    assert!(all[0].starts_with("sandbox: "), "{all:?}");
    let bodies: Vec<String> = all
        .into_iter()
        // The kernel may add the link-local address just after start-up.
        .filter(|l| !l.starts_with(&format!("{}: addresses", pair.server_if)))
        .filter(|l| !l.starts_with("sandbox: "))
        .collect();
    assert_eq!(
        bodies,
        [
            format!("starting up, listening on {}", pair.server_if),
            "192.0.2.1: door: Stage 1".into(),
            "192.0.2.1: door: Stage 2".into(),
            "192.0.2.1: door: Stage 3".into(),
            "192.0.2.1: door: OPEN SESAME".into(),
            format!("door: running command: {events}"),
            "192.0.2.1: door: Stage 1".into(),
            "192.0.2.1: door: Stage 2".into(),
            "192.0.2.1: door: sequence timeout (stage 2)".into(),
            "192.0.2.1: failing: Stage 1".into(),
            "192.0.2.1: failing: OPEN SESAME".into(),
            "failing: running command: exit 3".into(),
            "failing: command returned non-zero status code (3)".into(),
            "shutting down".into(),
        ],
        "{log}"
    );
});

netns_test!(a_hanging_command_is_killed_at_the_command_limit, |pair| {
    let lite = KnockdLite::start(
        &pair,
        "[door]
\tsequence = 7101
\tstart_command = echo $$ > @DIR@/pid; sleep 600
",
        &["--command-limit", "1"],
    );
    pair.knock(&[SERVER_V4, "7101"]);
    lite.wait_log("door: command still running after 1 s, killed", 1, WAIT);
    let pid = wait_lines(&lite.path("pid"), 1, WAIT)[0].clone();
    // The shell is gone (or at most a zombie about to be reaped).
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = state
        .rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().next());
    assert!(matches!(state, None | Some("Z")), "{pid} is {state:?}");
    assert!(lite.log().contains("192.0.2.1: door: OPEN SESAME"));
});
