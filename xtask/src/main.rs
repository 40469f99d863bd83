//! Build-time tasks, run by `.ci/package` (`cargo run -p xtask -- gen OUT`): the man pages
//! and shell completions, generated from the clap definitions the binaries parse with, so
//! they can never fall behind an option; nothing generated is committed.
//!
//! A separate program rather than a hidden `--generate` flag in the binaries: the shipped
//! binaries (static ones for routers among them) carry none of this code, users meet no
//! hidden flag, and the pages' hand-written parts and the section-5 page, read from
//! `packaging/man/` and `docs/`, are build inputs, not something an installed binary has.
//!
//! * `man`: the pages (clap_mangen, plus the hand-written Markdown);
//! * `roff`: escaping, Markdown and clap's help text into roff;
//! * `completions`: bash, zsh and fish (clap_complete, plus knock's profile-name hooks).

mod completions;
mod man;
mod roff;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: cargo run -p xtask -- gen OUT_DIR
  writes OUT_DIR/man/ (knock.1 and its subcommands' pages, knockd-lite.8,
  knockd-lite.conf.5) and OUT_DIR/completions/{bash,zsh,fish}/; the pages are dated
  $SOURCE_DATE_EPOCH when set (reproducible builds), else today";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [cmd, out] if cmd == "gen" => generate(Path::new(out)),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The repository's root: the parent of this crate's folder.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn generate(out: &Path) -> Result<()> {
    let root = root();
    let meta = man::Meta {
        date: date()?,
        source: format!("knock suite {}", env!("CARGO_PKG_VERSION")),
    };
    let mut pages = man::command_pages(knock_cli::command(), "1", &meta, &root)?;
    pages.extend(man::command_pages(
        knockd_lite::command(),
        "8",
        &meta,
        &root,
    )?);
    pages.push(man::markdown_page("knockd-lite.conf", "5", &meta, &root)?);
    let man_dir = out.join("man");
    std::fs::create_dir_all(&man_dir).with_context(|| format!("create {}", man_dir.display()))?;
    for page in &pages {
        write(&man_dir.join(&page.file), &page.roff)?;
    }

    let mut scripts = completions::knock(&knock_cli::command(), &root)?;
    scripts.extend(completions::plain(&knockd_lite::command(), "knockd-lite")?);
    for (shell, file, script) in scripts {
        let dir = out.join("completions").join(shell.to_string());
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        write(&dir.join(file), &script)?;
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("write {}", path.display()))
}

/// `YYYY-MM-DD` of `$SOURCE_DATE_EPOCH`, else of now (UTC).
fn date() -> Result<String> {
    let secs = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) => match s.trim().parse::<u64>() {
            Ok(n) => n,
            Err(_) => bail!("SOURCE_DATE_EPOCH={s:?} is not a number of seconds"),
        },
        Err(_) => SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs(),
    };
    Ok(civil_date(secs / 86_400))
}

/// The calendar date of a day count since 1970-01-01 (proleptic Gregorian, Howard
/// Hinnant's days-from-civil inverse).
fn civil_date(days: u64) -> String {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(11_016), "2000-02-29");
        assert_eq!(civil_date(20_513), "2026-03-01");
        assert_eq!(civil_date(19_722), "2023-12-31");
    }

    /// Every page and script is generated: the hooks still find what they change, the
    /// includes their sections, and the pages hold what clap cannot say.
    #[test]
    fn everything_generates() {
        let out = std::env::temp_dir().join(format!("xtask-gen-{}", std::process::id()));
        generate(&out).unwrap();
        let read = |p: &str| std::fs::read_to_string(out.join(p)).unwrap();
        let knock = read("man/knock.1");
        for part in [
            ".SH SYNOPSIS",
            ".SH OPTIONS",
            ".SH EXIT STATUS",
            ".SH FILES",
            ".SH EXAMPLES",
        ] {
            assert!(knock.contains(part), "knock.1 lacks {part}");
        }
        assert!(read("man/knock-profile-save.1").contains(".SH OPTIONS"));
        let lite = read("man/knockd-lite.8");
        assert!(lite.contains(".SH EXIT STATUS") && lite.contains("\\-\\-state\\-dir"));
        let conf = read("man/knockd-lite.conf.5");
        assert!(
            conf.starts_with("'\\\" t\n.TH KNOCKD\\-LITE.CONF 5 "),
            "{conf}"
        );
        assert!(conf.contains("Nft_Set") && conf.contains(".TS"));
        assert!(read("completions/bash/knock").contains("complete -F _knock_with_profiles"));
        assert!(read("completions/zsh/_knock").contains(":_knock_profile_names'"));
        assert!(read("completions/fish/knock.fish").contains("profile list --names"));
        assert!(read("completions/bash/knockd-lite").contains("knockd-lite"));
        std::fs::remove_dir_all(&out).unwrap();
    }
}
