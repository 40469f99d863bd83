//! A global allocator that counts the bytes each thread holds, so a target can say how much
//! a call allocated at its peak (`keeper`: a length prefix must not make the decoder reserve
//! memory the bytes are not there for). It hands every call to the system allocator.
// The only unsafe code in this crate: `GlobalAlloc` is an unsafe trait, and each method
// only forwards to `System` with the caller's own arguments.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The allocator every binary linking this crate uses (the stable tests, `fuzz-stable`, the
/// cargo-fuzz targets).
#[global_allocator]
static COUNTING: Counting = Counting;

struct Counting;

thread_local! {
    // Const-initialized, no destructor: reading them never allocates.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn add(bytes: isize) {
    // `try_with`: a thread being torn down has no counters left, and must still allocate.
    let _ = LIVE.try_with(|live| {
        let now = live.get().wrapping_add(bytes);
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn size(bytes: usize) -> isize {
    isize::try_from(bytes).unwrap_or(isize::MAX)
}

// SAFETY (for every method): each forwards to `System` with the arguments it was given, so
// it keeps `System`'s contract; the counting touches only this thread's plain integers.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above; the caller's `layout` has a non-zero size.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            add(size(layout.size()));
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            add(size(layout.size()));
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        add(-size(layout.size()));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with `layout`; the caller's `new_size` is valid.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(size(new_size) - size(layout.size()));
        }
        p
    }
}

/// Runs `f` and returns what it returned with the most bytes it held at once on this
/// thread beyond what the thread held before (memory freed by `f` that it did not allocate
/// counts against it, so this never overstates).
pub(crate) fn peak<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let start = LIVE.with(Cell::get);
    let saved = PEAK.with(|p| p.replace(start));
    let out = f();
    let top = PEAK.with(|p| p.replace(saved.max(p.get())));
    (out, usize::try_from(top - start).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::peak;

    #[test]
    fn counts_what_a_call_holds_at_its_peak() {
        let (v, held) = peak(|| vec![7u8; 10_000]);
        assert!((10_000..10_100).contains(&held), "{held}");
        drop(v);
        let ((), held) = peak(|| {
            let a = vec![1u8; 5_000];
            drop(a);
            let b = vec![1u8; 3_000];
            drop(b);
        });
        assert!((5_000..5_100).contains(&held), "{held}");
        let ((), held) = peak(|| ());
        assert_eq!(held, 0);
    }
}
