//! Wall-clock steps: timers and timeouts run on the monotonic clock, so a server started
//! (or reloaded) while the wall clock was wrong neither freezes its timers once the clock is
//! set right nor fires them early; HMAC windows follow the corrected wall clock at once, and
//! a used HMAC counter stays used across the steps.

use std::collections::{BTreeSet, HashMap};

use crate::support::{Harness, config, knock_trace, local_addrs};
use knock_core::hit::Hit;
use knock_core::hmac::HmacParams;
use knock_core::secret::Secret;
use knockd_engine::{Action, HMAC_RECHECK_MS, HmacInput, Inputs};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const SECRET: &str = "correct horse battery staple";

/// A fixed door with a 5 s `Seq_Timeout` and a stop 10 s after the start, and an HMAC door.
const CONF: &str = "[open]\nsequence = 7000,8000,9000\nseq_timeout = 5\n\
                    start_command = open %IP%\ncmd_timeout = 10\nstop_command = close %IP%\n\
                    [ssh]\nhmac_secret_file = /k\nseq_timeout = 10\nstart_command = ssh %IP%\n";

fn inputs() -> Inputs {
    Inputs {
        hmac: HashMap::from([(
            "ssh".to_string(),
            HmacInput {
                secret: Secret::from_text(SECRET),
                used: BTreeSet::new(),
            },
        )]),
        ..Inputs::default()
    }
}

/// The HMAC door's sequence for the harness's wall clock now.
fn current(h: &Harness) -> Vec<Hit> {
    let params = HmacParams::new("ssh");
    params
        .derive(&Secret::from_text(SECRET), params.counter(h.wall() / 1000))
        .unwrap()
}

fn live_ports(h: &Harness) -> Vec<u16> {
    h.engine.capture_rules().iter().map(|r| r.port).collect()
}

/// Knocks `open` from `src` and lets its start command finish.
fn open_door(h: &mut Harness, src: &str) {
    h.play(&format!(
        "0 {src} tcp 7000\n100 {src} tcp 8000\n100 {src} tcp 9000\n"
    ));
    h.finish_commands();
}

#[test]
fn started_two_hours_ahead_then_corrected() {
    let mut h = Harness::started_off(2 * HOUR, CONF, inputs());
    open_door(&mut h, "192.0.2.10");
    assert_eq!(h.opened(), ["192.0.2.10 open"]);
    // An attempt in progress when the clock is set right.
    h.play("1000 192.0.2.11 tcp 7000\n");
    h.step_wall(-2 * HOUR);

    // Seq_Timeout still expires: 8 s after its first hit, the attempt is gone.
    h.wait(8000);
    h.play("0 192.0.2.11 tcp 8000\n0 192.0.2.11 tcp 9000\n");
    assert!(
        h.logs()
            .contains(&"192.0.2.11: open: sequence timeout (stage 1)".to_string()),
        "{:#?}",
        h.logs()
    );
    assert_eq!(
        h.opened(),
        ["192.0.2.10 open"],
        "a late hit advanced nothing"
    );

    // The stop ran 10 s after the start finished (1 s + 8 s have passed: 1 s to go).
    assert!(h.stopped().is_empty());
    h.wait(999);
    assert!(h.stopped().is_empty());
    h.wait(1);
    assert_eq!(h.stopped(), ["192.0.2.10 open"]);

    // The HMAC door listens on the corrected window and opens for the current sequence.
    let seq = current(&h);
    assert!(seq.iter().all(|x| live_ports(&h).contains(&x.port)));
    h.play(&knock_trace("192.0.2.12", &seq, 100));
    assert_eq!(h.opened(), ["192.0.2.10 open", "192.0.2.12 ssh"]);
}

#[test]
fn the_window_follows_a_step_back_within_a_second() {
    let mut h = Harness::started_off(2 * HOUR, CONF, inputs());
    h.step_wall(-2 * HOUR);
    // Nothing else happens: the engine's own deadline brings the window back.
    let due = h.engine.next_deadline().expect("HMAC doors look again");
    assert!(due.as_millis() <= h.now + HMAC_RECHECK_MS);
    h.wait(HMAC_RECHECK_MS);
    let seq = current(&h);
    assert!(seq.iter().all(|x| live_ports(&h).contains(&x.port)));
    assert!(matches!(
        h.actions.last(),
        Some(Action::CaptureRulesChanged)
    ));
}

#[test]
fn a_used_counter_stays_used_when_the_clock_jumps_ahead_and_back() {
    let mut h = Harness::started_off(0, CONF, inputs());
    let seq = current(&h);
    h.play(&knock_trace("192.0.2.10", &seq, 100));
    assert_eq!(h.opened(), ["192.0.2.10 ssh"]);
    // Two hours ahead for a few seconds (the window moves there), then back.
    h.step_wall(2 * HOUR);
    h.wait(3000);
    h.step_wall(-2 * HOUR);
    h.wait(1000);
    h.play(&knock_trace("192.0.2.11", &seq, 100));
    assert_eq!(h.opened(), ["192.0.2.10 ssh"], "the replay was refused");
    assert!(
        h.logs().last().unwrap().contains("replayed HMAC sequence"),
        "{:#?}",
        h.logs()
    );
}

#[test]
fn a_day_ahead_for_a_second_during_a_reload() {
    let mut h = Harness::started_off(0, CONF, inputs());
    open_door(&mut h, "192.0.2.10");
    h.play("1000 192.0.2.11 tcp 7000\n");
    // SIGHUP while the wall clock reads a day ahead, for one second.
    h.step_wall(DAY);
    let actions = h
        .engine
        .reload(
            &config(CONF),
            Inputs {
                local_addrs: local_addrs(),
                ..inputs()
            },
            h.clock(),
        )
        .unwrap();
    h.record(actions);
    h.wait(1000);
    h.step_wall(-DAY);
    // Nothing fired early: the stop is still pending, the attempt still live.
    assert!(h.stopped().is_empty(), "{:#?}", h.logs());
    assert_eq!(h.engine.stats().live_attempts, 1);
    // The attempt completes within its 5 s, the stop comes 10 s after the start finished.
    h.play("1000 192.0.2.11 tcp 8000\n100 192.0.2.11 tcp 9000\n");
    assert_eq!(h.opened(), ["192.0.2.10 open", "192.0.2.11 open"]);
    h.wait(10_000 - 3100 - 1);
    assert!(h.stopped().is_empty());
    h.wait(1);
    assert_eq!(h.stopped(), ["192.0.2.10 open"]);
    // And the HMAC door opens for the sequence of the corrected clock.
    let seq = current(&h);
    h.play(&knock_trace("192.0.2.12", &seq, 100));
    assert_eq!(h.opened().last().unwrap(), "192.0.2.12 ssh");
}
