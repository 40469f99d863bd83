//! The stable driver: runs a target over its seed corpus, then over a fixed number of inputs
//! mutated from the seeds with a seeded generator, so a given seed and count always try the
//! same inputs. Inputs a target accepts (they parsed) join the pool that later mutations
//! start from: the only feedback there is without coverage instrumentation, and enough to
//! keep most inputs close to valid files rather than noise.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use crate::Target;
use crate::mutate::{Mutator, Rng, parse_dict};

/// Seed of the generator in `cargo test` (each target mixes in its name).
pub const DEFAULT_SEED: u64 = 0x6b6e_6f63_6b21;

/// Inputs kept to mutate from, seeds included.
const POOL_MAX: usize = 512;

/// What one run did.
#[derive(Debug)]
pub struct Outcome {
    pub execs: usize,
    pub accepted: usize,
    pub seeds: usize,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} executions ({} seeds), {:.0}% accepted",
            self.execs,
            self.seeds,
            100.0 * self.accepted as f64 / self.execs.max(1) as f64
        )
    }
}

/// An input that broke a property.
#[derive(Debug)]
pub struct Failure {
    pub target: &'static str,
    /// Which execution (0-based; seeds come first).
    pub exec: usize,
    pub input: Vec<u8>,
    pub message: String,
    /// Where the input was saved, if it could be.
    pub saved: Option<PathBuf>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "target {} failed on execution {}: {}",
            self.target, self.exec, self.message
        )?;
        writeln!(
            f,
            "input ({} bytes): {}",
            self.input.len(),
            escape(&self.input)
        )?;
        if let Some(path) = &self.saved {
            writeln!(
                f,
                "saved as {}; replay it with\n  cargo run -p knock-fuzz-props --bin fuzz-stable -- replay {} {}",
                path.display(),
                self.target,
                path.display()
            )?;
        }
        write!(
            f,
            "then pin it as a test in fuzz-props/tests/pinned.rs before fixing the bug"
        )
    }
}

/// The input as a Rust byte-string literal body, cut after 2,000 bytes.
pub fn escape(input: &[u8]) -> String {
    let shown = &input[..input.len().min(2000)];
    let mut s: String = shown.escape_ascii().to_string();
    if shown.len() < input.len() {
        s.push_str("...");
    }
    s
}

/// The folder shared by the fuzz drivers: `fuzz/` (seeds, dictionaries, artifacts).
pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The seed corpus of `target`, in file-name order.
pub fn seeds(target: &Target) -> Vec<Vec<u8>> {
    let dir = fuzz_dir().join("seeds").join(target.name);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("read seed {}: {e}", p.display())))
        .collect()
}

/// The dictionary of `target` (`fuzz/dict/NAME.dict`), or none.
pub fn dictionary(target: &Target) -> Vec<Vec<u8>> {
    let path = fuzz_dir()
        .join("dict")
        .join(format!("{}.dict", target.name));
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_dict(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        Err(_) => Vec::new(),
    }
}

/// Runs `target` once on `input`, turning a panic into its message.
pub fn run_one(target: &Target, input: &[u8]) -> Result<bool, String> {
    panic::catch_unwind(AssertUnwindSafe(|| (target.check)(input))).map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic without a message".to_string())
    })
}

/// The seeds, then `execs` mutated inputs (seeds count towards `execs`).
pub fn run(target: &Target, seed: u64, execs: usize) -> Result<Outcome, Box<Failure>> {
    let seeds = seeds(target);
    let mutator = Mutator::new(dictionary(target), target.max_len);
    let mut rng = Rng::new(seed ^ fnv(target.name.as_bytes()));
    let mut pool: Vec<Vec<u8>> = seeds.clone();
    if pool.is_empty() {
        pool.push(Vec::new());
    }
    let fixed = pool.len();
    let mut outcome = Outcome {
        execs: 0,
        accepted: 0,
        seeds: seeds.len(),
    };
    let mut input = Vec::new();
    for exec in 0..execs.max(seeds.len()) {
        if let Some(seed_input) = seeds.get(exec) {
            input.clone_from(seed_input);
        } else if rng.chance(3) {
            // Now and then plain noise, which no seed leads to.
            let n = rng.below(256.min(target.max_len) + 1);
            input = (0..n).map(|_| rng.next_u64() as u8).collect();
        } else {
            input.clone_from(&pool[rng.below(pool.len())]);
            mutator.mutate(&mut rng, &mut input, &pool);
        }
        match run_one(target, &input) {
            Ok(accepted) => {
                outcome.execs += 1;
                if accepted {
                    outcome.accepted += 1;
                    if exec >= seeds.len() {
                        if pool.len() < POOL_MAX {
                            pool.push(input.clone());
                        } else if fixed < POOL_MAX {
                            let slot = fixed + rng.below(POOL_MAX - fixed);
                            pool[slot].clone_from(&input);
                        }
                    }
                }
            }
            Err(message) => {
                let saved = save(target, &input);
                return Err(Box::new(Failure {
                    target: target.name,
                    exec,
                    input,
                    message,
                    saved,
                }));
            }
        }
    }
    Ok(outcome)
}

/// Saves a failing input where cargo-fuzz leaves its crashes: `fuzz/artifacts/NAME/`.
fn save(target: &Target, input: &[u8]) -> Option<PathBuf> {
    let dir = fuzz_dir().join("artifacts").join(target.name);
    std::fs::create_dir_all(&dir).ok()?;
    let path = dir.join(format!("stable-crash-{:016x}", fnv(input)));
    std::fs::write(&path, input).ok()?;
    Some(path)
}

/// FNV-1a: names inputs and spreads the seed across targets.
pub(crate) fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}
