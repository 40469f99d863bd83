//! The static aarch64 build of `knock`, run under qemu-user in the client namespace.
//!
//! `.ci/package` builds it (`cargo build --profile dist --target
//! aarch64-unknown-linux-musl`), the very binary the static archive ships, and it is found
//! at `target/aarch64-unknown-linux-musl/dist/knock`. Debian's `qemu-user-static` runs it
//! directly (`qemu-aarch64-static knock ...`), with no binfmt registration on the host.
//! When either is missing the tests skip with the reason, except under `CI=true`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Pair;

/// Debian's `qemu-user-static`.
pub const QEMU: &str = "/usr/bin/qemu-aarch64-static";
/// The Rust target of the static build.
pub const TARGET: &str = "aarch64-unknown-linux-musl";

/// `target/aarch64-unknown-linux-musl/dist/knock`, beside this test binary's
/// `target/<profile>/deps`.
pub fn knock_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let target_dir = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    target_dir.join(TARGET).join("dist").join("knock")
}

/// Why these tests cannot run here, if they cannot.
pub fn missing() -> Option<String> {
    if !Path::new(QEMU).exists() {
        return Some(format!(
            "{QEMU} is missing (apt-get install qemu-user-static)"
        ));
    }
    let knock = knock_path();
    (!knock.exists()).then(|| {
        format!(
            "{} is missing (.ci/package static builds it)",
            knock.display()
        )
    })
}

/// `knock ARGS` for aarch64 under qemu-user, in the client namespace.
pub fn knock_cmd(pair: &Pair, args: &[&str]) -> Command {
    let mut cmd = pair.client_cmd(QEMU);
    cmd.arg(knock_path()).args(args);
    cmd
}

/// What the ELF header says of a file: its machine (183 is AArch64) and whether it asks
/// for a program interpreter (a dynamic loader: not static).
pub fn elf_machine_and_interp(path: &Path) -> (u16, bool) {
    let bytes = std::fs::read(path).expect("read the binary");
    assert_eq!(&bytes[..5], b"\x7fELF\x02", "not a 64-bit ELF file");
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    let machine = u16_at(18);
    let (phoff, phentsize, phnum) = (u64_at(32) as usize, u16_at(54) as usize, u16_at(56));
    // PT_INTERP is program header type 3.
    let interp = (0..phnum as usize).any(|i| u32_at(phoff + i * phentsize) == 3);
    (machine, interp)
}
