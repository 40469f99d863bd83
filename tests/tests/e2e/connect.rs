//! From knock to connected, end to end: `knock --wait` and `--proxy` against doors of
//! knockd-lite and Debian's knockd 0.8 whose commands open an iptables firewall in the
//! server namespace for the knocker; the real ssh and scp through the README's
//! ProxyCommand; a lost hit recovered by the re-knock; both ends passed through the relay;
//! and knock.exe doing the same under Wine.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Instant;

use knock_e2e::firewall::{ACCEPT_ESTABLISHED, Firewall};
use knock_e2e::knockd::Knockd;
use knock_e2e::lite::KnockdLite;
use knock_e2e::service::{Ends, OneShot, Service};
use knock_e2e::sshd::{SCP, SSH, Sshd};
use knock_e2e::wine::WineHost;
use knock_e2e::{
    CLIENT_V4, Need, Pair, SERVER_V4, Server, TempDir, WAIT, bin, check, expect_exit, expect_quiet,
    netns_test,
};

/// The README's recipe, word for word.
const PROXY_COMMAND: &str = "knock profile %n --proxy %p";

/// Closes `ports` on the server: new connections to them are dropped, except what a door
/// inserts before the drop rules; established ones go on (a session outlives its door).
fn guard_ports(pair: &Pair, ports: &[u16]) -> Firewall {
    let fw = Firewall::server(pair);
    fw.iptables(ACCEPT_ESTABLISHED);
    for port in ports {
        let port = port.to_string();
        fw.iptables(&["-A", "INPUT", "-p", "tcp", "--dport", &port, "-j", "DROP"]);
    }
    fw
}

/// The commands of a door that opens `port` for the knocker (inserted before the drop
/// rule) and closes it again, as knockd's own example has them; the start command also
/// appends `open %IP%` to `@DIR@/events`.
fn door_commands(port: u16) -> String {
    let rule = format!("INPUT -s %IP% -p tcp --dport {port} -j ACCEPT");
    format!(
        "\tstart_command = /usr/sbin/iptables -w -I {rule} && echo open %IP% >> @DIR@/events\n\
         \tcmd_timeout = 30\n\
         \tstop_command = /usr/sbin/iptables -w -D {rule}\n"
    )
}

/// A door on 7001,7002,7003 that opens `port` for the knocker.
fn door(port: u16) -> String {
    door_named("ssh", "7001,7002,7003", port)
}

fn door_named(name: &str, sequence: &str, port: u16) -> String {
    format!(
        "[{name}]\n\tsequence = {sequence}\n\tseq_timeout = 5\n{}",
        door_commands(port)
    )
}

/// Bytes that compress badly and differ from run to run of nothing (xorshift).
fn payload(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn sha256(path: &Path) -> String {
    let out = check(Command::new("sha256sum").arg(path).stdin(Stdio::null()));
    out.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// `ssh ssh-home echo ok`, then an upload and a download of 6 MB with scp, all through the
/// ProxyCommand, against the door `server` keeps; each run knocks, so the door opens three
/// times.
fn ssh_and_scp(pair: &Pair, server: &impl Server, sshd: &Sshd) {
    let config = sshd.client_config("ssh-home", PROXY_COMMAND);
    let profiles = sshd.dir().join("profiles");
    std::fs::create_dir(&profiles).unwrap();
    std::fs::write(
        profiles.join("ssh-home.toml"),
        format!("host = \"{SERVER_V4}\"\nsequence = \"7001,7002,7003\"\n"),
    )
    .unwrap();
    let ssh = |program: &str| sshd.client(pair, program, &config, &profiles);

    let out = ssh(SSH).args(["ssh-home", "echo", "ok"]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok\n",
        "ssh: {}\n{}\nsshd:\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        sshd.log(),
        server.output()
    );
    assert!(out.status.success());
    assert_eq!(server.wait_events(1, WAIT), [format!("open {CLIENT_V4}")]);

    let d = sshd.dir();
    let file = d.join("payload");
    std::fs::write(&file, payload(6 << 20)).unwrap();
    let remote = |name: &str| format!("ssh-home:{}", d.join(name).display());
    check(ssh(SCP).arg(&file).arg(remote("uploaded")));
    check(ssh(SCP).arg(remote("uploaded")).arg(d.join("downloaded")));
    let want = sha256(&file);
    assert_eq!(sha256(&d.join("uploaded")), want, "the upload changed");
    assert_eq!(sha256(&d.join("downloaded")), want, "the download changed");
    assert_eq!(server.wait_events(3, WAIT).len(), 3, "{}", server.output());
}

netns_test!(
    ssh_and_scp_through_the_proxy_command_with_knockd_lite,
    [Need::Ssh],
    |pair| {
        let _fw = guard_ports(&pair, &[22]);
        let lite = KnockdLite::start(&pair, &door(22), &[]);
        let sshd = Sshd::start(&pair, 22);
        // Without the knock the port is closed: a wrong knock leaves it so.
        let err = pair.knock_fails(
            &["--wait", "22", "--wait-timeout", "0.5", SERVER_V4, "7003"],
            1,
        );
        assert!(err.contains("door still closed after 3 knocks"), "{err}");
        ssh_and_scp(&pair, &lite, &sshd);
    }
);

netns_test!(
    ssh_and_scp_through_the_proxy_command_with_knockd,
    [Need::Knockd, Need::Ssh],
    |pair| {
        let _fw = guard_ports(&pair, &[22]);
        let knockd = Knockd::start(&pair, &door(22));
        let sshd = Sshd::start(&pair, 22);
        ssh_and_scp(&pair, &knockd, &sshd);
    }
);

/// `knock -v --wait PORT SERVER 7001,7002,7003 ARGS...`: its exit code, stdout and stderr.
fn wait(pair: &Pair, port: u16, args: &[&str]) -> (Option<i32>, String, String) {
    let port = port.to_string();
    let mut line = vec!["-v", "--wait", port.as_str()];
    line.extend_from_slice(args);
    line.extend_from_slice(&[SERVER_V4, "7001,7002,7003"]);
    let start = Instant::now();
    let out = pair.knock_cmd(&line).output().unwrap();
    eprintln!("knock {line:?}: {:?} in {:?}", out.status, start.elapsed());
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `-v` lines of knocks sent again (`192.0.2.2:2222 still closed after 0.5 s: knocking
/// again (2 of 2)`; the time is when the try ended, a little after the turn on a busy
/// machine).
fn reknocks(out: &str) -> usize {
    out.lines()
        .filter(|l| {
            l.starts_with("192.0.2.2:2222 still closed after ")
                && l.ends_with(" s: knocking again (2 of 2)")
        })
        .count()
}

netns_test!(wait_exits_0_once_the_door_opens, |pair| {
    let _fw = guard_ports(&pair, &[2222]);
    let _service = Service::start(&pair.server, 2222);
    let lite = KnockdLite::start(&pair, &door(2222), &[]);
    let (code, out, err) = wait(&pair, 2222, &[]);
    assert_eq!((code, err.as_str()), (Some(0), ""), "{}", lite.output());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "hitting tcp 192.0.2.2:7001",
            "hitting tcp 192.0.2.2:7002",
            "hitting tcp 192.0.2.2:7003"
        ]
    );
    assert!(
        lines[3].starts_with("door open after 1 knock and ")
            && lines[3].ends_with(" s: 192.0.2.2:2222"),
        "{out}"
    );
    assert_eq!(lines.len(), 4, "{out}");
    assert_eq!(lite.events(), [format!("open {CLIENT_V4}")]);
});

netns_test!(wait_exits_1_when_no_server_runs, |pair| {
    let _fw = guard_ports(&pair, &[2222]);
    let _service = Service::start(&pair.server, 2222);
    let (code, out, err) = wait(&pair, 2222, &["--wait-timeout", "1", "--retries", "1"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert_eq!(
        err,
        "knock: door still closed after 2 knocks and 1 s: 192.0.2.2:2222 (last try: no answer)\n"
    );
    // Both knocks are on stdout (-v), and the re-knock halfway.
    assert_eq!(
        out.matches("hitting tcp 192.0.2.2:7001\n").count(),
        2,
        "{out}"
    );
    assert_eq!(reknocks(&out), 1, "{out}");
});

netns_test!(wait_exits_1_when_the_door_never_opens, |pair| {
    let _fw = guard_ports(&pair, &[2222]);
    let _service = Service::start(&pair.server, 2222);
    // The door hears every knock but opens nothing.
    let lite = KnockdLite::start(
        &pair,
        "[deaf]\n\tsequence = 7001,7002,7003\n\tseq_timeout = 5\n\
         \tcommand = echo knocked %IP% >> @DIR@/events\n",
        &[],
    );
    let (code, _, err) = wait(&pair, 2222, &["--wait-timeout", "1.5"]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        err,
        "knock: door still closed after 3 knocks and 1.5 s: 192.0.2.2:2222 (last try: no answer)\n"
    );
    // Every knock reached the server whole.
    assert_eq!(lite.wait_events(3, WAIT).len(), 3, "{}", lite.output());
});

/// Drops the first TCP packet to 7001 that leaves the client, once: the first knock loses
/// its first hit before the server can see it (both servers capture ahead of their own
/// firewall, so the drop has to happen on the client's way out).
fn lose_the_first_hit(pair: &Pair) -> Firewall {
    let fw = Firewall::client(pair);
    for (rule, target) in [("--rcheck", "ACCEPT"), ("--set", "DROP")] {
        fw.iptables(&[
            "-A", "OUTPUT", "-p", "tcp", "--dport", "7001", "-m", "recent", "--name", "lost", rule,
            "-j", target,
        ]);
    }
    fw
}

/// How many packets the client's drop rule took.
fn dropped(fw: &Firewall) -> u64 {
    let rules = fw.iptables(&["-L", "OUTPUT", "-v", "-x", "-n"]);
    rules
        .lines()
        .find(|l| l.contains("DROP"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no drop rule:\n{rules}"))
}

fn a_lost_hit_is_recovered(pair: &Pair, server: &impl Server) {
    let client_fw = lose_the_first_hit(pair);
    let (code, out, err) = wait(pair, 2222, &["--wait-timeout", "10", "--retries", "1"]);
    assert_eq!(
        (code, err.as_str()),
        (Some(0), ""),
        "{out}\n{}",
        server.output()
    );
    assert_eq!(reknocks(&out), 1, "{out}");
    assert!(out.contains("door open after 2 knocks and "), "{out}");
    assert_eq!(dropped(&client_fw), 1);
    assert_eq!(server.events(), [format!("open {CLIENT_V4}")]);
}

netns_test!(
    a_lost_hit_is_recovered_by_the_reknock_with_knockd_lite,
    |pair| {
        let _fw = guard_ports(&pair, &[2222]);
        let _service = Service::start(&pair.server, 2222);
        let lite = KnockdLite::start(&pair, &door(2222), &[]);
        a_lost_hit_is_recovered(&pair, &lite);
    }
);

netns_test!(
    a_lost_hit_is_recovered_by_the_reknock_with_knockd,
    [Need::Knockd],
    |pair| {
        let _fw = guard_ports(&pair, &[2222]);
        let _service = Service::start(&pair.server, 2222);
        let knockd = Knockd::start(&pair, &door(2222));
        a_lost_hit_is_recovered(&pair, &knockd);
    }
);

/// `knock --proxy PORT SERVER 7001` in the client namespace, stdin, stdout and stderr
/// piped; returns it and its stdin.
fn spawn_proxy(pair: &Pair, port: u16) -> (std::process::Child, std::process::ChildStdin) {
    let mut knock = pair
        .knock_cmd(&["--proxy", &port.to_string(), SERVER_V4, "7001"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = knock.stdin.take().unwrap();
    (knock, stdin)
}

netns_test!(proxy_passes_each_end_on, |pair| {
    // The far end speaks first and ends its side: stdout ends while stdin is still open,
    // and what is typed after that still arrives.
    let service = OneShot::start(&pair.server, 2223, Ends::BannerFirst);
    let (mut knock, mut stdin) = spawn_proxy(&pair, 2223);
    let mut banner = String::new();
    knock
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut banner)
        .unwrap();
    assert_eq!(banner, "banner\n");
    assert!(
        knock.try_wait().unwrap().is_none(),
        "knock ended with stdout"
    );
    stdin.write_all(b"typed after the far end\n").unwrap();
    drop(stdin);
    assert_eq!(service.got(WAIT), b"typed after the far end\n");
    let out = knock.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");

    // The near end finishes first: stdin's end reaches the far end, which then answers.
    let service = OneShot::start(&pair.server, 2224, Ends::ReplyAtEnd);
    let data = payload(1 << 20);
    let (knock, mut stdin) = spawn_proxy(&pair, 2224);
    let feeder = {
        let data = data.clone();
        thread::spawn(move || stdin.write_all(&data))
    };
    let out = knock.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    let stdout = expect_quiet("knock --proxy 2224", &out);
    assert_eq!(stdout, format!("got {}\n", data.len()));
    assert!(service.got(WAIT) == data, "the bytes arrived changed");
});

/// Usage errors need no namespace: the command line is refused before any lookup.
#[test]
fn bad_waits_and_proxies_exit_2() {
    let table: &[(&[&str], &str)] = &[
        (
            &["--proxy", "0"],
            "invalid value '0' for '--proxy <PORT>': 0 is not a port",
        ),
        (
            &["--proxy", "70000"],
            "invalid value '70000' for '--proxy <PORT>': 70000 is not a port",
        ),
        (
            &["--proxy", "abc"],
            "invalid value 'abc' for '--proxy <PORT>': \"abc\" is not a port number",
        ),
        (
            &["--wait", "22", "--proxy", "22"],
            "the argument '--wait <PORT>' cannot be used with '--proxy <PORT>'",
        ),
        (
            &["--wait", "22", "--wait-timeout", "0"],
            "invalid value '0' for '--wait-timeout <SECONDS>': 0 is not more than 0 seconds",
        ),
    ];
    for (options, message) in table {
        let mut cmd = Command::new(bin("knock"));
        cmd.args(*options)
            .args([SERVER_V4, "7001"])
            .stdin(Stdio::null());
        let out = cmd.output().unwrap();
        let err = expect_exit(&format!("{cmd:?}"), &out, 2);
        assert!(err.contains(message), "{options:?}: {err}");
    }
}

netns_test!(
    knock_exe_waits_and_proxies_under_wine,
    [Need::Wine],
    |pair| {
        let _fw = guard_ports(&pair, &[2222, 2224]);
        let _accept = Service::start(&pair.server, 2222);
        let reply = OneShot::start(&pair.server, 2224, Ends::ReplyAtEnd);
        let doors = format!(
            "{}{}",
            door_named("wait", "7001,7002,7003", 2222),
            door_named("proxy", "7101,7102,7103", 2224)
        );
        let lite = KnockdLite::start(&pair, &doors, &[]);
        let host = WineHost::new(&pair);

        let args = ["-v", "--wait", "2222", SERVER_V4, "7001,7002,7003"];
        let out = host.run(&mut host.knock_cmd(&args));
        let stdout = expect_quiet("knock.exe --wait", &out);
        assert!(
            stdout.contains("door open after 1 knock and "),
            "{stdout}\n{}",
            lite.output()
        );

        // stdin from a pipe, as ssh gives it; stdout to a file (Wine's service processes
        // would hold a pipe open).
        let scratch = TempDir::new("wine-proxy");
        let data = payload(300_000);
        let input = scratch.path().join("input");
        std::fs::write(&input, &data).unwrap();
        let mut cat = Command::new("cat")
            .arg(&input)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut cmd = host.knock_cmd(&["--proxy", "2224", SERVER_V4, "7101,7102,7103"]);
        cmd.stdin(cat.stdout.take().unwrap());
        let out = host.run(&mut cmd);
        cat.wait().unwrap();
        let stdout = expect_quiet("knock.exe --proxy", &out);
        assert_eq!(stdout, format!("got {}\n", data.len()), "{}", lite.output());
        assert!(reply.got(WAIT) == data, "the bytes arrived changed");
        assert_eq!(lite.wait_events(2, WAIT).len(), 2);
    }
);
