//! Replay tests: one trace per matching rule, per fixed knockd bug and per conformance case.

use crate::support::Harness;
use knockd_engine::{Action, Inputs, Options};

const OPEN: &str = "[open]\nsequence = 7000,8000,9000\nseq_timeout = 5\ncommand = open %IP%\n";

// ---------------------------------------------------------------------------------------
// Conformance cases (the shared sample, restated as facts).

#[test]
fn case_basic() {
    let mut h = Harness::new(
        "[open]\nsequence = 7000,8000,9000:udp\nseq_timeout = 5\ncommand = open %IP%\n",
    );
    h.play("0 192.0.2.10 tcp 7000\n50 192.0.2.10 tcp 8000\n50 192.0.2.10 udp 9000\n");
    assert_eq!(h.opened(), ["192.0.2.10 open"]);
    assert_eq!(h.templates(), ["open %IP%"]);
    assert_eq!(
        h.logs(),
        [
            "192.0.2.10: open: Stage 1",
            "192.0.2.10: open: Stage 2",
            "192.0.2.10: open: Stage 3",
            "192.0.2.10: open: OPEN SESAME",
        ]
    );
}

#[test]
fn case_flags_ignore_other() {
    let mut h = Harness::new(&format!("{OPEN}tcpflags = syn\n"));
    h.play(
        "0 192.0.2.10 tcp 7000 syn\n50 192.0.2.10 tcp 5555 ack\n50 192.0.2.10 tcp 8000 syn\n\
         50 192.0.2.10 tcp 1234 psh,ack\n50 192.0.2.10 tcp 9000 syn\n",
    );
    assert_eq!(h.opened(), ["192.0.2.10 open"]);
}

#[test]
fn case_ipv6() {
    let mut h =
        Harness::new("[open]\nsequence = 7000,8000:udp,9000\nseq_timeout = 5\ncommand = open\n");
    h.play("0 2001:db8::1 tcp 7000\n50 2001:db8::1 udp 8000\n50 2001:db8::1 tcp 9000\n");
    assert_eq!(h.opened(), ["2001:db8::1 open"]);
}

#[test]
fn case_open_close_doors() {
    let mut h = Harness::new(
        "[openSSH]\nsequence = 7000,8000,9000\nseq_timeout = 5\ntcpflags = syn\ncommand = open\n\
         [closeSSH]\nsequence = 9000,8000,7000\nseq_timeout = 5\ntcpflags = syn\ncommand = close\n",
    );
    h.play(
        "0 192.0.2.10 tcp 7000\n50 192.0.2.10 tcp 8000\n50 192.0.2.10 tcp 9000\n\
         300 192.0.2.10 tcp 9000\n50 192.0.2.10 tcp 8000\n50 192.0.2.10 tcp 7000\n",
    );
    assert_eq!(h.opened(), ["192.0.2.10 openSSH", "192.0.2.10 closeSSH"]);
}

#[test]
fn case_start_stop() {
    let mut h = Harness::new(
        "[door]\nsequence = 2222:udp,3333:tcp,4444:udp\nseq_timeout = 5\ntcpflags = syn,ack\n\
         start_command = start %IP%\ncmd_timeout = 1\nstop_command = stop %IP%\n",
    );
    h.play("0 192.0.2.10 udp 2222\n50 192.0.2.10 tcp 3333 syn,ack\n50 192.0.2.10 udp 4444\n");
    h.finish_commands();
    h.wait(1000);
    assert_eq!(h.opened(), ["192.0.2.10 door"]);
    assert_eq!(h.stopped(), ["192.0.2.10 door"]);
}

#[test]
fn case_wrong_port_resets() {
    // 1234 is in no door's sequence, so it is not seen at all and the knock goes on.
    let mut h = Harness::new(OPEN);
    h.play(
        "0 192.0.2.10 tcp 7000\n50 192.0.2.10 tcp 1234\n50 192.0.2.10 tcp 8000\n50 192.0.2.10 tcp 9000\n",
    );
    assert_eq!(h.opened(), ["192.0.2.10 open"]);
    assert_eq!(h.engine.stats().ignored, 1);
}

#[test]
fn case_duplicate_hit() {
    let mut h = Harness::new(OPEN);
    h.play(
        "0 192.0.2.10 tcp 7000\n50 192.0.2.10 tcp 7000\n50 192.0.2.10 tcp 8000\n50 192.0.2.10 tcp 9000\n",
    );
    assert_eq!(h.opened(), ["192.0.2.10 open"]);
}

#[test]
fn case_one_time() {
    let list = " 1001,1002,1003\n 2001,2002:udp,2003\n 3001,3002,3003\n";
    let mut h = Harness::one_time(
        "[otp]\none_time_sequences = /var/lib/otp\nseq_timeout = 5\ntcpflags = syn\nstart_command = otp %IP%\n",
        &[("otp", list)],
    );
    h.play(
        "0 192.0.2.10 tcp 1001\n50 192.0.2.10 tcp 1002\n50 192.0.2.10 tcp 1003\n\
         300 192.0.2.11 tcp 1001\n50 192.0.2.11 tcp 1002\n50 192.0.2.11 tcp 1003\n\
         300 192.0.2.12 tcp 2001\n50 192.0.2.12 udp 2002\n50 192.0.2.12 tcp 2003\n",
    );
    assert_eq!(h.opened(), ["192.0.2.10 otp", "192.0.2.12 otp"]);
    let consumed: Vec<(usize, u64)> = h
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::ConsumeOneTime { line, .. } => Some((line.line_no, line.offset)),
            _ => None,
        })
        .collect();
    assert_eq!(consumed, [(1, 0), (2, 16)]);
    assert_eq!(&list[16..17], " ");
}

// ---------------------------------------------------------------------------------------
// Rule 1: visibility.

#[test]
fn rule1_packets_to_other_hosts_never_touch_attempts() {
    let mut h = Harness::new(OPEN);
    h.play(
        "0 192.0.2.10 tcp 7000\n\
         50 192.0.2.10 tcp 9000 -> 192.0.2.77\n\
         50 192.0.2.10 tcp 8000\n50 192.0.2.10 tcp 9000\n\
         100 192.0.2.11 tcp 7000 -> 192.0.2.77\n50 192.0.2.11 tcp 8000 -> 192.0.2.77\n\
         50 192.0.2.11 tcp 9000 -> 192.0.2.77\n",
    );
    assert_eq!(h.opened(), ["192.0.2.10 open"]);
    assert_eq!(h.engine.stats().ignored, 4);
}

#[test]
fn rule1_target_door_matches_only_its_target() {
    let mut h = Harness::new(&format!("{OPEN}target = 192.0.2.99\n"));
    h.play(
        "0 192.0.2.10 tcp 7000\n50 192.0.2.10 tcp 8000\n50 192.0.2.10 tcp 9000\n\
         100 192.0.2.11 tcp 7000 -> 192.0.2.99\n50 192.0.2.11 tcp 8000 -> 192.0.2.99\n\
         50 192.0.2.11 tcp 9000 -> 192.0.2.99\n",
    );
    assert_eq!(h.opened(), ["192.0.2.11 open"]);
}

#[test]
fn rule1_local_addresses_can_change() {
    let mut h = Harness::new(OPEN);
    h.engine.set_local_addrs(["198.51.100.1".parse().unwrap()]);
    h.play("0 192.0.2.10 tcp 7000\n50 192.0.2.10 tcp 8000\n50 192.0.2.10 tcp 9000\n");
    assert!(h.opened().is_empty());
    assert!(h.logs().is_empty(), "the old address is no longer local");
    assert_eq!(h.engine.stats().ignored, 3);
    h.play(
        "0 192.0.2.10 tcp 7000 -> 198.51.100.1\n50 192.0.2.10 tcp 8000 -> 198.51.100.1\n\
         50 192.0.2.10 tcp 9000 -> 198.51.100.1\n",
    );
    assert_eq!(h.opened(), ["192.0.2.10 open"]);
}

#[test]
fn rule1_flags_outside_every_door_are_invisible() {
    // An ACK to a door port does not satisfy TCPFlags = syn: it is not a candidate.
    let mut h = Harness::new(&format!("{OPEN}tcpflags = syn,!ack\n"));
    h.play(
        "0 192.0.2.10 tcp 7000 syn\n50 192.0.2.10 tcp 9000 syn,ack\n50 192.0.2.10 tcp 8000 syn\n\
         50 192.0.2.10 tcp 9000 syn\n",
    );
    assert_eq!(h.opened(), ["192.0.2.10 open"]);
    assert_eq!(h.engine.stats().ignored, 1);
}

// ---------------------------------------------------------------------------------------
// Rule 2: sources with attempts in progress.

#[test]
fn rule2_wrong_door_port_cancels() {
    let mut h = Harness::new(OPEN);
    h.play(
        "0 192.0.2.10 tcp 7000\n50 192.0.2.10 tcp 9000\n50 192.0.2.10 tcp 8000\n50 192.0.2.10 tcp 9000\n",
    );
    assert!(h.opened().is_empty());
    // Only the first knock counted: 9000 cancelled it, and 8000 and 9000 start nothing.
    assert_eq!(h.logs(), ["192.0.2.10: open: Stage 1"]);
    assert_eq!(h.engine.stats().live_attempts, 0);
}

#[test]
fn rule2_wrong_protocol_cancels() {
    let mut h =
        Harness::new("[open]\nsequence = 7000,8000:udp,9000\nseq_timeout = 5\ncommand = open\n");
    h.play(
        "0 192.0.2.10 tcp 7000\n50 192.0.2.10 tcp 9000\n50 192.0.2.10 udp 8000\n50 192.0.2.10 tcp 9000\n",
    );
    assert!(h.opened().is_empty());
    assert_eq!(h.logs(), ["192.0.2.10: open: Stage 1"]);
    assert_eq!(h.engine.stats().live_attempts, 0);
}

#[test]
fn rule2_packet_on_another_doors_port_cancels() {
    let mut h = Harness::new(&format!(
        "{OPEN}[other]\nsequence = 5555,6666\ncommand = other\n"
    ));
    h.play(
        "0 192.0.2.10 tcp 7000\n50 192.0.2.10 tcp 6666\n50 192.0.2.10 tcp 8000\n50 192.0.2.10 tcp 9000\n",
    );
    assert!(h.opened().is_empty());
    assert_eq!(h.logs(), ["192.0.2.10: open: Stage 1"]);
    assert_eq!(h.engine.stats().live_attempts, 0);
}

#[test]
fn rule2_tcp_packet_failing_door_flags_is_ignored() {
    // The ACK to 5555 is a candidate (door `other` takes any flags) but [open] wants SYNs,
    // so its attempt ignores the packet instead of being cancelled.
    let mut h = Harness::new(&format!(
        "{OPEN}tcpflags = syn\n[other]\nsequence = 5555,6666\ncommand = other\n"
    ));
    h.play(
        "0 192.0.2.10 tcp 7000\n50 192.0.2.10 tcp 5555 ack\n50 192.0.2.10 tcp 8000\n\
         50 192.0.2.10 tcp 5555 psh,ack\n50 192.0.2.10 tcp 9000\n",
    );
    assert_eq!(h.opened(), ["192.0.2.10 open"]);
}

#[test]
fn rule2_step_flags_replace_door_flags() {
    let mut h = Harness::new(
        "[flags]\nsequence = 7000,8000:tcp:fin+psh,9000:tcp:any\ntcpflags = syn\ncommand = open\n",
    );
    // A SYN to 8000 does not satisfy the step's exact fin+psh: ignored, not cancelling.
    // fin+psh+ack is not exactly fin+psh either. The last step takes any flags.
    h.play(
        "0 192.0.2.10 tcp 8000 syn\n0 192.0.2.10 tcp 7000\n50 192.0.2.10 tcp 8000 syn\n\
         50 192.0.2.10 tcp 8000 fin,psh,ack\n50 192.0.2.10 tcp 8000 fin,psh\n\
         50 192.0.2.10 tcp 9000 rst,ack\n",
    );
    assert_eq!(h.opened(), ["192.0.2.10 flags"]);
}

#[test]
fn rule2_udp_packet_is_never_ignored() {
    let mut h = Harness::new(
        "[open]\nsequence = 7000:udp,8000:udp,9000:udp\ntcpflags = syn\ncommand = open\n",
    );
    h.play("0 192.0.2.10 udp 7000\n50 192.0.2.10 udp 9000\n50 192.0.2.10 udp 8000\n50 192.0.2.10 udp 9000\n");
    assert!(h.opened().is_empty());
    assert_eq!(h.logs(), ["192.0.2.10: open: Stage 1"]);
    assert_eq!(h.engine.stats().live_attempts, 0);
}

// ---------------------------------------------------------------------------------------
// Rule 3: sources without attempts.

#[test]
fn rule3_shared_prefix_doors_advance_in_parallel() {
    let mut h = Harness::new(
        "[a]\nsequence = 1001,1002,1003\ncommand = a\n[b]\nsequence = 1001,1002,1004\ncommand = b\n",
    );
    h.play("0 192.0.2.10 tcp 1001\n50 192.0.2.10 tcp 1002\n");
    assert_eq!(h.engine.stats().live_attempts, 2);
    h.play("50 192.0.2.10 tcp 1004\n");
    assert_eq!(h.opened(), ["192.0.2.10 b"]);
    assert_eq!(h.engine.stats().live_attempts, 0);
}

#[test]
fn rule3_first_step_of_another_door_does_not_start_while_advancing() {
    // 2 advances [a]; a source with an attempt in progress starts no new one unless the
    // packet cancelled something, so [b] (2,5) never starts and 5 just cancels [a].
    let mut h =
        Harness::new("[a]\nsequence = 1,2,3\ncommand = a\n[b]\nsequence = 2,5\ncommand = b\n");
    h.play("0 192.0.2.10 tcp 1\n50 192.0.2.10 tcp 2\n50 192.0.2.10 tcp 5\n");
    assert!(h.opened().is_empty());
    assert_eq!(
        h.logs(),
        ["192.0.2.10: a: Stage 1", "192.0.2.10: a: Stage 2"]
    );
    assert_eq!(h.engine.stats().live_attempts, 0);
}

#[test]
fn rule3_single_step_door_opens_at_once() {
    let mut h = Harness::new("[one]\nsequence = 4242:udp\ncommand = one\n");
    h.play("0 192.0.2.10 udp 4242\n");
    assert_eq!(h.opened(), ["192.0.2.10 one"]);
    assert_eq!(h.engine.stats().live_attempts, 0);
}

// ---------------------------------------------------------------------------------------
// Rule 4: Seq_Timeout bounds the whole sequence from the first knock.

#[test]
fn rule4_timeout_counts_from_the_first_knock() {
    let mut h =
        Harness::new("[open]\nsequence = 7000,8000,9000\nseq_timeout = 1\ncommand = open\n");
    h.play("0 192.0.2.10 tcp 7000\n600 192.0.2.10 tcp 8000\n600 192.0.2.10 tcp 9000\n");
    assert!(h.opened().is_empty());
    assert_eq!(
        h.logs(),
        [
            "192.0.2.10: open: Stage 1",
            "192.0.2.10: open: Stage 2",
            "192.0.2.10: open: sequence timeout (stage 2)",
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Rule 5: completion, commands and stop timing.

#[test]
fn rule5_stop_runs_cmd_timeout_after_the_start_finished() {
    let mut h = Harness::new(&format!(
        "{OPEN}cmd_timeout = 2\nstop_command = close %IP%\n"
    ));
    h.play("0 192.0.2.10 tcp 7000\n50 192.0.2.10 tcp 8000\n50 192.0.2.10 tcp 9000\n");
    assert_eq!(h.opened().len(), 1);
    // The start command takes 3 s; the stop is due 2 s after it finished, not after it began.
    h.wait(3000);
    assert!(h.stopped().is_empty());
    h.finish_commands();
    h.wait(1999);
    assert!(h.stopped().is_empty());
    h.wait(1);
    assert_eq!(h.stopped(), ["192.0.2.10 open"]);
    assert!(
        h.logs()
            .contains(&"192.0.2.10: open: command timeout".to_string())
    );
    assert_eq!(h.engine.next_deadline(), None);
}

#[test]
fn rule5_a_cancelled_start_gets_no_stop() {
    let mut h = Harness::new(&format!(
        "{OPEN}cmd_timeout = 1\nstop_command = close %IP%\n"
    ));
    h.play("0 192.0.2.10 tcp 7000\n50 192.0.2.10 tcp 8000\n50 192.0.2.10 tcp 9000\n");
    assert_eq!(h.opened().len(), 1);
    // The runtime could not record the knock (say, a one-time line), so it ran no start.
    for id in std::mem::take(&mut h.running) {
        h.engine.cancel_start(id);
    }
    h.wait(5000);
    assert!(h.stopped().is_empty());
    assert_eq!(h.engine.next_deadline(), None);
    assert!(h.engine.shutdown(h.clock()).is_empty());
}

#[test]
fn rule5_ipv6_commands_fall_back_or_are_disabled() {
    let mut h = Harness::new(
        "[fallback]\nsequence = 1001\nstart_command = up4 %IP%\n\
         [own]\nsequence = 1002\nstart_command = up4\nstart_command_6 = up6 %IP%\n\
         [disabled]\nsequence = 1003\nstart_command = up4\nstart_command_6 =\n",
    );
    h.play("0 2001:db8::1 tcp 1001\n10 2001:db8::1 tcp 1002\n10 2001:db8::1 tcp 1003\n10 192.0.2.10 tcp 1003\n");
    assert_eq!(h.templates(), ["up4 %IP%", "up6 %IP%", "up4"]);
    assert_eq!(
        h.opened(),
        [
            "2001:db8::1 fallback",
            "2001:db8::1 own",
            "192.0.2.10 disabled"
        ]
    );
    assert!(
        h.logs()
            .contains(&"2001:db8::1: disabled: OPEN SESAME".to_string())
    );
}

#[test]
fn rule5_stop_needs_a_start() {
    let mut h = Harness::new("[d]\nsequence = 1001\nstop_command = close\ncmd_timeout = 0\n");
    h.play("0 192.0.2.10 tcp 1001\n");
    h.finish_commands();
    h.wait(100);
    // The knock completes, but with no start command nothing runs, now or later.
    assert_eq!(
        h.logs(),
        ["192.0.2.10: d: Stage 1", "192.0.2.10: d: OPEN SESAME"]
    );
    assert!(
        !h.actions
            .iter()
            .any(|a| matches!(a, Action::RunCommand { .. }))
    );
    assert_eq!(h.engine.next_deadline(), None);
    assert!(h.engine.shutdown(h.clock()).is_empty());
}

#[test]
fn shutdown_runs_every_pending_stop_at_once() {
    let mut h = Harness::new(&format!(
        "{OPEN}cmd_timeout = 60\nstop_command = close %IP%\n"
    ));
    h.play("0 192.0.2.10 tcp 7000\n50 192.0.2.10 tcp 8000\n50 192.0.2.10 tcp 9000\n");
    h.finish_commands();
    h.play("10 192.0.2.11 tcp 7000\n50 192.0.2.11 tcp 8000\n50 192.0.2.11 tcp 9000\n");
    // 192.0.2.11's start is still running: its stop comes too, marked with its start.
    let actions = h.engine.shutdown(h.clock());
    let stops: Vec<String> = actions
        .iter()
        .filter_map(|a| match a {
            Action::RunCommand { src, kind, .. } => Some(format!("{src} {kind:?}")),
            _ => None,
        })
        .collect();
    assert_eq!(
        stops,
        [
            "192.0.2.10 Stop { start: CommandId(1) }",
            "192.0.2.11 Stop { start: CommandId(2) }"
        ]
    );
    assert!(h.engine.shutdown(h.clock()).is_empty());
}

// ---------------------------------------------------------------------------------------
// Rule 6: one-time doors.

#[test]
fn rule6_one_time_consume_comes_before_the_start_command() {
    let mut h = Harness::one_time(
        "[otp]\none_time_sequences = /l\nstart_command = go\n",
        &[("otp", "# header\n 11,12\n 21,22\n")],
    );
    let rules_before = h.engine.capture_rules();
    h.play("0 192.0.2.10 tcp 11\n10 192.0.2.10 tcp 12\n");
    let kinds: Vec<&str> = h
        .actions
        .iter()
        .map(|a| match a {
            Action::Log(_) => "log",
            Action::ConsumeOneTime { .. } => "consume",
            Action::RunCommand { .. } => "run",
            Action::CaptureRulesChanged => "rules",
            Action::HmacCounterUsed { .. } => "hmac",
            Action::AddToSet { .. } => "set",
            Action::StopScheduled { .. } => "stop pending",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "rules", "log", "log", "log", "consume", "run", "log", "rules"
        ]
    );
    assert!(
        h.logs()
            .contains(&"otp: next one-time sequence is on line 3".to_string())
    );
    assert_ne!(h.engine.capture_rules(), rules_before);
    assert_eq!(h.engine.capture_rules()[0].port, 21);
    assert_eq!(rules_before[2].port, 21, "the next line was already in");
}

/// The filter lags the engine: it is rebuilt after the used line is marked on disk. So the
/// rules must already pass the line the engine moves to at a completion, and the rebuild
/// only narrows them (the last line has no next one).
#[test]
fn rule6_one_time_rules_pass_the_next_line_before_the_engine_moves_to_it() {
    let mut h = Harness::one_time(
        "[otp]\none_time_sequences = /l\nstart_command = go\n",
        &[("otp", " 11,12\n 21,22:udp\n 31\n")],
    );
    let ports =
        |h: &Harness| -> Vec<u16> { h.engine.capture_rules().iter().map(|r| r.port).collect() };
    assert_eq!(ports(&h), [11, 12, 21, 22]);
    h.play("0 192.0.2.10 tcp 11\n10 192.0.2.10 tcp 12\n");
    assert_eq!(ports(&h), [21, 22, 31]);
    h.play("0 192.0.2.10 tcp 21\n10 192.0.2.10 udp 22\n");
    assert_eq!(ports(&h), [31]);
    h.play("0 192.0.2.10 tcp 31\n");
    assert_eq!(ports(&h), [] as [u16; 0]);
    assert_eq!(h.opened().len(), 3);
}

#[test]
fn rule6_one_time_attempts_on_a_used_line_stop_counting() {
    let mut h = Harness::one_time(
        "[otp]\none_time_sequences = /l\nstart_command = go\n",
        &[("otp", " 11,12,13\n 21,22,23\n")],
    );
    h.play(
        "0 192.0.2.10 tcp 11\n0 192.0.2.11 tcp 11\n10 192.0.2.10 tcp 12\n10 192.0.2.10 tcp 13\n\
         10 192.0.2.11 tcp 12\n",
    );
    h.wait(10);
    h.play("0 192.0.2.11 tcp 13\n");
    assert_eq!(h.opened(), ["192.0.2.10 otp"]);
}

// ---------------------------------------------------------------------------------------
// The knockd 0.8 bugs.

#[test]
fn bug_a_finished_attempt_keeps_others() {
    let mut h = Harness::new(OPEN);
    h.play(
        "0 192.0.2.10 tcp 7000\n10 192.0.2.11 tcp 7000\n10 192.0.2.12 tcp 7000\n\
         10 192.0.2.10 tcp 8000\n10 192.0.2.10 tcp 9000\n\
         10 192.0.2.12 tcp 9000\n\
         10 192.0.2.11 tcp 8000\n10 192.0.2.11 tcp 9000\n",
    );
    assert_eq!(h.opened(), ["192.0.2.10 open", "192.0.2.11 open"]);
}

#[test]
fn bug_a_expired_attempt_keeps_others() {
    let mut h =
        Harness::new("[open]\nsequence = 7000,8000,9000\nseq_timeout = 1\ncommand = open\n");
    h.play(
        "0 192.0.2.10 tcp 7000\n700 192.0.2.11 tcp 7000\n400 192.0.2.11 tcp 8000\n\
         100 192.0.2.11 tcp 9000\n",
    );
    assert_eq!(h.opened(), ["192.0.2.11 open"]);
    assert!(
        h.logs()
            .contains(&"192.0.2.10: open: sequence timeout (stage 1)".to_string())
    );
}

#[test]
fn bug_a_shared_prefix_diverging_late_opens_second() {
    let mut h = Harness::new(
        "[first]\nsequence = 1001,1002,1003,1004\ncommand = first\n\
         [second]\nsequence = 1001,1002,1005,1006\ncommand = second\n",
    );
    h.play("0 192.0.2.10 tcp 1001\n50 192.0.2.10 tcp 1002\n50 192.0.2.10 tcp 1005\n50 192.0.2.10 tcp 1006\n");
    assert_eq!(h.opened(), ["192.0.2.10 second"]);
}

#[test]
fn bug_b_exact_ms_timeout() {
    let conf = "[open]\nsequence = 7000,8000,9000\nseq_timeout = 1\ncommand = open\n";
    // 600 ms across a second boundary: knockd's whole seconds call this 1 s and time out.
    let mut h = Harness::new(conf);
    h.play("700 192.0.2.10 tcp 7000\n300 192.0.2.10 tcp 8000\n300 192.0.2.10 tcp 9000\n");
    assert_eq!(h.opened(), ["192.0.2.10 open"]);
    // 999 ms is in time; at 1000 ms the attempt is gone.
    let mut h = Harness::new(conf);
    h.play("0 192.0.2.10 tcp 7000\n500 192.0.2.10 tcp 8000\n499 192.0.2.10 tcp 9000\n");
    h.play("0 192.0.2.11 tcp 7000\n500 192.0.2.11 tcp 8000\n500 192.0.2.11 tcp 9000\n");
    assert_eq!(h.opened(), ["192.0.2.10 open"]);
    // Fractional timeouts are exact too.
    let mut h = Harness::new("[open]\nsequence = 7000,8000\nseq_timeout = 0.25\ncommand = open\n");
    h.play("0 192.0.2.10 tcp 7000\n249 192.0.2.10 tcp 8000\n0 192.0.2.11 tcp 7000\n250 192.0.2.11 tcp 8000\n");
    assert_eq!(h.opened(), ["192.0.2.10 open"]);
}

#[test]
fn bug_b_expired_attempts_drop_on_a_timer() {
    let mut h = Harness::new(OPEN);
    h.play("0 192.0.2.10 tcp 7000\n");
    assert_eq!(
        h.engine.next_deadline().map(|t| t.as_millis()),
        Some(crate::support::T0 + 5000)
    );
    h.wait(4999);
    assert_eq!(h.engine.stats().live_attempts, 1);
    h.wait(1);
    assert_eq!(h.engine.stats().live_attempts, 0);
    assert_eq!(
        h.logs().last().map(String::as_str),
        Some("192.0.2.10: open: sequence timeout (stage 1)")
    );
    assert_eq!(h.engine.next_deadline(), None);
}

#[test]
fn bug_c_retransmitted_first_knock() {
    let mut h = Harness::new(OPEN);
    h.play("0 192.0.2.10 tcp 7000\n1 192.0.2.10 tcp 7000\n50 192.0.2.10 tcp 8000\n50 192.0.2.10 tcp 9000\n");
    assert_eq!(h.opened(), ["192.0.2.10 open"]);
}

#[test]
fn bug_c_client_retry_from_the_start() {
    let mut h = Harness::new(OPEN);
    h.play(
        "0 192.0.2.10 tcp 7000\n50 192.0.2.10 tcp 8000\n1000 192.0.2.10 tcp 7000\n\
         50 192.0.2.10 tcp 8000\n50 192.0.2.10 tcp 9000\n",
    );
    assert_eq!(h.opened(), ["192.0.2.10 open"]);
}

#[test]
fn bug_c_restart_resets_the_timeout() {
    let mut h =
        Harness::new("[open]\nsequence = 7000,8000,9000\nseq_timeout = 1\ncommand = open\n");
    h.play("0 192.0.2.10 tcp 7000\n800 192.0.2.10 tcp 7000\n800 192.0.2.10 tcp 8000\n100 192.0.2.10 tcp 9000\n");
    assert_eq!(h.opened(), ["192.0.2.10 open"]);
}

#[test]
fn bug_d_cap_files_first_step_attempts_first() {
    let options = Options {
        max_attempts: 3,
        ..Options::default()
    };
    let mut h = Harness::with(OPEN, Inputs::default(), options);
    h.play(
        "0 192.0.2.10 tcp 7000\n10 192.0.2.10 tcp 8000\n\
         10 192.0.2.20 tcp 7000\n10 192.0.2.21 tcp 7000\n10 192.0.2.22 tcp 7000\n10 192.0.2.23 tcp 7000\n",
    );
    let stats = h.engine.stats();
    assert_eq!(stats.live_attempts, 3);
    assert_eq!(stats.first_steps_filed, 2);
    assert_eq!(stats.evicted_later, 0);
    // The oldest first-step attempts moved to the first-step filter; the newer ones and the
    // knock under way stay in the table. A filed first step still counts: .20's second
    // step finds it, and the knock goes on exactly from there.
    h.play("10 192.0.2.10 tcp 9000\n10 192.0.2.23 tcp 8000\n10 192.0.2.23 tcp 9000\n");
    h.play("10 192.0.2.20 tcp 8000\n10 192.0.2.20 tcp 9000\n");
    assert_eq!(
        h.opened(),
        ["192.0.2.10 open", "192.0.2.23 open", "192.0.2.20 open"]
    );
    assert_eq!(h.engine.stats().first_steps_recalled, 1);
    let logs = h.logs();
    let of_20: Vec<&String> = logs
        .iter()
        .filter(|l| l.starts_with("192.0.2.20:"))
        .collect();
    assert_eq!(
        of_20,
        [
            "192.0.2.20: open: Stage 1",
            "192.0.2.20: open: Stage 2",
            "192.0.2.20: open: Stage 3",
            "192.0.2.20: open: OPEN SESAME"
        ]
    );
}

#[test]
fn bug_d_cap_evicts_later_attempts_only_when_nothing_else_is_left() {
    let options = Options {
        max_attempts: 2,
        ..Options::default()
    };
    let mut h = Harness::with(OPEN, Inputs::default(), options);
    h.play(
        "0 192.0.2.10 tcp 7000\n10 192.0.2.10 tcp 8000\n10 192.0.2.11 tcp 7000\n10 192.0.2.11 tcp 8000\n\
         10 192.0.2.12 tcp 7000\n",
    );
    let stats = h.engine.stats();
    assert_eq!((stats.live_attempts, stats.evicted_later), (2, 1));
    h.play("10 192.0.2.11 tcp 9000\n10 192.0.2.10 tcp 9000\n");
    assert_eq!(h.opened(), ["192.0.2.11 open"]);
}

#[test]
fn bug_e_consuming_the_last_sequence_disables_the_door() {
    let mut h = Harness::one_time(
        "[otp]\none_time_sequences = /l\nstart_command = go\n",
        &[("otp", " 11,12\n")],
    );
    h.play("0 192.0.2.10 tcp 11\n10 192.0.2.10 tcp 12\n");
    assert_eq!(h.opened(), ["192.0.2.10 otp"]);
    assert!(
        h.logs()
            .contains(&"otp: no one-time sequences left, door disabled".to_string())
    );
    assert!(h.engine.capture_rules().is_empty());
    h.play("10 192.0.2.10 tcp 11\n10 192.0.2.10 tcp 12\n");
    assert_eq!(h.opened().len(), 1);
}

#[test]
fn bug_e_ipv6_knocks_work_after_a_consumption() {
    let mut h = Harness::one_time(
        "[otp]\none_time_sequences = /l\nstart_command = go\n",
        &[("otp", " 11,12\n 21,22\n 31,32\n")],
    );
    h.play(
        "0 192.0.2.10 tcp 11\n10 192.0.2.10 tcp 12\n\
         10 2001:db8::1 tcp 21\n10 2001:db8::1 tcp 22\n\
         10 2001:db8::1 tcp 31\n10 2001:db8::1 tcp 32\n",
    );
    assert_eq!(
        h.opened(),
        ["192.0.2.10 otp", "2001:db8::1 otp", "2001:db8::1 otp"]
    );
}

#[test]
fn one_time_door_with_no_lines_left_starts_disabled() {
    let h = Harness::one_time(
        "[otp]\none_time_sequences = /l\n[open]\nsequence = 1\n",
        &[("otp", "#11,12\n\n")],
    );
    assert_eq!(h.logs(), ["otp: no one-time sequences left, door disabled"]);
    assert_eq!(h.engine.capture_rules().len(), 1);
}

#[test]
fn rule3_attempt_for_another_destination_does_not_block_new_attempts() {
    let mut h = Harness::new(&format!(
        "{OPEN}[routed]\nsequence = 5001,5002\ntarget = 192.0.2.99\ncommand = wake\n"
    ));
    h.play(
        "0 192.0.2.10 tcp 5001 -> 192.0.2.99\n10 192.0.2.10 tcp 7000\n10 192.0.2.10 tcp 8000\n\
         10 192.0.2.10 tcp 9000\n10 192.0.2.10 tcp 5002 -> 192.0.2.99\n",
    );
    assert_eq!(h.opened(), ["192.0.2.10 open", "192.0.2.10 routed"]);
}

// ---------------------------------------------------------------------------------------
// As in knockd 0.8, and said in the README: a SYN scan of every port in increasing order
// walks an increasing sequence (packets to ports no door uses are not candidates at all),
// so it opens such a door if it is fast enough for Seq_Timeout; a sequence that goes
// down, or that another door's port interrupts, it does not.

#[test]
fn an_in_order_port_scan_opens_an_increasing_sequence() {
    let mut h = Harness::new(&format!(
        "{OPEN}[down]\nsequence = 60000,50000\nseq_timeout = 30\ncommand = down %IP%\n\
         [cut]\nsequence = 20000,30000\nseq_timeout = 30\ncommand = cut %IP%\n\
         [cutter]\nsequence = 40000,25000\ncommand = cutter %IP%\n"
    ));
    // Every port, in order, one every 0.1 ms as nmap -T5 sends them: 6.6 s in all.
    for port in 1..=65_535u32 {
        if port % 10 == 0 {
            h.wait(1);
        }
        h.play(&format!("0 198.18.0.7 tcp {port}\n"));
    }
    // [open] goes up with nothing in between; [down] goes down; [cut] is interrupted by
    // 25000, a step of [cutter], which cancels its attempt.
    assert_eq!(h.opened(), ["198.18.0.7 open"]);
}
