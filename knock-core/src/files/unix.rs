//! Unix permission bits: files created with their exact mode, directories 0700, group/other
//! access detected.

use std::fs::{DirBuilder, File, Metadata, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub(super) struct Native;

impl super::Platform for Native {
    fn create_exclusive(path: &Path, mode: u32) -> io::Result<File> {
        // O_CREAT|O_EXCL fails on any existing name, a dangling symlink included; O_NOFOLLOW
        // says the same once more. open(2) applies the mode less the umask, so the file is
        // never wider than `mode`; fchmod then sets exactly `mode` (a pidfile is 0644 even
        // under umask 077).
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(mode)
            .open(path)?;
        file.set_permissions(Permissions::from_mode(mode))?;
        Ok(file)
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

    fn open_nonblocking(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
        // O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for
        // one. On a regular file the flag changes nothing. O_NOCTTY: a terminal device
        // never becomes our controlling terminal.
        options
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
    }

    fn identity(meta: &Metadata) -> Option<(u64, u64)> {
        Some((meta.dev(), meta.ino()))
    }

    fn kind_of(meta: &Metadata) -> &'static str {
        let t = meta.file_type();
        if t.is_dir() {
            "a directory"
        } else if t.is_fifo() {
            "a FIFO"
        } else if t.is_char_device() {
            "a character device"
        } else if t.is_block_device() {
            "a block device"
        } else if t.is_socket() {
            "a socket"
        } else {
            "not a plain file"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn written_files_are_0600_and_dirs_0700() {
        let scratch = crate::testutil::Scratch::new("unix");
        let dir = scratch.path();
        create_private_dir(&dir.join("sub")).unwrap();
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

    #[test]
    fn the_mode_is_exact_whatever_the_umask() {
        let scratch = crate::testutil::Scratch::new("mode");
        // The umask is process-wide, so this test leaves it alone and asks for bits the
        // usual umask (022) strips: group and other write.
        let path = scratch.join("pid");
        write_atomic(&path, b"1\n", 0o666, Overwrite::Refuse).unwrap();
        assert_eq!(mode(&path), 0o666);
        write_atomic(&path, b"2\n", 0o644, Overwrite::Replace).unwrap();
        assert_eq!(mode(&path), 0o644);
    }

    /// The attack the exclusive create stops: someone who can write to the directory plants
    /// a symlink at the temporary name, hoping root follows it and overwrites another file.
    #[test]
    fn a_symlink_planted_at_the_temporary_name_is_never_followed() {
        let scratch = crate::testutil::Scratch::new("symlink");
        let dir = scratch.path();
        let victim = dir.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        let planted = dir.join(format!(".state.{:016x}.tmp", 42));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        // Also a dangling one, which O_CREAT without O_EXCL would create a file through.
        let dangling = dir.join(format!(".state.{:016x}.tmp", 43));
        std::os::unix::fs::symlink(dir.join("created-through-link"), &dangling).unwrap();

        let path = dir.join("state");
        for policy in [Overwrite::Refuse, Overwrite::Replace] {
            write_atomic_with(&path, b"new", 0o600, policy, |n| Ok([42, 43, 44][n])).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), b"new");
        }
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(mode(&victim), 0o644);
        assert!(!dir.join("created-through-link").exists());
        // The planted links are someone else's: left where they are.
        assert!(planted.symlink_metadata().unwrap().file_type().is_symlink());
        assert!(
            dangling
                .symlink_metadata()
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(
            !std::fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    /// The hostile run's finding: a FIFO as the config or a one-time list blocked start-up
    /// and SIGHUP until someone wrote to it; /dev/zero grew memory without end.
    #[test]
    fn fifos_and_devices_are_refused_at_once() {
        let scratch = crate::testutil::Scratch::new("fifo");
        let fifo = scratch.join("list");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", fifo.display());
        let start = std::time::Instant::now();
        let err = read_regular(&fifo, 100).unwrap_err();
        assert_eq!(err.to_string(), "not a regular file (a FIFO)");
        let err = open_regular(&fifo, OpenOptions::new().read(true).write(true), 100).unwrap_err();
        assert_eq!(err.to_string(), "not a regular file (a FIFO)");
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        let err = read_regular(Path::new("/dev/zero"), 100).unwrap_err();
        assert_eq!(err.to_string(), "not a regular file (a character device)");
    }

    #[test]
    fn refusing_does_not_follow_a_symlink_at_the_destination() {
        let scratch = crate::testutil::Scratch::new("dest-link");
        let dir = scratch.path();
        let victim = dir.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let path = dir.join("knockd.pid");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let err = write_atomic(&path, b"1\n", 0o644, Overwrite::Refuse).unwrap_err();
        assert!(matches!(err, WriteError::Exists(_)), "{err}");
        // Replacing swaps the link itself for a file; the target is untouched.
        write_atomic(&path, b"1\n", 0o644, Overwrite::Replace).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(std::fs::symlink_metadata(&path).unwrap().is_file());
    }
}
