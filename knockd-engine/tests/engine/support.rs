//! Replay harness: trace fixtures played through the engine on a virtual clock.
//!
//! A trace line is `DELAY_MS SRC PROTO PORT [FLAGS] [-> DST]`: wait DELAY_MS, then a packet
//! from SRC to PORT. FLAGS is a comma list (`syn,ack`, `none`); TCP defaults to `syn`. DST
//! defaults to the server's own address of SRC's family. Blank and `#` lines are skipped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use knock_core::conf;
use knock_core::hit::{Proto, TcpFlags};
use knock_core::wire::KnockPacket;
use knockd_engine::{
    Action, CommandId, CommandKind, Engine, Inputs, Mono, Now, Options, Timestamp,
};

/// The virtual clock starts here (ms since the epoch), on a whole second.
pub const T0: u64 = 1_700_000_000_000;
pub const SERVER_V4: &str = "192.0.2.2";
pub const SERVER_V6: &str = "2001:db8::2";

pub fn local_addrs() -> Vec<IpAddr> {
    vec![SERVER_V4.parse().unwrap(), SERVER_V6.parse().unwrap()]
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceLine {
    pub delay_ms: u64,
    pub packet: KnockPacket,
}

pub fn parse_trace(text: &str) -> Vec<TraceLine> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| parse_line(l).unwrap_or_else(|e| panic!("trace line {l:?}: {e}")))
        .collect()
}

fn parse_line(line: &str) -> Result<TraceLine, String> {
    let (fields, dst) = match line.split_once("->") {
        Some((f, d)) => (f, Some(d.trim())),
        None => (line, None),
    };
    let f: Vec<&str> = fields.split_whitespace().collect();
    if !(4..=5).contains(&f.len()) {
        return Err("expected DELAY SRC PROTO PORT [FLAGS]".into());
    }
    let delay_ms = f[0].parse().map_err(|e| format!("delay: {e}"))?;
    let src: IpAddr = f[1].parse().map_err(|e| format!("source: {e}"))?;
    let proto: Proto = f[2].parse()?;
    let dst_port = f[3].parse().map_err(|e| format!("port: {e}"))?;
    let tcp_flags = match (proto, f.get(4)) {
        (Proto::Udp, None) => TcpFlags::NONE,
        (Proto::Udp, Some(_)) => return Err("flags on a udp packet".into()),
        (Proto::Tcp, None) => TcpFlags::SYN,
        (Proto::Tcp, Some(&"none")) => TcpFlags::NONE,
        (Proto::Tcp, Some(list)) => {
            let mut flags = TcpFlags::NONE;
            for name in list.split(',') {
                flags |= TcpFlags::from_name(name).ok_or(format!("flag {name:?}"))?;
            }
            flags
        }
    };
    let dst = match dst {
        Some(d) => d.parse().map_err(|e| format!("destination: {e}"))?,
        None if src.is_ipv6() => SERVER_V6.parse().unwrap(),
        None => SERVER_V4.parse().unwrap(),
    };
    Ok(TraceLine {
        delay_ms,
        packet: KnockPacket {
            src,
            dst,
            proto,
            dst_port,
            tcp_flags,
        },
    })
}

pub fn config(text: &str) -> conf::Config {
    conf::parse(text, Path::new("test.conf")).unwrap_or_else(|e| panic!("{e}"))
}

/// The engine plus a virtual clock and everything it has asked for so far.
///
/// The clock is two: `now` is the monotonic one, and the wall clock reads `now` plus
/// `wall_offset`, which [`Harness::step_wall`] changes as an operator or NTP would.
pub struct Harness {
    pub engine: Engine,
    /// The monotonic clock, ms.
    pub now: u64,
    /// The wall clock's lead on `now`, ms (both start at the same reading).
    pub wall_offset: i64,
    pub actions: Vec<Action>,
    /// Commands started and not yet reported done.
    pub running: Vec<CommandId>,
}

impl Harness {
    pub fn new(conf_text: &str) -> Harness {
        Harness::with(conf_text, Inputs::default(), Options::default())
    }

    pub fn with(conf_text: &str, mut inputs: Inputs, options: Options) -> Harness {
        Harness::at(
            T0,
            conf_text,
            {
                if inputs.local_addrs.is_empty() {
                    inputs.local_addrs = local_addrs();
                }
                inputs
            },
            options,
        )
    }

    pub fn at(now: u64, conf_text: &str, inputs: Inputs, options: Options) -> Harness {
        Harness::build(now, 0, conf_text, inputs, options)
    }

    /// Like [`Harness::with`], started while the wall clock reads `wall_offset` ms ahead of
    /// the monotonic one (behind when negative).
    pub fn started_off(wall_offset: i64, conf_text: &str, mut inputs: Inputs) -> Harness {
        if inputs.local_addrs.is_empty() {
            inputs.local_addrs = local_addrs();
        }
        Harness::build(T0, wall_offset, conf_text, inputs, Options::default())
    }

    fn build(
        now: u64,
        wall_offset: i64,
        conf_text: &str,
        inputs: Inputs,
        options: Options,
    ) -> Harness {
        let wall = now
            .checked_add_signed(wall_offset)
            .expect("wall clock in range");
        let clock = Now::new(Mono::from_millis(now), Timestamp::from_millis(wall));
        let (engine, actions) = Engine::new(&config(conf_text), inputs, options, clock)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut h = Harness {
            engine,
            now,
            wall_offset,
            actions: Vec::new(),
            running: Vec::new(),
        };
        h.record(actions);
        h
    }

    pub fn one_time(conf_text: &str, lists: &[(&str, &str)]) -> Harness {
        let inputs = Inputs {
            one_time: lists
                .iter()
                .map(|(d, t)| (d.to_string(), t.to_string()))
                .collect::<HashMap<_, _>>(),
            ..Inputs::default()
        };
        Harness::with(conf_text, inputs, Options::default())
    }

    /// Both clocks now.
    pub fn clock(&self) -> Now {
        Now::new(
            Mono::from_millis(self.now),
            Timestamp::from_millis(self.wall()),
        )
    }

    /// The wall clock now, ms.
    pub fn wall(&self) -> u64 {
        self.now
            .checked_add_signed(self.wall_offset)
            .expect("wall clock in range")
    }

    /// Steps the wall clock by `ms` (back when negative); the monotonic clock stays.
    pub fn step_wall(&mut self, ms: i64) {
        self.wall_offset += ms;
    }

    /// Feeds `actions` from a call the test made itself to the record.
    pub fn record(&mut self, actions: Vec<Action>) {
        for a in &actions {
            if let Action::RunCommand { id, .. } = a {
                self.running.push(*id);
            }
        }
        self.actions.extend(actions);
    }

    /// Advances the clock by `ms`, firing every timer on the way as a runtime would.
    pub fn wait(&mut self, ms: u64) {
        let target = self.now + ms;
        while let Some(d) = self.engine.next_deadline() {
            if d.as_millis() > target {
                break;
            }
            self.now = self.now.max(d.as_millis());
            let actions = self.engine.on_tick(self.clock());
            self.record(actions);
        }
        self.now = target;
    }

    pub fn packet(&mut self, p: &KnockPacket) {
        let actions = self.engine.on_packet(self.clock(), p);
        self.record(actions);
    }

    pub fn play(&mut self, trace: &str) {
        for line in parse_trace(trace) {
            self.wait(line.delay_ms);
            self.packet(&line.packet);
        }
    }

    /// Reports every running command as finished now.
    pub fn finish_commands(&mut self) {
        for id in std::mem::take(&mut self.running) {
            let actions = self.engine.on_command_done(self.clock(), id);
            self.record(actions);
        }
    }

    fn commands(&self, stop: bool) -> Vec<String> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::RunCommand {
                    src, door, kind, ..
                } if matches!(kind, CommandKind::Stop { .. }) == stop => {
                    Some(format!("{src} {door}"))
                }
                _ => None,
            })
            .collect()
    }

    /// `SRC DOOR` for every start command, like the conformance harness's events file.
    pub fn opened(&self) -> Vec<String> {
        self.commands(false)
    }

    pub fn stopped(&self) -> Vec<String> {
        self.commands(true)
    }

    /// Every log event in knockd's wording.
    pub fn logs(&self) -> Vec<String> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Log(e) => Some(e.to_string()),
                _ => None,
            })
            .collect()
    }

    pub fn templates(&self) -> Vec<String> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::RunCommand { template, .. } => Some(template.clone()),
                _ => None,
            })
            .collect()
    }
}

/// A trace knocking `hits` from `src`, `gap_ms` apart (the first one without delay). TCP
/// hits with exact flags carry them; others are SYNs.
pub fn knock_trace(src: &str, hits: &[knock_core::hit::Hit], gap_ms: u64) -> String {
    use knock_core::hit::HitFlags;
    hits.iter()
        .enumerate()
        .map(|(i, hit)| {
            let delay = if i == 0 { 0 } else { gap_ms };
            let flags = match (hit.proto, hit.flags) {
                (Proto::Tcp, HitFlags::Exact(f)) => f.names().collect::<Vec<_>>().join(","),
                _ => String::new(),
            };
            format!("{delay} {src} {} {} {flags}\n", hit.proto, hit.port)
        })
        .collect()
}
