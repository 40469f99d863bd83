//! cargo-fuzz driver for `knock_fuzz_props::profile`: TOML profiles: errors well formed; to_toml parses back equal.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    knock_fuzz_props::profile::check(data);
});
