//! `tportknockd`: tportknockd's config format (`<NAME> ... </NAME>` event blocks). The
//! property is [`crate::conf::check`]'s, since `conf::parse` reads both formats; this target
//! differs by its seeds and dictionary, which start it in this format. Here too, the config
//! written back in this format ([`render`]) reads the same, and so does it written as
//! knockd.conf.

use knock_core::conf::{Config, Door, SequenceSource};
use knock_core::hit::{Hit, HitFlags, Proto, TcpFlags};

use crate::conf::Noise;

/// Accepted: the config parsed.
pub fn check(data: &[u8]) -> bool {
    crate::conf::check(data)
}

/// Whether tportknockd's format can say this config: no global settings, and doors with
/// fixed sequences of frames (a plain TCP hit, or ECE and CWR, have no frame), no
/// `TCPFlags`, no IPv6 commands of their own, no `Target`, no nftables sets, and names a
/// tag can hold.
pub(crate) fn can_say(config: &Config) -> bool {
    let defaults = knock_core::conf::parse("", std::path::Path::new(crate::conf::PATH))
        .expect("an empty config is valid");
    let globals = config.log_file.is_none()
        && config.pid_file == defaults.pid_file
        && config.interface == defaults.interface
        && !config.use_syslog;
    globals
        && config.doors.iter().enumerate().all(|(i, d)| {
            let SequenceSource::Fixed(hits) = &d.sequence else {
                return false;
            };
            hits.iter().all(|h| crate::hit::frame_spelling(h).is_some())
                && d.tcp_flags.is_any()
                && d.start_command_6.is_none()
                && d.stop_command_6.is_none()
                && d.target.is_none()
                && d.nft_set.is_none()
                && d.nft_set_6.is_none()
                && !d.name.contains(['<', '>'])
                && !d.name.starts_with('/')
                // Event names are unique.
                && !config.doors[..i].iter().any(|e| e.name == d.name)
        })
}

/// Writes `config` in tportknockd's format (see [`can_say`]).
pub(crate) fn render(config: &Config, noise: &mut Noise) -> String {
    let mut lines = Vec::new();
    for door in &config.doors {
        let pad = noise.pick(&["", " "]);
        lines.push(format!("<{pad}{}{pad}>", door.name));
        let mut body = event_lines(door, noise);
        noise.shuffle(&mut body);
        lines.extend(body);
        lines.push(format!("</{}>", door.name));
    }
    noise.file(&lines)
}

fn event_lines(door: &Door, noise: &mut Noise) -> Vec<String> {
    let SequenceSource::Fixed(hits) = &door.sequence else {
        unreachable!("can_say checked it")
    };
    let frames: Vec<String> = hits.iter().map(|h| frame(h, noise)).collect();
    let sep = noise.pick(&[" ", "  ", ",", "\t"]);
    let mut out = vec![noise.directive(&["sequence"], &frames.join(sep), true)];
    let timeout = noise.seconds(door.seq_timeout);
    out.push(noise.directive(&["timeout"], &timeout, true));
    if let Some(c) = &door.start_command {
        out.push(noise.directive(&["start_command"], c, false));
    }
    if let Some(c) = &door.stop_command {
        out.push(noise.directive(&["stop_command"], c, false));
    }
    let default = knock_core::conf::DEFAULT_CMD_TIMEOUT;
    if door.cmd_timeout != default || !noise.chance(50) {
        let delay = noise.seconds(door.cmd_timeout);
        out.push(noise.directive(&["command_delay"], &delay, true));
    }
    out
}

/// A frame, its letters in any order and case when noisy.
fn frame(hit: &Hit, noise: &mut Noise) -> String {
    let canonical = crate::hit::frame_spelling(hit).expect("can_say checked it");
    match (hit.proto, hit.flags) {
        (Proto::Tcp, HitFlags::Exact(f)) if f != TcpFlags::NONE && noise.chance(50) => {
            let mut letters: Vec<char> = canonical.rsplit(':').next().unwrap().chars().collect();
            noise.shuffle(&mut letters);
            let letters: String = letters.into_iter().collect();
            let tcp = noise.case("tcp");
            noise.case(&format!("{tcp}:{}:{letters}", hit.port))
        }
        _ => noise.case(&canonical),
    }
}
