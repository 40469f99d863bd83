//! cargo-fuzz driver for `knock_fuzz_props::tportknockd::check`: tportknockd configs: errors well formed, written back in either format they read the same.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    knock_fuzz_props::tportknockd::check(data);
});
