//! Reloading a config (SIGHUP): what carries over and what does not.

use std::collections::{BTreeSet, HashMap};

use crate::support::{Harness, T0, config, knock_trace, local_addrs};
use knock_core::hmac::HmacParams;
use knock_core::secret::Secret;
use knockd_engine::{Action, HmacInput, Inputs, Options};

const A: &str = "[a]\nsequence = 7000,8000,9000\ncommand = a\n";
const B: &str = "[b]\nsequence = 1001,1002,1003\ncommand = b\n";

fn reload(h: &mut Harness, conf: &str, inputs: Inputs) -> Vec<Action> {
    let inputs = Inputs {
        local_addrs: local_addrs(),
        ..inputs
    };
    let actions = h
        .engine
        .reload(&config(conf), inputs, h.clock())
        .unwrap_or_else(|e| panic!("{e}"));
    h.actions.extend(actions.clone());
    actions
}

#[test]
fn reload_keeps_attempts_at_unchanged_doors() {
    let mut h = Harness::new(&format!("{A}{B}"));
    h.play("0 192.0.2.10 tcp 7000\n10 192.0.2.10 tcp 8000\n10 192.0.2.11 tcp 1001\n10 192.0.2.11 tcp 1002\n");
    // [a] moves in the file but is unchanged; [b] gets another command.
    let actions = reload(
        &mut h,
        &format!("{}{A}", B.replace("= b", "= b2")),
        Inputs::default(),
    );
    assert_eq!(actions, [Action::CaptureRulesChanged]);
    assert_eq!(h.engine.stats().live_attempts, 1);
    h.play("10 192.0.2.10 tcp 9000\n10 192.0.2.11 tcp 1003\n");
    assert_eq!(h.opened(), ["192.0.2.10 a"]);
}

#[test]
fn reload_keeps_pending_stops_of_removed_doors() {
    let mut h = Harness::new(&format!("{A}cmd_timeout = 5\nstop_command = close %IP%\n"));
    h.play("0 192.0.2.10 tcp 7000\n10 192.0.2.10 tcp 8000\n10 192.0.2.10 tcp 9000\n");
    h.finish_commands();
    reload(&mut h, B, Inputs::default());
    h.wait(4999);
    assert!(h.stopped().is_empty(), "the stop keeps its time");
    h.wait(1);
    assert_eq!(h.stopped(), ["192.0.2.10 a"]);
}

#[test]
fn failed_reload_leaves_the_engine_as_it_was() {
    let mut h = Harness::new(A);
    h.play("0 192.0.2.10 tcp 7000\n10 192.0.2.10 tcp 8000\n");
    let broken = config("[otp]\none_time_sequences = /l\n");
    let err = h
        .engine
        .reload(&broken, Inputs::default(), h.clock())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "door [otp]: no one-time list was given to the engine"
    );
    let bad_list = Inputs {
        one_time: HashMap::from([("otp".to_string(), " 1,2\n 3,x\n".to_string())]),
        ..Inputs::default()
    };
    let err = h.engine.reload(&broken, bad_list, h.clock()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/l:2: not a sequence: a port that is not a number from 1 to 65535 (the line is not \
         shown: the file may hold a secret) (one-time list of door [otp])"
    );
    h.play("10 192.0.2.10 tcp 9000\n");
    assert_eq!(h.opened(), ["192.0.2.10 a"]);
}

#[test]
fn reload_keeps_one_time_attempts_only_on_the_same_line() {
    let conf = "[otp]\none_time_sequences = /l\ncommand = go\n";
    let list = |text: &str| Inputs {
        one_time: HashMap::from([("otp".to_string(), text.to_string())]),
        ..Inputs::default()
    };
    let mut h = Harness::one_time(conf, &[("otp", " 11,12,13\n 21,22,23\n")]);
    h.play("0 192.0.2.10 tcp 11\n10 192.0.2.10 tcp 12\n");
    reload(&mut h, conf, list(" 11,12,13\n 21,22,23\n"));
    h.play("10 192.0.2.10 tcp 13\n");
    assert_eq!(h.opened(), ["192.0.2.10 otp"]);
    // The file was edited: the active line (still line 2) differs, the attempt goes. Had
    // it survived at stage 2, 23 and 24 would complete the edited line.
    h.play("10 192.0.2.10 tcp 21\n10 192.0.2.10 tcp 22\n");
    assert_eq!(h.engine.stats().live_attempts, 1);
    reload(&mut h, conf, list("#11,12,13\n 21,22,23,24\n"));
    assert_eq!(h.engine.stats().live_attempts, 0);
    h.play("10 192.0.2.10 tcp 23\n10 192.0.2.10 tcp 24\n");
    assert_eq!(h.opened().len(), 1);
    // The edited line itself opens from its first step.
    h.play(
        "10 192.0.2.10 tcp 21\n10 192.0.2.10 tcp 22\n10 192.0.2.10 tcp 23\n10 192.0.2.10 tcp 24\n",
    );
    assert_eq!(h.opened(), ["192.0.2.10 otp", "192.0.2.10 otp"]);
}

#[test]
fn reload_remembers_used_hmac_counters() {
    let conf = "[ssh]\nhmac_secret_file = k\ncommand = open\n";
    let inputs = || Inputs {
        hmac: HashMap::from([(
            "ssh".to_string(),
            HmacInput {
                secret: Secret::from_text("s3cret"),
                used: BTreeSet::new(),
            },
        )]),
        ..Inputs::default()
    };
    let mut h = Harness::with(conf, inputs(), Options::default());
    let seq = HmacParams::new("ssh")
        .derive(&Secret::from_text("s3cret"), T0 / 1000 / 30)
        .unwrap();
    h.play(&knock_trace("192.0.2.10", &seq, 10));
    // The runtime re-reads an older used-counter file; the engine still knows better.
    reload(&mut h, conf, inputs());
    h.play(&knock_trace("192.0.2.11", &seq, 10));
    assert_eq!(h.opened(), ["192.0.2.10 ssh"]);
}

/// Two doors with one name and one definition (a script that appended a door twice): each
/// is its own door, as in knockd, and a reload keeps each one's attempts at its own door.
#[test]
fn reload_keeps_attempts_at_each_of_two_identical_doors() {
    let twice = format!("{A}{A}");
    let mut h = Harness::new(&twice);
    h.play("0 192.0.2.10 tcp 7000\n10 192.0.2.10 tcp 8000\n");
    assert_eq!(h.engine.stats().live_attempts, 2);
    reload(&mut h, &twice, Inputs::default());
    assert_eq!(h.engine.stats().live_attempts, 2);
    h.play("10 192.0.2.10 tcp 9000\n");
    assert_eq!(h.opened(), ["192.0.2.10 a", "192.0.2.10 a"]);
}
