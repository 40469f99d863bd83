//! cargo-fuzz driver for `knock_fuzz_props::packet`: the frame parser on arbitrary bytes, every link type: no panic, self-consistent.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    knock_fuzz_props::packet::check(data);
});
