//! Live attempts: a slab of attempts, an index by source address, and the eviction order.
//!
//! Every operation is O(1) in the number of live attempts (per source, the work is bounded
//! by the number of doors). Queues elsewhere refer to attempts by [`Handle`]; a handle whose
//! generation no longer matches its slot is stale and skipped (lazy deletion).
//!
//! Memory matters here (a flood fills the table to its cap), so a source's attempts are
//! chained through the slots and the map by source holds only the chain's head.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

/// One source's progress through one door's sequence (one live sequence, for HMAC doors).
#[derive(Clone, Debug)]
pub(super) struct Attempt {
    pub(super) src: IpAddr,
    pub(super) door: u32,
    /// Which of the door's sequences: 0 for fixed doors, the line number for one-time
    /// doors, the counter for HMAC doors.
    pub(super) variant: u64,
    /// Steps matched so far (at least 1).
    pub(super) stage: u32,
    /// Milliseconds; the attempt is gone at this moment.
    pub(super) deadline: u64,
}

/// A reference to a slot as it was when the handle was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Handle {
    pub(super) slot: u32,
    pub(super) generation: u32,
}

const NONE: u32 = u32::MAX;

struct Slot {
    generation: u32,
    /// Next attempt of the same source, or `NONE`.
    next: u32,
    attempt: Option<Attempt>,
}

#[derive(Default)]
pub(super) struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// First slot of each source's chain.
    by_source: HashMap<IpAddr, u32>,
    /// Attempts in creation order, for evicting the oldest still at its first step.
    first_step: VecDeque<Handle>,
    live: usize,
}

impl Table {
    /// A table that can hold `n` attempts without growing, so a flood filling it causes no
    /// rehash pauses. Untouched capacity costs address space, not resident memory.
    pub(super) fn with_capacity(n: usize) -> Table {
        let n = n.min(1 << 20);
        Table {
            slots: Vec::with_capacity(n),
            by_source: HashMap::with_capacity(n),
            ..Table::default()
        }
    }

    pub(super) fn live(&self) -> usize {
        self.live
    }

    pub(super) fn sources(&self) -> usize {
        self.by_source.len()
    }

    pub(super) fn insert(&mut self, attempt: Attempt) -> Handle {
        let first = attempt.stage == 1;
        // One hash of the source: its chain's head is read and replaced in place.
        let head = self.by_source.entry(attempt.src).or_insert(NONE);
        let next = *head;
        let slot = match self.free.pop() {
            Some(i) => {
                let s = &mut self.slots[i as usize];
                s.attempt = Some(attempt);
                s.next = next;
                i
            }
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    next,
                    attempt: Some(attempt),
                });
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 attempts")
            }
        };
        *head = slot;
        self.live += 1;
        let handle = Handle {
            slot,
            generation: self.slots[slot as usize].generation,
        };
        if first {
            self.first_step.push_back(handle);
        }
        handle
    }

    pub(super) fn get(&self, slot: u32) -> Option<&Attempt> {
        self.slots.get(slot as usize)?.attempt.as_ref()
    }

    pub(super) fn get_mut(&mut self, slot: u32) -> Option<&mut Attempt> {
        self.slots.get_mut(slot as usize)?.attempt.as_mut()
    }

    /// The attempt a handle refers to, if it is still the same one.
    pub(super) fn resolve(&self, h: Handle) -> Option<&Attempt> {
        let slot = self.slots.get(h.slot as usize)?;
        if slot.generation == h.generation {
            slot.attempt.as_ref()
        } else {
            None
        }
    }

    pub(super) fn remove(&mut self, slot: u32) -> Option<Attempt> {
        let s = self.slots.get_mut(slot as usize)?;
        let attempt = s.attempt.take()?;
        let next = std::mem::replace(&mut s.next, NONE);
        s.generation = s.generation.wrapping_add(1);
        self.free.push(slot);
        self.live -= 1;
        // Unlink from the source's chain (a few attempts at most), hashing the source once.
        let Entry::Occupied(mut head) = self.by_source.entry(attempt.src) else {
            return Some(attempt);
        };
        if *head.get() == slot {
            if next == NONE {
                head.remove();
            } else {
                *head.get_mut() = next;
            }
        } else {
            let mut i = *head.get();
            while i != NONE {
                let link = &mut self.slots[i as usize].next;
                if *link == slot {
                    *link = next;
                    break;
                }
                i = *link;
            }
        }
        Some(attempt)
    }

    /// Copies the slots of `src`'s attempts into `out` (cleared first), in door order.
    pub(super) fn slots_of(&self, src: &IpAddr, out: &mut Vec<u32>) {
        out.clear();
        let mut i = self.by_source.get(src).copied().unwrap_or(NONE);
        while i != NONE {
            out.push(i);
            i = self.slots[i as usize].next;
        }
        if out.len() > 1 {
            out.sort_by_key(|&i| self.get(i).map(|a| (a.door, a.variant)));
        }
    }

    pub(super) fn has_attempt(&self, src: &IpAddr, door: u32, variant: u64) -> bool {
        let mut i = self.by_source.get(src).copied().unwrap_or(NONE);
        while i != NONE {
            let slot = &self.slots[i as usize];
            if slot
                .attempt
                .as_ref()
                .is_some_and(|a| a.door == door && a.variant == variant)
            {
                return true;
            }
            i = slot.next;
        }
        false
    }

    /// The oldest attempt still at its first step, dropping stale entries on the way.
    pub(super) fn oldest_first_step(&mut self) -> Option<u32> {
        while let Some(&h) = self.first_step.front() {
            if self.resolve(h).is_some_and(|a| a.stage == 1) {
                return Some(h.slot);
            }
            self.first_step.pop_front();
        }
        None
    }

    /// Queue entries kept for eviction, live or stale.
    pub(super) fn first_step_entries(&self) -> usize {
        self.first_step.len()
    }

    /// Drops stale eviction entries, so memory stays proportional to live attempts.
    pub(super) fn compact(&mut self) {
        let first_step = std::mem::take(&mut self.first_step);
        self.first_step = first_step
            .into_iter()
            .filter(|&h| self.resolve(h).is_some_and(|a| a.stage == 1))
            .collect();
    }

    /// Every live attempt's slot, for reloads.
    pub(super) fn all_slots(&self) -> Vec<u32> {
        (0..self.slots.len() as u32)
            .filter(|&i| self.slots[i as usize].attempt.is_some())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(src: &str, door: u32, stage: u32) -> Attempt {
        Attempt {
            src: src.parse().unwrap(),
            door,
            variant: 0,
            stage,
            deadline: 0,
        }
    }

    #[test]
    fn insert_remove_and_reuse() {
        let mut t = Table::default();
        let a = t.insert(attempt("192.0.2.1", 0, 1));
        let b = t.insert(attempt("192.0.2.1", 1, 1));
        let c = t.insert(attempt("192.0.2.2", 0, 2));
        assert_eq!((t.live(), t.sources()), (3, 2));
        let mut out = Vec::new();
        t.slots_of(&"192.0.2.1".parse().unwrap(), &mut out);
        assert_eq!(out, [a.slot, b.slot]);
        assert!(t.has_attempt(&"192.0.2.1".parse().unwrap(), 1, 0));
        assert!(t.remove(a.slot).is_some());
        assert!(t.resolve(a).is_none());
        assert!(t.remove(a.slot).is_none());
        let d = t.insert(attempt("192.0.2.3", 0, 1));
        assert_eq!(d.slot, a.slot);
        assert_ne!(d.generation, a.generation);
        t.remove(b.slot);
        assert!(!t.has_attempt(&"192.0.2.1".parse().unwrap(), 1, 0));
        assert_eq!((t.live(), t.sources()), (2, 2));
        assert!(t.resolve(c).is_some());
    }

    #[test]
    fn eviction_prefers_oldest_first_step() {
        let mut t = Table::default();
        let a = t.insert(attempt("192.0.2.1", 0, 1));
        let b = t.insert(attempt("192.0.2.2", 0, 1));
        let _c = t.insert(attempt("192.0.2.3", 0, 3));
        t.get_mut(a.slot).unwrap().stage = 2;
        assert_eq!(t.oldest_first_step(), Some(b.slot));
        t.remove(b.slot);
        assert_eq!(t.oldest_first_step(), None);
        assert_eq!(t.first_step_entries(), 0);
        t.insert(attempt("192.0.2.4", 0, 1));
        t.insert(attempt("192.0.2.5", 0, 1));
        let e = t.insert(attempt("192.0.2.6", 0, 1));
        t.remove(e.slot);
        t.compact();
        assert_eq!(t.first_step_entries(), 2);
    }
}
