//! knock-flood's entry point; see the library.

fn main() {
    std::process::exit(knock_flood::run());
}
