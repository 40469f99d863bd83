//! cargo-fuzz driver for `knock_fuzz_props::conf`: knockd.conf: errors well formed, written back it reads the same (with noise), line numbers.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    knock_fuzz_props::conf::check(data);
});
