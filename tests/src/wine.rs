//! The Windows build of `knock` (`knock.exe`) run under Wine inside a test namespace.
//!
//! [`Wine::get`] prepares, once per test binary run, a scratch folder holding `knock.exe`
//! beside a test-only `bcryptprimitives.dll` (built here with mingw from
//! `tests/wine/processprng.c`: Debian 12's Wine 8 has no such DLL, and Rust's standard
//! library imports `ProcessPrng` from it), and a freshly initialised Wine prefix used as a
//! template. [`WineHost::new`] then gives one test its own prefix, copied from the
//! template, whose every Wine process runs in the client namespace of a [`Pair`].
//!
//! That last point is a safety rule, not a detail: under Wine, sockets are created by the
//! wineserver, one per prefix, in whatever network namespace it was started from. A prefix
//! shared between namespaces would send one test's knocks from another test's namespace,
//! or from the host's. So each test has its own prefix, only ever used from inside its
//! client namespace, and [`WineHost`] checks after every run that the wineserver it
//! finds for its prefix lives in that namespace.
//!
//! knock.exe itself is built before the tests (`.ci/test` runs
//! `cargo build -p knock-cli --target x86_64-pc-windows-gnu`) and found at
//! `target/x86_64-pc-windows-gnu/<profile>/knock.exe`. When it, Wine or mingw is missing
//! the tests skip with the reason, except under `CI=true`, where they fail.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::{Pair, TempDir, check};

/// Debian's 64-bit Wine loader (the `wine` wrapper script picks a loader by binary type;
/// this one runs x86_64 executables directly).
pub const WINE: &str = "/usr/lib/wine/wine64";
/// The wineserver binary behind Debian's `wineserver` script.
pub const WINESERVER: &str = "/usr/lib/wine/wineserver64";
/// Debian's `gcc-mingw-w64-x86-64`.
pub const MINGW_GCC: &str = "x86_64-w64-mingw32-gcc";
/// The Rust target knock.exe is built for.
pub const TARGET: &str = "x86_64-pc-windows-gnu";

/// Load our `bcryptprimitives.dll` from the exe's folder before any builtin one (newer
/// Wine has a builtin with `ProcessPrng`; the test then still runs what it means to), and
/// disable Mono and Gecko, whose installers Wine would otherwise offer to download while
/// it creates a prefix.
const DLL_OVERRIDES: &str = "mscoree,mshtml=;bcryptprimitives=n,b";

/// How long a prefix may take to initialise (a few seconds on an idle machine; CI shares
/// two cores between builds and tests).
const INIT_TIMEOUT: Duration = Duration::from_secs(180);

/// What every Wine test shares: knock.exe with its shim DLL, and the template prefix.
#[derive(Debug)]
pub struct Wine {
    /// Scratch folder for this test binary run; removed at exit.
    root: PathBuf,
    /// Holds `knock.exe` and `bcryptprimitives.dll`.
    bin_dir: PathBuf,
    /// An initialised prefix that no Wine process uses any more.
    template: PathBuf,
    /// How long `wineboot -i` and the wineserver's shutdown took.
    init_time: Duration,
}

/// Why the Wine tests cannot run here.
#[derive(Debug)]
enum Unavailable {
    /// A tool or the exe is missing: a skip, or a failure under CI.
    Missing(String),
    /// Everything is there but setting up failed: always a failure.
    Broken(String),
}

static WINE_KIT: OnceLock<Result<Wine, Unavailable>> = OnceLock::new();

impl Wine {
    /// The shared set-up, made by the first test that asks (it prints how long that
    /// took). `Err` says why not when Wine, mingw or knock.exe is missing; when they are
    /// all there and the set-up fails, it panics, since that is a failure, not a skip.
    pub fn get() -> Result<&'static Wine, String> {
        let kit = WINE_KIT.get_or_init(|| {
            Wine::set_up().inspect(|wine| {
                eprintln!("Wine prefix initialised in {:?}", wine.init_time);
            })
        });
        match kit {
            Ok(wine) => Ok(wine),
            Err(Unavailable::Missing(why)) => Err(why.clone()),
            Err(Unavailable::Broken(why)) => panic!("setting up Wine failed: {why}"),
        }
    }

    fn set_up() -> Result<Wine, Unavailable> {
        let exe = knock_exe();
        for (path, fix) in [
            (Path::new(WINE), "apt-get install wine wine64"),
            (Path::new(WINESERVER), "apt-get install wine wine64"),
            (
                exe.as_path(),
                "cargo build -p knock-cli --target x86_64-pc-windows-gnu",
            ),
        ] {
            if !path.exists() {
                return Err(Unavailable::Missing(format!(
                    "{} is missing ({fix})",
                    path.display()
                )));
            }
        }
        for (program, fix) in [
            (MINGW_GCC, "apt-get install gcc-mingw-w64-x86-64"),
            ("unshare", "apt-get install util-linux"),
        ] {
            if !crate::have(program) {
                return Err(Unavailable::Missing(format!(
                    "{program} is not on PATH ({fix})"
                )));
            }
        }
        remove_stale_scratch();
        let scratch = TempDir::new("wine");
        let root = scratch.path().to_path_buf();
        // The scratch folder outlives every test of this binary; it goes at exit.
        std::mem::forget(scratch);
        remove_at_exit(&root);
        let bin_dir = root.join("bin");
        std::fs::create_dir(&bin_dir).map_err(|e| broken("create", &bin_dir, e))?;
        std::fs::copy(&exe, bin_dir.join("knock.exe"))
            .map_err(|e| broken("copy knock.exe from", &exe, e))?;
        build_shim(&bin_dir)?;
        let tmp = root.join("tmp");
        std::fs::create_dir(&tmp).map_err(|e| broken("create", &tmp, e))?;
        let template = root.join("template");
        let start = Instant::now();
        init_prefix(&template)?;
        Ok(Wine {
            root,
            bin_dir,
            template,
            init_time: start.elapsed(),
        })
    }

    /// knock.exe, as Wine runs it (beside the shim DLL).
    pub fn exe(&self) -> PathBuf {
        self.bin_dir.join("knock.exe")
    }
}

fn broken(op: &str, path: &Path, e: std::io::Error) -> Unavailable {
    Unavailable::Broken(format!("{op} {}: {e}", path.display()))
}

/// `target/x86_64-pc-windows-gnu/<profile>/knock.exe`, for the profile this test binary
/// was built with (`target/<profile>/deps/<test>`).
pub fn knock_exe() -> PathBuf {
    let test_exe = std::env::current_exe().expect("current_exe");
    let profile_dir = test_exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let target_dir = profile_dir.parent().expect("target/<profile>");
    let profile = profile_dir.file_name().expect("profile folder name");
    target_dir.join(TARGET).join(profile).join("knock.exe")
}

/// Builds `bcryptprimitives.dll` from `tests/wine/processprng.c` into `dir`.
fn build_shim(dir: &Path) -> Result<(), Unavailable> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("wine");
    let out = Command::new(MINGW_GCC)
        .args(["-shared", "-O2", "-s", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(dir.join("bcryptprimitives.dll"))
        .arg(src.join("processprng.c"))
        .arg(src.join("processprng.def"))
        .arg("-ladvapi32")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Unavailable::Broken(format!("run {MINGW_GCC}: {e}")))?;
    if !out.status.success() {
        return Err(Unavailable::Broken(format!(
            "{MINGW_GCC} failed to build bcryptprimitives.dll:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

/// Creates a prefix with `wineboot -i` in a network namespace of its own (only a
/// loopback interface, down: nothing Wine does while it sets up can reach any network),
/// then stops its wineserver, which writes the registry out as it exits.
fn init_prefix(prefix: &Path) -> Result<(), Unavailable> {
    let script = format!(
        "timeout {secs} {WINE} wineboot -i && {WINESERVER} -k; {WINESERVER} -w",
        secs = INIT_TIMEOUT.as_secs()
    );
    // Output goes to a file, not a pipe: wineboot starts Wine's service processes, which
    // inherit its stderr, and one left behind (seen under load: winedevice.exe outliving
    // its wineserver) would hold a pipe open, and the whole test binary with it, for ever.
    let log = prefix.with_extension("init.log");
    let file = File::create(&log).map_err(|e| broken("create", &log, e))?;
    let status = wine_env(&mut Command::new("unshare"), prefix)
        .args(["--net", "sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .status()
        .map_err(|e| Unavailable::Broken(format!("run unshare: {e}")))?;
    // Whatever of the prefix is still running goes now, before tests copy the template.
    for pid in prefix_processes(prefix, None) {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    if !prefix.join("system.reg").exists() {
        return Err(Unavailable::Broken(format!(
            "wineboot -i did not create a prefix in {} ({status}):\n{}",
            prefix.display(),
            String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default())
        )));
    }
    Ok(())
}

/// The pids of the processes whose `WINEPREFIX` is `prefix` (only those running `exe`, if
/// given).
fn prefix_processes(prefix: &Path, exe: Option<&Path>) -> Vec<u32> {
    let mut want = b"WINEPREFIX=".to_vec();
    want.extend_from_slice(prefix.as_os_str().as_encoded_bytes());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            exe.is_none_or(|exe| {
                std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == exe)
            })
        })
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == want.as_slice()))
        })
        .collect()
}

/// The environment every Wine process of a test gets.
fn wine_env<'c>(cmd: &'c mut Command, prefix: &Path) -> &'c mut Command {
    // Debian's wineserver makes its socket folder with mkdtemp in $TMPDIR (`wine-XXXXXX`)
    // and never removes it: in the scratch folder (`tmp`, beside every prefix) it goes
    // with the rest at exit instead of piling up in /tmp.
    let tmp = prefix.parent().map(|root| root.join("tmp"));
    if let Some(tmp) = tmp {
        cmd.env("TMPDIR", tmp);
    }
    cmd.env("WINEPREFIX", prefix)
        .env("WINEDEBUG", "-all")
        .env("WINEDLLOVERRIDES", DLL_OVERRIDES)
        // No display: Wine must not try to open windows.
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
}

/// One test's Wine prefix, used only from the client namespace of its [`Pair`]. Dropping
/// it stops the prefix's wineserver (and with it every Wine process of the prefix), then
/// removes the prefix. Drop it before the pair (declare it after).
pub struct WineHost {
    wine: &'static Wine,
    netns: String,
    prefix: PathBuf,
    runs: AtomicU32,
}

impl WineHost {
    /// A fresh prefix for `pair`'s client, copied from the template: the big, read-only
    /// `drive_c/windows` as hard links, the rest (registry, user folders) as copies, so
    /// nothing a test's Wine writes reaches the template.
    ///
    /// The test declares [`Need::Wine`](crate::Need::Wine), so the set-up is there.
    pub fn new(pair: &Pair) -> WineHost {
        let wine = Wine::get().unwrap_or_else(|why| panic!("no Wine for this test: {why}"));
        let prefix = wine.root.join(format!("prefix-{}", pair.client));
        let host = WineHost {
            wine,
            netns: pair.client.clone(),
            prefix,
            runs: AtomicU32::new(0),
        };
        let template = &wine.template;
        let run = |args: &[&std::ffi::OsStr]| {
            check(Command::new("cp").args(args).stdin(Stdio::null()));
        };
        std::fs::create_dir(&host.prefix).expect("create prefix folder");
        for entry in std::fs::read_dir(template).expect("read template prefix") {
            let name = entry.expect("template entry").file_name();
            if name == "drive_c" {
                continue;
            }
            run(&[
                "-a".as_ref(),
                template.join(&name).as_os_str(),
                host.prefix.as_os_str(),
            ]);
        }
        let drive_c = host.prefix.join("drive_c");
        std::fs::create_dir(&drive_c).expect("create drive_c");
        for entry in std::fs::read_dir(template.join("drive_c")).expect("read drive_c") {
            let name = entry.expect("drive_c entry").file_name();
            let how = if name == "windows" { "-al" } else { "-a" };
            run(&[
                how.as_ref(),
                template.join("drive_c").join(&name).as_os_str(),
                drive_c.as_os_str(),
            ]);
        }
        // Started from inside the namespace, and kept running until the drop (without
        // -p it would stop a few seconds after each run, and every run would pay for its
        // start and for that of Wine's service processes).
        // It forks into the background once it listens, holding on to the stdio it got,
        // so it gets none.
        let mut server = crate::netns_cmd(&host.netns, WINESERVER);
        wine_env(&mut server, &host.prefix)
            .arg("-p")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let status = server
            .status()
            .unwrap_or_else(|e| panic!("could not run {server:?}: {e}"));
        assert!(status.success(), "{server:?} exited with {status}");
        host.assert_server_in_namespace();
        host
    }

    /// knock.exe, as Wine runs it (beside the shim DLL).
    pub fn exe(&self) -> PathBuf {
        self.wine.exe()
    }

    /// The prefix folder (`WINEPREFIX`).
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// `wine64 knock.exe ARGS` in the client namespace, with this prefix.
    pub fn knock_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.wine_cmd(self.wine.exe().as_os_str());
        cmd.args(args);
        cmd
    }

    /// `wine64 PROGRAM` (a Windows program path or a builtin such as `cmd`) in the client
    /// namespace, with this prefix.
    pub fn wine_cmd(&self, program: &std::ffi::OsStr) -> Command {
        let mut cmd = crate::netns_cmd(&self.netns, WINE);
        wine_env(&mut cmd, &self.prefix).arg(program);
        cmd
    }

    /// Runs a command made by [`WineHost::knock_cmd`] or [`WineHost::wine_cmd`] to
    /// completion, then checks that the prefix's wineserver is in the client namespace.
    ///
    /// Output goes through files, not pipes: the first Wine process of a prefix starts
    /// Wine's service processes, which inherit its stdout and stderr and live as long as
    /// the wineserver, so reading pipes to their end would wait for those too.
    pub fn run(&self, cmd: &mut Command) -> Output {
        let n = self.runs.fetch_add(1, Ordering::Relaxed);
        let paths = ["stdout", "stderr"].map(|s| self.prefix.join(format!("run-{n}.{s}")));
        let [stdout, stderr] = paths
            .each_ref()
            .map(|p| File::create(p).expect("create output file"));
        let status = cmd
            .stdout(stdout)
            .stderr(stderr)
            .status()
            .unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}"));
        let [stdout, stderr] = paths.map(|p| std::fs::read(p).expect("read output file"));
        self.assert_server_in_namespace();
        Output {
            status,
            stdout,
            stderr,
        }
    }

    /// Where `%APPDATA%` of this prefix is on the Linux side, as Wine itself reports it.
    pub fn appdata(&self) -> PathBuf {
        let mut cmd = self.wine_cmd("cmd".as_ref());
        cmd.args(["/c", "echo", "%APPDATA%"]);
        let out = self.run(&mut cmd);
        let text = String::from_utf8_lossy(&out.stdout);
        let windows_path = text.trim();
        let rest = windows_path
            .strip_prefix("C:\\")
            .or_else(|| windows_path.strip_prefix("c:\\"))
            .unwrap_or_else(|| panic!("%APPDATA% is not on drive C: {windows_path:?}"));
        rest.split('\\')
            .fold(self.prefix.join("drive_c"), |path, part| path.join(part))
    }

    /// Panics unless every wineserver of this prefix runs in the client namespace. Every
    /// [`WineHost::run`] checks it; a test that runs a Wine command some other way (on a
    /// terminal) calls it after.
    pub fn assert_server_in_namespace(&self) {
        let want = std::fs::metadata(format!("/run/netns/{}", self.netns))
            .expect("client namespace file")
            .ino();
        for pid in self.servers() {
            let Ok(link) = std::fs::read_link(format!("/proc/{pid}/ns/net")) else {
                continue; // It exited meanwhile.
            };
            assert_eq!(
                link.to_string_lossy(),
                format!("net:[{want}]"),
                "the wineserver (pid {pid}) of {} is outside the client namespace {}",
                self.prefix.display(),
                self.netns
            );
        }
    }

    /// The pids of wineservers whose `WINEPREFIX` is this prefix.
    fn servers(&self) -> Vec<u32> {
        prefix_processes(&self.prefix, Some(Path::new(WINESERVER)))
    }
}

impl Drop for WineHost {
    fn drop(&mut self) {
        let _ = wine_env(&mut Command::new(WINESERVER), &self.prefix)
            .arg("-k")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // The namespace and the prefix go next: wait until nothing uses them.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.servers().is_empty() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        if std::env::var_os("KNOCK_E2E_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.prefix);
        }
    }
}

/// Removes scratch folders of earlier runs that were killed before their exit handler
/// ran (`knock-e2e-wine-<pid>-<n>` whose process is gone): each holds a 700 MB prefix.
fn remove_stale_scratch() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("knock-e2e-wine-"))
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

static AT_EXIT: OnceLock<PathBuf> = OnceLock::new();

/// Removes `dir` when the test binary exits (statics are never dropped, and the test
/// harness ends with `exit`).
fn remove_at_exit(dir: &Path) {
    extern "C" fn remove() {
        if let Some(dir) = AT_EXIT.get()
            && std::env::var_os("KNOCK_E2E_KEEP").is_none()
        {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    if AT_EXIT.set(dir.to_path_buf()).is_ok() {
        // SAFETY: `remove` is a plain `extern "C" fn()` that lives for the whole program,
        // which is all atexit requires; it touches only a static set before registration.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::atexit(remove) };
        assert_eq!(rc, 0, "atexit failed");
    }
}
