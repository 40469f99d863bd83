//! Inputs that once broke a fuzz target, kept as tests so the bug stays fixed. Each was
//! pinned here (failing) before its fix; the comment says what was wrong.

use knock_fuzz_props::target;

fn pinned(name: &str, input: &[u8]) {
    let t = target(name).unwrap_or_else(|| panic!("no target {name}"));
    (t.check)(input);
}

/// The HMAC counter file was read with `str::lines`, which drops a `\r` before the `\n`:
/// counters saved for a door named `e u\r` came back under `e u`. (Built by `arbitrary`
/// from these bytes; the stable driver found it.)
#[test]
fn hmac_state_door_name_ending_in_cr() {
    pinned(
        "hmac_state",
        b"# knockd-lit1e u\rsed HHHHHHHHHHHHHHHHHHHHHHHHHHHHH#HHHH\x85\n",
    );
}

/// A door name with a control character (here ESC, a terminal escape) went raw into the
/// messages that name the door ("not in door [...]"), and from there into the log.
#[test]
fn conf_control_character_in_door_name() {
    pinned(
        "conf",
        b"\xef\xbb\xbf# saved on Windows\r\n[option\x8d\x1b\xab\xf8Cs]\r\n  Interface = wlan0\r\n\r\n[Door One]\r\nSEQUENCE = 7000,8000\r\nSTART_COMMAND = /bin/e:icho %IP%\r\n",
    );
}

/// The same in tportknockd's format: an event name with a control character went raw into
/// "unknown key ... in <NAME>" and every other message naming the event.
#[test]
fn tportknockd_control_character_in_event_name() {
    pinned(
        "tportknockd",
        b"<\x01>\nsequuuuence = 7000 tcp:1:q\ntimeout = forever\nn evvvvvvvvvvvvvvvvvvvvvvvvvvveeeesequencL = eeee+ee",
    );
}

/// The check of a tag's name ran on the trimmed name, but the message quoted the tag as
/// written: a `\r` inside the brackets went out raw. (cargo-fuzz found it.)
#[test]
fn tportknockd_cr_inside_a_tag_before_text() {
    pinned("tportknockd", b"<NO\r>E\n");
}

/// The same for a knockd.conf section header.
#[test]
fn conf_cr_inside_a_header_before_text() {
    pinned("conf", b"[d\r]x\n");
}

/// A bad escape in the stop journal was quoted raw (`bad escape \<ESC>`), and the server
/// logs that message when it sets a journal aside. (Seen while writing the stops target,
/// which fails on it.)
#[test]
fn stops_control_character_after_a_backslash() {
    pinned("stops", b"1\t2\t192.0.2.1\td\\\x1b\tc\n");
}

/// A long run of one byte: what a 30 MB line looks like, at fuzzing size.
fn long(byte: u8) -> Vec<u8> {
    vec![byte; 3000]
}

/// Messages quote at most a short excerpt of what was written (issue 14): a door name was
/// quoted whole ("door [...] has no sequence"), and every later message about the door
/// quotes the name.
#[test]
fn conf_long_door_name() {
    let input = [&b"["[..], &long(b'x'), b"]\ncommand = y\n"].concat();
    pinned("conf", &input);
}

/// The same for a tportknockd event name.
#[test]
fn tportknockd_long_event_name() {
    let input = [&b"<"[..], &long(b'x'), b">\nbogus = 1\n"].concat();
    pinned("tportknockd", &input);
}

/// A long flag name after `PORT:tcp:` was quoted whole.
#[test]
fn hit_long_flag_name() {
    pinned("hit", &[&b"1:tcp:"[..], &long(b'q')].concat());
}

/// A profile's `secret_env` and `[hmac] flags` were quoted whole.
#[test]
fn profile_long_secret_env_and_flags() {
    let env = [
        &b"host = \"h\"\n[hmac]\ndoor = \"d\"\nsecret_env = \"="[..],
        &long(b'e'),
        b"\"\n",
    ]
    .concat();
    pinned("profile", &env);
    let flags = [
        &b"host = \"h\"\n[hmac]\ndoor = \"d\"\nflags = \""[..],
        &long(b'f'),
        b"\"\n",
    ]
    .concat();
    pinned("profile", &flags);
}

/// A bad counter in the HMAC state file was quoted whole (the server logs the message).
#[test]
fn hmac_state_long_bad_counter() {
    pinned("hmac_state", &[&long(b'c')[..], b"\tssh\n"].concat());
}

/// A bad field in the stop journal was quoted whole (the server logs the message).
#[test]
fn stops_long_bad_field() {
    let due = [&long(b'd')[..], b"\t1\t192.0.2.1\td\tc\n"].concat();
    pinned("stops", &due);
    let address = [&b"1\t1\t"[..], &long(b'a'), b"\td\tc\n"].concat();
    pinned("stops", &address);
}

/// TOML's own messages quote keys and values whole ("unknown field `kkk...`"): a profile
/// passes them on cut.
#[test]
fn profile_long_unknown_key() {
    pinned("profile", &[&long(b'k')[..], b" = 1\n"].concat());
    let value = [
        &b"delay_ms = \""[..],
        &long(b'v'),
        b"\"\nsequence = \"1\"\n",
    ]
    .concat();
    pinned("profile", &value);
}

/// Counters built (by `arbitrary`) for a long door name with a newline in it: the writer
/// refuses the name, and its message quoted the name whole.
#[test]
fn hmac_state_long_door_name_with_newline() {
    pinned(
        "hmac_state",
        include_bytes!("pinned/hmac_state-long-door-name-with-newline"),
    );
}

/// A stop whose command is longer than the stop keeper takes (a frame body over 64 KiB; a
/// knockd.conf line has no length limit): the daemon sent the frame anyway, the keeper
/// refused it ("a frame of 123947 bytes") and exited, and each keeper started after it was
/// told the same stop and died the same way: no door's stop was kept any more. (Built by
/// `arbitrary` from these bytes: one command repeated to 120 KB when found, to 80 KB since
/// the target repeats less; found while writing the keeper target.)
#[test]
fn keeper_stop_longer_than_a_frame() {
    pinned(
        "keeper",
        b"\x00\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01t\xc3\xa9\ttab/\x00\x00\x000ip6tables -D INPUT -s %IP% -j ACCEPT\nsecond line\x00\x00\x00\t\x04\xff\xff\xff\xff\xff\xff\xff\xff",
    );
}

/// TOML's message for an unknown key quotes the key as written, and a quoted key may hold a
/// tab (or, through `\u001b`, a terminal escape): the profile passed the message on cut
/// but not escaped. (cargo-fuzz found it in the campaign of 3 December 2026, with 83 tabs.)
#[test]
fn profile_control_character_in_a_quoted_key() {
    pinned("profile", b"\"syn+e\t\tce\"=02:41");
    pinned("profile", b"\"a\\u001b[31mb\" = 1\n");
}
