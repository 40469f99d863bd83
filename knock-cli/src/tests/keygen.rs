//! Whole runs of `knock keygen`: the secret, the door snippet and the profile snippet fit
//! together, and `--secret-file` keeps the secret off stdout.

use std::path::Path;

use knock_core::conf::{self, SequenceSource};
use knock_core::hmac::Protocols;
use knock_core::profile::{Knock, Profile, SecretRef, parse};
use knock_core::secret::Secret;

use super::{Scratch, World, toml_str};

/// The parts of keygen's output: the secret line (if printed), the door snippet, and the
/// profile snippet.
struct Parts {
    secret: Option<String>,
    door: String,
    profile: String,
}

fn split(out: &str) -> Parts {
    let secret = out
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .filter(|l| l.len() == 44)
        .map(str::to_string);
    let door: String = out
        .lines()
        .skip_while(|l| !l.starts_with('['))
        .take_while(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    let marker = "in the profile directory:\n";
    let profile = out[out.find(marker).expect(out) + marker.len()..].to_string();
    Parts {
        secret,
        door,
        profile,
    }
}

fn hmac_of(p: &Profile) -> &knock_core::profile::HmacKnock {
    match &p.knock {
        Knock::Hmac(h) => h,
        other => panic!("not hmac: {other:?}"),
    }
}

#[test]
fn keygen_prints_a_secret_a_door_and_a_profile_that_agree() {
    let o = World::default().run(&[
        "keygen",
        "--door",
        "web",
        "--host",
        "192.0.2.2",
        "--protocols",
        "mixed",
    ]);
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    let parts = split(&o.out);
    let secret = parts.secret.expect("the secret is printed");
    assert!(
        secret.ends_with('=')
            && secret
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"+/=".contains(&c)),
        "{secret}"
    );
    assert_eq!(o.out.matches(&secret).count(), 1, "printed once");

    // The door: a knockd.conf section named for the door, one `Key = value` per line.
    let lines: Vec<&str> = parts.door.lines().collect();
    assert_eq!(lines[0], "[web]");
    let keys: Vec<&str> = lines[1..]
        .iter()
        .map(|l| {
            let (k, v) = l.split_once(" = ").expect(l);
            assert!(l.starts_with("    ") && !v.trim().is_empty(), "{l:?}");
            k.trim()
        })
        .collect();
    assert_eq!(
        keys,
        [
            "HMAC_Secret_File",
            "HMAC_Length",
            "HMAC_Ports",
            "HMAC_Protocols",
            "HMAC_Step",
            "HMAC_Skew",
            "Start_Command"
        ]
    );
    assert!(
        parts
            .door
            .contains("HMAC_Secret_File = /etc/knockd-lite/web.secret\n")
    );
    assert!(parts.door.contains("HMAC_Protocols   = mixed\n"));
    // knockd.conf's own parser reads it as an HMAC door.
    let config = conf::parse(&parts.door, Path::new("door.conf")).expect(&parts.door);
    let door = config.door("web").expect("door [web]");
    let SequenceSource::Hmac(server) = &door.sequence else {
        panic!("not an HMAC door: {door:?}")
    };
    assert_eq!(server.secret_file, Path::new("/etc/knockd-lite/web.secret"));
    assert_eq!(server.skew, 1);

    // The profile parses, and derives with the printed secret what the door derives.
    let p = parse(Path::new("/p/web.toml"), &parts.profile).expect(&parts.profile);
    assert_eq!(p.host.as_deref(), Some("192.0.2.2"));
    let h = hmac_of(&p);
    assert_eq!(
        h.params,
        server.params("web"),
        "door and profile derive alike"
    );
    assert_eq!(h.params.door, "web");
    assert_eq!(h.params.protocols, Protocols::Mixed);
    assert_eq!(h.secret, SecretRef::file("web.secret", Path::new("/p")));
    let s = Secret::from_text(&secret);
    assert_eq!(h.params.derive_at(&s, 0).unwrap().len(), 4);

    // Every run makes a new secret.
    let again = split(&World::default().run(&["keygen"]).out);
    assert_ne!(again.secret.unwrap(), secret);
}

#[test]
fn secret_file_keeps_the_secret_off_stdout() {
    let dir = Scratch::new("keygen-file");
    let file = dir.arg("ssh.secret");
    let o = World::default().run(&["keygen", "--host", "192.0.2.2", "--secret-file", &file]);
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    let text = std::fs::read_to_string(&file).unwrap();
    let secret = text.strip_suffix('\n').expect("one line");
    assert_eq!(secret.len(), 44);
    assert!(!o.out.contains(secret), "{}", o.out);
    assert!(
        o.out.starts_with(&format!(
            "# New knock-hmac-v1 secret for door \"ssh\": written to {file} (mode 0600), not shown.\n"
        )),
        "{}",
        o.out
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let parts = split(&o.out);
    assert!(parts.secret.is_none());
    assert!(parts.door.starts_with("[ssh]\n"), "{}", parts.door);
    assert!(
        parts
            .profile
            .contains(&format!("secret_file = {}\n", toml_str(&file))),
        "{}",
        parts.profile
    );

    // The profile snippet, saved as is, knocks with the secret from the file.
    let profiles = Scratch::new("keygen-profiles");
    std::fs::write(profiles.join("ssh.toml"), &parts.profile).unwrap();
    let o = World::default().run(&[
        "profile",
        "--profiles",
        &profiles.arg(""),
        "ssh",
        "--dry-run",
        "--json",
        "--at",
        "1700000000",
    ]);
    assert_eq!(o.code, 0, "{}", o.err);
    let want = knock_core::hmac::HmacParams::new("ssh")
        .derive_at(&Secret::from_text(secret), 1_700_000_000)
        .unwrap();
    let doc: crate::json::DryRun = serde_json::from_str(o.out.trim_end()).unwrap();
    let ports: Vec<u16> = doc.hits.iter().map(|h| h.port).collect();
    assert_eq!(ports, want.iter().map(|h| h.port).collect::<Vec<_>>());

    // An existing file is kept unless --force.
    let o = World::default().run(&["keygen", "--secret-file", &file]);
    assert_eq!(
        (o.code, o.err.clone()),
        (
            2,
            format!("knock: {file} already exists; use --force to replace it\n")
        )
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    let o = World::default().run(&["keygen", "--secret-file", &file, "--force"]);
    assert_eq!(o.code, 0, "{}", o.err);
    assert_ne!(std::fs::read_to_string(&file).unwrap(), text);
}

#[test]
fn a_door_with_flags_checks_them_and_the_profile_sends_them() {
    let o = World::default().run(&[
        "keygen", "--flags", "fin+psh", "--skew", "3", "--step", "15",
    ]);
    assert_eq!(o.code, 0, "{}", o.err);
    let parts = split(&o.out);
    let config = conf::parse(&parts.door, Path::new("door.conf")).expect(&parts.door);
    let door = config.door("ssh").unwrap();
    let SequenceSource::Hmac(server) = &door.sequence else {
        panic!("{door:?}")
    };
    assert_eq!((server.skew, server.step), (3, 15));
    // The door accepts exactly what the profile sends, and no plain SYN.
    let p = parse(Path::new("/p/ssh.toml"), &parts.profile).unwrap();
    let flags = hmac_of(&p).params.flags.expect("flags in the profile");
    assert!(door.tcp_flags.matches(flags));
    assert!(!door.tcp_flags.matches(knock_core::hit::TcpFlags::SYN));
}

#[test]
fn secret_env_goes_into_the_profile() {
    let o = World::default().run(&["keygen", "--door", "vpn", "--secret-env", "VPN_SECRET"]);
    assert_eq!(o.code, 0, "{}", o.err);
    let parts = split(&o.out);
    let p = parse(Path::new("/p/vpn.toml"), &parts.profile).unwrap();
    assert_eq!(hmac_of(&p).secret, SecretRef::Env("VPN_SECRET".into()));
    assert!(
        o.out
            .contains("# Client (knock): set the environment variable VPN_SECRET to the secret.\n")
    );
}

#[test]
fn keygen_save_makes_a_profile_that_knocks_and_prints_no_secret() {
    let dir = Scratch::new("keygen-save");
    let profiles = dir.join("profiles");
    let profiles_arg = profiles.display().to_string();
    let line = [
        "--profiles",
        profiles_arg.as_str(),
        "keygen",
        "--save",
        "office",
        "--host",
        "192.0.2.2",
        "--door",
        "office-ssh",
        "--step",
        "60",
    ];
    let o = World::default().run(&line);
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    let secret_path = profiles.join("office.secret");
    let secret = std::fs::read_to_string(&secret_path).unwrap();
    assert_eq!(secret.trim().len(), 44);
    assert!(!o.out.contains(secret.trim()), "the secret was printed");
    let profile_path = profiles.join("office.toml");
    for want in [
        format!(
            "written to {} (mode 0600), not shown",
            secret_path.display()
        ),
        "[office-ssh]\n".to_string(),
        "HMAC_Step        = 60\n".to_string(),
        format!("saved profile office: {}\n", profile_path.display()),
        format!("profile directory: {}\n", profiles.display()),
        "knock with: knock profile office\n".to_string(),
    ] {
        assert!(o.out.contains(&want), "{want:?} not in:\n{}", o.out);
    }
    #[cfg(unix)]
    for file in [&secret_path, &profile_path] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    let profile = parse(
        &profile_path,
        &std::fs::read_to_string(&profile_path).unwrap(),
    )
    .unwrap();
    let h = hmac_of(&profile);
    assert_eq!((h.params.door.as_str(), h.params.step), ("office-ssh", 60));
    assert!(matches!(&h.secret, SecretRef::File { resolved, .. } if *resolved == secret_path));
    assert_eq!(profile.host.as_deref(), Some("192.0.2.2"));
    // It knocks at once, reading the secret it was given.
    let o = World::default().run(&[
        "profile",
        "--profiles",
        &profiles_arg,
        "office",
        "--dry-run",
    ]);
    assert_eq!(o.code, 0, "{}", o.err);
    assert!(
        o.out.starts_with("door \"office-ssh\", counter 0: "),
        "{}",
        o.out
    );

    // Never over an existing profile without --force, and then nothing is written.
    let before = std::fs::read_to_string(&secret_path).unwrap();
    let o = World::default().run(&line);
    assert_eq!(o.code, 2);
    assert_eq!(
        o.err,
        format!(
            "knock: profile \"office\" already exists ({}); use --force to replace it\n",
            profile_path.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&secret_path).unwrap(), before);
    let mut forced = line.to_vec();
    forced.push("--force");
    assert_eq!(World::default().run(&forced).code, 0);
    assert_ne!(std::fs::read_to_string(&secret_path).unwrap(), before);

    // --save needs a real host, and keeps the secret in a file.
    let o = World::default().run(&["keygen", "--save", "x"]);
    assert_eq!(o.code, 2);
    assert!(o.err.contains("--host <HOST>"), "{}", o.err);
    let o = World::default().run(&["keygen", "--save", "x", "--host", "h", "--secret-env", "E"]);
    assert_eq!(o.code, 2);
    assert!(o.err.contains("cannot be used with"), "{}", o.err);
}
