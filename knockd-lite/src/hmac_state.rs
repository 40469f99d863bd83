//! The used HMAC counters that must survive a restart, so a sequence seen once cannot open
//! its door again while its window is still live: a small state file, replaced atomically
//! through `knock_core::files::write_atomic` (one-time lines are marked used by
//! `knock_core::otp::file::mark_used`, the routine `knock` calls too).
//!
//! A counter is forgotten once it has been known for longer than it can be live
//! ([`knockd_engine::used_counter_lifetime_ms`]), measured on the monotonic clock, as the
//! engine does: pruning by the wall clock's window would drop every counter while the clock
//! is wrongly ahead, and a restart after it is set right would accept them again.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use knock_core::conf::{Config, SequenceSource};
use knock_core::files::{self, Overwrite, WriteError};
use knock_core::text::quoted;
use knockd_engine::{Mono, used_counter_lifetime_ms};

/// A failed read or write of the state file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The message holds the OS error, so it is not also the `source()`.
    #[error("{op} {}: {error}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The file is not what we expected, `path:line: message` (line 0: the whole file).
    #[error("{}:{line}: {message}", path.display())]
    Format {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StateError + 'a {
    move |error| StateError::Io {
        op,
        path: path.to_path_buf(),
        error,
    }
}

fn format_err(path: &Path, line: usize, message: impl Into<String>) -> StateError {
    StateError::Format {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// The counters file and what it holds.
#[derive(Debug)]
pub(crate) struct HmacCounters {
    path: PathBuf,
    /// Per door, each used counter with when it was used (or loaded), monotonic ms.
    known: BTreeMap<String, BTreeMap<u64, u64>>,
}

impl HmacCounters {
    /// Reads `path`; when it does not exist yet, reads `legacy` instead (the name older
    /// versions used), once: later writes go to `path`. No file at all means no counter
    /// was used. Counters read are taken as used at `now`.
    pub(crate) fn load(
        path: &Path,
        legacy: Option<&Path>,
        now: Mono,
    ) -> Result<HmacCounters, StateError> {
        let mut used = load_counters(path)?;
        if used.is_none()
            && let Some(legacy) = legacy
        {
            used = load_counters(legacy)?;
        }
        let at = now.as_millis();
        let known = used
            .unwrap_or_default()
            .into_iter()
            .map(|(door, set)| (door, set.into_iter().map(|c| (c, at)).collect()))
            .collect();
        Ok(HmacCounters {
            path: path.to_path_buf(),
            known,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The used counters, per door, for the engine.
    pub(crate) fn used(&self) -> UsedCounters {
        self.known
            .iter()
            .map(|(door, m)| (door.clone(), m.keys().copied().collect()))
            .collect()
    }

    /// Records that `door` used `counter` at `now` and writes the file (atomically, mode
    /// 0600, its folder created 0700 if missing). Counters known for longer than they can
    /// be live are dropped first, so the file stays small.
    pub(crate) fn record(
        &mut self,
        config: &Config,
        door: &str,
        counter: u64,
        now: Mono,
    ) -> Result<(), StateError> {
        self.known
            .entry(door.to_string())
            .or_default()
            .entry(counter)
            .or_insert(now.as_millis());
        self.prune(config, now.as_millis());
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            files::create_private_dir(dir).map_err(|error| StateError::Io {
                op: "create folder",
                path: dir.to_path_buf(),
                error,
            })?;
        }
        save_counters(&self.path, &self.used())
    }

    /// Drops the counters of the config's HMAC doors that were used longer ago than they
    /// can be live. Counters of doors no longer in the config stay (it may come back).
    fn prune(&mut self, config: &Config, now: u64) {
        for door in &config.doors {
            if let SequenceSource::Hmac(h) = &door.sequence
                && let Some(m) = self.known.get_mut(&door.name)
            {
                let keep = used_counter_lifetime_ms(h.step, h.skew);
                m.retain(|_, &mut at| now.saturating_sub(at) < keep);
            }
        }
    }
}

/// Used HMAC counters per door.
pub type UsedCounters = BTreeMap<String, BTreeSet<u64>>;

const HEADER: &str = "# knockd-lite used HMAC counters, v1: COUNTERS<TAB>DOOR";

/// Reads the used-counter file; `None` if it does not exist.
fn load_counters(path: &Path) -> Result<Option<UsedCounters>, StateError> {
    let bytes = match files::read_regular(path, files::MAX_STATE_BYTES) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", path)(e)),
    };
    let text = String::from_utf8(bytes).map_err(|_| format_err(path, 0, "not valid UTF-8"))?;
    parse_counters(&text, path).map(Some)
}

/// Parses the text of the used-counter file read from `path` (named in errors).
///
/// The format is one line per door, `counter,counter,...<TAB>door name`, after a header
/// line; the door name is the rest of the line, so it may contain anything but a newline.
/// Lines end at `\n` alone, as [`format_counters`] writes them: `str::lines` would also drop
/// a `\r` that ends a door's name.
pub fn parse_counters(text: &str, path: &Path) -> Result<UsedCounters, StateError> {
    let mut out = UsedCounters::new();
    for (i, line) in text.split('\n').enumerate() {
        let line_no = i + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (counters, door) = line
            .split_once('\t')
            .ok_or_else(|| format_err(path, line_no, "expected COUNTERS<TAB>DOOR"))?;
        let set = out.entry(door.to_string()).or_default();
        for c in counters.split(',').filter(|c| !c.is_empty()) {
            let n = c
                .parse::<u64>()
                .map_err(|_| format_err(path, line_no, format!("bad counter {:?}", quoted(c))))?;
            set.insert(n);
        }
    }
    Ok(out)
}

/// Writes the used-counter file atomically, mode 0600 (it tells when a door was opened).
fn save_counters(path: &Path, used: &UsedCounters) -> Result<(), StateError> {
    let text = format_counters(used, path)?;
    Ok(files::write_atomic(
        path,
        text.as_bytes(),
        files::PRIVATE_MODE,
        Overwrite::Replace,
    )?)
}

/// The text of the used-counter file for `path` (named in errors), which
/// [`parse_counters`] reads back to `used`.
pub fn format_counters(used: &UsedCounters, path: &Path) -> Result<String, StateError> {
    let mut text = format!("{HEADER}\n");
    for (door, counters) in used {
        if door.contains('\n') {
            return Err(format_err(
                path,
                0,
                format!("door name {:?} has a newline", quoted(door)),
            ));
        }
        let list: Vec<String> = counters.iter().map(u64::to_string).collect();
        text.push_str(&format!("{}\t{door}\n", list.join(",")));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Scratch, assert_not_followed, plant_symlinks};
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn counters_round_trip_atomically_with_mode_0600() {
        let scratch = Scratch::new("store-counters");
        let dir = scratch.path();
        let path = dir.join("hmac.state");
        assert!(load_counters(&path).unwrap().is_none());
        let mut used = UsedCounters::new();
        used.entry("ssh".into())
            .or_default()
            .extend([58_000_001, 58_000_000]);
        used.entry("web door\twith tab".into())
            .or_default()
            .insert(7);
        save_counters(&path, &used).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{HEADER}\n58000000,58000001\tssh\n7\tweb door\twith tab\n")
        );
        assert_eq!(load_counters(&path).unwrap(), Some(used.clone()));
        // Replacing leaves no temporary file behind.
        used.get_mut("ssh").unwrap().insert(58_000_002);
        save_counters(&path, &used).unwrap();
        assert_eq!(load_counters(&path).unwrap(), Some(used.clone()));
        assert_eq!(fs::read_dir(dir).unwrap().count(), 1);
    }

    #[test]
    fn a_broken_counter_file_is_an_error_with_its_line() {
        let scratch = Scratch::new("store-broken");
        let dir = scratch.path();
        let path = dir.join("hmac.state");
        for (text, want) in [
            ("ssh 1,2\n", "1: expected COUNTERS<TAB>DOOR"),
            ("# header\n1,x\tssh\n", "2: bad counter \"x\""),
        ] {
            fs::write(&path, text).unwrap();
            let err = load_counters(&path).unwrap_err();
            assert_eq!(err.to_string(), format!("{}:{want}", path.display()));
        }
        let mut bad = UsedCounters::new();
        bad.insert("a\nb".into(), BTreeSet::from([1]));
        assert!(save_counters(&path, &bad).is_err());
    }

    fn mono(ms: u64) -> Mono {
        Mono::from_millis(ms)
    }

    #[test]
    fn a_door_name_ending_in_cr_round_trips() {
        let path = Path::new("state");
        let used = UsedCounters::from([("ssh\r".to_string(), BTreeSet::from([5]))]);
        let text = format_counters(&used, path).unwrap();
        assert_eq!(parse_counters(&text, path).unwrap(), used);
    }

    #[test]
    fn records_prunes_and_reloads() {
        let scratch = Scratch::new("state");
        let dir = scratch.path();
        let path = dir.join("sub/k.conf.hmac-used");
        let config = knock_core::conf::parse(
            "[ssh]\nhmac_secret_file = /k\nhmac_step = 30\nhmac_skew = 1\n[f]\nsequence = 1\n",
            Path::new("k.conf"),
        )
        .unwrap();
        let mut c = HmacCounters::load(&path, None, mono(0)).unwrap();
        assert!(c.used().is_empty());
        // Step 30 s, skew 1: a counter is live for at most 90 s, and kept for 120 s.
        c.record(&config, "ssh", 98, mono(0)).unwrap();
        c.record(&config, "ssh", 99, mono(60_000)).unwrap();
        c.record(&config, "gone", 5, mono(60_000)).unwrap();
        c.record(&config, "ssh", 101, mono(120_000)).unwrap();
        let again = HmacCounters::load(&path, None, mono(0)).unwrap();
        assert_eq!(
            again.used()["ssh"].iter().copied().collect::<Vec<_>>(),
            [99, 101]
        );
        assert_eq!(
            again.used()["gone"].iter().copied().collect::<Vec<_>>(),
            [5]
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.join("sub")), 0o700);
    }

    /// The hostile run's finding: two configs with the same file name shared one counter
    /// file; one instance's save dropped the other's counters, and after a restart a used
    /// sequence opened the door again.
    #[test]
    fn two_configs_with_the_same_file_name_keep_their_own_counters() {
        use crate::serve::state::{StateKind, state_file};
        let scratch = Scratch::new("state-two-configs");
        let dir = scratch.path();
        let config =
            knock_core::conf::parse("[ssh]\nhmac_secret_file = /k\n", Path::new("knockd.conf"))
                .unwrap();
        let state_dir = dir.join("state");
        let mut files = Vec::new();
        for sub in ["a", "b"] {
            let conf = dir.join(sub).join("knockd.conf");
            std::fs::create_dir(dir.join(sub)).unwrap();
            std::fs::write(&conf, "").unwrap();
            files.push(state_file(&state_dir, &conf, StateKind::HmacUsed));
        }
        // Both instances start, then each records a knock.
        let mut a = HmacCounters::load(&files[0], None, mono(0)).unwrap();
        let mut b = HmacCounters::load(&files[1], None, mono(0)).unwrap();
        a.record(&config, "ssh", 5, mono(1000)).unwrap();
        b.record(&config, "ssh", 9, mono(2000)).unwrap();
        // Instance a restarts: its counter is still used.
        let a = HmacCounters::load(&files[0], None, mono(3000)).unwrap();
        assert_eq!(a.used()["ssh"], BTreeSet::from([5]));
        let b = HmacCounters::load(&files[1], None, mono(3000)).unwrap();
        assert_eq!(b.used()["ssh"], BTreeSet::from([9]));
    }

    #[test]
    fn the_old_file_name_is_read_once_when_the_new_one_is_missing() {
        let scratch = Scratch::new("state-upgrade");
        let dir = scratch.path();
        let (new, old) = (
            dir.join("k.conf.0123.hmac-used"),
            dir.join("k.conf.hmac-used"),
        );
        let mut used = UsedCounters::new();
        used.entry("ssh".into()).or_default().insert(41);
        save_counters(&old, &used).unwrap();
        let config =
            knock_core::conf::parse("[ssh]\nhmac_secret_file = /k\n", Path::new("k.conf")).unwrap();
        let mut c = HmacCounters::load(&new, Some(&old), mono(0)).unwrap();
        assert_eq!(c.used()["ssh"], BTreeSet::from([41]));
        c.record(&config, "ssh", 42, mono(10)).unwrap();
        assert_eq!(
            load_counters(&new).unwrap().unwrap()["ssh"],
            BTreeSet::from([41, 42])
        );
        // The old file is left as it was (another instance may still upgrade from it);
        // once the new file exists, the old one is not read.
        assert_eq!(load_counters(&old).unwrap(), Some(used));
        save_counters(
            &old,
            &UsedCounters::from([("ssh".into(), BTreeSet::from([7]))]),
        )
        .unwrap();
        let c = HmacCounters::load(&new, Some(&old), mono(0)).unwrap();
        assert_eq!(c.used()["ssh"], BTreeSet::from([41, 42]));
    }

    #[test]
    fn a_planted_symlink_is_replaced_not_followed() {
        let scratch = Scratch::new("state-symlink");
        let path = scratch.path().join("k.conf.hmac-used");
        let victim = plant_symlinks(&path);
        let config = knock_core::conf::parse("[f]\nsequence = 1\n", Path::new("k.conf")).unwrap();
        let mut c = HmacCounters::load(&scratch.path().join("absent"), None, mono(0)).unwrap();
        c.path = path.clone();
        c.record(&config, "ssh", 7, mono(0)).unwrap();
        assert_not_followed(&path, &victim, 0o600);
        assert_eq!(
            load_counters(&path).unwrap().unwrap()["ssh"],
            BTreeSet::from([7])
        );
    }

    #[test]
    fn errors_print_their_os_error_once() {
        let scratch = Scratch::new("state-errors");
        let dir = scratch.path().join("not-a-dir");
        fs::write(&dir, "").unwrap();
        let err = load_counters(&dir.join("state")).unwrap_err();
        let chain = format!("{:#}", anyhow::Error::from(err));
        assert_eq!(chain.matches("(os error 20)").count(), 1, "{chain}");
        let err = save_counters(&dir.join("state"), &UsedCounters::new()).unwrap_err();
        let chain = format!("{:#}", anyhow::Error::from(err));
        assert_eq!(chain.matches("(os error 20)").count(), 1, "{chain}");
        assert!(
            chain.starts_with(&format!("create {}/state: ", dir.display())),
            "{chain}"
        );
    }
}
