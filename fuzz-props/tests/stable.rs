//! Every fuzz target on the stable toolchain, as part of `cargo test`: its seed corpus, then
//! a fixed number of inputs mutated from it with a fixed seed, so a run is the same on every
//! machine and a regression fails the build. `KNOCK_FUZZ_EXECS=N` runs N inputs a target
//! instead, `KNOCK_FUZZ_SEED=S` another sequence of them (the `fuzz-stable` binary runs
//! optimized, for longer runs).

use knock_fuzz_props::driver::{self, DEFAULT_SEED};
use knock_fuzz_props::{TARGETS, target};

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    let number = value
        .strip_prefix("0x")
        .map_or_else(|| value.parse(), |hex| u64::from_str_radix(hex, 16));
    Some(number.unwrap_or_else(|_| panic!("{name}={value:?} is not a number")))
}

fn fuzz(name: &str) {
    let target = target(name).unwrap_or_else(|| panic!("no target {name}"));
    let execs = env_number("KNOCK_FUZZ_EXECS").map_or(target.ci_execs, |n| n as usize);
    let seed = env_number("KNOCK_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    match driver::run(target, seed, execs) {
        Ok(outcome) => println!("{name}: {outcome}"),
        Err(failure) => panic!("{failure}"),
    }
}

macro_rules! targets {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                fuzz(stringify!($name));
            }
        )*

        #[test]
        fn every_target_runs_here() {
            let here = [$(stringify!($name)),*];
            let all: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
            assert_eq!(here.as_slice(), all.as_slice());
        }
    };
}

targets!(
    conf,
    tportknockd,
    hit,
    profile,
    otp,
    hmac_state,
    stops,
    keeper,
    packet,
    build_parse,
    filter,
    worker_channel,
);

/// cargo-fuzz has a binary for every target, and each has seeds or says why not.
#[test]
fn every_target_has_a_fuzz_binary_and_seeds() {
    let fuzz = driver::fuzz_dir();
    let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).unwrap();
    for t in TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{}\"", t.name)),
            "no [[bin]] {} in fuzz/Cargo.toml",
            t.name
        );
        let source = fuzz.join("fuzz_targets").join(format!("{}.rs", t.name));
        let source = std::fs::read_to_string(&source)
            .unwrap_or_else(|e| panic!("{}: {e}", source.display()));
        assert!(
            source.contains(&format!("knock_fuzz_props::{}::check", t.name)),
            "fuzz_targets/{}.rs does not call its property",
            t.name
        );
        assert!(
            !driver::seeds(t).is_empty() || t.name == "build_parse",
            "no seeds in fuzz/seeds/{}",
            t.name
        );
        driver::dictionary(t);
    }
}
