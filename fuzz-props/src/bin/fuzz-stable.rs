//! The stable driver from the command line, optimized (`cargo run --release`):
//!
//! ```text
//! fuzz-stable run [TARGET...] [--execs N] [--seed S]   mutate from the seeds (default: all)
//! fuzz-stable replay TARGET PATH...                    run files or folders of inputs
//! fuzz-stable list                                     the targets
//! ```
//!
//! `replay` is how a crash from cargo-fuzz or from `cargo test` is reproduced on stable, and
//! how a folder of real files (knockd.conf files written by others) is checked by hand.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use knock_fuzz_props::driver::{self, DEFAULT_SEED};
use knock_fuzz_props::{TARGETS, Target, target};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("replay") => replay(&args[1..]),
        Some("list") => {
            for t in TARGETS {
                println!("{}", t.name);
            }
            Ok(true)
        }
        _ => Err("usage: fuzz-stable run [TARGET...] [--execs N] [--seed S] | replay TARGET PATH... | list".into()),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("fuzz-stable: {message}");
            ExitCode::from(2)
        }
    }
}

fn find(name: &str) -> Result<&'static Target, String> {
    target(name).ok_or_else(|| format!("no target {name:?} (see `fuzz-stable list`)"))
}

fn run(args: &[String]) -> Result<bool, String> {
    let mut names = Vec::new();
    let mut execs = 1_000_000usize;
    let mut seed = DEFAULT_SEED;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| format!("{flag} needs a number"))
        };
        match arg.as_str() {
            "--execs" => execs = value("--execs")? as usize,
            "--seed" => seed = value("--seed")?,
            name => names.push(find(name)?),
        }
    }
    if names.is_empty() {
        names = TARGETS.iter().collect();
    }
    let mut ok = true;
    for t in names {
        let started = Instant::now();
        match driver::run(t, seed, execs) {
            Ok(outcome) => println!(
                "{}: {outcome} in {:.1} s",
                t.name,
                started.elapsed().as_secs_f64()
            ),
            Err(failure) => {
                println!("{failure}");
                ok = false;
            }
        }
    }
    Ok(ok)
}

fn replay(args: &[String]) -> Result<bool, String> {
    let (name, paths) = args
        .split_first()
        .ok_or("replay needs a target and paths")?;
    let t = find(name)?;
    let mut files = Vec::new();
    for p in paths {
        collect(Path::new(p), &mut files)?;
    }
    let (mut failed, mut accepted) = (0, 0);
    for file in &files {
        let input = std::fs::read(file).map_err(|e| format!("read {}: {e}", file.display()))?;
        match driver::run_one(t, &input) {
            Ok(true) => accepted += 1,
            Ok(false) => {}
            Err(message) => {
                failed += 1;
                println!("{}: FAILED: {message}", file.display());
            }
        }
    }
    println!(
        "{}: {} inputs, {accepted} accepted, {failed} failed",
        t.name,
        files.len()
    );
    Ok(failed == 0)
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| format!("read {}: {e}", path.display()))?
            .filter_map(|e| Some(e.ok()?.path()))
            .collect();
        entries.sort();
        for e in entries {
            collect(&e, out)?;
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}
