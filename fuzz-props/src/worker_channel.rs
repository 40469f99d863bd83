//! `worker_channel`: the channel between knockd-lite's monitor (root) and its sandboxed
//! worker (which reads hostile packets). The worker's side is the one an attacker may have
//! taken over, so every byte string it can send must decode to an error or to a message
//! that means exactly those bytes, and a completion it claims must open nothing the
//! monitor did not configure.
//!
//! Properties, on the input as one datagram up (worker to monitor), one down (monitor to
//! worker) and as a load (the engine's inputs, sent in chunks):
//! * decoding never panics; a decoded message encodes back to exactly the input (one
//!   meaning per byte string, so nothing can slip past the monitor in a second spelling);
//!   an error prints as one printable line;
//! * a decoded completion goes through the monitor's checks (`admit_completion`, then the
//!   monitor's engine, `Engine::on_completed`, with one fixed door `ssh`): it opens the door
//!   only when it names `ssh` with its fixed sequence, for the generation running, from an
//!   address a knock comes from, and then runs exactly the configured command with that
//!   numeric address; anything else is refused and changes nothing.

use std::net::IpAddr;
use std::path::Path;

use knock_core::conf;
use knockd_engine::{Action, CommandKind, Engine, Inputs, Mono, Now, Options, Proof, Timestamp};
use knockd_lite::fuzzing::{
    WorkerUp, admit_completion, decode_worker_down, decode_worker_load, decode_worker_up,
    encode_worker_down, encode_worker_load, encode_worker_up,
};

use crate::printable_message;

/// The monitor's configuration: one fixed door.
const CONFIG: &str = "[ssh]\nsequence = 7000,8000,9000\nstart_command = open %IP%\n";
/// The generation the monitor runs.
const RUNNING: u32 = 1;

/// Accepted: the input is a message or a load.
pub fn check(data: &[u8]) -> bool {
    let mut accepted = false;
    match decode_worker_up(data) {
        Ok(message) => {
            assert_eq!(encode_worker_up(&message), data, "{message:?}");
            if let WorkerUp::Completed {
                generation,
                door,
                src,
                proof,
            } = message
            {
                monitor_checks(generation, &door, src, proof);
            }
            accepted = true;
        }
        Err(e) => printable_message(&e.to_string()),
    }
    match decode_worker_down(data) {
        Ok(message) => {
            assert_eq!(encode_worker_down(&message), data, "{message:?}");
            accepted = true;
        }
        Err(e) => printable_message(&e.to_string()),
    }
    match decode_worker_load(data) {
        Ok(load) => {
            assert_eq!(encode_worker_load(&load), data, "{load:?}");
            accepted = true;
        }
        Err(e) => printable_message(&e.to_string()),
    }
    accepted
}

/// A completion through the monitor's two checks: only the configured door opens.
fn monitor_checks(generation: u32, door: &str, src: IpAddr, proof: Proof) {
    let config = conf::parse(CONFIG.as_bytes(), Path::new("fuzz.conf")).expect("a valid config");
    let now = Now::new(
        Mono::from_millis(1_000),
        Timestamp::from_millis(1_700_000_000_000),
    );
    let inputs = Inputs {
        local_addrs: vec!["192.0.2.2".parse().expect("an address")],
        ..Inputs::default()
    };
    let (mut engine, _) = Engine::new(&config, inputs, Options::default(), now).expect("an engine");
    let admitted = admit_completion(generation, RUNNING, false, door, src, proof);
    let Ok(claim) = admitted else {
        return;
    };
    assert_eq!(generation, RUNNING);
    assert!(!src.is_unspecified() && !src.is_multicast(), "{src}");
    match engine.on_completed(now, &claim.door, claim.src, claim.proof) {
        Ok(actions) => {
            assert_eq!((door, proof), ("ssh", Proof::Fixed));
            let commands: Vec<(IpAddr, &str)> = actions
                .iter()
                .filter_map(|a| match a {
                    Action::RunCommand {
                        src,
                        template,
                        kind: CommandKind::Start,
                        door,
                        ..
                    } if &**door == "ssh" => Some((*src, template.as_str())),
                    Action::RunCommand { .. } | Action::AddToSet { .. } => {
                        panic!("unexpected {a:?}")
                    }
                    _ => None,
                })
                .collect();
            assert_eq!(commands, [(src, "open %IP%")]);
        }
        Err(e) => {
            assert!(door != "ssh" || proof != Proof::Fixed, "{e}");
            printable_message(&e.to_string());
        }
    }
}
