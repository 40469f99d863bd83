//! Completions reported by another process (`Engine::on_completed`): a worker's engine sees
//! the packets, the monitor's engine, which sees none, completes the door only when the
//! claim holds, with the very actions the knock made in the worker.

use std::net::IpAddr;

use knockd_engine::{Action, Event, Proof, Refused};

use crate::hmac;
use crate::support::{Harness, knock_trace};

const FIXED: &str = "[ssh]\nsequence = 7000,8000,9000\nseq_timeout = 5\n\
                     start_command = open %IP%\nstop_command = close %IP%\ncmd_timeout = 10\n";
const OTP: &str = "[otp]\none_time_sequences = /var/lib/otp\nseq_timeout = 5\n\
                   start_command = otp %IP%\n";
const LIST: &str = " 11,12\n 21,22\n";

fn src() -> IpAddr {
    "192.0.2.10".parse().unwrap()
}

/// The actions from the knock's `OPEN SESAME` (or replay line) on.
fn from_open(actions: &[Action]) -> Vec<Action> {
    let at = actions
        .iter()
        .position(|a| {
            matches!(
                a,
                Action::Log(Event::OpenSesame { .. } | Event::HmacReplay { .. })
            )
        })
        .expect("a completion");
    actions[at..].to_vec()
}

/// The worker's engine plays `trace`; the monitor's is told of the completion with
/// `proof`: both must come to the same actions.
fn same_in_both(worker: &mut Harness, monitor: &mut Harness, trace: &str, proof: Proof) {
    let before = worker.actions.len();
    worker.play(trace);
    let expected = from_open(&worker.actions[before..]);
    monitor.now = worker.now;
    let got = monitor
        .engine
        .on_completed(monitor.clock(), door_of(&expected), src(), proof)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, expected);
    monitor.record(got);
}

fn door_of(actions: &[Action]) -> &str {
    match &actions[0] {
        Action::Log(Event::OpenSesame { door, .. } | Event::HmacReplay { door, .. }) => door,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_fixed_door_completes_as_the_knock_did() {
    let mut worker = Harness::new(FIXED);
    let mut monitor = Harness::new(FIXED);
    same_in_both(
        &mut worker,
        &mut monitor,
        "0 192.0.2.10 tcp 7000 syn\n100 192.0.2.10 tcp 8000 syn\n100 192.0.2.10 tcp 9000 syn\n",
        Proof::Fixed,
    );
    assert_eq!(monitor.opened(), ["192.0.2.10 ssh"]);
    // The stop is the monitor's: it runs Cmd_Timeout after the start finished.
    monitor.finish_commands();
    monitor.wait(10_000);
    assert_eq!(monitor.stopped(), ["192.0.2.10 ssh"]);
}

#[test]
fn a_one_time_door_takes_only_its_active_line_and_moves_on() {
    let mut worker = Harness::one_time(OTP, &[("otp", LIST)]);
    let mut monitor = Harness::one_time(OTP, &[("otp", LIST)]);
    let refused = monitor
        .engine
        .on_completed(monitor.clock(), "otp", src(), Proof::OneTime { line_no: 2 })
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "door [otp] does not take one-time line 2 now"
    );
    same_in_both(
        &mut worker,
        &mut monitor,
        "0 192.0.2.10 tcp 11 syn\n100 192.0.2.10 tcp 12 syn\n",
        Proof::OneTime { line_no: 1 },
    );
    // Line 1 is used: it is refused now, and line 2 is taken.
    let again =
        monitor
            .engine
            .on_completed(monitor.clock(), "otp", src(), Proof::OneTime { line_no: 1 });
    assert!(matches!(again, Err(Refused::Proof { .. })), "{again:?}");
    same_in_both(
        &mut worker,
        &mut monitor,
        "100 192.0.2.10 tcp 21 syn\n100 192.0.2.10 tcp 22 syn\n",
        Proof::OneTime { line_no: 2 },
    );
    assert_eq!(monitor.opened(), ["192.0.2.10 otp", "192.0.2.10 otp"]);
}

#[test]
fn an_hmac_door_takes_a_live_counter_once() {
    let mut worker = Harness::with(hmac::DOOR, hmac::inputs(&[]), Default::default());
    let mut monitor = Harness::with(hmac::DOOR, hmac::inputs(&[]), Default::default());
    let c = hmac::c0();
    let trace = knock_trace("192.0.2.10", &hmac::hits(c), 100);
    same_in_both(
        &mut worker,
        &mut monitor,
        &trace,
        Proof::Hmac { counter: c },
    );
    assert_eq!(monitor.opened(), ["192.0.2.10 ssh"]);
    // The same counter again is a replay in both, and runs nothing.
    same_in_both(
        &mut worker,
        &mut monitor,
        &trace,
        Proof::Hmac { counter: c },
    );
    assert_eq!(monitor.opened(), ["192.0.2.10 ssh"]);
    assert_eq!(
        monitor.logs().last().unwrap(),
        &format!("192.0.2.10: ssh: replayed HMAC sequence (counter {c}), no command run")
    );
    // A counter far from the live window is refused and not recorded as used.
    let far = monitor
        .engine
        .on_completed(
            monitor.clock(),
            "ssh",
            src(),
            Proof::Hmac { counter: c + 100 },
        )
        .unwrap_err();
    assert_eq!(
        far.to_string(),
        format!("door [ssh] does not take HMAC counter {} now", c + 100)
    );
}

#[test]
fn claims_that_do_not_fit_a_door_are_refused_and_change_nothing() {
    let mut monitor = Harness::new(FIXED);
    let built = monitor.actions.len();
    let cases = [
        (
            "web\n",
            Proof::Fixed,
            "no door \"web\\n\" in the configuration",
        ),
        (
            "ssh",
            Proof::OneTime { line_no: 1 },
            "door [ssh] does not take one-time line 1 now",
        ),
        (
            "ssh",
            Proof::Hmac { counter: 7 },
            "door [ssh] does not take HMAC counter 7 now",
        ),
    ];
    for (door, proof, message) in cases {
        let e = monitor
            .engine
            .on_completed(monitor.clock(), door, src(), proof)
            .unwrap_err();
        assert_eq!(e.to_string(), message);
    }
    assert!(monitor.engine.has_door("ssh") && !monitor.engine.has_door("web"));
    monitor.wait(60_000);
    assert!(monitor.actions.len() == built, "{:?}", monitor.actions);
}

#[test]
fn an_hmac_door_without_its_secret_matches_the_windows_it_is_given() {
    // The worker's engine: no secret, only the used counters; the monitor's derives.
    let mut worker = Harness::with(
        hmac::DOOR,
        knockd_engine::Inputs {
            hmac_supplied: std::collections::HashMap::from([(
                "ssh".to_string(),
                Default::default(),
            )]),
            ..Default::default()
        },
        Default::default(),
    );
    let mut monitor = Harness::with(hmac::DOOR, hmac::inputs(&[]), Default::default());
    let c = hmac::c0();
    let trace = knock_trace("192.0.2.10", &hmac::hits(c), 100);
    // Before any window: nothing to match.
    worker.play(&trace);
    assert!(worker.opened().is_empty());
    assert!(worker.engine.hmac_windows().is_empty());
    // The monitor's window, handed over.
    let windows = monitor.engine.hmac_windows();
    assert_eq!(windows.len(), 1);
    assert_eq!(windows[0].center, c);
    assert_eq!(monitor.engine.hmac_centers(), [Some(c)]);
    let w = &windows[0];
    let now = worker.clock();
    let changed = worker
        .engine
        .set_hmac_window(now, &w.door, w.center, &w.sequences);
    assert_eq!(changed, [Action::CaptureRulesChanged]);
    same_in_both(
        &mut worker,
        &mut monitor,
        &trace,
        Proof::Hmac { counter: c },
    );
    assert_eq!(monitor.opened(), ["192.0.2.10 ssh"]);
    // A door with its secret takes no supplied window.
    let now = monitor.clock();
    assert!(
        monitor
            .engine
            .set_hmac_window(now, "ssh", c + 5, &[])
            .is_empty()
    );
}
