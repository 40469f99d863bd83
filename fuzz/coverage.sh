#!/usr/bin/env bash
# Line and region coverage of each target's parser, from the corpus a campaign grew
# (fuzz/corpus/TARGET) and the seeds: cargo fuzz coverage runs them through an instrumented
# build, llvm-cov reports on the files the target is about.
#
#   fuzz/coverage.sh [TARGET...]          (default: every target)
#
# Needs the nightly toolchain, cargo-fuzz and an llvm-profdata/llvm-cov of the nightly's LLVM
# major version (Debian: apt-get install llvm-22 for LLVM 22; rustup's llvm-tools also do).
# Unit tests are not in the build, so what a file's tests alone reach counts as missed;
# functions a target never calls (file I/O around a pure parser) count as missed too, so a
# last line counts regions only in the functions the target reached.
set -euo pipefail
cd "$(dirname "$0")"

llvm=$(rustc +nightly -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
profdata=$(command -v "llvm-profdata-$llvm" || command -v llvm-profdata || true)
cov=$(command -v "llvm-cov-$llvm" || command -v llvm-cov || true)
if [ -z "$profdata" ] || [ -z "$cov" ]; then
  echo "no llvm-profdata/llvm-cov for LLVM $llvm (apt-get install llvm-$llvm)" >&2
  exit 2
fi

# The files each target is about.
files() {
  case $1 in
    conf | tportknockd) echo ../knock-core/src/conf/*.rs ;;
    hit) echo ../knock-core/src/hit.rs ;;
    profile) echo ../knock-core/src/profile/parse.rs ../knock-core/src/profile/write.rs ;;
    otp) echo ../knock-core/src/otp.rs ../knock-core/src/otp/file.rs ;;
    hmac_state) echo ../knockd-lite/src/hmac_state.rs ;;
    stops) echo ../knockd-lite/src/stops.rs ;;
    keeper) echo ../knockd-lite/src/keeper/msg.rs ;;
    worker_channel) echo ../knockd-lite/src/worker/msg.rs ../knockd-lite/src/worker/admit.rs ;;
    packet) echo ../knock-core/src/wire/parse.rs ;;
    build_parse) echo ../knock-core/src/wire/build.rs ../knock-core/src/wire/parse.rs ;;
    filter) echo ../knockd-engine/src/bpf.rs ../knockd-engine/src/filter.rs ;;
    *) echo "no files listed for target $1 in $0" >&2; exit 2 ;;
  esac
}

mapfile -t all < <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -vx knock-fuzz)
targets=("${@:-${all[@]}}")
mkdir -p logs
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  seeds=()
  [ -d "seeds/$t" ] && seeds=("seeds/$t")
  rm -rf "coverage/$t"
  echo "== $t"
  # cargo-fuzz merges with rustup's llvm-tools when it has them; the raw profiles are enough.
  nice cargo +nightly fuzz coverage "$t" "corpus/$t" "${seeds[@]}" >"logs/$t-coverage.log" 2>&1 || true
  if ! compgen -G "coverage/$t/raw/*.profraw" >/dev/null; then
    echo "no profiles for $t: see fuzz/logs/$t-coverage.log" >&2
    exit 1
  fi
  "$profdata" merge -sparse coverage/"$t"/raw/*.profraw -o "coverage/$t/coverage.profdata"
  bin=target/x86_64-unknown-linux-gnu/coverage/x86_64-unknown-linux-gnu/release/$t
  # shellcheck disable=SC2046 # one word a file
  "$cov" report "$bin" -instr-profile="coverage/$t/coverage.profdata" $(files "$t") |
    sed "s#^$(cd .. && pwd)/##"
  # The same regions counted only in the functions the target reached (a function with a
  # region run): what is left out is what the target never calls (file I/O, generators,
  # copies of a generic function made for other crates), not what it misses.
  # shellcheck disable=SC2046
  "$cov" report "$bin" -instr-profile="coverage/$t/coverage.profdata" -show-functions $(files "$t") |
    awk '$1 ~ /^_R/ && $2 > $3 { r += $2; m += $3 }
         END { if (r) printf "regions in the functions it reached: %d of %d (%.2f%%)\n", r - m, r, 100 * (r - m) / r }'
done
