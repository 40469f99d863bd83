//! cargo-fuzz driver for `knock_fuzz_props::worker_channel::check`: knockd-lite's monitor/worker channel: decoding never panics, one meaning per byte string, a completion opens only a configured door.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    knock_fuzz_props::worker_channel::check(data);
});
