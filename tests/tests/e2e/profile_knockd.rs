//! `knock profile NAME` against Debian's knockd 0.8: a saved sequence profile opens a plain
//! door with exactly its hits on the wire, and a one-time profile shares its list with a
//! One_Time_Sequences door, both ends marking the same lines.
//!
//! Profiles live in a scratch directory given with `--profiles` or `KNOCK_PROFILES`, never
//! in the user's configuration.

use std::process::Command;

use knock_e2e::capture::{Capture, show};
use knock_e2e::knockd::Knockd;
use knock_e2e::server::read;
use knock_e2e::{CLIENT_V4, Need, SERVER_V4, Server, TempDir, WAIT, bin, check, netns_test};

/// `knock ARGS...` on this machine (no network needed: saving, generating).
fn knock_here(args: &[&str]) -> String {
    check(Command::new(bin("knock")).args(args))
}

netns_test!(
    a_saved_profile_opens_a_plain_knockd_door,
    [Need::Knockd],
    |pair| {
        let knockd = Knockd::start(
            &pair,
            "[door]\n\
         \tsequence = 17000,18000:udp,19000\n\
         \tseq_timeout = 10\n\
         \tcommand = echo %IP% >> @DIR@/events\n",
        );
        let profiles = TempDir::new("profiles-plain");
        let dir = profiles.path().display().to_string();
        knock_here(&[
            "profile",
            "--profiles",
            &dir,
            "save",
            "home",
            SERVER_V4,
            "17000,18000:udp",
            "19000",
            "-d",
            "50",
        ]);

        let capture = Capture::start(&pair, &["src", "host", CLIENT_V4]);
        // The directory from the environment this time.
        let mut cmd = pair.knock_cmd(&["profile", "home"]);
        cmd.env("KNOCK_PROFILES", &dir);
        check(&mut cmd);
        assert_eq!(
            knockd.wait_events(1, WAIT),
            [CLIENT_V4],
            "{}",
            knockd.output()
        );

        capture.wait_for(3, WAIT, |r| r.is_from_to(CLIENT_V4, SERVER_V4));
        let records: Vec<_> = capture
            .stop()
            .into_iter()
            .filter(|r| r.is_from_to(CLIENT_V4, SERVER_V4))
            .collect();
        let seen: Vec<(String, Option<u16>, Option<String>)> = records
            .iter()
            .map(|r| (r.proto.clone(), r.dport, r.tcp_flags.clone()))
            .collect();
        assert_eq!(
            seen,
            [
                ("tcp".to_string(), Some(17000), Some("S".to_string())),
                ("udp".to_string(), Some(18000), None),
                ("tcp".to_string(), Some(19000), Some("S".to_string())),
            ],
            "exactly the profile's hits, in order, once each:\n{}",
            show(&records)
        );
        // The profile's 50 ms delay is between the hits on the wire.
        for pair in records.windows(2) {
            assert!(
                pair[1].time - pair[0].time >= 0.045,
                "hits closer than the profile's delay:\n{}",
                show(&records)
            );
        }
    }
);

netns_test!(
    a_one_time_profile_shares_its_list_with_a_knockd_door,
    [Need::Knockd],
    |pair| {
        let profiles = TempDir::new("profiles-otp");
        let server = TempDir::new("server-otp");
        let dir = profiles.path().display().to_string();
        let client_list = profiles.path().join("vpn.otp");
        let server_list = server.path().join("vpn.otp");

        // A fresh list from our own generator; the server gets a copy of the same file.
        knock_here(&[
            "otp",
            "generate",
            "--count",
            "4",
            "--length",
            "3",
            "--ports",
            "20000-29999",
            "--protocols",
            "mixed",
            &client_list.display().to_string(),
        ]);
        std::fs::copy(&client_list, &server_list).unwrap();
        let original = read(&client_list);
        std::fs::write(
            profiles.path().join("vpn.toml"),
            format!("host = \"{SERVER_V4}\"\none_time_sequences = \"vpn.otp\"\n"),
        )
        .unwrap();

        let knockd = Knockd::start(
            &pair,
            &format!(
                "[vpn]\n\
             \tone_time_sequences = {}\n\
             \tseq_timeout = 10\n\
             \tcommand = echo %IP% >> @DIR@/events\n",
                server_list.display()
            ),
        );

        // A dry run shows the first line and uses nothing.
        let shown = pair.knock(&["profile", "--profiles", &dir, "vpn", "--dry-run"]);
        assert!(
            shown.starts_with(&format!("next unused line: {}:1\n", client_list.display())),
            "{shown}"
        );
        assert_eq!(read(&client_list), original);

        for round in 1..=2 {
            pair.knock(&["profile", "--profiles", &dir, "vpn"]);
            knockd.wait_for("the door to open", WAIT, || knockd.events().len() == round);
            // knockd marks its copy as knock marked ours: the same bytes on both ends.
            knockd.wait_for("knockd to mark its copy", WAIT, || {
                read(&server_list) == read(&client_list)
            });
        }
        let client = read(&client_list);
        let marked: Vec<usize> = client
            .lines()
            .enumerate()
            .filter(|(_, l)| l.starts_with('#'))
            .map(|(i, _)| i + 1)
            .collect();
        assert_eq!(
            marked,
            [1, 2],
            "two knocks used the first two lines:\n{client}"
        );
        assert_eq!(read(&server_list), client);
        // Nothing else changed: only the first byte of each used line.
        let unmark =
            |text: &str| -> String { text.lines().map(|l| format!(" {}\n", &l[1..])).collect() };
        assert_eq!(unmark(&client), unmark(&original));
        assert_eq!(knockd.events(), [CLIENT_V4, CLIENT_V4]);
    }
);
