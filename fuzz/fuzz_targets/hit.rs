//! cargo-fuzz driver for `knock_fuzz_props::hit`: the hit grammar: canonical, frame and upper-case spellings round trip; errors name the first bad item.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    knock_fuzz_props::hit::check(data);
});
