//! knockd-lite: a knockd-compatible server built on a pure matching engine.

pub mod capture;
pub mod daemon;
pub mod exec;
pub mod filter;
pub mod log;
pub mod netif;
pub mod otp_store;

/// Runs `knockd-lite` with these arguments and returns the process exit code
/// (0 ok, 1 runtime failure, 2 usage or configuration error).
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let _ = args.into_iter().count();
    eprintln!("knockd-lite: not built yet");
    1
}
