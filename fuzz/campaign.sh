#!/usr/bin/env bash
# A long fuzzing campaign: every cargo-fuzz target, one after another (the machines are
# shared: one process, under nice), each for a set number of executions, then a table of
# executions, coverage (libFuzzer's cov: edges and ft: features), corpus size, time and
# crashes. Needs the nightly toolchain and cargo-fuzz.
#
#   fuzz/campaign.sh [-n RUNS] [-t SECONDS] [TARGET...]     (default: 10000000 runs, every target)
#
# -t caps each target's time as well (libFuzzer's -max_total_time; 0 = no cap), for a
# target too slow to reach RUNS in the time you have: the table shows what it reached.
# The corpus grows in fuzz/corpus/TARGET (seeds in fuzz/seeds/TARGET are read, never
# written), crashes land in fuzz/artifacts/TARGET/, logs in fuzz/logs/. Each crash is to
# become a pinned test in fuzz-props/tests/pinned.rs before it is fixed.
#
# Targets run without a sanitizer (-s none): the code is safe Rust, so AddressSanitizer finds
# nothing the Rust checks do not, at a third of the speed. Debug assertions are on (-a), so
# integer overflow panics as it does in the stable driver's debug build.
set -euo pipefail
cd "$(dirname "$0")"

runs=10000000
max_time=0
while getopts "n:t:" opt; do
  case $opt in
    n) runs=$OPTARG ;;
    t) max_time=$OPTARG ;;
    *) sed -n '2,20p' "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
# Every [[bin]] of Cargo.toml, in file order, unless targets were named.
mapfile -t all < <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -vx knock-fuzz)
targets=("${@:-${all[@]}}")

flags=(-s none -a -O)
echo "== building ${#all[@]} targets"
nice cargo +nightly fuzz build "${flags[@]}" >/dev/null

mkdir -p logs
summary=()
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  seeds=()
  [ -d "seeds/$t" ] && seeds=("seeds/$t")
  dict=()
  [ -f "dict/$t.dict" ] && dict=("-dict=dict/$t.dict")
  before=$(find "artifacts/$t" -type f -name 'crash-*' | wc -l)
  echo "== $t: $runs executions (log: fuzz/logs/$t.log)"
  start=$(date +%s)
  status=0
  nice cargo +nightly fuzz run "${flags[@]}" "$t" "corpus/$t" "${seeds[@]}" -- \
    -runs="$runs" -max_total_time="$max_time" -max_len=4096 -timeout=10 \
    -print_final_stats=1 "${dict[@]}" >"logs/$t.log" 2>&1 || status=$?
  secs=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log" | tail -1)
  # The last status line: "#N  DONE  cov: C ft: F corp: K/Sb ..." (or the line before a crash).
  last=$(grep -E '^#[0-9]+' "logs/$t.log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  crashes=$(( $(find "artifacts/$t" -type f -name 'crash-*' | wc -l) - before ))
  [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ] && crashes="exit $status"
  summary+=("$(printf '%-12s %12s %7s %7s %7s %7ss %s' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$secs" "$crashes")")
  echo "${summary[-1]}"
done

echo
printf '%-12s %12s %7s %7s %7s %8s %s\n' target executions cov ft corpus time crashes
printf '%s\n' "${summary[@]}"
