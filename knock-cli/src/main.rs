//! The `knock` binary: all the work is in the library's `run`.

fn main() {
    std::process::exit(knock_cli::run(std::env::args_os()));
}
