//! cargo-fuzz driver for `knock_fuzz_props::hmac_state`: knockd-lite's used-HMAC-counter file: read/write round trips both ways.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    knock_fuzz_props::hmac_state::check(data);
});
