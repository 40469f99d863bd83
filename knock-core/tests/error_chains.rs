//! The error convention of the library, pinned for every error type that carries an OS (or
//! other inner) error: the inner error is in the message and not also the `source()`, so the
//! binaries' `{:#}` (the whole context chain) prints it exactly once.

use std::error::Error;
use std::io;
use std::path::PathBuf;

/// The chain the binaries print (`knock: {e:#}`).
fn chain(e: impl Error + Send + Sync + 'static) -> String {
    format!("{:#}", anyhow::Error::new(e))
}

/// ENOENT on unix, ERROR_FILE_NOT_FOUND on Windows: both 2.
fn os_error() -> io::Error {
    io::Error::from_raw_os_error(2)
}

/// `e` has no source, and its `{:#}` is `want` followed by the OS error, once.
fn prints_os_error_once(e: impl Error + Send + Sync + 'static, want: &str) {
    assert!(e.source().is_none(), "{e}: the OS error is also the source");
    let text = chain(e);
    assert_eq!(text, format!("{want}: {}", os_error()));
    assert_eq!(text.matches("(os error 2)").count(), 1, "{text}");
}

fn path() -> PathBuf {
    PathBuf::from("/etc/knock/x")
}

#[test]
fn files_write_error() {
    use knock_core::files::WriteError;
    let e = WriteError::Io {
        op: "create",
        path: path(),
        error: os_error(),
    };
    prints_os_error_once(e, "create /etc/knock/x");
}

#[test]
fn one_time_list_errors() {
    use knock_core::otp::file::{MarkError, OtpFileError};
    let e = OtpFileError::Io {
        op: "open",
        path: path(),
        error: os_error(),
    };
    prints_os_error_once(e, "open one-time list /etc/knock/x");
    let e = MarkError::Io {
        op: "lock",
        error: os_error(),
    };
    prints_os_error_once(e, "lock");
    let e = OtpFileError::Mark {
        path: path(),
        line_no: 3,
        error: MarkError::Io {
            op: "sync",
            error: os_error(),
        },
    };
    prints_os_error_once(
        e,
        "/etc/knock/x:3: the sequence was sent but could not be marked used: sync",
    );
}

/// Not an OS error, the same rule: a bad line's hit error is printed once.
#[test]
fn one_time_line_error() {
    let e = knock_core::otp::first_unused(" 7000,99999\n").unwrap_err();
    let hit = e.error.without_text();
    assert!(e.source().is_none());
    let text = chain(e);
    assert_eq!(text, format!("line 1: {hit}"));
    assert_eq!(text.matches(&hit).count(), 1, "{text}");
}

#[cfg(feature = "client")]
#[test]
fn send_error() {
    use knock_core::send::{Op, SendError};
    let e = SendError::Io {
        op: Op::SendTo,
        addr: "192.0.2.2:7000".parse().unwrap(),
        error: os_error(),
    };
    prints_os_error_once(e, "sendto 192.0.2.2:7000");
}

#[cfg(feature = "client")]
#[test]
fn profile_errors() {
    use knock_core::profile::ProfileError;
    use knock_core::profile::store::StoreError;
    let e = ProfileError::Read {
        path: path(),
        error: os_error(),
    };
    prints_os_error_once(e, "read profile /etc/knock/x");
    let e = StoreError::Io {
        op: "list",
        path: path(),
        error: os_error(),
    };
    prints_os_error_once(e, "list /etc/knock/x");
    // A profile error inside a store error is transparent: still once.
    let e = StoreError::Profile(ProfileError::Read {
        path: path(),
        error: os_error(),
    });
    prints_os_error_once(e, "read profile /etc/knock/x");
}

#[test]
fn secret_errors() {
    use knock_core::secret::source::SecretError;
    let e = SecretError::Read {
        path: path(),
        error: os_error(),
    };
    prints_os_error_once(e, "read secret file /etc/knock/x");
    prints_os_error_once(
        SecretError::Prompt(os_error()),
        "read the secret from the terminal",
    );
}
