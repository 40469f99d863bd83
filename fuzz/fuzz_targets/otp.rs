//! cargo-fuzz driver for `knock_fuzz_props::otp`: one-time lists: lines and offsets, peek, consume and mark_used on a real file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    knock_fuzz_props::otp::check(data);
});
