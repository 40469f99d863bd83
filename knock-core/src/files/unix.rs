//! Unix permission bits: files created 0600, directories 0700, group/other access detected.

use std::fs::{DirBuilder, File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

pub(super) struct Native;

impl super::Platform for Native {
    fn create_private(path: &Path) -> io::Result<File> {
        // The mode is applied by open(2) itself, so the file is never readable by others,
        // not even between creation and a later chmod.
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
    }

    fn create_private_dir(path: &Path) -> io::Result<()> {
        DirBuilder::new().recursive(true).mode(0o700).create(path)
    }

    fn shared_mode(meta: &Metadata) -> Option<u32> {
        let mode = meta.mode() & 0o7777;
        (mode & 0o077 != 0).then_some(mode)
    }

    fn sync_dir(dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn written_files_are_0600_and_dirs_0700() {
        let scratch = crate::testutil::Scratch::new("unix");
        let dir = scratch.path();
        create_private_dir(&dir.join("sub")).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&dir.join("sub")), 0o700);
        let path = dir.join("sub").join("f");
        write_private(&path, b"x", false).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(shared_mode(&std::fs::metadata(&path).unwrap()), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(shared_mode(&std::fs::metadata(&path).unwrap()), Some(0o640));
        // Overwriting replaces a too-open file with a private one.
        write_private(&path, b"y", true).unwrap();
        assert_eq!(mode(&path), 0o600);
    }
}
