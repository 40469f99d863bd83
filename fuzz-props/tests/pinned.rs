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
