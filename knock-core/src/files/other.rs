//! Systems without unix permission bits (Windows): files are private by their ACLs, which
//! are inherited from the user's profile folders, so there are no bits to set or check.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::path::Path;

pub(super) struct Native;

impl super::Platform for Native {
    fn create_exclusive(path: &Path, _mode: u32) -> io::Result<File> {
        // CREATE_NEW fails on any existing name, a symlink included.
        OpenOptions::new().write(true).create_new(true).open(path)
    }

    fn create_private_dir(path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    fn shared_mode(_meta: &Metadata) -> Option<u32> {
        None
    }

    fn sync_dir(_dir: &Path) -> io::Result<()> {
        // Directories cannot be opened for syncing here; the rename itself is durable
        // once the file's data was synced.
        Ok(())
    }

    fn open_nonblocking(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
        // Opening a named pipe or a device here does not wait for a peer.
        options.open(path)
    }

    fn identity(_meta: &Metadata) -> Option<(u64, u64)> {
        None
    }

    fn kind_of(meta: &Metadata) -> &'static str {
        if meta.is_dir() {
            "a directory"
        } else {
            "not a plain file"
        }
    }
}
