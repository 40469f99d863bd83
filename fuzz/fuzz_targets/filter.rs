//! cargo-fuzz driver for `knock_fuzz_props::filter`: the compiled BPF filter (interpreted) keeps exactly the frames filter::wanted keeps.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    knock_fuzz_props::filter::check(data);
});
