#!/usr/bin/env bash
# Connect benchmark (issue 12): how long from starting `knock --wait` to an accepted
# connection, against knockd-lite and Debian's knockd 0.8, beside the usual
# `knock && sleep 1 && connect`; and the throughput of `knock --proxy`'s relay against a
# direct connection.
#
# Run as root from anywhere in the repository:  bench/connect.sh [--runs N] [--mib N]
# Everything happens in a namespace pair this script creates (192.0.2.1 client, 192.0.2.2
# server, joined by a veth pair) and removes on exit; every iptables call runs inside it.
# See bench/README.md for what the figures mean.

set -euo pipefail

usage() {
    cat <<'USAGE'
usage: bench/connect.sh [--runs N] [--mib N] [--repeat N] [--servers "knockd-lite knockd"]
                        [--no-build]

  --runs      knocks per server and method for the latency figures (default 20)
  --mib       MiB moved each way per throughput run (default 256, at least 200 MB)
  --repeat    throughput runs per direction and method; the median is shown (default 3)
  --servers   which servers to knock on (default "knockd-lite knockd")
  --no-build  use target/release/knock and knockd-lite as they are

Environment: KNOCK=PATH benchmarks that knock binary instead of target/release/knock;
KEEP=1 keeps the scratch folder (configs, logs) for a look afterwards.
USAGE
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=20
MIB=256
REPEAT=3
SERVERS="knockd-lite knockd"
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=$2; shift ;;
        --mib) MIB=$2; shift ;;
        --repeat) REPEAT=$2; shift ;;
        --servers) SERVERS=$2; shift ;;
        --no-build) BUILD=0 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    shift
done
if [ "$(id -u)" -ne 0 ]; then
    echo "bench/connect.sh: run as root (it makes network namespaces)" >&2
    exit 2
fi
for tool in ip python3 /usr/sbin/iptables; do
    command -v "$tool" >/dev/null || { echo "bench/connect.sh: $tool is missing" >&2; exit 2; }
done
if [ "$((MIB * 1048576))" -lt 200000000 ]; then
    echo "bench/connect.sh: --mib $MIB is less than 200 MB" >&2
    exit 2
fi

. "$ROOT/.ci/toolchain"
if [ "$BUILD" = 1 ]; then
    (cd "$ROOT" && cargo build --release -q -p knock-cli -p knockd-lite)
fi
KNOCK=${KNOCK:-$ROOT/target/release/knock}
LITE=$ROOT/target/release/knockd-lite
IPT=/usr/sbin/iptables

ID=kb$$
C=${ID}c
S=${ID}s
DIR=$(mktemp -d "${TMPDIR:-/tmp}/knock-bench-connect.XXXXXX")
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for ns in "$C" "$S"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    if [ "${KEEP:-0}" = 1 ]; then echo "scratch folder kept: $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT

ip netns add "$C"
ip netns add "$S"
ip -n "$C" link set lo up
ip -n "$S" link set lo up
ip link add "${C}0" netns "$C" type veth peer name "${S}0" netns "$S"
ip -n "$C" addr add 192.0.2.1/24 dev "${C}0"
ip -n "$S" addr add 192.0.2.2/24 dev "${S}0"
ip -n "$C" link set "${C}0" up
ip -n "$S" link set "${S}0" up
inc() { ip netns exec "$C" "$@"; }
ins() { ip netns exec "$S" "$@"; }

# The server's firewall: port 2222 closed except for what the door adds to the DOOR chain;
# 2223 and 2224 (throughput) open, since the relay, not the door, is measured there.
ins "$IPT" -w -N DOOR
ins "$IPT" -w -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
ins "$IPT" -w -A INPUT -j DOOR
ins "$IPT" -w -A INPUT -p tcp --dport 2222 -j DROP

# A service that accepts and closes (latency), one that sends MIB MiB of zeros to each
# connection (download) and one that reads each to its end (upload), all python3 with
# sendfile and large reads so the service is never the bottleneck.
truncate -s "${MIB}M" "$DIR/zeros"
cat > "$DIR/service.py" <<'PY'
import os, socket, sys
mode, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
srv = socket.create_server(("0.0.0.0", port))
open(path + ".ready", "w").close()
buf = bytearray(1 << 20)
while True:
    c, _ = srv.accept()
    if mode == "source":
        with open(path, "rb") as f:
            c.sendfile(f)
    elif mode == "sink":
        n = 0
        while True:
            k = c.recv_into(buf)
            if not k:
                break
            n += k
        with open(path + ".count", "w") as f:
            f.write(str(n))
    c.close()
PY
start_service() { # MODE PORT PATH
    rm -f "$3.ready"
    ins python3 "$DIR/service.py" "$1" "$2" "$3" >>"$DIR/service.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 200); do [ -e "$3.ready" ] && return; sleep 0.05; done
    echo "the $1 service did not start" >&2
    exit 1
}
start_service accept 2222 "$DIR/accept"
start_service source 2223 "$DIR/zeros"
start_service sink 2224 "$DIR/sink"

door_conf() { # FILE
    cat > "$1" <<CONF
[options]
	logfile = $1.log
[door]
	sequence = 7001,7002,7003
	seq_timeout = 5
	command = $IPT -w -A DOOR -s %IP% -p tcp --dport 2222 -j ACCEPT
CONF
}

start_server() { # NAME
    local conf=$DIR/$1.conf
    door_conf "$conf"
    case "$1" in
        knockd-lite) ins "$LITE" -i "${S}0" -c "$conf" --state-dir "$DIR/state" >"$DIR/$1.out" 2>&1 & ;;
        knockd) ins /usr/sbin/knockd -i "${S}0" -c "$conf" >"$DIR/$1.out" 2>&1 & ;;
    esac
    SERVER_PID=$!
    for _ in $(seq 200); do grep -q "listening on" "$conf.log" 2>/dev/null && return; sleep 0.05; done
    echo "$1 did not start:" >&2
    cat "$DIR/$1.out" >&2
    exit 1
}

now_ns() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ms() { awk -v ns="$1" 'BEGIN {printf "%.1f", ns/1e6}'; }

# One knock to connected, timed inside the client namespace (no `ip netns exec` in the
# figure): METHOD is wait (knock --wait) or sleep (knock && sleep 1 && connect).
measure() { # METHOD
    inc bash -c '
        method=$1 knock=$2
        t0=$(date +%s%N)
        if [ "$method" = wait ]; then
            "$knock" -q --wait 2222 --wait-timeout 10 192.0.2.2 7001,7002,7003 || exit 1
        else
            "$knock" 192.0.2.2 7001,7002,7003 && sleep 1 &&
                timeout 10 bash -c "exec 3<>/dev/tcp/192.0.2.2/2222" || exit 1
        fi
        t1=$(date +%s%N)
        echo $((t1 - t0))' _ "$1" "$KNOCK"
}

echo "connect benchmark: $RUNS knocks per server and method, ${MIB} MiB per throughput run"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
declare -A MEDIAN FAILS
for server in $SERVERS; do
    if [ "$server" = knockd ] && [ ! -x /usr/sbin/knockd ]; then
        echo "skip knockd: /usr/sbin/knockd is missing (apt-get install knockd)"
        continue
    fi
    start_server "$server"
    for method in wait sleep; do
        : > "$DIR/$server-$method.ns"
        fails=0
        for _ in $(seq "$RUNS"); do
            ins "$IPT" -w -F DOOR
            sleep 0.2 # no leftovers of the previous run in the server's attempts
            if t=$(measure "$method"); then echo "$t" >> "$DIR/$server-$method.ns"; else fails=$((fails + 1)); fi
        done
        MEDIAN[$server-$method]=$(median < "$DIR/$server-$method.ns")
        FAILS[$server-$method]=$fails
    done
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
done

echo
echo "knock to connected (median of $RUNS, ms; min and max in brackets)"
printf '%-12s %-34s %-34s\n' server "knock --wait" "knock && sleep 1 && connect"
for server in $SERVERS; do
    [ -n "${MEDIAN[$server-wait]:-}" ] || continue
    row=()
    for method in wait sleep; do
        f=$DIR/$server-$method.ns
        lo=$(sort -n "$f" | head -1); hi=$(sort -n "$f" | tail -1)
        cell="$(ms "${MEDIAN[$server-$method]}") [$(ms "$lo") - $(ms "$hi")]"
        [ "${FAILS[$server-$method]}" = 0 ] || cell="$cell, ${FAILS[$server-$method]} failed"
        row+=("$cell")
    done
    printf '%-12s %-34s %-34s\n' "$server" "${row[0]}" "${row[1]}"
done

# Throughput: the same consumer (cat) reads the socket itself (direct) or knock's stdout
# (proxy); uploads read a file of zeros into the socket or into knock's stdin. knock's
# hit goes to a closed port; the door is not what is measured. Direct and proxy runs
# alternate, so a change in the machine's load hits both alike. Each run gives its wall
# time and the CPU time of every process in it (bash's `time`), which other processes on
# the machine hardly change.
BYTES=$((MIB * 1048576))
transfer() { # DIRECTION METHOD: prints "wall_ns cpu_s"
    [ "$1" = up ] && rm -f "$DIR/sink.count"
    local out
    out=$(inc bash -c '
        dir=$1 method=$2 knock=$3 zeros=$4
        TIMEFORMAT="%3U %3S"
        t0=$(date +%s%N)
        cpu=$( { time {
            case "$dir-$method" in
                down-direct) cat </dev/tcp/192.0.2.2/2223 >/dev/null ;;
                down-proxy) "$knock" --proxy 2223 192.0.2.2 7009 </dev/null | cat >/dev/null ;;
                up-direct) cat "$zeros" >/dev/tcp/192.0.2.2/2224 ;;
                up-proxy) cat "$zeros" | "$knock" --proxy 2224 192.0.2.2 7009 >/dev/null ;;
            esac
        } ; } 2>&1 )
        t1=$(date +%s%N)
        echo "$((t1 - t0)) $cpu"' _ "$1" "$2" "$KNOCK" "$DIR/zeros")
    if [ "$1" = up ]; then
        for _ in $(seq 200); do [ -e "$DIR/sink.count" ] && break; sleep 0.05; done
        if [ "$(cat "$DIR/sink.count" 2>/dev/null)" != "$BYTES" ]; then
            echo "upload ($2): the sink got $(cat "$DIR/sink.count" 2>/dev/null) bytes, not $BYTES" >&2
            exit 1
        fi
    fi
    awk '{printf "%s %.3f\n", $1, $2 + $3}' <<<"$out"
}
for _ in $(seq "$REPEAT"); do
    for dir in down up; do
        for method in direct proxy; do
            transfer "$dir" "$method" >> "$DIR/tp-$dir-$method"
        done
    done
done
mbs() { awk -v b="$BYTES" '{printf "%.0f\n", b / ($1 / 1e9) / 1e6}' "$1"; }
echo
echo "relay throughput, ${MIB} MiB each way, $REPEAT runs each (MB/s: median, best; CPU s per GB: median)"
printf '%-10s %16s %16s %12s %12s %9s %9s\n' direction "direct" "proxy" "median ratio" "best ratio" "cpu direct" "cpu proxy"
for dir in down up; do
    dm=$(mbs "$DIR/tp-$dir-direct" | median); db=$(mbs "$DIR/tp-$dir-direct" | sort -n | tail -1)
    pm=$(mbs "$DIR/tp-$dir-proxy" | median); pb=$(mbs "$DIR/tp-$dir-proxy" | sort -n | tail -1)
    cd_=$(awk -v b="$BYTES" '{print $2 / (b / 1e9)}' "$DIR/tp-$dir-direct" | median)
    cp_=$(awk -v b="$BYTES" '{print $2 / (b / 1e9)}' "$DIR/tp-$dir-proxy" | median)
    printf '%-10s %16s %16s %11s%% %11s%% %9.3f %9.3f\n' "$dir" "$dm, $db" "$pm, $pb" \
        "$(awk -v d="$dm" -v p="$pm" 'BEGIN {printf "%.0f", 100 * p / d}')" \
        "$(awk -v d="$db" -v p="$pb" 'BEGIN {printf "%.0f", 100 * p / d}')" "$cd_" "$cp_"
done
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
