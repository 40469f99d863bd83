//! The example profiles shipped in `profiles/` parse, and mean what their comments say.

use std::path::{Path, PathBuf};

use knock_core::hit::{Hit, Proto, TcpFlags, format_sequence};
use knock_core::hmac::{PortRange, Protocols};
use knock_core::otp::file::{consume, peek};
use knock_core::profile::store::Store;
use knock_core::profile::{Family, Kind, Knock, Overrides, Profile, parse_file};
use knock_core::secret::Secret;
use knock_core::secret::source::SecretSource;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles")
}

fn example(name: &str) -> Profile {
    let path = examples_dir().join(format!("{name}.toml"));
    parse_file(&path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_example_is_listed_and_parses() {
    let entries = Store::new(examples_dir()).list().unwrap();
    let listed: Vec<(&str, Kind)> = entries
        .iter()
        .map(|e| {
            let p = e.profile.as_ref().unwrap_or_else(|err| panic!("{err}"));
            (e.name.as_str(), p.kind())
        })
        .collect();
    // A new example needs a test below; this list makes sure it gets one.
    assert_eq!(
        listed,
        [
            ("flags-demo", Kind::Fixed),
            ("office-hmac", Kind::Hmac),
            ("ssh-home", Kind::Fixed),
            ("vpn-once", Kind::OneTime),
        ]
    );
}

#[test]
fn ssh_home_is_a_plain_sequence() {
    let p = example("ssh-home");
    let s = p.settings(&Overrides::default()).unwrap();
    assert_eq!(
        (s.host.as_str(), s.delay_ms, s.family, s.raw),
        ("home.example.net", 100, Family::Any, false)
    );
    assert_eq!(p.open_port, Some(22));
    let Knock::Fixed(seq) = &p.knock else {
        panic!("{p:?}")
    };
    let hits = seq.hits(s.default_proto());
    assert_eq!(hits, [Hit::tcp(7000), Hit::udp(8000), Hit::tcp(9000)]);
    assert!(hits.iter().all(|h| !h.needs_raw()));
}

#[test]
fn flags_demo_knocks_with_exact_flags_over_raw_sockets() {
    let p = example("flags-demo");
    let s = p.settings(&Overrides::default()).unwrap();
    assert_eq!((s.host.as_str(), s.raw), ("192.0.2.20", true));
    let Knock::Fixed(seq) = &p.knock else {
        panic!("{p:?}")
    };
    assert_eq!(
        seq.hits(Proto::Tcp),
        [
            Hit::tcp_flags(110, TcpFlags::ALL_SIX),
            Hit::tcp_flags(110, TcpFlags::URG | TcpFlags::PSH),
            Hit::tcp_flags(110, TcpFlags::NONE),
        ]
    );
    assert!(seq.hits(Proto::Tcp).iter().all(Hit::needs_raw));
}

#[test]
fn vpn_once_points_at_its_example_list() {
    let p = example("vpn-once");
    assert_eq!(p.host.as_deref(), Some("vpn.example.net"));
    let Knock::OneTime(list) = &p.knock else {
        panic!("{p:?}")
    };
    assert_eq!(list.path, Path::new("vpn-once.otp"));
    assert_eq!(list.resolved, examples_dir().join("vpn-once.otp"));
    let text = std::fs::read_to_string(&list.resolved).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 6);
    assert!(lines.iter().all(|l| l.starts_with(' ')), "{text}");
    let first = peek(&list.resolved).unwrap();
    assert_eq!(first.hits.len(), 4);

    // Consuming a copy uses its first sequence and marks it.
    let dir = std::env::temp_dir().join(format!("knock-core-examples-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("vpn-once.otp");
    std::fs::copy(&list.resolved, &copy).unwrap();
    let used = consume(&copy, |line| Ok::<_, ()>(format_sequence(&line.hits))).unwrap();
    assert_eq!(used.value, format_sequence(&first.hits));
    assert_eq!(used.remaining, 5);
    let after = std::fs::read_to_string(&copy).unwrap();
    assert_eq!(after.lines().filter(|l| l.starts_with('#')).count(), 4);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn office_hmac_reads_its_secret_from_the_environment() {
    let p = example("office-hmac");
    assert_eq!(p.family, Some(Family::Ipv6));
    let Knock::Hmac(h) = &p.knock else {
        panic!("{p:?}")
    };
    assert_eq!(
        h.secret.source(),
        SecretSource::Env("KNOCK_OFFICE_SECRET".into())
    );
    assert_eq!(h.params.door, "office-ssh");
    assert_eq!(
        (
            h.params.length,
            h.params.ports,
            h.params.protocols,
            h.params.step
        ),
        (
            4,
            PortRange {
                lo: 1024,
                hi: 65535
            },
            Protocols::Mixed,
            30
        )
    );
    let hits = h
        .params
        .derive_at(&Secret::from_text("example only"), 1_700_000_000)
        .unwrap();
    assert_eq!(hits.len(), 4);
    assert!(hits.iter().all(|h| h.port >= 1024));
    // The profile never holds a secret, so show has none to print.
    let shown = p.show("office-hmac", Path::new("office-hmac.toml"), &[]);
    assert!(
        shown.contains("\nhmac.secret_env  KNOCK_OFFICE_SECRET\n"),
        "{shown}"
    );
}
