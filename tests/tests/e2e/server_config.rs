//! Configs knockd-lite must run as their authors expect: a log file that cannot be opened
//! (knockd warns and runs, and so does knockd-lite, naming the config file and the line of
//! `LogFile`; a SIGHUP opens the file once it can be), and a tportknockd config unchanged.

use knock_e2e::lite::KnockdLite;
use knock_e2e::server::read;
use knock_e2e::{SERVER_V4, Server, TempDir, WAIT, netns_test};

netns_test!(
    a_log_file_in_a_missing_folder_warns_and_a_sighup_opens_it,
    |pair| {
        let dir = TempDir::new("lite-nolog");
        let logs = dir.path().join("logs");
        let log = logs.join("knockd.log");
        let conf = dir.path().join("knockd.conf");
        std::fs::write(
            &conf,
            format!(
                "[options]\n\tLogFile = {}\n[door]\n\tsequence = 7101,7102:udp,7103\n\
             \tstart_command = echo door %IP% >> {}/events\n",
                log.display(),
                dir.path().display()
            ),
        )
        .unwrap();
        let mut lite = KnockdLite::start_config(&pair, dir, &conf, &[]);
        let out = read(&lite.path("knockd-lite.out"));
        assert!(
            out.contains(&format!(
                "knockd-lite: warning: cannot open the log file {} (LogFile on line 2 of {}): \
             No such file or directory (os error 2); running without it until a SIGHUP \
             opens it\n",
                log.display(),
                conf.display()
            )),
            "{out}"
        );
        // It runs: a knock opens the door.
        assert_eq!(
            lite.next_event(WAIT, || pair.knock(&[SERVER_V4, "7101,7102:udp,7103"])),
            "door 192.0.2.1"
        );
        assert!(!log.exists());

        // Still missing on a SIGHUP: warned again, still running.
        lite.signal(libc::SIGHUP);
        lite.wait_for("a second warning", WAIT, || {
            read(&lite.path("knockd-lite.out"))
                .matches("warning: cannot open the log file")
                .count()
                >= 2
        });
        assert!(lite.alive(), "{}", lite.output());

        // The folder appears; the next SIGHUP opens the file and logs there from then on.
        std::fs::create_dir(&logs).unwrap();
        lite.signal(libc::SIGHUP);
        lite.wait_for("the log file", WAIT, || {
            read(&log).contains(&format!("] opened the log file {}\n", log.display()))
        });
        assert_eq!(
            lite.next_event(WAIT, || pair.knock(&[SERVER_V4, "7101,7102:udp,7103"])),
            "door 192.0.2.1"
        );
        lite.wait_for("OPEN SESAME in the log file", WAIT, || {
            read(&log).contains("] 192.0.2.1: door: OPEN SESAME\n")
        });
    }
);

// A tportknockd config, run unchanged: its frames' flags are matched exactly, as
// tportknockd matches them, and `%IP%` is the knocker's address.
netns_test!(a_tportknockd_config_runs_unchanged, |pair| {
    let dir = TempDir::new("lite-tport");
    let conf = dir.path().join("tportknockd.conf");
    std::fs::write(
        &conf,
        format!(
            "# flag knocking\n<SSH>\n  sequence = tcp:7101:s tcp:7101:fa udp:7103\n  \
             timeout = 5\n  start_command = echo SSH %IP% >> {}/events\n</SSH>\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let lite = KnockdLite::start_config(&pair, dir, &conf, &[]);
    // The wrong flags on the second frame do not open it; the right ones do.
    pair.knock(&[SERVER_V4, "tcp:7101:s,tcp:7101:f,udp:7103"]);
    assert_eq!(
        lite.next_event(WAIT, || pair
            .knock(&[SERVER_V4, "tcp:7101:s,tcp:7101:fa,udp:7103"])),
        "SSH 192.0.2.1"
    );
    assert_eq!(lite.events(), ["SSH 192.0.2.1"]);
});
