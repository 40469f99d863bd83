//! HMAC doors: the window of live knock-hmac-v1 sequences and the used counters.

use std::collections::HashSet;

use knock_core::hit::FlagRule;
use knock_core::hmac::HmacParams;
use knock_core::secret::Secret;

use super::door::{Variant, compile};

pub(super) struct HmacState {
    params: HmacParams,
    secret: Secret,
    skew: u64,
    used: HashSet<u64>,
    /// The counter the window is centred on. The window's sequences are the door's variants.
    center: Option<u64>,
}

impl HmacState {
    pub(super) fn new(
        params: HmacParams,
        secret: Secret,
        skew: u64,
        used: impl IntoIterator<Item = u64>,
    ) -> HmacState {
        HmacState {
            params,
            secret,
            skew,
            used: used.into_iter().collect(),
            center: None,
        }
    }

    fn step_ms(&self) -> u64 {
        self.params.step.saturating_mul(1000)
    }

    /// Moves the window to the counter of `now_ms`. Returns the new live sequences when it
    /// moved (reusing those of `current`, the live ones so far, that stay), `None` when it
    /// was already there.
    pub(super) fn refresh(
        &mut self,
        now_ms: u64,
        flags: FlagRule,
        current: &[Variant],
    ) -> Option<Vec<Variant>> {
        let c = self.params.counter(now_ms / 1000);
        if self.center == Some(c) {
            return None;
        }
        self.center = Some(c);
        let lo = c.saturating_sub(self.skew);
        let hi = c.saturating_add(self.skew);
        let mut window = Vec::new();
        for counter in lo..=hi {
            let seq = match current.iter().find(|v| v.key == counter) {
                Some(v) => v.seq.clone(),
                // The parameters were validated when the door was built.
                None => match self.params.derive(&self.secret, counter) {
                    Ok(hits) => compile(&hits, flags),
                    Err(_) => continue,
                },
            };
            window.push(Variant { key: counter, seq });
        }
        // The window only moves forward, so counters below it can never match again.
        self.used.retain(|&k| k >= lo);
        Some(window)
    }

    /// When the window moves next, in ms.
    pub(super) fn next_change(&self) -> Option<u64> {
        self.center
            .map(|c| c.saturating_add(1).saturating_mul(self.step_ms()))
    }

    /// Records a completed knock on `counter`; false if the counter was already used.
    pub(super) fn mark_used(&mut self, counter: u64) -> bool {
        self.used.insert(counter)
    }

    pub(super) fn merge_used(&mut self, other: &HmacState) {
        self.used.extend(other.used.iter().copied());
    }

    pub(super) fn same_secret(&self, other: &HmacState) -> bool {
        self.secret == other.secret && self.params == other.params && self.skew == other.skew
    }
}
