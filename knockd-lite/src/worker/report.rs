//! The worker's side of its engine's actions: what goes up the channel. The worker runs
//! the engine on packets, but carries out nothing: a completion becomes one
//! [`Up::Completed`] (the door, the address, and the one-time line or HMAC counter it
//! used), the stage, timeout and replay lines become typed log events, and everything else
//! (commands, sets, state, the completion's own log lines) is the monitor's, whose engine
//! makes the same actions again once it has checked the claim (`Engine::on_completed`).
//! Pure: no I/O.

use knockd_engine::{Action, CommandKind, Engine, Event, Proof};

use super::msg::Up;

/// What the worker does with one batch of its engine's actions.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Report {
    /// Messages for the monitor, in order.
    pub(crate) up: Vec<Up>,
    /// The capture filter must be rebuilt from the engine's rules.
    pub(crate) rules_changed: bool,
}

/// Turns `actions` (made under the load of `generation`) into messages, and tells
/// `engine` that the start commands it asked for will not run here, so it keeps no stop
/// waiting for them: stops are the monitor's.
pub(crate) fn report(engine: &mut Engine, generation: u32, actions: Vec<Action>) -> Report {
    let mut out = Report::default();
    let mut actions = actions.into_iter().peekable();
    while let Some(action) = actions.next() {
        match action {
            Action::Log(Event::OpenSesame { src, door }) => {
                // The engine says what the knock used right after the line.
                let proof = match actions.peek() {
                    Some(Action::ConsumeOneTime { door: d, line, .. }) if *d == door => {
                        Proof::OneTime {
                            line_no: line.line_no,
                        }
                    }
                    Some(Action::HmacCounterUsed { door: d, counter }) if *d == door => {
                        Proof::Hmac { counter: *counter }
                    }
                    _ => Proof::Fixed,
                };
                out.up.push(Up::Completed {
                    generation,
                    door: door.to_string(),
                    src,
                    proof,
                });
            }
            Action::Log(Event::Stage { src, door, stage }) => out.up.push(Up::Stage {
                src,
                door: door.to_string(),
                stage,
            }),
            Action::Log(Event::SequenceTimeout { src, door, stage }) => out.up.push(Up::Timeout {
                src,
                door: door.to_string(),
                stage,
            }),
            Action::Log(Event::HmacReplay { src, door, counter }) => out.up.push(Up::Replay {
                src,
                door: door.to_string(),
                counter,
            }),
            Action::RunCommand {
                id,
                kind: CommandKind::Start,
                ..
            } => engine.cancel_start(id),
            Action::CaptureRulesChanged => out.rules_changed = true,
            // The monitor's engine makes these itself.
            Action::Log(_)
            | Action::RunCommand { .. }
            | Action::ConsumeOneTime { .. }
            | Action::HmacCounterUsed { .. }
            | Action::AddToSet { .. }
            | Action::StopScheduled { .. } => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};
    use std::net::IpAddr;
    use std::path::Path;

    use knock_core::conf;
    use knock_core::hit::Proto;
    use knock_core::secret::Secret;
    use knock_core::wire::{KnockPacket, TcpFlags};
    use knockd_engine::{HmacInput, Inputs, Mono, Now, Options, Timestamp};

    use super::*;

    const T0: u64 = 1_700_000_000_000;

    fn engine(text: &str, inputs: Inputs) -> Engine {
        let config = conf::parse(text.as_bytes(), Path::new("k.conf")).unwrap();
        let inputs = Inputs {
            local_addrs: vec!["192.0.2.2".parse().unwrap()],
            ..inputs
        };
        Engine::new(&config, inputs, Options::default(), at(0))
            .unwrap()
            .0
    }

    fn at(ms: u64) -> Now {
        Now::new(
            Mono::from_millis(1000 + ms),
            Timestamp::from_millis(T0 + ms),
        )
    }

    fn knock(e: &mut Engine, ms: u64, port: u16) -> Vec<Action> {
        let p = KnockPacket {
            src: "192.0.2.10".parse().unwrap(),
            dst: "192.0.2.2".parse().unwrap(),
            proto: Proto::Tcp,
            dst_port: port,
            tcp_flags: TcpFlags::SYN,
        };
        e.on_packet(at(ms), &p)
    }

    fn src() -> IpAddr {
        "192.0.2.10".parse().unwrap()
    }

    #[test]
    fn a_fixed_door_reports_its_stages_and_one_completion_and_keeps_no_stop() {
        let mut e = engine(
            "[ssh]\nsequence = 7000,8000\nstart_command = open %IP%\n\
             stop_command = close %IP%\ncmd_timeout = 1\nnft_set = inet f s\n",
            Inputs::default(),
        );
        let mut up = Vec::new();
        for (ms, port) in [(0, 7000), (10, 8000)] {
            let actions = knock(&mut e, ms, port);
            up.extend(report(&mut e, 4, actions).up);
        }
        assert_eq!(
            up,
            [
                Up::Stage {
                    src: src(),
                    door: "ssh".into(),
                    stage: 1
                },
                Up::Stage {
                    src: src(),
                    door: "ssh".into(),
                    stage: 2
                },
                Up::Completed {
                    generation: 4,
                    door: "ssh".into(),
                    src: src(),
                    proof: Proof::Fixed
                },
            ]
        );
        // The start was cancelled here: no stop ever comes due in the worker.
        assert_eq!(e.next_deadline(), None);
        assert!(e.on_tick(at(60_000)).is_empty());
    }

    #[test]
    fn a_one_time_door_reports_its_line_and_rebuilds_the_filter() {
        let mut e = engine(
            "[otp]\none_time_sequences = /l\nstart_command = x\n",
            Inputs {
                one_time: HashMap::from([("otp".to_string(), " 11\n 21\n".to_string())]),
                ..Inputs::default()
            },
        );
        let actions = knock(&mut e, 0, 11);
        let r = report(&mut e, 1, actions);
        assert!(r.rules_changed);
        assert_eq!(
            r.up.last(),
            Some(&Up::Completed {
                generation: 1,
                door: "otp".into(),
                src: src(),
                proof: Proof::OneTime { line_no: 1 }
            })
        );
    }

    #[test]
    fn an_hmac_door_reports_its_counter_then_a_replay() {
        let secret = "correct horse battery staple";
        let mut e = engine(
            "[h]\nhmac_secret_file = /k\nstart_command = x\n",
            Inputs {
                hmac: HashMap::from([(
                    "h".to_string(),
                    HmacInput {
                        secret: Secret::from_text(secret),
                        used: BTreeSet::new(),
                    },
                )]),
                ..Inputs::default()
            },
        );
        let counter = T0 / 1000 / 30;
        let hits = knock_core::hmac::HmacParams::new("h")
            .derive(&Secret::from_text(secret), counter)
            .unwrap();
        let mut up = Vec::new();
        for round in 0..2 {
            for (i, hit) in hits.iter().enumerate() {
                let actions = knock(&mut e, round * 1000 + i as u64 * 10, hit.port);
                up.extend(report(&mut e, 1, actions).up);
            }
        }
        let ends: Vec<&Up> = up
            .iter()
            .filter(|u| matches!(u, Up::Completed { .. } | Up::Replay { .. }))
            .collect();
        assert_eq!(
            ends,
            [
                &Up::Completed {
                    generation: 1,
                    door: "h".into(),
                    src: src(),
                    proof: Proof::Hmac { counter }
                },
                &Up::Replay {
                    src: src(),
                    door: "h".into(),
                    counter
                },
            ]
        );
    }
}
