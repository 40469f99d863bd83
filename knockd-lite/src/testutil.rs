//! Helpers for unit tests: scratch folders removed on drop, and symlinks planted where a
//! file is about to be written.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh, empty folder under the system temp dir, named after the test's tag, removed
/// when dropped (also when the test panics).
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    pub(crate) fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "knockd-lite-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch folder");
        Scratch(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a planted symlink points at.
const PRECIOUS: &str = "precious\n";

/// Plants symlinks at `path` and at the temporary name writers used to use beside it
/// (`.NAME.PID.tmp`), both to a file next to them holding something precious, whose path is
/// returned: a write to `path` must go around them.
pub(crate) fn plant_symlinks(path: &Path) -> PathBuf {
    let dir = path.parent().expect("a path in a folder");
    let name = path.file_name().expect("a file name").to_string_lossy();
    let victim = dir.join(format!("{name}.victim"));
    std::fs::write(&victim, PRECIOUS).unwrap();
    std::os::unix::fs::symlink(&victim, path).unwrap();
    let old_temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::os::unix::fs::symlink(&victim, old_temp).unwrap();
    victim
}

/// After a write to `path`: the symlinks' target is untouched and `path` is a regular file
/// with permission bits `mode`.
pub(crate) fn assert_not_followed(path: &Path, victim: &Path, mode: u32) {
    assert_eq!(std::fs::read_to_string(victim).unwrap(), PRECIOUS);
    let meta = std::fs::symlink_metadata(path).unwrap();
    assert!(meta.file_type().is_file(), "{meta:?}");
    assert_eq!(meta.permissions().mode() & 0o777, mode);
}
