//! The used HMAC counters that must survive a restart, so a sequence seen once cannot open
//! its door again while its window is still live.

use std::path::{Path, PathBuf};

use knock_core::conf::{Config, SequenceSource};

use crate::otp_store::{self, StoreError, UsedCounters};

/// The counters file and what it holds.
#[derive(Debug)]
pub(crate) struct HmacCounters {
    path: PathBuf,
    used: UsedCounters,
}

impl HmacCounters {
    /// Reads `path`; a file that does not exist yet means no counter was used.
    pub(crate) fn load(path: &Path) -> Result<HmacCounters, StoreError> {
        Ok(HmacCounters {
            path: path.to_path_buf(),
            used: otp_store::load_counters(path)?,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn used(&self) -> &UsedCounters {
        &self.used
    }

    /// Records that `door` used `counter` and writes the file (atomically, mode 0600, its
    /// folder created 0700 if missing). Counters that can never be live again at `now_ms`
    /// are dropped first, so the file stays small.
    pub(crate) fn record(
        &mut self,
        config: &Config,
        door: &str,
        counter: u64,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.used
            .entry(door.to_string())
            .or_default()
            .insert(counter);
        self.prune(config, now_ms);
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            knock_core::files::create_private_dir(dir).map_err(|error| StoreError::Io {
                op: "create folder",
                path: dir.to_path_buf(),
                error,
            })?;
        }
        otp_store::save_counters(&self.path, &self.used)
    }

    /// Drops counters below each door's live window (the window only moves forward).
    fn prune(&mut self, config: &Config, now_ms: u64) {
        for door in &config.doors {
            if let SequenceSource::Hmac(h) = &door.sequence
                && let Some(set) = self.used.get_mut(&door.name)
            {
                let lowest = h
                    .params(&door.name)
                    .counter(now_ms / 1000)
                    .saturating_sub(h.skew);
                set.retain(|&c| c >= lowest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Scratch;
    use std::os::unix::fs::PermissionsExt;

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
        let mut c = HmacCounters::load(&path).unwrap();
        assert!(c.used().is_empty());
        // At t = 3000 s the counter is 100: 99..=101 are live.
        let now = 3_000_000;
        c.record(&config, "ssh", 98, now).unwrap();
        c.record(&config, "ssh", 99, now).unwrap();
        c.record(&config, "ssh", 101, now).unwrap();
        c.record(&config, "gone", 5, now).unwrap();
        let again = HmacCounters::load(&path).unwrap();
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
}
