//! The Windows build: `knock.exe` runs under Wine in the client namespace and knocks open
//! doors of Debian's knockd and of knockd-lite in the server namespace, while tcpdump
//! there records what arrived. See `knock_e2e::wine` for how Wine is set up and kept inside the namespace.

use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use knock_e2e::capture::{Capture, Record, show};
use knock_e2e::knockd::Knockd;
use knock_e2e::lite::KnockdLite;
use knock_e2e::terminal::{Transcript, answer_prompt};
use knock_e2e::wine::WineHost;
use knock_e2e::{
    CLIENT_V4, CLIENT_V6, Need, SERVER_V4, SERVER_V6, Server, WAIT, bin, expect_exit, expect_quiet,
    netns_test,
};

/// Runs a knock.exe command to completion, and says how long it took under Wine.
fn run(host: &WineHost, cmd: &mut Command, args: &[&str]) -> Output {
    let start = Instant::now();
    let out = host.run(cmd);
    eprintln!("knock.exe {args:?} under Wine took {:?}", start.elapsed());
    out
}

/// Runs knock.exe ARGS; it must exit 0 and print nothing on stderr. Returns stdout.
fn knock_ok(host: &WineHost, args: &[&str]) -> String {
    let out = run(host, &mut host.knock_cmd(args), args);
    expect_quiet(&format!("knock.exe {args:?}"), &out)
}

/// Runs knock.exe ARGS; it must exit with `code` and print nothing on stdout. Returns
/// stderr.
fn knock_fails(host: &WineHost, args: &[&str], code: i32) -> String {
    let out = run(host, &mut host.knock_cmd(args), args);
    expect_exit(&format!("knock.exe {args:?}"), &out, code)
}

/// A knockd door whose command appends the knocker's address to `@DIR@/events`.
fn door(sequence: &str) -> String {
    format!(
        "[door]\n\tsequence = {sequence}\n\tseq_timeout = 15\n\
         \tcommand = echo %IP% >> @DIR@/events\n"
    )
}

/// Waits for knockd to run the door's command, and checks who it opened for.
fn assert_opened_for(knockd: &Knockd, client: &str) {
    assert_eq!(knockd.wait_events(1, WAIT), [client], "{}", knockd.output());
}

/// Stops the capture once `n` packets went from client to server, `settle` later (so a
/// late extra, such as a retransmitted SYN, would be seen), and returns those packets.
fn sent(capture: Capture, n: usize, settle: Duration) -> Vec<Record> {
    let what = "knock.exe under Wine";
    capture
        .stop_after(n, WAIT, settle, Record::is_client_to_server, what)
        .0
}

/// Stops the capture after a pause and checks that nothing went from client to server.
fn assert_nothing_sent(capture: Capture) {
    thread::sleep(Duration::from_millis(300));
    let all = capture.stop();
    assert!(
        !all.iter().any(Record::is_client_to_server),
        "packets were sent:\n{}",
        show(&all)
    );
}

fn summaries(records: &[Record]) -> Vec<String> {
    records.iter().map(Record::summary).collect()
}

fn assert_all_from(records: &[Record], client: &str) {
    for r in records {
        assert_eq!(r.src.to_string(), client, "{}", r.line);
    }
}

netns_test!(
    knock_exe_starts_with_the_prng_shim_beside_it,
    [Need::Wine],
    |pair| {
        let host = WineHost::new(&pair);
        // Wine's loader trace says which bcryptprimitives.dll it took, and from where.
        let mut cmd = host.knock_cmd(&["--version"]);
        cmd.env("WINEDEBUG", "+loaddll");
        let version = run(&host, &mut cmd, &["--version"]);
        let stderr = String::from_utf8_lossy(&version.stderr);
        assert!(
            version.status.success(),
            "knock.exe --version: {}\n{stderr}",
            version.status
        );
        assert_eq!(
            String::from_utf8_lossy(&version.stdout),
            format!("knock {}\n", env!("CARGO_PKG_VERSION"))
        );
        let exe_dir = host.exe().parent().unwrap().display().to_string();
        // The trace writes the Windows path as a C string: `L"Z:\\tmp\\...\\x.dll"`.
        let dll = format!(
            "L\"Z:{}\\\\bcryptprimitives.dll\"",
            exe_dir.replace('/', "\\\\")
        );
        let loaded = stderr
            .lines()
            .find(|l| l.contains("bcryptprimitives.dll"))
            .unwrap_or_else(|| panic!("no trace of bcryptprimitives.dll:\n{stderr}"));
        assert!(
            loaded.contains(&dll) && loaded.ends_with(": native"),
            "not our DLL from {exe_dir}: {loaded}"
        );

        // The help says what this system can and cannot do.
        let help = knock_ok(&host, &["--help"]);
        // The usage names `knock`, as on Linux, not argv[0]'s `knock.exe`.
        assert!(
            help.contains("Usage: knock [OPTIONS] <HOST> <HIT>..."),
            "{help}"
        );
        assert!(help.contains("is not possible on Windows"), "{help}");
        let help = knock_ok(&host, &["profile", "--help"]);
        assert!(help.contains("%APPDATA% on Windows"), "{help}");
    }
);

netns_test!(
    tcp_hits_open_a_knockd_door_with_one_syn_each,
    [Need::Knockd, Need::Wine],
    |pair| {
        // Nothing answers, as behind a dropping firewall: a SYN whose socket stayed open would
        // be retransmitted after a second, within the delay below.
        pair.silence_server();
        let knockd = Knockd::start(&pair, &door("7000,7001,7002"));
        let host = WineHost::new(&pair);
        let capture = Capture::start(&pair, &["tcp", "or", "udp"]);
        // A lone `syn` flag needs no raw socket: it goes out through connect like the others.
        let stdout = knock_ok(
            &host,
            &["-v", "-d", "1200", SERVER_V4, "7000,7001:tcp:syn", "7002"],
        );
        assert_eq!(
            stdout,
            "hitting tcp 192.0.2.2:7000\nhitting tcp 192.0.2.2:7001 [syn]\n\
         hitting tcp 192.0.2.2:7002\n"
        );
        assert_opened_for(&knockd, CLIENT_V4);
        let sent = sent(capture, 3, Duration::from_millis(300));
        assert_eq!(
            summaries(&sent),
            ["tcp 7000 S", "tcp 7001 S", "tcp 7002 S"],
            "{}",
            show(&sent)
        );
        assert_all_from(&sent, CLIENT_V4);
        // Each hit is a connection of its own, from a fresh ephemeral port, as knock(1) does.
        let mut ports: Vec<u16> = sent.iter().filter_map(|r| r.sport).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 3, "{}", show(&sent));
    }
);

netns_test!(
    udp_hits_open_a_knockd_door_with_one_byte_each,
    [Need::Knockd, Need::Wine],
    |pair| {
        let knockd = Knockd::start(&pair, &door("8000:udp,8001:udp,8002:udp"));
        let host = WineHost::new(&pair);
        let capture = Capture::start(&pair, &["tcp", "or", "udp"]);
        let stdout = knock_ok(&host, &["-u", "-v", SERVER_V4, "8000", "8001,8002"]);
        assert_eq!(
            stdout,
            "hitting udp 192.0.2.2:8000\nhitting udp 192.0.2.2:8001\nhitting udp 192.0.2.2:8002\n"
        );
        assert_opened_for(&knockd, CLIENT_V4);
        let sent = sent(capture, 3, Duration::from_millis(300));
        assert_eq!(
            summaries(&sent),
            ["udp 8000 len=1", "udp 8001 len=1", "udp 8002 len=1"],
            "{}",
            show(&sent)
        );
        assert_all_from(&sent, CLIENT_V4);
    }
);

const MIXED: &str = "7000:tcp,8000:udp,9000:tcp";
const MIXED_ON_WIRE: [&str; 3] = ["tcp 7000 S", "udp 8000 len=1", "tcp 9000 S"];

netns_test!(
    a_mixed_sequence_opens_a_knockd_door_over_ipv4,
    [Need::Knockd, Need::Wine],
    |pair| {
        let knockd = Knockd::start(&pair, &door(MIXED));
        let host = WineHost::new(&pair);
        let capture = Capture::start(&pair, &["tcp", "or", "udp"]);
        // Without -v knock prints nothing, as knock(1).
        assert_eq!(knock_ok(&host, &[SERVER_V4, "7000,8000:udp,9000"]), "");
        assert_opened_for(&knockd, CLIENT_V4);
        let sent = sent(capture, 3, Duration::from_millis(300));
        assert_eq!(summaries(&sent), MIXED_ON_WIRE, "{}", show(&sent));
        assert_all_from(&sent, CLIENT_V4);
    }
);

netns_test!(
    a_mixed_sequence_to_a_name_opens_a_knockd_door_over_ipv6,
    [Need::Knockd, Need::Wine],
    |pair| {
        // Wine resolves through the host's resolver, which in the namespace reads only this.
        pair.set_client_hosts("192.0.2.2 door.test\n2001:db8::2 door.test\n");
        let knockd = Knockd::start(&pair, &door(MIXED));
        let host = WineHost::new(&pair);
        let capture = Capture::start(&pair, &["tcp", "or", "udp"]);
        let stdout = knock_ok(&host, &["-6", "-v", "door.test", "7000,8000:udp,9000"]);
        assert_eq!(
            stdout,
            "hitting tcp [2001:db8::2]:7000\nhitting udp [2001:db8::2]:8000\n\
         hitting tcp [2001:db8::2]:9000\n"
        );
        assert_opened_for(&knockd, CLIENT_V6);
        let sent = sent(capture, 3, Duration::from_millis(300));
        assert_eq!(summaries(&sent), MIXED_ON_WIRE, "{}", show(&sent));
        assert_all_from(&sent, CLIENT_V6);
    }
);

netns_test!(
    dry_run_resolves_prints_and_sends_nothing,
    [Need::Wine],
    |pair| {
        pair.set_client_hosts("192.0.2.2 door.test\n");
        let host = WineHost::new(&pair);
        let capture = Capture::start(&pair, &["tcp", "or", "udp"]);
        let json = knock_ok(
            &host,
            &["--dry-run", "--json", "door.test", "7000,8000:udp"],
        );
        assert_eq!(
            json,
            "{\"host\":\"door.test\",\"address\":\"192.0.2.2\",\"delay_ms\":0,\"hits\":[\
         {\"port\":7000,\"proto\":\"tcp\",\"flags\":[\"syn\"],\"raw\":false,\"refused\":null},\
         {\"port\":8000,\"proto\":\"udp\",\"flags\":[],\"raw\":false,\"refused\":null}]}\n"
        );
        let text = knock_ok(&host, &["--dry-run", "-u", "door.test", "7000,8000:tcp"]);
        assert_eq!(
            text,
            "would hit udp 192.0.2.2:7000\nwould hit tcp 192.0.2.2:8000\n"
        );
        assert_nothing_sent(capture);
    }
);

netns_test!(
    errors_exit_as_on_linux_and_send_nothing,
    [Need::Wine],
    |pair| {
        pair.set_client_hosts("192.0.2.2 door.test\n");
        let host = WineHost::new(&pair);
        let capture = Capture::start(&pair, &["tcp", "or", "udp"]);

        let bad_hit = knock_fails(&host, &[SERVER_V4, "7000,abc"], 2);
        // Names are looked up in Windows' own services file.
        assert_eq!(
            bad_hit,
            "knock: bad hit \"abc\": port \"abc\" is neither a number (1-65535) nor a service \
             name for tcp in C:\\windows\\System32\\drivers\\etc\\services\n"
        );
        let named = knock_ok(&host, &["--dry-run", SERVER_V4, "ssh", "http:udp"]);
        assert_eq!(
            named,
            "would hit tcp 192.0.2.2:22\nwould hit udp 192.0.2.2:80\n"
        );
        let usage = knock_fails(&host, &["-4", "-6", SERVER_V4, "7000"], 2);
        assert!(
            usage.starts_with("error: the argument '--ipv4' cannot be used with '--ipv6'"),
            "{usage}"
        );
        // The message after the name is Windows' own ("No such host is known.").
        let unknown = knock_fails(&host, &["nosuch.test", "7000"], 1);
        assert!(
            unknown.starts_with("knock: resolve nosuch.test: "),
            "{unknown}"
        );
        assert_nothing_sent(capture);
    }
);

netns_test!(
    flagged_and_raw_hits_are_refused_by_name_before_anything_is_sent,
    [Need::Wine],
    |pair| {
        let host = WineHost::new(&pair);
        let capture = Capture::start(&pair, &["tcp", "or", "udp"]);
        // The plain first hit is not sent either: the sequence is checked whole first.
        let flagged = knock_fails(&host, &[SERVER_V4, "7000,7001:tcp:fin+psh"], 2);
        assert_eq!(
            flagged,
            "knock: hit 2 of 2 (7001:tcp:fin+psh): exact TCP flags need a raw socket, but Windows \
         does not send TCP through raw sockets\n\
         knock: nothing was sent; to knock from this system, drop the flags (hits without \
         flags, and a lone syn, go out through an ordinary connect)\n"
        );
        let raw = knock_fails(&host, &["--raw", SERVER_V4, "7000,8000:udp"], 2);
        assert_eq!(
            raw,
            "knock: hit 1 of 2 (7000:tcp): sending a TCP hit raw needs a raw socket, but Windows \
         does not send TCP through raw sockets\n\
         knock: nothing was sent; to knock from this system, drop --raw (hits without flags, \
         and a lone syn, go out through an ordinary connect)\n"
        );
        assert_nothing_sent(capture);
    }
);

const LITE_DOORS: &str = "[tcp]
\tsequence = 7101,7102,7103
\ttcpflags = syn
\tstart_command = echo tcp %IP% >> @DIR@/events
[udp]
\tsequence = 8201:udp,8202:udp,8203:udp
\tstart_command = echo udp %IP% >> @DIR@/events
[mixed]
\tsequence = 7301,8302:udp,7303
\tstart_command = echo mixed %IP% >> @DIR@/events
";

netns_test!(knock_exe_opens_knockd_lite_doors, [Need::Wine], |pair| {
    let lite = KnockdLite::start(&pair, LITE_DOORS, &[]);
    let host = WineHost::new(&pair);
    let runs: [(&[&str], &str); 4] = [
        (&[SERVER_V4, "7101", "7102", "7103"], "tcp 192.0.2.1"),
        (&["-u", SERVER_V4, "8201,8202", "8203"], "udp 192.0.2.1"),
        (&[SERVER_V4, "7301,8302:udp,7303"], "mixed 192.0.2.1"),
        (&[SERVER_V6, "7301,8302:udp,7303"], "mixed 2001:db8::1"),
    ];
    // Each knock is checked on its own: its door's event line must follow it.
    for (args, want) in runs {
        let event = lite.next_event(WAIT, || assert_eq!(knock_ok(&host, args), ""));
        assert_eq!(event, want, "{}", lite.output());
    }
    let log = lite.log();
    assert_eq!(log.matches("OPEN SESAME").count(), runs.len(), "{log}");
});

netns_test!(
    a_profile_saved_in_appdata_opens_a_knockd_door,
    [Need::Knockd, Need::Wine],
    |pair| {
        let knockd = Knockd::start(&pair, &door(MIXED));
        let host = WineHost::new(&pair);
        let profiles = host.appdata().join("knock").join("profiles");

        // knock.exe writes the profile itself, through the Windows file code, and it lands in
        // %APPDATA%\knock\profiles, where Wine's %APPDATA% says.
        let saved = knock_ok(
            &host,
            &[
                "profile",
                "save",
                "--description",
                "door on the test server",
                "home",
                SERVER_V4,
                "7000,8000:udp",
                "9000",
                "-d",
                "50",
            ],
        );
        assert!(
            saved.starts_with("saved profile home: C:\\users\\")
                && saved.ends_with("\\AppData\\Roaming\\knock\\profiles\\home.toml\n"),
            "{saved}"
        );
        let text = std::fs::read_to_string(profiles.join("home.toml"))
            .unwrap_or_else(|e| panic!("{}: {e}", profiles.join("home.toml").display()));
        assert!(
            text.contains("host = \"192.0.2.2\"\n")
                && text.contains("sequence = \"7000,8000:udp,9000\"\n"),
            "{text}"
        );
        let list = knock_ok(&host, &["profile", "list"]);
        assert!(
            list.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()[..3]
                    == ["home", "192.0.2.2", "sequence"]),
            "{list}"
        );

        let capture = Capture::start(&pair, &["tcp", "or", "udp"]);
        let stdout = knock_ok(&host, &["profile", "home", "-v"]);
        assert_eq!(
            stdout,
            "hitting tcp 192.0.2.2:7000\nhitting udp 192.0.2.2:8000\nhitting tcp 192.0.2.2:9000\n"
        );
        assert_opened_for(&knockd, CLIENT_V4);
        let sent = sent(capture, 3, Duration::from_millis(300));
        assert_eq!(summaries(&sent), MIXED_ON_WIRE, "{}", show(&sent));
        // The profile's 50 ms delay is between the hits on the wire.
        for two in sent.windows(2) {
            assert!(two[1].time - two[0].time >= 0.045, "{}", show(&sent));
        }
    }
);

/// A made-up knock-hmac-v1 secret (base64 of `secret-for-the-wine-tests-000000`).
const SECRET: &str = "c2VjcmV0LWZvci10aGUtd2luZS10ZXN0cy0wMDAwMDA=";

netns_test!(
    the_secret_prompt_does_not_echo_and_gives_the_linux_sequence,
    [Need::Wine],
    |pair| {
        assert!(knock_e2e::have("python3"), "python3 drives the terminal");
        let host = WineHost::new(&pair);
        let profiles = host.appdata().join("knock").join("profiles");
        std::fs::create_dir_all(&profiles).expect("create the profile folder");
        // No secret_file and no secret_env: knock asks on the terminal.
        std::fs::write(
            profiles.join("office.toml"),
            "host = \"192.0.2.2\"\n[hmac]\ndoor = \"office\"\nprotocols = \"mixed\"\n",
        )
        .expect("write the profile");
        let args = ["profile", "office", "--dry-run", "--at", "1700000000"];
        let prompt = "Secret for door office:";

        let on_windows = answer_prompt(&host.knock_cmd(&args), prompt, SECRET);
        host.assert_server_in_namespace();
        let mut linux_cmd = Command::new(bin("knock"));
        linux_cmd
            .args(["profile", "--profiles"])
            .arg(&profiles)
            .args(&args[1..]);
        let on_linux = answer_prompt(&linux_cmd, prompt, SECRET);

        for (system, t) in [("Windows", &on_windows), ("Linux", &on_linux)] {
            assert_eq!(t.code, Some(0), "{system}:\n{}", t.text);
            assert!(t.text.contains(prompt), "{system}:\n{}", t.text);
            // Not the secret, nor any piece of it, came back on the terminal.
            let secret: Vec<char> = SECRET.chars().collect();
            for piece in secret.windows(6) {
                let piece: String = piece.iter().collect();
                assert!(
                    !t.text.contains(&piece),
                    "{system} echoed {piece:?}:\n{}",
                    t.text
                );
            }
        }
        let hits = |t: &Transcript| -> Vec<String> {
            t.text
                .lines()
                .filter(|l| l.starts_with("would hit "))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(hits(&on_windows).len(), 4, "{}", on_windows.text);
        assert_eq!(hits(&on_windows), hits(&on_linux), "{}", on_windows.text);
    }
);
