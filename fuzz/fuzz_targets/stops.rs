//! cargo-fuzz driver for `knock_fuzz_props::stops::check`: knockd-lite's stop journal: read/write round trips both ways.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    knock_fuzz_props::stops::check(data);
});
