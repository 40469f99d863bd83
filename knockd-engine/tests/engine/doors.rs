//! What a door does on OPEN SESAME besides its commands: an nftables set with the door's
//! Cmd_Timeout, and pending stops announced where a runtime can keep them across a crash.

use std::sync::Arc;

use knockd_engine::{Action, CommandId, CommandKind, Mono};

use crate::support::{Harness, T0};

fn kinds(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .map(|a| match a {
            Action::Log(e) => format!("log {e}"),
            Action::AddToSet {
                set, src, timeout, ..
            } => format!("set {set} {src} {}ms", timeout.as_millis()),
            Action::StopScheduled {
                start, due, delay, ..
            } => format!(
                "pending {} due +{} delay {}ms",
                start.0,
                due.as_millis() - T0,
                delay.as_millis()
            ),
            Action::RunCommand { id, kind, .. } => format!("run {} {kind:?}", id.0),
            Action::ConsumeOneTime { .. } => "consume".into(),
            Action::HmacCounterUsed { .. } => "hmac".into(),
            Action::CaptureRulesChanged => "rules".into(),
        })
        .collect()
}

#[test]
fn a_set_door_adds_the_knocker_with_cmd_timeout_after_what_must_be_recorded() {
    let mut h = Harness::one_time(
        "[otp]\none_time_sequences = /l\ncmd_timeout = 2.5\nnft_set = inet filter ks\n\
         nft_set_6 = inet filter ks6\n",
        &[("otp", " 11\n 21\n 31\n")],
    );
    h.actions.clear();
    h.play("0 192.0.2.10 tcp 11\n0 2001:db8::10 tcp 21\n");
    assert_eq!(
        kinds(&h.actions),
        [
            "log 192.0.2.10: otp: Stage 1",
            "log 192.0.2.10: otp: OPEN SESAME",
            "consume",
            "set inet filter ks 192.0.2.10 2500ms",
            "log otp: next one-time sequence is on line 2",
            "rules",
            "log 2001:db8::10: otp: Stage 1",
            "log 2001:db8::10: otp: OPEN SESAME",
            "consume",
            "set inet filter ks6 2001:db8::10 2500ms",
            "log otp: next one-time sequence is on line 3",
            "rules",
        ]
    );
    assert_eq!(h.engine.next_deadline(), None, "the kernel closes the door");
}

#[test]
fn a_door_with_a_set_for_the_other_family_only_says_so() {
    let mut h = Harness::new("[d]\nsequence = 1\nnft_set = ip fw s\n");
    h.actions.clear();
    h.play("0 2001:db8::10 tcp 1\n0 192.0.2.10 tcp 1\n");
    assert_eq!(
        kinds(&h.actions),
        [
            "log 2001:db8::10: d: Stage 1",
            "log 2001:db8::10: d: OPEN SESAME",
            "log 2001:db8::10: d: no Nft_Set_6, nothing added to a set for an IPv6 knocker",
            "log 192.0.2.10: d: Stage 1",
            "log 192.0.2.10: d: OPEN SESAME",
            "set ip fw s 192.0.2.10 10000ms",
        ]
    );
    let mut h = Harness::new("[d]\nsequence = 1\nnft_set_6 = ip6 fw s\n");
    h.play("0 192.0.2.10 tcp 1\n");
    assert!(kinds(&h.actions).contains(
        &"log 192.0.2.10: d: no Nft_Set, nothing added to a set for an IPv4 knocker".to_string()
    ));
}

#[test]
fn a_pending_stop_is_announced_before_its_start_and_again_when_it_is_scheduled() {
    let mut h = Harness::new(
        "[d]\nsequence = 1\nstart_command = open\ncmd_timeout = 3\nstop_command = close\n\
         nft_set = inet filter ks\n",
    );
    h.actions.clear();
    h.play("0 192.0.2.10 tcp 1\n");
    h.wait(400);
    h.finish_commands();
    assert_eq!(
        kinds(&h.actions),
        [
            "log 192.0.2.10: d: Stage 1",
            "log 192.0.2.10: d: OPEN SESAME",
            "set inet filter ks 192.0.2.10 3000ms",
            "pending 1 due +3000 delay 3000ms",
            "run 1 Start",
            "pending 1 due +3400 delay 3000ms",
        ]
    );
    h.actions.clear();
    h.wait(3000);
    assert_eq!(
        kinds(&h.actions),
        [
            "log 192.0.2.10: d: command timeout",
            "run 2 Stop { start: CommandId(1) }"
        ]
    );
}

#[test]
fn restored_stops_run_at_their_time_or_at_once_and_at_shutdown() {
    let mut h = Harness::new("[d]\nsequence = 1\n");
    h.actions.clear();
    let src = "192.0.2.10".parse().unwrap();
    let now = h.clock();
    let door: Arc<str> = Arc::from("gone");
    let (overdue, actions) =
        h.engine
            .restore_stop(now, door.clone(), src, "close %IP%".into(), now.mono);
    assert_eq!(
        actions,
        [Action::RunCommand {
            id: CommandId(overdue.0 + 1),
            door: door.clone(),
            src,
            template: "close %IP%".into(),
            kind: CommandKind::Stop { start: overdue },
        }]
    );
    let later = Mono::from_millis(h.now + 5000);
    let (a, actions) = h
        .engine
        .restore_stop(now, door.clone(), src, "a".into(), later);
    assert!(actions.is_empty());
    let (b, _) = h
        .engine
        .restore_stop(now, door.clone(), src, "b".into(), later);
    assert_eq!(h.engine.next_deadline(), Some(later));
    h.wait(5000);
    let ran: Vec<String> = kinds(&h.actions);
    assert_eq!(
        ran,
        [
            "log 192.0.2.10: gone: command timeout".to_string(),
            format!("run {} Stop {{ start: CommandId({}) }}", b.0 + 1, a.0),
            "log 192.0.2.10: gone: command timeout".to_string(),
            format!("run {} Stop {{ start: CommandId({}) }}", b.0 + 2, b.0),
        ]
    );
    let (c, _) = h.engine.restore_stop(
        h.clock(),
        door,
        src,
        "c".into(),
        Mono::from_millis(h.now + 60_000),
    );
    let at_shutdown = h.engine.shutdown(h.clock());
    assert!(matches!(
        at_shutdown.last(),
        Some(Action::RunCommand { kind: CommandKind::Stop { start }, template, .. })
            if *start == c && template == "c"
    ));
}
