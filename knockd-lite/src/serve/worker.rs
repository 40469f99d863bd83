//! The monitor's side of the sandboxed worker in the main loop: what the worker says goes
//! to the log or, for a completion its checks admit, through this process's engine
//! (`Engine::on_completed`) and then `apply`, as a knock seen here would; what the worker
//! must know (a load, addresses, a one-time line kept) goes to it.

use std::sync::Arc;

use knock_core::otp::OtpLine;
use knockd_engine::{Action, Event, Inputs, Now};

use super::Server;
use crate::capture::PacketSource;
use crate::door_files;
use crate::exec::Runner;
use crate::log::Kind;
use crate::worker::Heard;
use crate::worker::admit::Claim;
use crate::worker::msg::{HmacLoad, Load, Up};

/// The worker's load for `text` (the config file's bytes) and `inputs`, with this
/// process's command-line options.
pub(super) fn load_of(
    generation: u32,
    args: &crate::args::Args,
    text: &[u8],
    inputs: &Inputs,
    local_addrs: &[std::net::IpAddr],
) -> Load {
    let mut one_time: Vec<(String, String)> = inputs
        .one_time
        .iter()
        .map(|(d, t)| (d.clone(), t.clone()))
        .collect();
    one_time.sort();
    let mut hmac: Vec<HmacLoad> = inputs
        .hmac
        .iter()
        // The used counters only: the secret stays here, and each window goes to the
        // worker derived (`sync_hmac_windows`).
        .map(|(d, h)| HmacLoad {
            door: d.clone(),
            used: h.used.iter().copied().collect(),
        })
        .collect();
    hmac.sort_by(|a, b| a.door.cmp(&b.door));
    Load {
        generation,
        config_name: args.config.display().to_string(),
        config_text: text.to_vec(),
        max_attempts: args.max_attempts as u64,
        first_step_memory: args.first_step_memory << 20,
        seed: super::start::random_seed(),
        only_ipv4: args.only_ipv4,
        debug: args.debug,
        local_addrs: local_addrs.to_vec(),
        one_time,
        hmac,
    }
}

impl<S: PacketSource, R: Runner> Server<S, R> {
    /// Sends a new worker its load, built from the config and the doors' files as they
    /// are now (a one-time line used since the last load is marked on disk).
    pub(super) fn feed_worker(&mut self, now: Now) {
        let Some(w) = self.capture.worker() else {
            return;
        };
        if !w.needs_load() {
            return;
        }
        self.send_fresh_load(now);
    }

    /// Reads the doors' files again and sends the worker a load made from them.
    pub(super) fn send_fresh_load(&mut self, now: Now) {
        match door_files::load(&self.config, &self.counters.used()) {
            Ok(loaded) => {
                let addrs = self.watch.addrs().to_vec();
                let text = self.settings.config_text.clone();
                if let Some(w) = self.capture.worker() {
                    let load = load_of(
                        w.next_generation(),
                        &self.args,
                        &text,
                        &loaded.inputs,
                        &addrs,
                    );
                    w.send_load(&load);
                }
                // Right behind the load, and before the capture, so the worker's first
                // filter has every door's ports.
                self.sync_hmac_windows();
                if let Some(w) = self.capture.worker() {
                    w.bind_if_needed();
                }
            }
            Err(e) => {
                let line = format!("worker: cannot load the doors' files: {e}");
                self.journal.line(now, &line, Kind::Error);
            }
        }
    }

    /// Sends the worker a load for the config being reloaded (`inputs` before the engine
    /// takes them).
    pub(super) fn worker_load(&mut self, text: &[u8], inputs: &Inputs) -> Option<Load> {
        let addrs = self.watch.addrs().to_vec();
        let args = self.args.clone();
        let w = self.capture.worker()?;
        Some(load_of(w.next_generation(), &args, text, inputs, &addrs))
    }

    /// Sends the worker the HMAC windows of this process's engine when they moved (or a
    /// new load needs them): the worker matches HMAC doors without their secrets.
    pub(super) fn sync_hmac_windows(&mut self) {
        let centers = self.engine.hmac_centers();
        let Some(w) = self.capture.worker() else {
            return;
        };
        if !w.hmac_windows_moved(&centers) {
            return;
        }
        let windows = self.engine.hmac_windows();
        if let Some(w) = self.capture.worker() {
            w.send_hmac_windows(&windows, centers);
        }
    }

    /// Tells the worker the interface's addresses changed.
    pub(super) fn tell_worker_addrs(&mut self) {
        let addrs = self.watch.addrs().to_vec();
        if let Some(w) = self.capture.worker() {
            w.send_addrs(addrs);
        }
    }

    /// Tells the worker that `line` stays the active line of `door`.
    pub(super) fn tell_worker_line_back(&mut self, door: &str, line: &OtpLine) {
        if let Some(w) = self.capture.worker() {
            w.send_one_time_back(door, line);
        }
    }

    /// Stops the worker (at shutdown, before the pending stops run).
    pub(super) fn stop_worker(&mut self) {
        if let Some(w) = self.capture.worker() {
            w.stop();
        }
    }

    /// What the worker said since the last turn, in order.
    pub(super) fn hear_worker(&mut self) {
        let Some(w) = self.capture.worker() else {
            return;
        };
        let mut heard = w.take_heard().into_iter().peekable();
        while let Some(h) = heard.next() {
            let now = self.now();
            match h {
                Heard::Claim(claim) => self.claimed(now, claim, None),
                // The stage line that completed the claim's sequence goes with its OPEN
                // SESAME, so `apply` keeps or leaves out both, as for a knock seen here.
                Heard::Said(Up::Stage { src, door, stage })
                    if matches!(heard.peek(),
                        Some(Heard::Claim(c)) if c.src == src && c.door == door) =>
                {
                    if let Some(Heard::Claim(claim)) = heard.next() {
                        self.claimed(now, claim, Some(stage));
                    }
                }
                Heard::Line(kind, line) => self.journal.line(now, &line, kind),
                Heard::Said(up) => self.said(now, up),
            }
        }
    }

    /// A completion the worker claims, with the stage line that completed it if it came
    /// just before: through this process's engine and `apply`, or refused.
    fn claimed(&mut self, now: Now, claim: Claim, stage: Option<u32>) {
        let stage_line = |door: &str| Up::Stage {
            src: claim.src,
            door: door.to_string(),
            stage: stage.unwrap_or_default(),
        };
        match self
            .engine
            .on_completed(now, &claim.door, claim.src, claim.proof)
        {
            Ok(mut actions) => {
                let at = actions
                    .iter()
                    .position(|a| matches!(a, Action::Log(Event::OpenSesame { .. })));
                match (stage, at, self.known(&claim.door)) {
                    (Some(stage), Some(i), Some(door)) => actions.insert(
                        i,
                        Action::Log(Event::Stage {
                            src: claim.src,
                            door,
                            stage,
                        }),
                    ),
                    (Some(_), _, _) => self.said(now, stage_line(&claim.door)),
                    (None, _, _) => {}
                }
                self.apply(now, actions);
            }
            Err(e) => {
                if stage.is_some() {
                    self.said(now, stage_line(&claim.door));
                }
                let line = format!("worker: a completion by {} refused: {e}", claim.src);
                self.journal.line(now, &line, Kind::Error);
            }
        }
    }

    fn said(&mut self, now: Now, up: Up) {
        let event = match up {
            Up::Stage { src, door, stage } => {
                self.known(&door)
                    .map(|door| Event::Stage { src, door, stage })
            }
            Up::Timeout { src, door, stage } => self
                .known(&door)
                .map(|door| Event::SequenceTimeout { src, door, stage }),
            Up::Replay { src, door, counter } => {
                self.known(&door)
                    .map(|door| Event::HmacReplay { src, door, counter })
            }
            Up::Packet { packet, vlan } => {
                self.journal.debug(now, &super::describe(&packet, vlan));
                return;
            }
            Up::Refused(e) => {
                self.turn.refused[e as usize] += 1;
                self.journal.debug(now, &format!("frame not used: {e}"));
                return;
            }
            Up::FilterFailed(text) => {
                let line = format!("capture filter: {}", plain(&text));
                self.journal.line(now, &line, Kind::Error);
                return;
            }
            Up::CaptureFailed(text) => {
                let message = format!("capture: {}", plain(&text));
                if self.turn.last_capture_error.as_ref() != Some(&message) {
                    self.journal.line(now, &message, Kind::Error);
                    self.turn.last_capture_error = Some(message);
                }
                return;
            }
            Up::Suppressed { knocks, timeouts } => {
                let held = crate::log::Held { knocks, timeouts };
                self.journal.line(
                    now,
                    &crate::log::summary_body(held, crate::log::FIRST),
                    Kind::Event,
                );
                return;
            }
            Up::Failed(text) => {
                let line = format!("worker: {}", plain(&text));
                self.journal.line(now, &line, Kind::Error);
                return;
            }
            Up::Ready { .. } | Up::Completed { .. } | Up::LinkDown => return,
        };
        match event {
            Some(e) => self.journal.event(now, &e),
            None => {
                let line = "worker: a log event for a door not in the configuration, ignored";
                self.journal.line(now, line, Kind::Error);
            }
        }
    }

    /// The configured name `door` is, as the engine holds it (so log lines name doors of
    /// this config only).
    fn known(&self, door: &str) -> Option<Arc<str>> {
        self.config
            .doors
            .iter()
            .find(|d| d.name == door)
            .map(|d| Arc::from(d.name.as_str()))
    }
}

/// A text from the worker for the log: control characters (a forged line break) become
/// `?`.
fn plain(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
