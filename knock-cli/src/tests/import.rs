//! Whole runs of `knock profile import`: one profile per door of a knockd.conf, and the
//! profiles knock as the doors expect.

use super::{Scratch, World, ip, sent, toml_str};
use knock_core::hit::{Hit, Proto, parse_sequence};

const CONF: &str = "\
[options]
    logfile = /var/log/knockd.log

[ssh]
    sequence = 7000,8000:udp,9000
    seq_timeout = 5
    command = /bin/true

[finonly]
    sequence = 1111,2222:udp
    tcpflags = fin,!syn
    command = /bin/true

[vpn]
    one_time_sequences = lists/vpn.otp
    command = /bin/true

[office]
    target = 192.0.2.9
    HMAC_Secret_File = office.secret
    HMAC_Length = 5
    HMAC_Ports = 2000-2999
    HMAC_Protocols = mixed
    HMAC_Step = 60
    HMAC_Skew = 2
    start_command = /bin/true
";

/// A knockd.conf with its one-time list beside it, and an empty profile directory.
struct Setup {
    server: Scratch,
    profiles: Scratch,
}

impl Setup {
    fn new(tag: &str) -> Setup {
        let server = Scratch::new(&format!("{tag}-server"));
        std::fs::create_dir(server.join("lists")).unwrap();
        std::fs::write(server.join("knockd.conf"), CONF).unwrap();
        std::fs::write(server.join("lists/vpn.otp"), " 1001,1002:udp\n 2001\n").unwrap();
        Setup {
            server,
            profiles: Scratch::new(&format!("{tag}-profiles")),
        }
    }

    fn run(&self, args: &[&str]) -> super::Outcome {
        let dir = self.profiles.arg("");
        let mut line = vec!["profile", "--profiles", dir.as_str()];
        line.extend_from_slice(args);
        World::default().run(&line)
    }

    fn conf(&self) -> String {
        self.server.arg("knockd.conf")
    }

    fn profile(&self, name: &str) -> String {
        std::fs::read_to_string(self.profiles.join(name)).unwrap()
    }
}

#[test]
fn every_kind_of_door_becomes_a_profile() {
    let s = Setup::new("import");
    let conf = s.conf();
    let o = s.run(&["import", &conf, "--host", "192.0.2.2"]);
    assert_eq!(o.code, 0, "{}", o.err);
    let p = |name: &str| {
        s.profiles
            .join(&format!("{name}.toml"))
            .display()
            .to_string()
    };
    assert_eq!(
        o.out,
        format!(
            "door [ssh] -> profile ssh (sequence): {}\n\
             door [finonly] -> profile finonly (sequence): {}\n\
             door [vpn] -> profile vpn (one-time): {}\n\
             door [office] -> profile office (hmac): {}\n",
            p("ssh"),
            p("finonly"),
            p("vpn"),
            p("office")
        )
    );
    let list = s.server.join("lists/vpn.otp");
    let secret = s.server.join("office.secret");
    assert_eq!(
        o.err,
        format!(
            "knock: note: profile finonly: TCP hits carry the flags fin that the door's \
             TCPFlags (fin,!syn) asks for; they go out through a raw socket, which needs \
             privileges\n\
             knock: note: profile vpn: its one-time list is a copy of {}: knock and the \
             server each mark their own copy, so both must start from the same lines\n\
             knock: note: profile office: the secret is read from {} (the door's \
             HMAC_Secret_File), which must be readable by you alone\n",
            list.display(),
            secret.display()
        )
    );
    let described = |door: &str| {
        format!(
            "description = {}\n",
            toml_str(&format!("knockd door [{door}] of {conf}"))
        )
    };
    assert_eq!(
        s.profile("ssh.toml"),
        format!(
            "{}host = \"192.0.2.2\"\nsequence = \"7000:tcp,8000:udp,9000:tcp\"\n",
            described("ssh")
        )
    );
    assert_eq!(
        s.profile("finonly.toml"),
        format!(
            "{}host = \"192.0.2.2\"\nsequence = \"1111:tcp:fin,2222:udp\"\n",
            described("finonly")
        )
    );
    assert_eq!(
        s.profile("vpn.toml"),
        format!(
            "{}host = \"192.0.2.2\"\none_time_sequences = \"vpn.otp\"\n",
            described("vpn")
        )
    );
    assert_eq!(s.profile("vpn.otp"), " 1001,1002:udp\n 2001\n");
    assert_eq!(
        s.profile("office.toml"),
        format!(
            "{}host = \"192.0.2.2\"\n\n[hmac]\ndoor = \"office\"\nsecret_file = {}\n\
             length = 5\nports = \"2000-2999\"\nprotocols = \"mixed\"\nstep = 60\n",
            described("office"),
            toml_str(&secret.display().to_string())
        )
    );

    // The imported profiles knock as the doors expect.
    let o = s.run(&["ssh"]);
    assert_eq!(o.code, 0, "{}", o.err);
    let a = ip("192.0.2.2");
    let hits = parse_sequence("7000,8000:udp,9000", Proto::Tcp).unwrap();
    assert_eq!(
        sent(&o.events),
        hits.iter().map(|h| (*h, a)).collect::<Vec<_>>()
    );
    // The one-time profile uses its own copy; the server's list is untouched.
    let o = s.run(&["vpn"]);
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(sent(&o.events), [(Hit::tcp(1001), a), (Hit::udp(1002), a)]);
    assert_eq!(s.profile("vpn.otp"), "#1001,1002:udp\n 2001\n");
    assert_eq!(
        std::fs::read_to_string(&list).unwrap(),
        " 1001,1002:udp\n 2001\n"
    );
}

#[test]
fn the_host_defaults_to_the_doors_target() {
    let s = Setup::new("import-target");
    let o = s.run(&["import", &s.conf()]);
    assert_eq!(o.code, 0, "{}", o.err);
    assert!(
        s.profile("office.toml")
            .contains("\nhost = \"192.0.2.9\"\n")
    );
    assert!(!s.profile("ssh.toml").contains("host"));
    assert!(
        o.err.contains(
            "knock: note: profile ssh: no host: give one with --host when knocking, or add \
             host = \"...\" to the profile\n"
        ),
        "{}",
        o.err
    );
}

#[test]
fn existing_profiles_are_kept_without_force() {
    let s = Setup::new("import-force");
    std::fs::write(
        s.profiles.join("ssh.toml"),
        "host = \"192.0.2.7\"\nsequence = \"1\"\n",
    )
    .unwrap();
    let o = s.run(&["import", &s.conf(), "--host", "192.0.2.2"]);
    assert_eq!(o.code, 2);
    assert_eq!(
        o.err.lines().last().unwrap(),
        format!(
            "knock: door [ssh] not imported: profile \"ssh\" already exists ({}); use \
             --force to replace it",
            s.profiles.join("ssh.toml").display()
        )
    );
    // The other doors were imported, and ssh kept.
    assert!(
        o.out.contains("door [office] -> profile office (hmac)"),
        "{}",
        o.out
    );
    assert!(!o.out.contains("door [ssh]"), "{}", o.out);
    assert_eq!(
        s.profile("ssh.toml"),
        "host = \"192.0.2.7\"\nsequence = \"1\"\n"
    );
    let o = s.run(&["import", &s.conf(), "--host", "192.0.2.2", "--force"]);
    assert_eq!(o.code, 0, "{}", o.err);
    assert!(s.profile("ssh.toml").contains("7000:tcp"));
}

#[test]
fn import_errors() {
    let s = Setup::new("import-errors");
    let bad = s.server.join("bad.conf");
    std::fs::write(&bad, "[door]\n    sequence = 7000,abc\n").unwrap();
    let o = s.run(&["import", &bad.display().to_string()]);
    assert_eq!(o.code, 2);
    assert!(
        o.err.starts_with(&format!("knock: {}:2: ", bad.display())),
        "{}",
        o.err
    );
    let empty = s.server.join("empty.conf");
    std::fs::write(&empty, "[options]\n    logfile = /tmp/l\n").unwrap();
    let o = s.run(&["import", &empty.display().to_string()]);
    assert_eq!(
        (o.code, o.err.clone()),
        (
            2,
            format!("knock: {} has no doors to import\n", empty.display())
        )
    );
    let missing = s.server.join("missing.conf");
    let o = s.run(&["import", &missing.display().to_string()]);
    assert_eq!(o.code, 1);
    assert!(
        o.err
            .starts_with(&format!("knock: read {}: ", missing.display())),
        "{}",
        o.err
    );
    // A door whose name cannot name a profile is reported; the others are imported.
    let reserved = s.server.join("reserved.conf");
    std::fs::write(
        &reserved,
        "[list]\n    sequence = 1\n[ok]\n    sequence = 2\n",
    )
    .unwrap();
    let o = s.run(&["import", &reserved.display().to_string()]);
    assert_eq!(o.code, 2);
    assert_eq!(
        o.err,
        "knock: note: profile ok: no host: give one with --host when knocking, or add \
         host = \"...\" to the profile\n\
         knock: door [list] not imported: profile name \"list\" is reserved (list, show, \
         save, remove, import and help are profile subcommands)\n"
    );
    assert!(s.profiles.join("ok.toml").exists());
    // A one-time door whose list is missing.
    std::fs::remove_file(s.server.join("lists/vpn.otp")).unwrap();
    let o = s.run(&["import", &s.conf(), "--force"]);
    assert_eq!(o.code, 1);
    assert!(
        o.err.contains(&format!(
            "knock: door [vpn] not imported: read one-time list {}: ",
            s.server.join("lists/vpn.otp").display()
        )),
        "{}",
        o.err
    );
}

/// A tportknockd config imports too: each event becomes a profile whose frames keep their
/// exact flags.
#[test]
fn tportknockd_events_become_profiles() {
    let s = Setup::new("import-tport");
    let conf = s.server.join("tportknockd.conf");
    std::fs::write(
        &conf,
        "# flag knocking\n<SSH>\n  sequence = tcp:110:s tcp:110:up udp:53 tcp:110\n  timeout = 10\n\
         \x20 start_command = /bin/true %IP%\n</SSH>\n",
    )
    .unwrap();
    let conf = conf.display().to_string();
    let o = s.run(&["import", &conf, "--host", "192.0.2.2"]);
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(
        o.out,
        format!(
            "door [SSH] -> profile SSH (sequence): {}\n",
            s.profiles.join("SSH.toml").display()
        )
    );
    assert_eq!(
        s.profile("SSH.toml"),
        format!(
            "description = {}\nhost = \"192.0.2.2\"\n\
             sequence = \"110:tcp:syn,110:tcp:psh+urg,53:udp,110:tcp:none\"\n",
            toml_str(&format!("tportknockd event <SSH> of {conf}"))
        )
    );
}

/// Two doors with one name: the first is imported under that name, the second is
/// reported (a profile is named after its door), even with --force.
#[test]
fn doors_with_the_same_name_import_once() {
    let s = Setup::new("import-same-name");
    let conf = s.server.join("twice.conf");
    std::fs::write(
        &conf,
        "[ssh]\nsequence = 7000,8000\n[ssh]\nsequence = 9000\n",
    )
    .unwrap();
    let conf = conf.display().to_string();
    let o = s.run(&["import", &conf, "--host", "192.0.2.2", "--force"]);
    assert_eq!(o.code, 2);
    assert_eq!(
        o.err,
        format!(
            "knock: door [ssh] not imported: it has the same name as the door on line 1 of \
             {conf}, which is imported as profile ssh; rename it there to import it too\n"
        )
    );
    assert!(s.profile("ssh.toml").contains("7000:tcp,8000:tcp"));
}
