//! cargo-fuzz driver for `knock_fuzz_props::keeper::check`: the stop keeper's channel: frames decode and encode back exactly, both ways.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    knock_fuzz_props::keeper::check(data);
});
