//! The `knockd-lite` binary: all the work is in the library's `run`.

fn main() {
    std::process::exit(knockd_lite::run(std::env::args_os()));
}
