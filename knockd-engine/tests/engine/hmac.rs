//! HMAC doors through the engine: live windows, skew, replays and the moving window.

use std::collections::{BTreeSet, HashMap};

use crate::support::{Harness, T0, knock_trace};
use knock_core::hit::Hit;
use knock_core::hmac::HmacParams;
use knock_core::secret::Secret;
use knockd_engine::{Action, HMAC_RECHECK_MS, HmacInput, Inputs, Mono, Now, Options, Timestamp};

pub(crate) const DOOR: &str =
    "[ssh]\nhmac_secret_file = /etc/knockd/ssh.key\nseq_timeout = 10\nstart_command = open %IP%\n";
const SECRET: &str = "correct horse battery staple";

pub(crate) fn inputs(used: &[u64]) -> Inputs {
    Inputs {
        hmac: HashMap::from([(
            "ssh".to_string(),
            HmacInput {
                secret: Secret::from_text(SECRET),
                used: used.iter().copied().collect::<BTreeSet<u64>>(),
            },
        )]),
        ..Inputs::default()
    }
}

fn harness(conf: &str, used: &[u64]) -> Harness {
    Harness::with(conf, inputs(used), Options::default())
}

/// The counter at the harness's start time, with the default 30 s step.
pub(crate) fn c0() -> u64 {
    T0 / 1000 / 30
}

fn sequence(params: &HmacParams, counter: u64) -> Vec<Hit> {
    params.derive(&Secret::from_text(SECRET), counter).unwrap()
}

pub(crate) fn hits(counter: u64) -> Vec<Hit> {
    sequence(&HmacParams::new("ssh"), counter)
}

#[test]
fn hmac_opens_in_the_current_window() {
    let mut h = harness(DOOR, &[]);
    h.play(&knock_trace("192.0.2.10", &hits(c0()), 100));
    assert_eq!(h.opened(), ["192.0.2.10 ssh"]);
    let tail: Vec<String> = h.actions[h.actions.len() - 3..]
        .iter()
        .map(|a| match a {
            Action::Log(e) => e.to_string(),
            Action::HmacCounterUsed { door, counter } => format!("used {door} {counter}"),
            Action::RunCommand { template, .. } => format!("run {template}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        tail,
        [
            "192.0.2.10: ssh: OPEN SESAME".to_string(),
            format!("used ssh {}", c0()),
            "run open %IP%".to_string()
        ]
    );
}

#[test]
fn hmac_opens_at_minus_and_plus_skew() {
    let mut h = harness(DOOR, &[]);
    h.play(&knock_trace("192.0.2.10", &hits(c0() - 1), 100));
    h.play(&knock_trace("192.0.2.11", &hits(c0() + 1), 100));
    assert_eq!(h.opened(), ["192.0.2.10 ssh", "192.0.2.11 ssh"]);
    // A wider skew admits more.
    let mut h = harness(&format!("{DOOR}hmac_skew = 2\n"), &[]);
    h.play(&knock_trace("192.0.2.10", &hits(c0() - 2), 100));
    h.play(&knock_trace("192.0.2.11", &hits(c0() + 2), 100));
    assert_eq!(h.opened().len(), 2);
}

#[test]
fn hmac_rejects_a_window_outside_the_skew() {
    let mut h = harness(DOOR, &[]);
    h.play(&knock_trace("192.0.2.10", &hits(c0() - 2), 100));
    h.play(&knock_trace("192.0.2.11", &hits(c0() + 2), 100));
    let mut h0 = harness(&format!("{DOOR}hmac_skew = 0\n"), &[]);
    h0.play(&knock_trace("192.0.2.12", &hits(c0() + 1), 100));
    assert!(h.opened().is_empty());
    assert!(h0.opened().is_empty());
    // Another door label derives other sequences.
    let mut h = harness(DOOR, &[]);
    h.play(&knock_trace(
        "192.0.2.13",
        &sequence(&HmacParams::new("web"), c0()),
        100,
    ));
    assert!(h.opened().is_empty());
}

#[test]
fn hmac_rejects_a_replay() {
    let mut h = harness(DOOR, &[]);
    let seq = hits(c0());
    h.play(&knock_trace("192.0.2.10", &seq, 100));
    h.play(&knock_trace("192.0.2.66", &seq, 100));
    assert_eq!(h.opened(), ["192.0.2.10 ssh"]);
    assert_eq!(
        h.logs().last().unwrap(),
        &format!(
            "192.0.2.66: ssh: replayed HMAC sequence (counter {}), no command run",
            c0()
        )
    );
    // Counters persisted before a restart are replays too.
    let mut h = harness(DOOR, &[c0()]);
    h.play(&knock_trace("192.0.2.10", &seq, 100));
    assert!(h.opened().is_empty());
    assert_eq!(
        h.logs().last().unwrap(),
        &format!(
            "192.0.2.10: ssh: replayed HMAC sequence (counter {}), no command run",
            c0()
        ),
        "the sequence was matched, and refused as a replay"
    );
    assert!(
        !h.actions
            .iter()
            .any(|a| matches!(a, Action::HmacCounterUsed { .. }))
    );
}

#[test]
fn hmac_window_moves_with_the_clock() {
    let mut h = harness(DOOR, &[]);
    let boundary = (c0() + 1) * 30_000;
    // The window moves at the boundary; until then the engine looks again every second,
    // in case the wall clock steps.
    assert_eq!(
        h.engine.next_deadline(),
        Some(Mono::from_millis(h.now + HMAC_RECHECK_MS))
    );
    let ports =
        |h: &Harness| -> Vec<u16> { h.engine.capture_rules().iter().map(|r| r.port).collect() };
    let before = ports(&h);
    assert!(hits(c0() - 1).iter().all(|x| before.contains(&x.port)));
    h.wait(boundary - h.now);
    assert!(matches!(
        h.actions.last(),
        Some(Action::CaptureRulesChanged)
    ));
    let after = ports(&h);
    assert!(hits(c0() + 2).iter().all(|x| after.contains(&x.port)));
    assert_eq!(after.len(), 12, "3 live sequences of 4 ports");
    h.play(&knock_trace("192.0.2.10", &hits(c0() + 2), 100));
    assert_eq!(h.opened(), ["192.0.2.10 ssh"]);
}

#[test]
fn hmac_sequence_counts_only_while_its_counter_is_live() {
    // The harness starts 20 s into counter c's step; skew 1. A knock on c+1 that straddles
    // the boundary still opens; one on c-1 dies at the boundary, when c-1 leaves the window.
    let conf = "[ssh]\nhmac_secret_file = k\nseq_timeout = 25\nstart_command = open\n";
    let boundary = (c0() + 1) * 30_000;
    let mut h = harness(conf, &[]);
    let late = hits(c0() + 1);
    let early = hits(c0() - 1);
    h.play(&knock_trace("192.0.2.10", &late[..2], 100));
    h.play(&knock_trace("192.0.2.11", &early[..2], 100));
    h.wait(boundary - h.now + 10);
    h.play(&knock_trace("192.0.2.10", &late[2..], 100));
    h.play(&knock_trace("192.0.2.11", &early[2..], 100));
    assert_eq!(h.opened(), ["192.0.2.10 ssh"]);
}

#[test]
fn hmac_mixed_protocols_with_door_flags() {
    let conf = "[web]\nhmac_secret_file = k\nhmac_protocols = mixed\nhmac_length = 8\n\
                hmac_ports = 20000-20999\nhmac_step = 60\ntcpflags = fin\ncommand = web\n";
    let secret = Secret::from_text(SECRET);
    let inputs = Inputs {
        hmac: HashMap::from([(
            "web".to_string(),
            HmacInput {
                secret: secret.clone(),
                used: BTreeSet::new(),
            },
        )]),
        ..Inputs::default()
    };
    let mut h = Harness::with(conf, inputs, Options::default());
    let mut params = HmacParams::new("web");
    params.protocols = knock_core::hmac::Protocols::Mixed;
    params.length = 8;
    params.ports = "20000-20999".parse().unwrap();
    params.step = 60;
    let seq = params.derive(&secret, T0 / 1000 / 60).unwrap();
    // The door wants FIN: SYN knocks are not candidates, FIN knocks open.
    h.play(&knock_trace("192.0.2.10", &seq, 50));
    assert!(h.opened().is_empty());
    let fin: Vec<Hit> = seq
        .iter()
        .map(|x| match x.proto {
            knock_core::hit::Proto::Tcp => Hit::tcp_flags(x.port, knock_core::hit::TcpFlags::FIN),
            knock_core::hit::Proto::Udp => *x,
        })
        .collect();
    h.play(&knock_trace("192.0.2.10", &fin, 50));
    assert_eq!(h.opened(), ["192.0.2.10 web"]);
}

#[test]
fn hmac_door_needs_its_secret() {
    let err = knockd_engine::Engine::new(
        &crate::support::config(DOOR),
        Inputs::default(),
        Options::default(),
        Now::new(Mono::from_millis(T0), Timestamp::from_millis(T0)),
    )
    .err()
    .unwrap();
    assert_eq!(
        err.to_string(),
        "door [ssh]: no HMAC secret was given to the engine"
    );
    let mut empty = inputs(&[]);
    empty.hmac.get_mut("ssh").unwrap().secret = Secret::from_text("\n");
    let err = knockd_engine::Engine::new(
        &crate::support::config(DOOR),
        empty,
        Options::default(),
        Now::new(Mono::from_millis(T0), Timestamp::from_millis(T0)),
    )
    .err()
    .unwrap();
    assert_eq!(
        err.to_string(),
        "door [ssh]: the HMAC secret in /etc/knockd/ssh.key is empty"
    );
}
