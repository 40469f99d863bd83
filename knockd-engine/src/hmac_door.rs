//! HMAC doors: the window of live knock-hmac-v1 sequences and the used counters.
//!
//! The window follows the wall clock (the client derives its sequence from its own), but
//! how long a used counter is remembered is measured on the monotonic clock: a counter is
//! live for at most `2 * skew + 1` steps of real time, so it is kept for one step more than
//! that after it was used. Pruning by the window instead would forget every used counter
//! when the wall clock jumps ahead, and accept them again once it is set right.

use std::collections::HashMap;

use knock_core::hit::{FlagRule, Hit};
use knock_core::hmac::HmacParams;
use knock_core::secret::Secret;

use super::door::{Variant, compile};

/// How long a used HMAC counter must be remembered, in monotonic ms, for a door with this
/// step (seconds) and skew: one step longer than a counter can be live (`2 * skew + 1`
/// steps), so a replay is refused for as long as it could match. The runtime prunes its
/// state file by the same rule.
pub fn used_counter_lifetime_ms(step_secs: u64, skew: u64) -> u64 {
    skew.saturating_mul(2)
        .saturating_add(2)
        .saturating_mul(step_secs.saturating_mul(1000))
}

/// Live sequences by counter.
pub(super) type Sequences = Vec<(u64, Vec<Hit>)>;

pub(super) struct HmacState {
    params: HmacParams,
    /// `None` for a door whose windows another process derives and supplies
    /// ([`HmacState::supply`]): knockd-lite's sandboxed worker never holds the secret.
    secret: Option<Secret>,
    skew: u64,
    /// Used counters, each with when (monotonic ms) it was used or, for counters read at
    /// start-up, loaded.
    used: HashMap<u64, u64>,
    /// The counter the window is centred on. The window's sequences are the door's variants.
    center: Option<u64>,
}

impl HmacState {
    pub(super) fn new(
        params: HmacParams,
        secret: Secret,
        skew: u64,
        used: impl IntoIterator<Item = u64>,
        mono: u64,
    ) -> HmacState {
        HmacState {
            params,
            secret: Some(secret),
            skew,
            used: used.into_iter().map(|c| (c, mono)).collect(),
            center: None,
        }
    }

    /// A door whose windows are supplied ([`HmacState::supply`]), with no secret.
    pub(super) fn supplied(
        params: HmacParams,
        skew: u64,
        used: impl IntoIterator<Item = u64>,
        mono: u64,
    ) -> HmacState {
        HmacState {
            params,
            secret: None,
            skew,
            used: used.into_iter().map(|c| (c, mono)).collect(),
            center: None,
        }
    }

    /// Whether the windows are supplied from outside.
    pub(super) fn is_supplied(&self) -> bool {
        self.secret.is_none()
    }

    /// A supplied window: `sequences` by counter, centred on `center`. Forgets used
    /// counters as [`HmacState::refresh`] does; returns the live sequences.
    pub(super) fn supply(
        &mut self,
        center: u64,
        sequences: &[(u64, Vec<Hit>)],
        mono: u64,
        flags: FlagRule,
    ) -> Vec<Variant> {
        let keep = self.keep_ms();
        self.used
            .retain(|_, &mut at| mono.saturating_sub(at) < keep);
        self.center = Some(center);
        sequences
            .iter()
            .map(|(counter, hits)| Variant {
                key: *counter,
                seq: compile(hits, flags),
            })
            .collect()
    }

    /// The live window, derived again from the secret: its centre and each counter's
    /// sequence (for a process that supplies it to one without the secret).
    pub(super) fn window(&self) -> Option<(u64, Sequences)> {
        let (secret, center) = (self.secret.as_ref()?, self.center?);
        let lo = center.saturating_sub(self.skew);
        let hi = center.saturating_add(self.skew);
        let sequences = (lo..=hi)
            .filter_map(|c| Some((c, self.params.derive(secret, c).ok()?)))
            .collect();
        Some((center, sequences))
    }

    /// The counter the window is centred on.
    pub(super) fn center(&self) -> Option<u64> {
        self.center
    }

    fn step_ms(&self) -> u64 {
        self.params.step.saturating_mul(1000)
    }

    fn keep_ms(&self) -> u64 {
        used_counter_lifetime_ms(self.params.step, self.skew)
    }

    /// Moves the window to the counter of `wall_ms` (the wall clock, which may have stepped
    /// either way). Returns the new live sequences when it moved (reusing those of
    /// `current`, the live ones so far, that stay), `None` when it was already there.
    /// Forgets used counters older than [`HmacState::keep_ms`] on the monotonic clock.
    pub(super) fn refresh(
        &mut self,
        wall_ms: u64,
        mono: u64,
        flags: FlagRule,
        current: &[Variant],
    ) -> Option<Vec<Variant>> {
        // A supplied window moves when it is supplied.
        let secret = self.secret.as_ref()?;
        let c = self.params.counter(wall_ms / 1000);
        if self.center == Some(c) {
            return None;
        }
        let keep = self.keep_ms();
        self.used
            .retain(|_, &mut at| mono.saturating_sub(at) < keep);
        self.center = Some(c);
        let lo = c.saturating_sub(self.skew);
        let hi = c.saturating_add(self.skew);
        let mut window = Vec::new();
        for counter in lo..=hi {
            let seq = match current.iter().find(|v| v.key == counter) {
                Some(v) => v.seq.clone(),
                // The parameters were validated when the door was built.
                None => match self.params.derive(secret, counter) {
                    Ok(hits) => compile(&hits, flags),
                    Err(_) => continue,
                },
            };
            window.push(Variant { key: counter, seq });
        }
        Some(window)
    }

    /// When the window moves next, in wall-clock ms.
    pub(super) fn next_change(&self) -> Option<u64> {
        self.center
            .map(|c| c.saturating_add(1).saturating_mul(self.step_ms()))
    }

    /// Records a completed knock on `counter` at `mono`; false if the counter was already
    /// used.
    pub(super) fn mark_used(&mut self, counter: u64, mono: u64) -> bool {
        match self.used.entry(counter) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(mono);
                true
            }
        }
    }

    /// Takes over the used counters of the door this one replaces, with their times.
    pub(super) fn merge_used(&mut self, other: &HmacState) {
        for (&c, &at) in &other.used {
            let mine = self.used.entry(c).or_insert(at);
            *mine = (*mine).min(at);
        }
    }

    pub(super) fn same_secret(&self, other: &HmacState) -> bool {
        self.secret == other.secret && self.params == other.params && self.skew == other.skew
    }
}
