//! A wall clock that steps, end to end: knockd-lite under libfaketime, started two hours
//! ahead and then set right, and a day ahead for a second around a SIGHUP. Stop commands run
//! `Cmd_Timeout` after their start (neither never nor at once), `Seq_Timeout` still expires,
//! and an HMAC door opens for the sequence of the corrected clock.
//!
//! Commands stamp their events with `/proc/uptime`, which no faked clock touches.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use knock_core::hit::format_sequence;
use knock_core::hmac::HmacParams;
use knock_core::secret::Secret;
use knock_e2e::faketime::FakeClock;
use knock_e2e::lite::KnockdLite;
use knock_e2e::{Need, SERVER_V4, Server, TempDir, WAIT, netns_test, output};

const SECRET: &str = "a secret for a stepped clock";

const DOORS: &str = "[d]
\tsequence = 7301,7302
\tseq_timeout = 3
\tstart_command = echo start %IP% $(cut -d' ' -f1 /proc/uptime) >> @DIR@/events
\tcmd_timeout = 2
\tstop_command = echo stop %IP% $(cut -d' ' -f1 /proc/uptime) >> @DIR@/events
[h]
\thmac_secret_file = @DIR@/h.key
\tstart_command = echo hmac %IP% >> @DIR@/events
";

/// `WORD IP UPTIME` event lines: the word and the uptime.
fn stamped(line: &str) -> (String, f64) {
    let words: Vec<&str> = line.split_whitespace().collect();
    let uptime = words
        .get(2)
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no uptime in {line:?}"));
    (format!("{} {}", words[0], words[1]), uptime)
}

/// The seconds from the start event `events[start]` to the stop event after it.
fn start_to_stop(events: &[String], start: usize) -> f64 {
    let (s, began) = stamped(&events[start]);
    let (t, stopped) = stamped(&events[start + 1]);
    assert_eq!(
        (s.as_str(), t.as_str()),
        ("start 192.0.2.1", "stop 192.0.2.1"),
        "{events:?}"
    );
    stopped - began
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

netns_test!(
    a_stepped_wall_clock_freezes_no_timer_and_fires_none_early,
    [Need::Faketime],
    |pair| {
        let dir = TempDir::new("clock-step");
        let key = dir.path().join("h.key");
        std::fs::write(&key, format!("{SECRET}\n")).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let clock = FakeClock::new(dir.path(), "+2h");
        // The clock really is two hours ahead for what runs on it.
        let date = output(Command::new("date").arg("+%s").envs(clock.env()));
        let faked: u64 = String::from_utf8_lossy(&date.stdout)
            .trim()
            .parse()
            .unwrap();
        assert!(faked.abs_diff(unix_now() + 7200) < 60, "{faked}");

        let lite = KnockdLite::start_with_env(&pair, dir, DOORS, &[], &clock.env());
        clock.set("+0");

        // Set right after a start two hours ahead: the stop comes Cmd_Timeout after the
        // start, not two hours later.
        pair.knock(&[SERVER_V4, "7301,7302"]);
        let events = lite.wait_events(2, WAIT);
        let took = start_to_stop(&events, 0);
        assert!(took >= 2.0, "the stop ran {took} s after the start");

        // A day ahead for a second, with a SIGHUP in it, while a stop is pending: it
        // still waits its 2 s.
        pair.knock(&[SERVER_V4, "7301,7302"]);
        lite.wait_events(3, WAIT);
        clock.set("+1d");
        lite.signal(libc::SIGHUP);
        lite.wait_log("] re-read ", 1, WAIT);
        std::thread::sleep(Duration::from_millis(500));
        clock.set("+0");
        let events = lite.wait_events(4, WAIT);
        let took = start_to_stop(&events, 2);
        assert!(took >= 2.0, "the stop ran {took} s after the start");

        // Seq_Timeout still expires: the attempt is gone 3 s after its first hit, and a
        // late second hit opens nothing.
        pair.knock(&[SERVER_V4, "7301"]);
        lite.wait_log("192.0.2.1: d: sequence timeout (stage 1)", 1, WAIT);
        pair.knock(&[SERVER_V4, "7302"]);

        // The HMAC door takes the corrected clock's sequence (and so its filter has it).
        let hits = HmacParams::new("h")
            .derive_at(&Secret::from_text(SECRET), unix_now())
            .unwrap();
        pair.knock(&[SERVER_V4, &format_sequence(&hits)]);
        let events = lite.wait_events(5, WAIT);
        assert_eq!(events[4], "hmac 192.0.2.1", "{}", lite.output());
        assert_eq!(lite.events().len(), 5, "{}", lite.output());
    }
);
