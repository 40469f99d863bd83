//! Doors compiled for matching: steps with their flag rules, the live sequences of each door
//! (one for fixed doors, the current line for one-time doors, the window for HMAC doors) and
//! the index from (protocol, port) to the steps that use it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use knock_core::conf::{self, SequenceSource};
use knock_core::hit::{FlagRule, Hit, Proto, TcpFlags};
use knock_core::otp::{self, OtpLine};

use super::hmac_door::HmacState;
use super::time::millis;
use super::{EngineError, Inputs};
use crate::filter::CaptureRule;

/// One step as the server matches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Step {
    pub(super) proto: Proto,
    pub(super) port: u16,
    /// For TCP: the door's `TCPFlags`, or the step's own flags. `ANY` for UDP.
    pub(super) rule: FlagRule,
}

impl Step {
    pub(super) fn new(hit: &Hit, door_flags: FlagRule) -> Step {
        let rule = match hit.proto {
            Proto::Udp => FlagRule::ANY,
            Proto::Tcp => hit.step_rule(door_flags),
        };
        Step {
            proto: hit.proto,
            port: hit.port,
            rule,
        }
    }

    pub(super) fn capture_rule(&self) -> CaptureRule {
        CaptureRule {
            proto: self.proto,
            port: self.port,
            flags: self.rule,
        }
    }
}

pub(super) type Seq = Arc<[Step]>;

pub(super) fn compile(hits: &[Hit], flags: FlagRule) -> Seq {
    hits.iter().map(|h| Step::new(h, flags)).collect()
}

/// One live sequence of a door.
#[derive(Clone, Debug)]
pub(super) struct Variant {
    /// 0 for fixed doors, the line number for one-time doors, the counter for HMAC doors.
    pub(super) key: u64,
    pub(super) seq: Seq,
}

pub(super) struct OneTime {
    pub(super) path: PathBuf,
    /// Unused lines, the active one first.
    pub(super) lines: VecDeque<OtpLine>,
}

pub(super) enum Kind {
    Fixed,
    OneTime(OneTime),
    Hmac(Box<HmacState>),
}

pub(super) struct Door {
    pub(super) name: Arc<str>,
    pub(super) conf: conf::Door,
    pub(super) seq_timeout_ms: u64,
    /// Index of the deadline queue for `seq_timeout_ms`.
    pub(super) queue: usize,
    /// Names the door in the first-step filter; kept across reloads while the door stays
    /// the same, so first steps recorded before a reload still count after it.
    pub(super) uid: u64,
    /// Live sequences; empty for a disabled door.
    pub(super) variants: Vec<Variant>,
    pub(super) kind: Kind,
}

impl Door {
    /// Compiles a door, taking its one-time text or HMAC secret out of `inputs`, at `mono`
    /// and `wall` (ms on each clock).
    pub(super) fn build(
        c: &conf::Door,
        inputs: &mut Inputs,
        mono: u64,
        wall: u64,
    ) -> Result<Door, EngineError> {
        let flags = c.tcp_flags;
        let seq_timeout_ms = millis(c.seq_timeout);
        let (kind, variants) =
            match &c.sequence {
                SequenceSource::Fixed(hits) => (
                    Kind::Fixed,
                    vec![Variant {
                        key: 0,
                        seq: compile(hits, flags),
                    }],
                ),
                SequenceSource::OneTime(path) => {
                    let text = inputs.one_time.remove(&c.name).ok_or_else(|| {
                        EngineError::MissingOneTimeList {
                            door: c.name.clone(),
                        }
                    })?;
                    let lines = otp::unused_lines(&text)
                        .collect::<Result<VecDeque<_>, _>>()
                        .map_err(|e| EngineError::OneTimeLine {
                            door: c.name.clone(),
                            path: path.clone(),
                            line: e.line_no,
                            error: e.error,
                        })?;
                    let one_time = OneTime {
                        path: path.clone(),
                        lines,
                    };
                    let variants = one_time.variants(flags);
                    (Kind::OneTime(one_time), variants)
                }
                SequenceSource::Hmac(h) if inputs.hmac_supplied.contains_key(&c.name) => {
                    let used = inputs.hmac_supplied.remove(&c.name).unwrap_or_default();
                    let params = h.params(&c.name);
                    params.validate().map_err(|e| EngineError::HmacParams {
                        door: c.name.clone(),
                        message: e.to_string(),
                    })?;
                    // No sequence until the first window is supplied.
                    let state = HmacState::supplied(params, h.skew, used, mono);
                    (Kind::Hmac(Box::new(state)), Vec::new())
                }
                SequenceSource::Hmac(h) => {
                    let input = inputs.hmac.remove(&c.name).ok_or_else(|| {
                        EngineError::MissingHmacSecret {
                            door: c.name.clone(),
                        }
                    })?;
                    if input.secret.is_empty() {
                        return Err(EngineError::EmptyHmacSecret {
                            door: c.name.clone(),
                            path: h.secret_file.clone(),
                        });
                    }
                    let params = h.params(&c.name);
                    params.validate().map_err(|e| EngineError::HmacParams {
                        door: c.name.clone(),
                        message: e.to_string(),
                    })?;
                    let mut state = HmacState::new(params, input.secret, h.skew, input.used, mono);
                    let variants = state.refresh(wall, mono, flags, &[]).unwrap_or_default();
                    (Kind::Hmac(Box::new(state)), variants)
                }
            };
        Ok(Door {
            name: Arc::from(c.name.as_str()),
            conf: c.clone(),
            seq_timeout_ms,
            queue: 0,
            uid: 0,
            variants,
            kind,
        })
    }

    pub(super) fn is_hmac(&self) -> bool {
        matches!(self.kind, Kind::Hmac(_))
    }

    pub(super) fn flags(&self) -> FlagRule {
        self.conf.tcp_flags
    }

    /// Whether a packet to `dst` can count for this door.
    pub(super) fn accepts_dst(&self, dst: &IpAddr, local: &HashSet<IpAddr>) -> bool {
        match &self.conf.target {
            Some(target) => target == dst,
            None => local.contains(dst),
        }
    }

    /// The sequence an attempt at `key` follows, while it still counts: a one-time line stops
    /// counting once it is used, an HMAC counter once it leaves the window.
    pub(super) fn seq_of(&self, key: u64) -> Option<&Seq> {
        match &self.kind {
            Kind::Fixed => self.variants.first(),
            Kind::OneTime(_) | Kind::Hmac(_) => self.variants.iter().find(|v| v.key == key),
        }
        .map(|v| &v.seq)
    }

    /// Whether `other` (from a reloaded config) matches exactly as this door does, so its
    /// attempts can carry over.
    pub(super) fn same_as(&self, other: &Door) -> bool {
        if !self.conf.same_definition(&other.conf) {
            return false;
        }
        match (&self.kind, &other.kind) {
            (Kind::Fixed, Kind::Fixed) => true,
            (Kind::OneTime(a), Kind::OneTime(b)) => a.lines.front() == b.lines.front(),
            (Kind::Hmac(a), Kind::Hmac(b)) => a.same_secret(b),
            _ => false,
        }
    }
}

impl OneTime {
    pub(super) fn variants(&self, flags: FlagRule) -> Vec<Variant> {
        self.lines
            .front()
            .map(|line| Variant {
                key: line.line_no as u64,
                seq: compile(&line.hits, flags),
            })
            .into_iter()
            .collect()
    }
}

/// One step of one live sequence, filed under its (protocol, port).
#[derive(Clone, Copy, Debug)]
pub(super) struct Entry {
    pub(super) door: u32,
    /// Index into the door's `variants`.
    pub(super) variant: u32,
    pub(super) step: u32,
    pub(super) rule: FlagRule,
}

impl Entry {
    pub(super) fn matches_flags(&self, proto: Proto, flags: TcpFlags) -> bool {
        proto == Proto::Udp || self.rule.matches(flags)
    }
}

pub(super) type Index = HashMap<(Proto, u16), Vec<Entry>>;

pub(super) fn build_index(doors: &[Door]) -> Index {
    let mut index = Index::new();
    for (d, door) in doors.iter().enumerate() {
        for (v, variant) in door.variants.iter().enumerate() {
            for (s, step) in variant.seq.iter().enumerate() {
                index
                    .entry((step.proto, step.port))
                    .or_default()
                    .push(Entry {
                        door: d as u32,
                        variant: v as u32,
                        step: s as u32,
                        rule: step.rule,
                    });
            }
        }
    }
    index
}

/// Every capture rule the doors imply, first occurrence first, without duplicates: their
/// live sequences, and a one-time door's next line as well.
///
/// The filter must pass everything the engine wants at every instant, but the engine moves
/// to a one-time door's next line the moment the active one completes, while the filter
/// made from the new rules goes into the kernel only after the line is marked used (an
/// fsync, which under disk load took 0.7 s and more). A knock of the next line sent in
/// that time was dropped by the kernel. With the next line already in the filter, the
/// wider filter is in place before the engine moves, and the rebuild only narrows it.
pub(super) fn capture_rules<'a>(doors: impl IntoIterator<Item = &'a Door>) -> Vec<CaptureRule> {
    let mut seen = HashSet::new();
    let mut rules = Vec::new();
    for door in doors {
        let next = match &door.kind {
            Kind::OneTime(ot) => ot.lines.get(1).map(|l| compile(&l.hits, door.flags())),
            Kind::Fixed | Kind::Hmac(_) => None,
        };
        let steps = door
            .variants
            .iter()
            .flat_map(|v| v.seq.iter())
            .chain(next.iter().flat_map(|s| s.iter()));
        rules.extend(steps.map(Step::capture_rule).filter(|r| seen.insert(*r)));
    }
    rules
}
