//! The static aarch64 `knock` (what the static archive ships for small ARM boxes) under
//! qemu-user in the client namespace: it is static, its dry run says what the native one
//! says, and its real TCP, UDP and mixed knocks, over IPv4 and IPv6, open knockd-lite's
//! doors in the server namespace.

use knock_e2e::aarch64::{self, elf_machine_and_interp};
use knock_e2e::lite::KnockdLite;

use super::server_knock::DOORS;
use knock_e2e::{
    CLIENT_V4, CLIENT_V6, Need, SERVER_V4, SERVER_V6, Server, WAIT, check_quiet, netns_test,
};

netns_test!(
    the_aarch64_build_is_static_and_dry_runs_like_the_native_one,
    [Need::Aarch64],
    |pair| {
        // 183: EM_AARCH64. No program interpreter: nothing to install on the box.
        assert_eq!(
            elf_machine_and_interp(&aarch64::knock_path()),
            (183, false),
            "{} is not a static aarch64 executable",
            aarch64::knock_path().display()
        );
        let version = check_quiet(&mut aarch64::knock_cmd(&pair, &["--version"]));
        assert_eq!(version, format!("knock {}\n", env!("CARGO_PKG_VERSION")));
        for args in [
            &[
                "--dry-run",
                SERVER_V4,
                "7000",
                "8000:udp",
                "9000:tcp:fin+psh",
            ][..],
            &["--dry-run", "--json", "-6", SERVER_V6, "7000,8000:udp"][..],
        ] {
            let arm = check_quiet(&mut aarch64::knock_cmd(&pair, args));
            let native = pair.knock(args);
            assert_eq!(arm, native, "knock {args:?}");
        }
    }
);

netns_test!(
    the_aarch64_build_opens_knockd_lite_doors,
    [Need::Aarch64],
    |pair| {
        let lite = KnockdLite::start(&pair, DOORS, &[]);
        for (server, client) in [(SERVER_V4, CLIENT_V4), (SERVER_V6, CLIENT_V6)] {
            for (door, args) in [
                ("tcp", &[server, "7101", "7102", "7103"][..]),
                ("udp", &["-u", server, "7201", "7202", "7203"][..]),
                ("mixed", &[server, "7301,7302:udp,7303"][..]),
            ] {
                let event =
                    lite.next_event(WAIT, || check_quiet(&mut aarch64::knock_cmd(&pair, args)));
                assert_eq!(event, format!("{door} {client}"), "{}", lite.output());
            }
        }
    }
);
