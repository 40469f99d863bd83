//! cargo-fuzz driver for `knock_fuzz_props::build_parse`: built packets parse back to the knock that was built; checksums verify.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    knock_fuzz_props::build_parse::check(data);
});
