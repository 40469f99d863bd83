//! knockd-lite's privilege separation, end to end (issue 17): the process that reads the
//! packets is the sandboxed worker (no root id, no capability, no_new_privs, seccomp), it
//! never holds a file while knocks come in, and a worker killed for a forbidden system call
//! is logged, replaced, and the next knock opens the door. (Every other end-to-end test
//! runs with the sandbox on too: it is the default. The firewall tests prove doors open
//! through real iptables and nftables that way.)

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use knock_e2e::lite::{KnockdLite, sandbox_test_bin, worker_of};
use knock_e2e::{SERVER_V4, Server, TempDir, WAIT, netns_test};

const DOOR: &str = "[door]
\tsequence = 7101,7102:udp,7103
\tstart_command = echo door %IP% >> @DIR@/events
";

/// The inodes of the packet sockets in the network namespace of `pid`
/// (`/proc/PID/net/packet` is that namespace's list; the inode is its last column).
fn packet_inodes(pid: u32) -> BTreeSet<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/packet")).unwrap();
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().last()?.parse().ok())
        .collect()
}

/// Every process with a descriptor on one of `inodes` (`/proc/*/fd/* -> socket:[INODE]`).
fn holders(inodes: &BTreeSet<u64>) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.to_string_lossy().to_string();
            let inode = target
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<u64>().ok());
            if inode.is_some_and(|i| inodes.contains(&i)) {
                out.insert(pid);
            }
        }
    }
    out
}

/// The value of `name` in `/proc/PID/status`.
fn status_field(pid: u32, name: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} in\n{status}"))
        .trim()
        .to_string()
}

/// The regular files among `pid`'s open descriptors (a path and what it is).
fn regular_files(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return out;
    };
    for fd in fds.flatten() {
        // metadata() follows the link to the open file itself.
        if std::fs::metadata(fd.path()).is_ok_and(|m| m.is_file()) {
            let target = std::fs::read_link(fd.path()).unwrap_or_default();
            out.push(format!("{} -> {}", fd.path().display(), target.display()));
        }
    }
    out
}

netns_test!(
    the_packet_socket_is_read_by_a_worker_without_privilege_or_files,
    |pair| {
        let lite = KnockdLite::start(&pair, DOOR, &[]);
        let monitor = lite.pid();
        let inodes = packet_inodes(monitor);
        assert!(!inodes.is_empty(), "no packet socket in the namespace");
        let worker = worker_of(monitor).expect("a knockd-worker child");
        // The worker reads the socket; the monitor, which opened it, keeps a copy only to
        // change the kernel filter at a reload. Nobody else has it.
        assert_eq!(
            holders(&inodes),
            BTreeSet::from([monitor, worker]),
            "{}",
            lite.output()
        );
        for ids in ["Uid", "Gid"] {
            let values = status_field(worker, ids);
            assert!(
                values.split_whitespace().all(|v| v != "0"),
                "{ids}: {values}"
            );
        }
        for caps in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(status_field(worker, caps), "0000000000000000", "{caps}");
        }
        assert_eq!(status_field(worker, "NoNewPrivs"), "1");
        assert_eq!(status_field(worker, "Seccomp"), "2");
        // Over a run of knocks the worker never holds a file.
        for i in 1..=5 {
            pair.knock(&[SERVER_V4, "7101,7102:udp,7103"]);
            assert_eq!(lite.wait_events(i, WAIT).len(), i);
            assert_eq!(regular_files(worker), Vec::<String>::new());
        }
        // Still the same worker: nothing killed it.
        assert_eq!(worker_of(monitor), Some(worker));
        let log = lite.log();
        assert!(log.contains("] sandbox: Landlock"), "{log}");
    }
);

netns_test!(
    a_forbidden_call_kills_the_worker_and_the_next_one_opens_the_door,
    |pair| {
        let Some(program) = sandbox_test_bin() else {
            let why = "knockd-lite with the sandbox-test feature is not built \
                       (.ci/test builds it into target/sandbox-test)";
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{why}");
            }
            eprintln!("SKIP: {why}");
            return;
        };
        // The trap is a door of its own, so its port passes the capture filter.
        let doors = format!("{DOOR}[trap]\n\tsequence = 7999:udp\n\tstart_command = true\n");
        let env = [(
            "KNOCKD_LITE_TEST_FORBIDDEN_UDP_PORT".to_string(),
            "7999".to_string(),
        )];
        let lite = KnockdLite::start_program(
            &pair,
            TempDir::new("lite-trap"),
            &doors,
            &[],
            &env,
            &program,
        );
        let first = worker_of(lite.pid()).expect("a worker");
        pair.knock(&[SERVER_V4, "7999:udp"]);
        lite.wait_log(
            &format!(
                "] worker (pid {first}) killed by signal SIGSYS (a system call outside its \
                 allow-list): attempts in progress are lost; a new worker starts now"
            ),
            1,
            WAIT,
        );
        // A new worker, sandboxed like the first: it enters the sandbox once it holds its
        // capture socket, so from then on a knock is seen.
        let deadline = Instant::now() + WAIT;
        let second = loop {
            if let Some(w) = worker_of(lite.pid()).filter(|&w| w != first)
                && std::fs::read_to_string(format!("/proc/{w}/status"))
                    .is_ok_and(|s| s.contains("Seccomp:\t2"))
            {
                break w;
            }
            assert!(
                Instant::now() < deadline,
                "no new worker\n{}",
                lite.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        pair.knock(&[SERVER_V4, "7101,7102:udp,7103"]);
        assert_eq!(
            lite.wait_events(1, WAIT),
            ["door 192.0.2.1"],
            "{}",
            lite.output()
        );
        assert_eq!(worker_of(lite.pid()), Some(second));
    }
);
