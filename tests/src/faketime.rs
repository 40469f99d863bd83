//! A wall clock a test can step: Debian's libfaketime preloaded into a server, reading its
//! offset from a file the test rewrites (`+2h`, `+1d`, `+0`). Only the wall clock is faked
//! (`FAKETIME_DONT_FAKE_MONOTONIC`): the monotonic and boot clocks, and the kernel's packet
//! timestamps, stay real, as they do when an operator or NTP steps the clock.

use std::path::{Path, PathBuf};

/// Where Debian puts the preload library (`libfaketime`), per architecture.
pub fn library() -> Option<PathBuf> {
    let multiarch = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("faketime/libfaketime.so.1"));
    std::iter::once(PathBuf::from("/usr/lib/faketime/libfaketime.so.1"))
        .chain(multiarch)
        .find(|p| p.exists())
}

/// A stepped wall clock for the processes started with [`FakeClock::env`].
pub struct FakeClock {
    spec: PathBuf,
}

impl FakeClock {
    /// A clock `offset` away from the real one (libfaketime's syntax: `+2h`, `-30s`),
    /// its setting kept in `dir/faketime.rc`.
    pub fn new(dir: &Path, offset: &str) -> FakeClock {
        let clock = FakeClock {
            spec: dir.join("faketime.rc"),
        };
        clock.set(offset);
        clock
    }

    /// Steps the clock: from now on it reads `offset` away from the real one. The file is
    /// re-read on every clock read (`FAKETIME_NO_CACHE`), so the step is immediate.
    pub fn set(&self, offset: &str) {
        let temp = self.spec.with_extension("new");
        std::fs::write(&temp, format!("{offset}\n")).expect("faketime.rc");
        // Renamed into place, so a reader never sees a half-written offset.
        std::fs::rename(&temp, &self.spec).expect("faketime.rc");
    }

    /// The environment that puts a process on this clock.
    pub fn env(&self) -> Vec<(String, String)> {
        let library = library().expect("libfaketime is installed (apt-get install libfaketime)");
        [
            ("LD_PRELOAD", library.display().to_string()),
            ("FAKETIME_TIMESTAMP_FILE", self.spec.display().to_string()),
            ("FAKETIME_NO_CACHE", "1".to_string()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}
