//! What `knock` tells a person at a terminal, and a script: Ctrl-C in the middle of a slow
//! knock (a real SIGINT, and a Ctrl-C typed on a terminal under the progress bar), the line
//! a finished interactive knock leaves, and a source port it may not bind found out before
//! anything is sent.

use std::process::Stdio;
use std::time::Duration;

use knock_e2e::capture::{Capture, Record, show};
use knock_e2e::terminal::answer_prompt;
use knock_e2e::{SERVER_V4, WAIT, bin, check_exit, netns_test};

/// The server's ports that knock's packets went to, in order.
fn ports(records: &[Record]) -> Vec<u16> {
    records
        .iter()
        .filter(|r| r.is_client_to_server())
        .filter_map(|r| r.dport)
        .collect()
}

netns_test!(sigint_between_hits_stops_the_knock_with_exit_130, |pair| {
    let capture = Capture::start(&pair, &["tcp"]);
    let mut cmd = pair.knock_cmd(&["-d", "5000", SERVER_V4, "7000", "7001", "7002"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    // `ip netns exec` execs knock, so the child is knock itself.
    let child = cmd.spawn().expect("spawn knock");
    capture.wait_for(1, WAIT, Record::is_client_to_server);
    // SAFETY: kill() with the pid of a child we spawned and have not waited for.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(rc, 0);
    let out = child.wait_with_output().expect("wait for knock");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert_eq!(stderr, "knock: interrupted after hit 1 of 3\n");
    std::thread::sleep(Duration::from_millis(300));
    let all = capture.stop();
    assert_eq!(ports(&all), [7000], "{}", show(&all));
});

netns_test!(ctrl_c_on_a_terminal_erases_the_bar_first, |pair| {
    // Typed one second after the bar shows the first hit sent, well inside the delay.
    let cmd = pair.knock_cmd(&["-d", "5000", SERVER_V4, "7000", "7001", "7002"]);
    let t = answer_prompt(&cmd, "1/3 hits", "\x03");
    assert_eq!(t.code, Some(130), "{}", t.text);
    let message = "knock: interrupted after hit 1 of 3";
    assert!(
        t.text.contains("knock 192.0.2.2 ["),
        "no bar drawn: {}",
        t.text
    );
    // The bar's line is cleared (indicatif: carriage return, erase line) before the message,
    // so the message starts on an empty line.
    let at = t.raw.find(message).unwrap_or_else(|| panic!("{:?}", t.raw));
    assert!(t.raw[..at].ends_with("\r\x1b[2K"), "{:?}", t.raw);
    assert!(t.text.ends_with(&format!("{message}\n")), "{:?}", t.text);
});

netns_test!(a_finished_interactive_knock_leaves_one_line, |pair| {
    let capture = Capture::start(&pair, &["tcp", "or", "udp"]);
    let cmd = pair.knock_cmd(&["-d", "2500", SERVER_V4, "7000", "8001:udp"]);
    // Nothing is asked: Enter, typed while the bar waits, is not read.
    let t = answer_prompt(&cmd, "1/2 hits", "");
    assert_eq!(t.code, Some(0), "{}", t.text);
    let line = "knocked 192.0.2.2: 2 hits";
    let at = t.raw.find(line).unwrap_or_else(|| panic!("{:?}", t.raw));
    assert!(t.raw[..at].ends_with("\r\x1b[2K"), "{:?}", t.raw);
    assert!(t.text.ends_with(&format!("{line}\n")), "{:?}", t.text);
    capture.wait_for(2, WAIT, Record::is_client_to_server);
    let all = capture.stop();
    assert_eq!(ports(&all), [7000, 8001], "{}", show(&all));
    // -q: the same knock, silent.
    let cmd = pair.knock_cmd(&["-q", "-d", "2500", SERVER_V4, "7000", "8001:udp"]);
    let t = answer_prompt(&cmd, "", "");
    // Only the terminal's echo of the Enter typed.
    assert_eq!((t.code, t.text.as_str()), (Some(0), "\n"));
});

netns_test!(a_source_port_nobody_may_bind_sends_nothing, |pair| {
    let capture = Capture::start(&pair, &["tcp", "or", "udp"]);
    let mut cmd = pair.client_cmd("setpriv");
    cmd.args([
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
        "--",
    ])
    .arg(bin("knock"))
    .args(["--source-port", "80", SERVER_V4, "7000", "8001:udp"]);
    let err = check_exit(&mut cmd, 2);
    assert_eq!(
        err,
        "knock: --source-port: source port 80 cannot be bound: permission denied\n\
         knock: nothing was sent; to send from that port, run knock as root, or give it \
         CAP_NET_BIND_SERVICE once with `sudo setcap cap_net_bind_service+ep $(command -v \
         knock)`, or choose another --source-port (1024 or more needs no privileges)\n"
    );
    // A last hit marks the end: anything knock had sent would be before it.
    pair.knock(&[SERVER_V4, "7777"]);
    capture.wait_for(1, WAIT, |r| r.dport == Some(7777));
    let all = capture.stop();
    assert_eq!(ports(&all), [7777], "{}", show(&all));
});
