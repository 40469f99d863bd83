//! Whole runs of `knock otp generate`: the list it writes is one knockd and `knock
//! profile` can both read.

use std::collections::BTreeSet;

use knock_core::hit::Proto;
use knock_core::otp::unused_lines;

use super::{Scratch, World, sent};

#[test]
fn generate_writes_a_list_in_knockds_format() {
    let dir = Scratch::new("otp-gen");
    let file = dir.arg("vpn.otp");
    let o = World::default().run(&[
        "otp",
        "generate",
        "--count",
        "20",
        "--length",
        "5",
        "--ports",
        "20000-20099",
        "--protocols",
        "mixed",
        &file,
    ]);
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    assert_eq!(
        o.out,
        format!(
            "wrote 20 sequences of 5 hits to {file} (mode 0600); give the server a copy of it\n"
        )
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 20);
    assert!(text.lines().all(|l| l.starts_with(' ')), "{text}");
    let lines: Vec<_> = unused_lines(&text).map(Result::unwrap).collect();
    assert_eq!(lines.len(), 20);
    let mut protos = BTreeSet::new();
    for line in &lines {
        assert_eq!(line.hits.len(), 5);
        let ports: BTreeSet<u16> = line.hits.iter().map(|h| h.port).collect();
        assert_eq!(ports.len(), 5, "no port twice in a line: {line:?}");
        assert!(
            ports.iter().all(|p| (20000..=20099).contains(p)),
            "{line:?}"
        );
        protos.extend(line.hits.iter().map(|h| h.proto));
    }
    // 100 hits, each tcp or udp at random: both show up.
    assert_eq!(protos, BTreeSet::from([Proto::Tcp, Proto::Udp]));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // A profile that points at the list knocks with its first line and marks it.
    std::fs::write(
        dir.join("vpn.toml"),
        "host = \"192.0.2.2\"\none_time_sequences = \"vpn.otp\"\n",
    )
    .unwrap();
    let o = World::default().run(&["profile", "--profiles", &dir.arg(""), "vpn"]);
    assert_eq!(o.code, 0, "{}", o.err);
    let first: Vec<_> = sent(&o.events).into_iter().map(|(h, _)| h).collect();
    assert_eq!(first, lines[0].hits);
    let after = std::fs::read_to_string(&file).unwrap();
    assert!(after.starts_with('#'));
    assert_eq!(after[1..], text[1..]);
}

#[test]
fn defaults_and_refusals() {
    let dir = Scratch::new("otp-gen-defaults");
    let file = dir.arg("l.otp");
    let gen_args = [
        "otp",
        "generate",
        "--count",
        "3",
        "--length",
        "4",
        file.as_str(),
    ];
    let o = World::default().run(&gen_args);
    assert_eq!(o.code, 0, "{}", o.err);
    let text = std::fs::read_to_string(&file).unwrap();
    for line in unused_lines(&text).map(Result::unwrap) {
        assert!(
            line.hits
                .iter()
                .all(|h| h.proto == Proto::Tcp && h.port >= 1024)
        );
    }
    // An existing list is never replaced by accident: a used one would start over.
    let o = World::default().run(&gen_args);
    assert_eq!(
        (o.code, o.err.clone()),
        (
            2,
            format!("knock: one-time list {file} already exists (use --force to replace it)\n")
        )
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    let mut forced = gen_args.to_vec();
    forced.push("--force");
    assert_eq!(World::default().run(&forced).code, 0);
    assert_ne!(std::fs::read_to_string(&file).unwrap(), text);

    let o = World::default().run(&[
        "otp",
        "generate",
        "--count",
        "1",
        "--length",
        "4",
        "--ports",
        "7000-7002",
        &file,
        "--force",
    ]);
    assert_eq!(
        (o.code, o.err.as_str()),
        (
            2,
            "knock: cannot generate a list: port range 7000-7002 has 3 ports, fewer than the length 4\n"
        )
    );
    // A missing folder is named, with the file asked for (not a temporary name).
    let missing = dir.join("no-such-folder").join("l.otp");
    let o = World::default().run(&[
        "otp",
        "generate",
        "--count",
        "1",
        "--length",
        "2",
        &missing.display().to_string(),
    ]);
    assert_eq!(o.code, 1);
    let want = format!(
        "knock: create one-time list {}: no folder {}: ",
        missing.display(),
        dir.join("no-such-folder").display()
    );
    assert!(o.err.starts_with(&want), "{}", o.err);
    assert!(!o.err.contains(".tmp"), "{}", o.err);
    let o = World::default().run(&["otp", "--help"]);
    assert_eq!(o.code, 0);
    assert!(o.out.contains("generate"), "{}", o.out);
    let o = World::default().run(&["otp", "generate", "--help"]);
    assert!(o.out.contains("starts with a space"), "{}", o.out);
    assert!(o.out.contains("Exit status: 0 written, 1 "), "{}", o.out);
}

#[test]
fn generate_save_makes_a_one_time_profile_that_knocks_with_the_list() {
    let dir = Scratch::new("otp-save");
    let list = dir.arg("vpn.otp");
    let profiles = dir.arg("profiles");
    let line = [
        "otp",
        "generate",
        "--count",
        "2",
        "--length",
        "3",
        &list,
        "--save",
        "vpn",
        "--host",
        "192.0.2.2",
        "--profiles",
        &profiles,
    ];
    let o = World::default().run(&line);
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    let profile = dir.join("profiles").join("vpn.toml");
    assert_eq!(
        o.out,
        format!(
            "wrote 2 sequences of 3 hits to {list} (mode 0600); give the server a copy of it\n\
             saved profile vpn: {}\n\
             profile directory: {profiles}\n\
             knock with: knock profile vpn\n",
            profile.display()
        )
    );
    assert_eq!(
        std::fs::read_to_string(&profile).unwrap(),
        format!(
            "host = \"192.0.2.2\"\none_time_sequences = {}\n",
            super::toml_str(&list)
        )
    );
    let o = World::default().run(&["profile", "--profiles", &profiles, "list"]);
    assert!(o.out.contains("one-time, 2 left"), "{}", o.out);
    let o = World::default().run(&["profile", "--profiles", &profiles, "vpn"]);
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    assert_eq!(super::sent(&o.events).len(), 3);
    let o = World::default().run(&["profile", "--profiles", &profiles, "list"]);
    assert!(o.out.contains("one-time, 1 left"), "{}", o.out);
    // An existing profile stops it before the list is touched; --host needs --save.
    let before = std::fs::read_to_string(&list).unwrap();
    let mut again = line.to_vec();
    again[2 + 4] = &list;
    let o = World::default().run(&again);
    assert_eq!(o.code, 2);
    assert!(o.err.contains("already exists"), "{}", o.err);
    assert_eq!(std::fs::read_to_string(&list).unwrap(), before);
    let o = World::default().run(&[
        "otp", "generate", "--count", "1", "--length", "1", &list, "--host", "h",
    ]);
    assert_eq!(o.code, 2);
    assert!(o.err.contains("--save <NAME>"), "{}", o.err);
}
