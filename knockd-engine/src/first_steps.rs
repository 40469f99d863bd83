//! First steps beyond the attempt cap: for each `Seq_Timeout`, a ring of time slices, each a
//! Bloom filter of the (source, door, sequence) keys whose first hit fell in that slice.
//!
//! When the attempt table is full, the oldest attempt still at its first step moves here
//! instead of being forgotten; a later second step from that source finds it again and the
//! attempt continues exactly. A Bloom filter has no false negatives, so a first step that
//! moved here is never lost before its slice expires, however many sources flood the door:
//! more sources only raise the false-positive rate, in fixed memory. What a false positive
//! lets through, and why the rules that change here are safe, is in
//! `docs/knockd-lite-matching.md` ("First steps under a flood").
//!
//! Layout: each slice is an array of 64-byte blocks; a key sets [`HASHES`] bits in one block
//! (one cache line per insert, one per slice on a lookup). A group is made, and its memory
//! allocated zeroed, on its first insert, and only slices that were written are ever cleared,
//! so a server that never meets a flood keeps none of it resident, and a config with
//! thousands of timeouts costs only for those that see pressure.

use std::collections::HashMap;
use std::net::IpAddr;

/// Slices that cover one `Seq_Timeout`; the ring holds one more, the one being filled.
pub(super) const SLICES: u64 = 16;
const RING: usize = SLICES as usize + 1;
/// Bits set per key, all in one block.
const HASHES: u32 = 7;
/// 64-bit words per block: 512 bits, one cache line.
const BLOCK_WORDS: usize = 8;
const BLOCK_BYTES: usize = BLOCK_WORDS * 8;

/// Where a key's bits are: a block, and the bit positions inside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Key {
    block: u64,
    bits: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Slice {
    /// `start / width` of the first steps it holds.
    epoch: u64,
    /// Keys inserted since it was last cleared (repeats included); 0 means clean.
    keys: u64,
}

/// The ring of one `Seq_Timeout`.
struct Group {
    timeout_ms: u64,
    /// A slice's span: `timeout / SLICES`, rounded up, at least 1 ms.
    width_ms: u64,
    /// Blocks per slice; 0 disables the group.
    blocks: usize,
    /// `RING * blocks` blocks from `base` on; empty until the first insert.
    words: Vec<u64>,
    /// Index of the first 64-byte-aligned word of `words`.
    base: usize,
    slices: [Slice; RING],
}

impl Group {
    fn new(timeout_ms: u64, bytes: usize) -> Group {
        let blocks = if timeout_ms == 0 {
            0
        } else {
            bytes / (RING * BLOCK_BYTES)
        };
        Group {
            timeout_ms,
            width_ms: timeout_ms.div_ceil(SLICES).max(1),
            blocks,
            words: Vec::new(),
            base: 0,
            slices: [Slice::default(); RING],
        }
    }

    fn block(&mut self, slot: usize, key: Key) -> &mut [u64] {
        let i = self.index(slot, key);
        &mut self.words[i..i + BLOCK_WORDS]
    }

    fn index(&self, slot: usize, key: Key) -> usize {
        // Multiply-shift maps the hash onto 0..blocks without a division.
        let b = ((u128::from(key.block) * self.blocks as u128) >> 64) as usize;
        self.base + (slot * self.blocks + b) * BLOCK_WORDS
    }

    fn allocate(&mut self) {
        let len = RING * self.blocks * BLOCK_WORDS + BLOCK_WORDS - 1;
        // `vec![0; n]` asks the allocator for zeroed memory: for a large group that is fresh
        // pages, resident only once written.
        self.words = vec![0u64; len];
        let misalign = self.words.as_ptr() as usize % BLOCK_BYTES;
        self.base = if misalign == 0 {
            0
        } else {
            (BLOCK_BYTES - misalign) / 8
        };
    }

    fn clear(&mut self, slot: usize) {
        let start = self.base + slot * self.blocks * BLOCK_WORDS;
        self.words[start..start + self.blocks * BLOCK_WORDS].fill(0);
        self.slices[slot].keys = 0;
    }

    /// Records a first step taken at `start_ms`. False if its slice has already left the
    /// ring (the first step has expired).
    fn insert(&mut self, key: Key, start_ms: u64) -> bool {
        if self.blocks == 0 {
            return false;
        }
        if self.words.is_empty() {
            self.allocate();
        }
        let epoch = start_ms / self.width_ms;
        let slot = (epoch % RING as u64) as usize;
        let slice = self.slices[slot];
        if slice.keys > 0 && slice.epoch != epoch {
            if slice.epoch > epoch {
                return false;
            }
            self.clear(slot);
        }
        self.slices[slot].epoch = epoch;
        self.slices[slot].keys += 1;
        let block = self.block(slot, key);
        for (word, bit) in positions(key) {
            block[word] |= 1 << bit;
        }
        true
    }

    /// The deadline of the newest first step recorded for `key` that is still live at
    /// `now_ms`: the start of its slice plus the timeout, never later than the exact one.
    fn deadline(&self, key: Key, now_ms: u64) -> Option<u64> {
        if self.words.is_empty() {
            return None;
        }
        let mut best = None;
        for (slot, slice) in self.slices.iter().enumerate() {
            if slice.keys == 0 {
                continue;
            }
            let start = slice.epoch.saturating_mul(self.width_ms);
            let deadline = start.saturating_add(self.timeout_ms);
            if deadline <= now_ms || best.is_some_and(|b| b >= deadline) {
                continue;
            }
            let i = self.index(slot, key);
            let block = &self.words[i..i + BLOCK_WORDS];
            if positions(key).all(|(word, bit)| block[word] & (1 << bit) != 0) {
                best = Some(deadline);
            }
        }
        best
    }

    /// When the first step most recently recorded at `start_ms` stops being found.
    fn expiry(&self, start_ms: u64) -> u64 {
        (start_ms / self.width_ms)
            .saturating_mul(self.width_ms)
            .saturating_add(self.timeout_ms)
    }
}

/// The bit positions of a key inside its block: (word, bit) pairs, 9 bits of hash each.
fn positions(key: Key) -> impl Iterator<Item = (usize, u32)> {
    (0..HASHES).map(move |i| {
        let p = (key.bits >> (9 * i)) & 511;
        ((p >> 6) as usize, (p & 63) as u32)
    })
}

/// Counters for stats and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Counts {
    /// First steps recorded.
    pub(super) inserted: u64,
    /// First steps that could not be recorded (no memory for their timeout, or expired).
    pub(super) dropped: u64,
    /// Second steps that found their first step here.
    pub(super) recalled: u64,
}

/// Every group, and the key that makes their hashes unpredictable from outside.
pub(super) struct FirstSteps {
    key: [u64; 4],
    budget: usize,
    /// The distinct timeouts in use, sorted, and their sum: a group's share of the budget
    /// is in proportion to its timeout.
    timeouts: Vec<u64>,
    total_ms: u128,
    /// By timeout; made on first use.
    groups: HashMap<u64, Group>,
    /// No group holds a live first step from this moment on: lookups are skipped.
    live_until: u64,
    pub(super) counts: Counts,
}

impl FirstSteps {
    /// At most `budget` bytes in all (0 turns the structure off); `seed` keys the hash.
    pub(super) fn new(budget: usize, seed: u64) -> FirstSteps {
        let mut state = seed;
        let key = std::array::from_fn(|_| splitmix64(&mut state));
        FirstSteps {
            key,
            budget,
            timeouts: Vec::new(),
            total_ms: 0,
            groups: HashMap::new(),
            live_until: 0,
            counts: Counts::default(),
        }
    }

    /// Sets the timeouts in use. When they are the ones already set, everything recorded
    /// stays; otherwise the budget is shared anew, in proportion to each timeout (so every
    /// timeout takes the same flood rate), and what was recorded is dropped.
    pub(super) fn configure(&mut self, timeouts: &[u64]) {
        let mut wanted: Vec<u64> = timeouts.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        if wanted == self.timeouts {
            return;
        }
        self.total_ms = wanted.iter().map(|&t| u128::from(t)).sum();
        self.timeouts = wanted;
        self.groups.clear();
        self.live_until = 0;
    }

    /// The group of `timeout_ms`, made with its share of the budget on first use; `None`
    /// for a timeout not configured.
    fn group(&mut self, timeout_ms: u64) -> Option<&mut Group> {
        if !self.groups.contains_key(&timeout_ms) {
            self.timeouts.binary_search(&timeout_ms).ok()?;
            let share = (self.budget as u128 * u128::from(timeout_ms))
                .checked_div(self.total_ms)
                .map_or(0, |b| b as usize);
            self.groups
                .insert(timeout_ms, Group::new(timeout_ms, share));
        }
        self.groups.get_mut(&timeout_ms)
    }

    /// The key of `src`'s first step at sequence `variant` of the door known as `door`.
    pub(super) fn key(&self, src: IpAddr, door: u64, variant: u64) -> Key {
        let (hi, lo) = match src {
            IpAddr::V4(a) => (4, u64::from(u32::from(a))),
            IpAddr::V6(a) => {
                let n = u128::from(a);
                ((n >> 64) as u64 ^ 6, n as u64)
            }
        };
        let [k0, k1, k2, k3] = self.key;
        let h = fold(lo ^ k0, hi ^ k1) ^ fold(variant ^ k2, door ^ k3);
        Key {
            block: fold(h ^ k3, 0x9E37_79B9_7F4A_7C15),
            bits: fold(h ^ k0, 0xC2B2_AE3D_27D4_EB4F),
        }
    }

    /// Records a first step taken at `start_ms` at a door whose timeout is `timeout_ms`.
    pub(super) fn insert(&mut self, timeout_ms: u64, key: Key, start_ms: u64) {
        let expiry = self
            .group(timeout_ms)
            .and_then(|g| g.insert(key, start_ms).then(|| g.expiry(start_ms)));
        match expiry {
            Some(t) => {
                self.counts.inserted += 1;
                self.live_until = self.live_until.max(t);
            }
            None => self.counts.dropped += 1,
        }
    }

    /// The deadline of a live first step recorded for `key` at a door whose timeout is
    /// `timeout_ms`, if any.
    pub(super) fn recall(&mut self, timeout_ms: u64, key: Key, now_ms: u64) -> Option<u64> {
        let found = self.groups.get(&timeout_ms)?.deadline(key, now_ms);
        if found.is_some() {
            self.counts.recalled += 1;
        }
        found
    }

    /// Whether any group may hold a live first step: lookups are skipped when none does.
    pub(super) fn live(&self, now_ms: u64) -> bool {
        now_ms < self.live_until
    }

    /// Bytes allocated (resident once written).
    pub(super) fn allocated(&self) -> usize {
        self.groups.values().map(|g| g.words.len() * 8).sum()
    }
}

/// A multiply whose high and low halves are folded together: the mixing step of wyhash-like
/// hashes. Keyed by the caller XORing secret words into its inputs (an input is zero only
/// when it equals a secret word).
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(i: u32) -> IpAddr {
        IpAddr::V4((0xC612_0000 + i).into())
    }

    fn steps(budget: usize, timeout: u64) -> FirstSteps {
        let mut f = FirstSteps::new(budget, 7);
        f.configure(&[timeout]);
        f
    }

    #[test]
    fn a_recorded_first_step_is_found_until_its_slice_expires() {
        // 5 s in 16 slices of 313 ms: a first step at 10_000 ms is in the slice starting at
        // 9_703 ms, so it is found until 14_703 ms, never after 15_000 (the exact deadline).
        let mut f = steps(1 << 20, 5000);
        let k = f.key(v4(1), 1, 0);
        assert!(!f.live(0));
        f.insert(5000, k, 10_000);
        assert_eq!(f.recall(5000, k, 10_000), Some(14_703));
        assert_eq!(f.recall(5000, k, 14_702), Some(14_703));
        assert!(f.live(14_702));
        assert_eq!(f.recall(5000, k, 14_703), None);
        assert!(!f.live(14_703));
        // Other doors, sequences and sources are other keys.
        for other in [f.key(v4(2), 1, 0), f.key(v4(1), 2, 0), f.key(v4(1), 1, 9)] {
            assert_ne!(other, k);
            assert_eq!(f.recall(5000, other, 10_000), None);
        }
        assert_eq!(f.counts.recalled, 2);
    }

    #[test]
    fn the_newest_slice_wins_and_old_slices_are_reused() {
        let mut f = steps(1 << 20, 1600);
        let k = f.key(v4(1), 1, 0);
        f.insert(1600, k, 0);
        f.insert(1600, k, 1000);
        assert_eq!(f.recall(1600, k, 1000), Some(2600));
        // 17 slices of 100 ms later the first slot holds a new epoch: cleared first.
        let other = f.key(v4(2), 1, 0);
        f.insert(1600, other, 1700);
        assert_eq!(f.recall(1600, k, 1700), Some(2600));
        assert_eq!(f.recall(1600, other, 1700), Some(3300));
        // A first step whose slot already holds a later slice has expired: not recorded.
        f.insert(1600, f.key(v4(3), 1, 0), 50);
        assert_eq!(f.counts.dropped, 1);
        // Nor is one at a timeout no door has.
        f.insert(999, k, 1700);
        assert_eq!(f.counts.dropped, 2);
    }

    #[test]
    fn no_memory_means_nothing_is_recorded() {
        let mut f = steps(0, 5000);
        let k = f.key(v4(1), 1, 0);
        f.insert(5000, k, 0);
        assert_eq!(f.recall(5000, k, 1), None);
        assert_eq!(
            (f.counts.inserted, f.counts.dropped, f.allocated()),
            (0, 1, 0)
        );
        let mut zero = steps(1 << 20, 0);
        zero.insert(0, k, 0);
        assert_eq!(zero.allocated(), 0);
    }

    #[test]
    fn memory_is_shared_in_proportion_to_the_timeouts_and_taken_on_first_use() {
        let mut f = FirstSteps::new(6 << 20, 1);
        f.configure(&[20_000, 5000, 5000, 5000, 75_000]);
        assert_eq!(f.allocated(), 0);
        let k = f.key(v4(1), 1, 0);
        f.insert(5000, k, 0);
        f.insert(20_000, k, 0);
        // 5 s and 20 s have a quarter of the budget between them; 75 s has the rest but has
        // not been used: nothing allocated for it.
        let total = f.allocated();
        let quarter = (6 << 20) / 4;
        assert!(total <= quarter + 2 * 64, "{total}");
        assert!(total >= quarter - 2 * RING * BLOCK_BYTES, "{total}");
        let ratio = f.groups[&20_000].blocks as f64 / f.groups[&5000].blocks as f64;
        assert!((ratio - 4.0).abs() < 0.01, "{ratio}");
        // The same timeouts again keep what was recorded; others start afresh.
        f.configure(&[75_000, 5000, 20_000]);
        assert_eq!(f.recall(5000, k, 1), Some(5000));
        f.configure(&[5000]);
        assert_eq!(f.recall(5000, k, 1), None);
        assert!(!f.live(1));
    }

    #[test]
    fn many_timeouts_cost_only_where_first_steps_go() {
        // A config with 100,000 doors, each its own Seq_Timeout: each share is too small for
        // a ring, so nothing is allocated and first steps are dropped, in O(1) each.
        let mut f = FirstSteps::new(8 << 20, 3);
        let timeouts: Vec<u64> = (1..=100_000).map(|t| 1000 + t).collect();
        f.configure(&timeouts);
        let k = f.key(v4(1), 1, 0);
        for t in (1001..101_001).step_by(1000) {
            f.insert(t, k, 0);
        }
        assert_eq!((f.counts.dropped, f.allocated()), (100, 0));
        assert!(!f.live(0));
        // Two timeouts share the budget: the one used takes its half, no more.
        f.configure(&[5000, 5000, 5000]);
        f.configure(&[5000, 5000]);
        f.configure(&[5000, 6000]);
        f.insert(5000, k, 0);
        assert!(
            f.allocated() < (8 << 20) * 5 / 11 + 128,
            "{}",
            f.allocated()
        );
    }

    #[test]
    fn no_false_negatives_and_few_false_positives_at_capacity() {
        // 1 MiB for 1.6 s: 17 slices of 963 blocks. 40,000 first steps per slice, about 12
        // bits each, in the 16 live slices.
        let mut f = steps(1 << 20, 1600);
        let per_slice = 40_000u32;
        for s in 0..16u32 {
            for i in 0..per_slice {
                let k = f.key(v4(s * per_slice + i), 1, 0);
                f.insert(1600, k, u64::from(s) * 100);
            }
        }
        let now = 1599;
        for i in (0..16 * per_slice).step_by(97) {
            assert!(f.recall(1600, f.key(v4(i), 1, 0), now).is_some(), "{i}");
        }
        let probes = 100_000u32;
        let false_positives = (0..probes)
            .filter(|i| f.recall(1600, f.key(v4(1 << 24 | i), 1, 0), now).is_some())
            .count();
        // Theory for 12.3 bits a key in 512-bit blocks: 0.4% a slice, 6.4% over the 16 a
        // lookup asks (this seed: 5.6%).
        assert!(
            false_positives < probes as usize * 8 / 100,
            "{false_positives}"
        );
    }
}
