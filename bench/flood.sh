#!/usr/bin/env bash
# Flood benchmark: knockd-lite and Debian's knockd 0.8 under a spoofed-source SYN flood on
# a door's first port from a given number of sources, with one genuine knock typed with a
# given delay between hits in the middle; idle knock latency; and the command flood (a plain
# sequence completed by 1,000 or 10,000 spoofed sources at once).
#
# Run as root from anywhere in the repository:  bench/flood.sh [--quick] [options]
# See bench/README.md for what each figure means. Everything happens in a namespace pair
# this script creates (192.0.2.1 client, 192.0.2.2 server, joined by a veth pair) and
# removes on exit; spoofed sources are 198.18.0.0/15; every flood stops by itself.

set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/flood.sh [--quick] [--sources "32768 131072"] [--delays "0 500 1000"]
                      [--rates "0"] [--repeat N] [--duration S] [--after S]
                      [--idle-knocks N] [--completions "1000 10000"]
                      [--knockd-completions "1000"] [--servers "knockd-lite knockd"]
                      [--knock PATH] [--no-build] [--no-pin] [--nft]

  --quick         2^17 sources, delays 0 and 1000, one flood each, 5 idle knocks, 1,000
                  completions (about 3 minutes)
  --sources       spoofed source counts, spread over 198.18.0.0/15 (default
                  "32768 131072", at most 131072)
  --delays        ms between the genuine knock's hits, knock -d (default "0 500 1000")
  --rates         flood rates in packets/s; 0 = the generator's full rate (default "0")
  --repeat        floods per server and cell (default 10): one knock is one sample
  --duration      seconds of flood per run (default 6, at most 30)
  --after         seconds watched after each flood (default 5)
  --idle-knocks   knocks for the idle latency figures (default 20; 0 skips them)
  --completions   command flood: spoofed sources that each complete the door once, all
                  at once ("" skips it; default "1000 10000")
  --knockd-completions  the same for knockd 0.8, which forks a process per completion
                  (default "1000": 10,000 would fork 30,000 processes on a shared machine)
  --servers       which servers to run (default "knockd-lite knockd"); lite-nosandbox is
                  knockd-lite --no-sandbox (one process, as before issue 17)
  --sandbox-both  knockd-lite with its sandboxed worker and with --no-sandbox, in turns
                  (the same as --servers "knockd-lite lite-nosandbox")
  --knock         knock client for the genuine knocks (default /usr/bin/knock, else
                  target/release/knock)
  --no-build      use the release binaries already built
  --no-pin        do not pin the generator to CPU 0 and the server to CPU 1
  --nft           give knockd-lite's door an nftables set too (Nft_Set, in a set made
                  in the server namespace), so each knock also adds an element over netlink

Environment: KNOCKD_LITE=PATH runs that knockd-lite binary instead of target/release/;
KNOCKD_LITE_ARGS adds flags to knockd-lite (e.g. "--max-attempts 5000");
KEEP=1 keeps the scratch folder (configs, logs, captures) for a look afterwards.
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RATES="0"
SOURCES="32768 131072"
DELAYS="0 500 1000"
DURATION=6
AFTER=5
IDLE_KNOCKS=20
COMPLETIONS="1000 10000"
KNOCKD_COMPLETIONS="1000"
SERVERS="knockd-lite knockd"
KNOCK=""
BUILD=1
PIN=1
REPEAT=10
MODE=full
NFT=0

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) MODE=quick; SOURCES="131072"; DELAYS="0 1000"; REPEAT=1; AFTER=3
                 IDLE_KNOCKS=5; COMPLETIONS="1000"; KNOCKD_COMPLETIONS="1000" ;;
        --rates) RATES=$2; shift ;;
        --sources) SOURCES=$2; shift ;;
        --delays) DELAYS=$2; shift ;;
        --completions) COMPLETIONS=$2; shift ;;
        --knockd-completions) KNOCKD_COMPLETIONS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --after) AFTER=$2; shift ;;
        --idle-knocks) IDLE_KNOCKS=$2; shift ;;
        --servers) SERVERS=$2; shift ;;
        --sandbox-both) SERVERS="knockd-lite lite-nosandbox" ;;
        --knock) KNOCK=$2; shift ;;
        --repeat) REPEAT=$2; shift ;;
        --no-build) BUILD=0 ;;
        --no-pin) PIN=0 ;;
        --nft) NFT=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "flood.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

die() { echo "flood.sh: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

[ "$REPEAT" -ge 1 ] 2>/dev/null || die "--repeat must be a whole number, at least 1"
[ "$AFTER" -ge 1 ] 2>/dev/null || die "--after must be a whole number of seconds, at least 1"
for n in $SOURCES $COMPLETIONS $KNOCKD_COMPLETIONS; do
    { [ "$n" -ge 1 ] && [ "$n" -le 131072 ]; } 2>/dev/null ||
        die "source and completion counts are between 1 and 131072, not $n"
done
for d in $DELAYS; do
    [ "$d" -ge 0 ] 2>/dev/null || die "--delays: $d is not a whole number of ms"
done
[ "$(id -u)" = 0 ] || die "needs root (network namespaces, AF_PACKET)"
for tool in ip tcpdump taskset awk getconf ps; do
    command -v "$tool" >/dev/null || die "$tool is missing"
done

KNOCKD=/usr/sbin/knockd
LITE=${KNOCKD_LITE:-$ROOT/target/release/knockd-lite}
FLOOD=$ROOT/bench/flood/target/release/knock-flood
DOOR_PORTS=(7000 8000 9000)
CLIENT_IP=192.0.2.1
SERVER_IP=192.0.2.2
HZ=$(getconf CLK_TCK)

if [ "$BUILD" = 1 ]; then
    log "building release binaries (knockd-lite, knock, knock-flood)"
    cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p knockd-lite -p knock-cli --bins
    cargo build --release --quiet --manifest-path "$ROOT/bench/flood/Cargo.toml"
fi
[ -x "$FLOOD" ] || die "$FLOOD is missing (run without --no-build)"
if [ -z "$KNOCK" ]; then
    if [ -x /usr/bin/knock ]; then KNOCK=/usr/bin/knock; else KNOCK=$ROOT/target/release/knock; fi
fi
[ -x "$KNOCK" ] || die "knock client $KNOCK is missing"

# ---------------------------------------------------------------- namespaces and cleanup
ID=kbf$(( $$ % 100000 ))
CNS=${ID}c SNS=${ID}s CIF=${ID}c0 SIF=${ID}s0
WORK=$(mktemp -d /tmp/knock-bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()

# forget PID: a process that has been waited for leaves the cleanup list, so a later
# process that reuses its id is never signalled.
forget() {
    local keep=() pid
    for pid in "${PIDS[@]}"; do
        [ "$pid" = "$1" ] || keep+=("$pid")
    done
    PIDS=("${keep[@]}")
}

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    ip netns del "$CNS" 2>/dev/null || true
    ip netns del "$SNS" 2>/dev/null || true
    if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns del "$CNS" 2>/dev/null || true
ip netns del "$SNS" 2>/dev/null || true
ip netns add "$CNS"
ip netns add "$SNS"
ip link add "$CIF" netns "$CNS" type veth peer name "$SIF" netns "$SNS"
ip -n "$CNS" addr add "$CLIENT_IP/24" dev "$CIF"
ip -n "$SNS" addr add "$SERVER_IP/24" dev "$SIF"
for ns in "$CNS" "$SNS"; do ip -n "$ns" link set lo up; done
ip -n "$CNS" link set "$CIF" up
ip -n "$SNS" link set "$SIF" up
# Spoofed sources must reach the server's capture; the server has no route back to
# 198.18.0.0/15, so its RSTs to them die in its own routing table.
ip netns exec "$SNS" sysctl -qw net.ipv4.conf.all.rp_filter=0 "net.ipv4.conf.$SIF.rp_filter=0"
if [ "$NFT" = 1 ]; then
    command -v nft >/dev/null || die "--nft needs nft (apt-get install nftables)"
    # Only the set (no chain): the door's element is what is measured, not a firewall.
    ip netns exec "$SNS" nft 'add table inet knockbench; add set inet knockbench door4 { type ipv4_addr; flags timeout; }'
fi
SERVER_MAC=$(ip netns exec "$SNS" cat "/sys/class/net/$SIF/address")

if [ "$PIN" = 1 ]; then
    GEN_PIN=(taskset -c 0) SRV_PIN=(taskset -c 1)
else
    GEN_PIN=() SRV_PIN=()
fi

# ---------------------------------------------------------------- helpers
# CPU ticks (utime + stime) of a process; the comm field may hold spaces.
proc_ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'; }
proc_hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
# knockd-lite's sandboxed worker (its child named knockd-worker), if it has one.
worker_of() {
    local c
    for c in $(cat "/proc/$1/task/$1/children" 2>/dev/null); do
        [ "$(cat "/proc/$c/comm" 2>/dev/null)" = knockd-worker ] && { echo "$c"; return; }
    done
}
# The server's CPU ticks: knockd-lite's monitor and worker together (the worker reads the
# packets, so most of a flood's CPU is there).
cpu_ticks() {
    local t w
    t=$(proc_ticks "$1")
    w=$(worker_of "$1")
    [ -n "$w" ] && t=$((t + $(proc_ticks "$w")))
    echo "${t:-0}"
}
# Peak RSS in KiB: the sum of monitor and worker; rss_each prints "monitor+worker" in MiB.
hwm_kib() {
    local h w
    h=$(proc_hwm "$1")
    w=$(worker_of "$1")
    [ -n "$w" ] && h=$((h + $(proc_hwm "$w")))
    echo "$h"
}
rss_each() {
    local w
    w=$(worker_of "$1")
    awk -v m="$(proc_hwm "$1")" -v w="$([ -n "$w" ] && proc_hwm "$w" || echo -)" \
        'BEGIN { if (w == "-") printf "%.1f", m / 1024; else printf "%.1f+%.1f", m / 1024, w / 1024 }'
}
lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
now() { date +%s.%N; }
iface_stat() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3"; }

# write_conf DIR SERVER [commands]: the same door for both servers. The command appends the
# time it ran and the knocker's address to DIR/marks. With --nft knockd-lite's door also
# fills a set. For the command flood ("commands") the start command takes CMD_SECONDS, as a
# slow firewall tool would, and a stop command follows CMD_TIMEOUT seconds later (knockd then
# forks a process for each completion).
CMD_SECONDS=1
CMD_TIMEOUT=2
write_conf() {
    if [ "${3:-}" = commands ]; then
        cat >"$1/knockd.conf" <<EOF
[options]
    logfile = $1/server.log

[bench]
    sequence      = 7000,8000,9000
    seq_timeout   = 5
    tcpflags      = syn
    start_command = sleep $CMD_SECONDS; echo %IP% >> $1/marks
    cmd_timeout   = $CMD_TIMEOUT
    stop_command  = echo %IP% >> $1/stops
EOF
        return
    fi
    cat >"$1/knockd.conf" <<EOF
[options]
    logfile = $1/server.log

[bench]
    sequence    = 7000,8000,9000
    seq_timeout = 5
    tcpflags    = syn
    command     = date +"%s.%N %IP%" >> $1/marks
EOF
    if [ "$NFT" = 1 ] && [ "$2" != knockd ]; then
        printf '    nft_set     = inet knockbench door4\n    cmd_timeout = 60\n' >>"$1/knockd.conf"
    fi
}

SERVER_PID=""
# start_server NAME DIR [commands]: starts the server in the server namespace, waits until
# its log says it listens. Returns 1 (and leaves the reason in DIR/failure) if it cannot.
start_server() {
    local name=$1 dir=$2 bin extra=()
    case "$name" in
        knockd) bin=$KNOCKD ;;
        knockd-lite | lite-nosandbox)
            bin=$LITE
            [ "$name" = lite-nosandbox ] && extra+=(--no-sandbox)
            # State (HMAC counters) goes to the scratch folder, not /var/lib.
            if "$LITE" --help 2>/dev/null | grep -q -- --state-dir; then
                extra+=(--state-dir "$dir/state")
            fi
            # shellcheck disable=SC2206 # word splitting wanted: extra flags
            extra+=(${KNOCKD_LITE_ARGS:-})
            ;;
        *) die "unknown server $name" ;;
    esac
    [ -x "$bin" ] || { echo "$bin is missing" >"$dir/failure"; return 1; }
    write_conf "$dir" "$name" "${3:-}"
    : >"$dir/marks"
    : >"$dir/stops"
    ip netns exec "$SNS" "${SRV_PIN[@]}" "$bin" -i "$SIF" -c "$dir/knockd.conf" "${extra[@]}" \
        </dev/null >"$dir/server.out" 2>&1 &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    local i
    for i in $(seq 100); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            wait "$SERVER_PID" && rc=0 || rc=$?
            forget "$SERVER_PID"
            echo "exited with status $rc: $(tr '\n' ' ' <"$dir/server.out" | cut -c1-200)" >"$dir/failure"
            SERVER_PID=""
            return 1
        fi
        if grep -q "listening on" "$dir/server.log" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "not listening after 10 s" >"$dir/failure"
    stop_server
    return 1
}

stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    local i
    for i in $(seq 20); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    forget "$SERVER_PID"
    SERVER_PID=""
}

CAP_PID=""
# start_capture FILE: records the genuine knock packets (from the client address only, so
# the kernel filter drops the flood before it reaches tcpdump) with kernel timestamps.
start_capture() {
    ip netns exec "$SNS" tcpdump -i "$SIF" -nn -U --immediate-mode -Z root -w "$1" \
        "tcp and src host $CLIENT_IP and tcp[tcpflags] & tcp-syn != 0" \
        </dev/null 2>"$1.err" &
    CAP_PID=$!
    PIDS+=("$CAP_PID")
    local i
    for i in $(seq 50); do
        grep -q "listening on" "$1.err" 2>/dev/null && return 0
        sleep 0.1
    done
    die "tcpdump did not start: $(cat "$1.err")"
}

stop_capture() {
    kill -INT "$CAP_PID" 2>/dev/null || true
    wait "$CAP_PID" 2>/dev/null || true
    forget "$CAP_PID"
    CAP_PID=""
}

# last_port_times PCAP: capture timestamps of the SYNs to the door's last port.
last_port_times() {
    tcpdump -nn -tt -r "$1" "tcp dst port ${DOOR_PORTS[2]}" 2>/dev/null | awk '{ print $1 }'
}

# latencies PCAP MARKS: for every command run, milliseconds since the latest knock
# packet to the last port that came before it.
latencies() {
    { last_port_times "$1" | sed 's/$/ k/'; awk '{ print $1, "m" }' "$2"; } |
        sort -n -k1,1 |
        awk '$2 == "k" { k = $1 } $2 == "m" && k != "" { printf "%.3f\n", ($1 - k) * 1000; k = "" }'
}

# descendants PID: how many processes descend from PID (its commands and theirs), not
# counting knockd-lite's stop keeper, which lives as long as the daemon does.
descendants() {
    ps -e -o pid=,ppid=,comm= | awk -v root="$1" '
        $3 != "knockd-keeper" && $3 != "knockd-worker" { parent[$1] = $2 }
        END {
            n = 0
            for (p in parent) {
                q = parent[p]; hops = 0
                while (q != "" && q != 0 && q != root && hops < 64) { q = parent[q]; hops++ }
                if (q == root) n++
            }
            print n
        }'
}

threads_of() { awk '/^Threads:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# knock_and_wait DIR N: one knock, then wait up to 3 s for the Nth command line.
knock_and_wait() {
    ip netns exec "$CNS" "$KNOCK" "$SERVER_IP" "${DOOR_PORTS[@]}" >/dev/null 2>&1 || true
    local i
    for i in $(seq 300); do
        [ "$(lines "$1/marks")" -ge "$2" ] && return 0
        sleep 0.01
    done
    return 1
}

# command_floor: the part of every latency figure that is the command itself. A shell
# forks, starts /bin/sh -c and that runs date, 20 times; prints the median and the worst
# milliseconds from just before the fork to the time date prints.
command_floor() {
    "${SRV_PIN[@]}" bash -c 'for i in $(seq 20); do
            t0=$EPOCHREALTIME; t1=$(/bin/sh -c "date +%s.%N"); echo "$t0 $t1"
        done' |
        awk '{ printf "%.3f\n", ($2 - $1) * 1000 }' | sort -n |
        awk '{ v[NR] = $1 } END { printf "median %.2f ms, worst %.2f ms\n", (v[10] + v[11]) / 2, v[NR] }'
}

# ---------------------------------------------------------------- the runs
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=$ROOT/bench/out
mkdir -p "$OUT"
TSV=$OUT/flood-$STAMP.tsv
TXT=$OUT/flood-$STAMP.txt
printf 'server\trate\tsources\tdelay_ms\tsent\tsent_pps\tdelivered\tknock_on_wire\tdetected\tlatency_ms\tcpu_flood_s\tcpu_flood_pct\tcpu_after_s\tbusy_after_s\tpeak_rss_mib\tlog_lines\tnote\tload1\trss_each_mib\n' >"$TSV"
CMD_TSV=$OUT/commands-$STAMP.tsv
printf 'server\tcompletions\tsent\tpeak_processes\tpeak_threads\tstarts_run\tstops_run\tlog_lines\topen_sesame_lines\theld_back_lines\tquiet_after_s\tpeak_rss_mib\tload1\n' >"$CMD_TSV"
IDLE_TSV=$OUT/idle-$STAMP.tsv
printf 'server\tknocks\tdetected\tmedian_ms\tworst_ms\tnote\n' >"$IDLE_TSV"

idle_run() {
    local name=$1
    local dir=$WORK/$name-idle
    mkdir -p "$dir"
    log "$name: idle latency over $IDLE_KNOCKS knocks"
    if ! start_server "$name" "$dir"; then
        printf '%s\t%s\t-\t-\t-\tdid not start: %s\n' "$name" "$IDLE_KNOCKS" "$(cat "$dir/failure")" >>"$IDLE_TSV"
        return
    fi
    start_capture "$dir/knocks.pcap"
    local n ok=0
    for n in $(seq "$IDLE_KNOCKS"); do
        if knock_and_wait "$dir" $((ok + 1)); then ok=$((ok + 1)); fi
        sleep 0.1
    done
    stop_capture
    stop_server
    latencies "$dir/knocks.pcap" "$dir/marks" | sort -n >"$dir/lat"
    local median worst
    median=$(awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }' "$dir/lat")
    worst=$(tail -n1 "$dir/lat")
    printf '%s\t%s\t%s\t%s\t%s\t\n' "$name" "$IDLE_KNOCKS" "$ok" "$median" "${worst:--}" >>"$IDLE_TSV"
}

flood_run() {
    local name=$1 rate=$2 sources=$3 delay=$4 run=$5
    local dir=$WORK/$name-$rate-$sources-$delay-$run
    mkdir -p "$dir"
    log "$name: flood at ${rate/#0/full rate} from $sources sources for $DURATION s, knock -d $delay at $(awk -v d="$DURATION" 'BEGIN { print d / 2 }') s (run $run)"
    if ! start_server "$name" "$dir"; then
        printf '%s\t%s\t%s\t%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\tdid not start: %s\t-\n' "$name" "$rate" "$sources" "$delay" "$(cat "$dir/failure")" >>"$TSV"
        return
    fi
    start_capture "$dir/knocks.pcap"
    local pid=$SERVER_PID
    local log0 rx0 t0 t1 t2 flood_pid load1
    load1=$(cut -d' ' -f1 /proc/loadavg)
    log0=$(lines "$dir/server.log")
    rx0=$(iface_stat "$SNS" "$SIF" rx_packets)
    t0=$(cpu_ticks "$pid")
    ip netns exec "$CNS" "${GEN_PIN[@]}" "$FLOOD" -i "$CIF" --dst-mac "$SERVER_MAC" \
        --dst "$SERVER_IP" -p "${DOOR_PORTS[0]}" -n "$sources" -r "$rate" -d "$DURATION" \
        </dev/null >"$dir/flood.out" 2>&1 &
    flood_pid=$!
    PIDS+=("$flood_pid")
    sleep "$(awk -v d="$DURATION" 'BEGIN { print d / 2 }')"
    ip netns exec "$CNS" "$KNOCK" -d "$delay" "$SERVER_IP" "${DOOR_PORTS[@]}" >/dev/null 2>&1 || true
    wait "$flood_pid" || die "knock-flood failed: $(cat "$dir/flood.out")"
    forget "$flood_pid"
    t1=$(cpu_ticks "$pid")
    local rx1
    rx1=$(iface_stat "$SNS" "$SIF" rx_packets)
    # Watch the server after the flood: total CPU, and when it was last busy (a sample
    # of 0.2 s with more than 25% of a core).
    local busy_after=0 prev=$t1 cur i
    for i in $(seq $((AFTER * 5))); do
        sleep 0.2
        cur=$(cpu_ticks "$pid")
        if [ $((cur - prev)) -gt $((HZ / 20)) ]; then
            busy_after=$(awk -v i="$i" 'BEGIN { printf "%.1f", i * 0.2 }')
        fi
        prev=$cur
    done
    t2=$cur
    local hwm loglines in_set="" each
    hwm=$(hwm_kib "$pid")
    each=$(rss_each "$pid")
    loglines=$(( $(lines "$dir/server.log") - log0 ))
    if [ "$NFT" = 1 ] && [ "$name" != knockd ]; then
        # The knocker's element, read back from the kernel before a clean stop takes it out.
        in_set=$(ip netns exec "$SNS" nft list set inet knockbench door4 2>/dev/null |
            grep -c "$CLIENT_IP" || true)
    fi
    stop_capture
    stop_server

    local sent sent_pps on_wire detected latency note=""
    sent=$(sed -n 's/.*sent=\([0-9]*\).*/\1/p' "$dir/flood.out")
    sent_pps=$(sed -n 's/.* rate=\([0-9]*\).*/\1/p' "$dir/flood.out")
    on_wire=$(tcpdump -nn -r "$dir/knocks.pcap" 2>/dev/null | wc -l)
    if [ "$(lines "$dir/marks")" -gt 0 ]; then detected=yes; else detected=no; fi
    latency=$(latencies "$dir/knocks.pcap" "$dir/marks" | head -n1)
    if [ "$on_wire" -lt 3 ]; then
        note="knock lost before the server's capture ($on_wire/3 on the interface): run not valid"
    elif [ "$detected" = no ]; then
        # What the server's log says about the genuine knocker, to tell a lost packet
        # from a sequence the server dropped.
        note="log for $CLIENT_IP: $({ grep -F "$CLIENT_IP:" "$dir/server.log" || true; } | sed 's/^\[[^]]*\] *//' | tr '\n' ';' | cut -c1-120)"
        [ "$note" = "log for $CLIENT_IP: " ] && note="log has nothing from $CLIENT_IP"
    fi
    if [ "$detected" = yes ] && [ "$in_set" = 0 ]; then
        note="knock detected but $CLIENT_IP not in the set: $({ grep -F "nft add" "$dir/server.log" || true; } | tail -n1 | sed 's/^\[[^]]*\] *//' | cut -c1-120)"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s/3\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$name" "$rate" "$sources" "$delay" "$sent" "$sent_pps" "$((rx1 - rx0))" "$on_wire" "$detected" "${latency:--}" \
        "$(awk -v t=$((t1 - t0)) -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }')" \
        "$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v d="$DURATION" 'BEGIN { printf "%.0f", 100 * t / hz / d }')" \
        "$(awk -v t=$((t2 - t1)) -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }')" \
        "$busy_after" \
        "$(awk -v k="$hwm" 'BEGIN { printf "%.1f", k / 1024 }')" \
        "$loglines" "$note" "$load1" "$each" >>"$TSV"
}

# completions_run NAME COUNT: COUNT spoofed sources of 198.18.0.0/15 each send the whole
# sequence once, all first hits, then all second hits, then all third: COUNT completions of
# a plain door within milliseconds. Samples the server's threads and the processes under it
# every 50 ms until it has been quiet (no process under it) for CMD_TIMEOUT + 2 s (so the
# stops have had their time), at most 60 s.
completions_run() {
    local name=$1 count=$2
    local dir=$WORK/$name-commands-$count
    mkdir -p "$dir"
    log "$name: $count spoofed completions of a door whose start command takes $CMD_SECONDS s, stop after $CMD_TIMEOUT s"
    if ! start_server "$name" "$dir" commands; then
        printf '%s\t%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\tdid not start: %s\n' "$name" "$count" "$(cat "$dir/failure")" >>"$CMD_TSV"
        return
    fi
    local pid=$SERVER_PID load1 log0
    load1=$(cut -d' ' -f1 /proc/loadavg)
    log0=$(lines "$dir/server.log")
    ip netns exec "$CNS" "${GEN_PIN[@]}" "$FLOOD" -i "$CIF" --dst-mac "$SERVER_MAC" \
        --dst "$SERVER_IP" --sequence "$(IFS=,; echo "${DOOR_PORTS[*]}")" -n "$count" -d 10 \
        </dev/null >"$dir/flood.out" 2>&1 || die "knock-flood failed: $(cat "$dir/flood.out")"
    local t0 procs threads peak_p=0 peak_t=0 quiet_since="" end
    t0=$(date +%s.%N)
    end=$(awk -v t="$t0" 'BEGIN { printf "%.3f", t + 60 }')
    while :; do
        procs=$(descendants "$pid")
        threads=$(threads_of "$pid")
        [ "$procs" -gt "$peak_p" ] && peak_p=$procs
        [ "$threads" -gt "$peak_t" ] && peak_t=$threads
        local t
        t=$(date +%s.%N)
        if [ "$procs" -eq 0 ]; then
            [ -n "$quiet_since" ] || quiet_since=$t
            awk -v a="$quiet_since" -v b="$t" -v q=$((CMD_TIMEOUT + 2)) 'BEGIN { exit !(b - a >= q) }' && break
        else
            quiet_since=""
        fi
        awk -v a="$t" -v b="$end" 'BEGIN { exit !(a >= b) }' && break
        sleep 0.05
    done
    local quiet hwm
    quiet=$(awk -v a="$t0" -v b="${quiet_since:-$end}" 'BEGIN { printf "%.1f", b - a }')
    hwm=$(hwm_kib "$pid")
    local log_lines open_lines held_lines
    log_lines=$(( $(lines "$dir/server.log") - log0 ))
    open_lines=$(grep -c ': OPEN SESAME$' "$dir/server.log" || true)
    held_lines=$(grep -c 'held back' "$dir/server.log" || true)
    stop_server
    local sent
    sent=$(sed -n 's/.*sent=\([0-9]*\).*/\1/p' "$dir/flood.out")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$name" "$count" "$sent" "$peak_p" "$peak_t" "$(lines "$dir/marks")" "$(lines "$dir/stops")" \
        "$log_lines" "$open_lines" "$held_lines" "$quiet" \
        "$(awk -v k="$hwm" 'BEGIN { printf "%.1f", k / 1024 }')" "$load1" >>"$CMD_TSV"
}

log "namespaces $CNS/$SNS, servers: $SERVERS, rates: $RATES, sources: $SOURCES, delays: $DELAYS, $REPEAT run(s) each, flood $DURATION s, after $AFTER s, knock client $KNOCK"
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
FLOOR=$(command_floor)
# Servers take turns in every cell, so both meet much the same load from the rest of the
# machine.
if [ "$IDLE_KNOCKS" -gt 0 ]; then
    for server in $SERVERS; do
        idle_run "$server"
    done
fi
for rate in $RATES; do
    for sources in $SOURCES; do
        for delay in $DELAYS; do
            for run in $(seq "$REPEAT"); do
                for server in $SERVERS; do
                    flood_run "$server" "$rate" "$sources" "$delay" "$run"
                done
            done
        done
    done
done
for server in $SERVERS; do
    counts=$COMPLETIONS
    [ "$server" = knockd ] && counts=$KNOCKD_COMPLETIONS
    for count in $counts; do
        completions_run "$server" "$count"
    done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- the report
{
    echo "knock flood benchmark, $(date '+%Y-%m-%d %H:%M %Z'), mode $MODE"
    echo "machine: $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), kernel $(uname -r), load average at start $LOAD, at the end $LOAD_END"
    echo "generator pinned to CPU 0 and server to CPU 1: $([ "$PIN" = 1 ] && echo yes || echo no); knock client $KNOCK"
    echo "knockd-lite: ${KNOCKD_LITE:-$(git -C "$ROOT" log -1 --format='%h %s' 2>/dev/null | cut -c1-70)}${KNOCKD_LITE_ARGS:+, extra flags: $KNOCKD_LITE_ARGS}"
    if [ "$NFT" = 1 ]; then
        echo "--nft: knockd-lite's door also adds the knocker to inet knockbench door4 (checked in the kernel after each flood run)"
    fi
    echo
    echo "Flood on port ${DOOR_PORTS[0]} for $DURATION s (rate 0 = generator's full rate) from N sources spread over 198.18.0.0/15,"
    echo "one knock (knock -d DELAY) at $(awk -v d="$DURATION" 'BEGIN { print d / 2 }') s, watched $AFTER s after; Seq_Timeout 5 s"
    echo
    echo "Per cell ($REPEAT run(s) each; runs where the knock did not reach the interface are not counted):"
    awk -F'\t' '
        NR > 1 && $5 != "-" {
            k = $1 SUBSEP $2 SUBSEP $3 SUBSEP $4
            if (!(k in runs)) order[++n] = k
            runs[k]++
            if ($8 != "3/3") { invalid[k]++; next }
            valid[k]++
            if ($9 == "yes") { caught[k]++; lat[k] = lat[k] " " $10 }
            pps[k] = pps[k] " " $6
            cpu[k] = cpu[k] " " $12
            if ($13 + 0 > after[k]) after[k] = $13 + 0
            if ($14 + 0 > busy[k]) busy[k] = $14 + 0
            if ($15 + 0 > rss[k]) rss[k] = $15 + 0
            if ($16 + 0 > logl[k]) logl[k] = $16 + 0
        }
        function median(list,   a, m, i, j, t) {
            m = split(list, a, " ")
            if (m == 0) return "-"
            for (i = 2; i <= m; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
            return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
        }
        function maxof(list,   a, m, i, x) {
            m = split(list, a, " "); x = "-"
            for (i = 1; i <= m; i++) if (x == "-" || a[i] + 0 > x + 0) x = a[i]
            return x
        }
        BEGIN {
            printf "%-14s %6s %7s %6s %8s %9s %9s %9s %9s %8s %8s %6s\n",
                "server", "rate", "sources", "delay", "caught", "sent/s", "latency", "latency", "cpu flood", "cpu after", "peakRSS", "log"
            printf "%-14s %6s %7s %6s %8s %9s %9s %9s %9s %8s %8s %6s\n",
                "", "pkt/s", "", "ms", "", "median", "median ms", "worst ms", "% median", "s max", "MiB max", "max"
        }
        END {
            for (i = 1; i <= n; i++) {
                k = order[i]; split(k, f, SUBSEP)
                printf "%-14s %6s %7s %6s %8s %9.0f %9s %9s %9s %8.2f %8.1f %6d", f[1], (f[2] == 0 ? "full" : f[2]), f[3], f[4],
                    (caught[k] + 0) "/" (valid[k] + 0), median(pps[k]), median(lat[k]), maxof(lat[k]), median(cpu[k]), after[k], rss[k], logl[k]
                if (invalid[k]) printf "  (%d not valid)", invalid[k]
                printf "\n"
            }
        }' "$TSV"
    echo
    echo "Every run:"
    awk -F'\t' 'BEGIN {
            printf "%-14s %6s %7s %5s %9s %9s %5s %8s %9s %12s %9s %8s %8s %6s %5s %11s\n",
                "server", "rate", "sources", "delay", "sent/s", "delivered", "wire", "detected", "latency", "cpu flood", "cpu after", "busy to", "peakRSS", "log", "load", "RSS each"
            printf "%-14s %6s %7s %5s %9s %9s %5s %8s %9s %12s %9s %8s %8s %6s %5s %11s\n",
                "", "pkt/s", "", "ms", "achieved", "to server", "knock", "", "ms", "s (% core)", "s", "s after", "MiB", "lines", "1 min", "mon+worker"
        }
        NR > 1 {
            if ($5 == "-") { printf "%-14s %6s %7s %5s  %s\n", $1, ($2 == 0 ? "full" : $2), $3, $4, $17; next }
            printf "%-14s %6s %7s %5s %9s %9s %5s %8s %9s %12s %9s %8s %8s %6s %5s %11s", $1, ($2 == 0 ? "full" : $2), $3, $4, $6, $7, $8, $9, $10, $11 " (" $12 "%)", $13, $14, $15, $16, $18, $19
            if ($17 != "") printf "  %s", $17
            printf "\n"
        }' "$TSV"
    if [ "$(wc -l <"$CMD_TSV")" -gt 1 ]; then
        echo
        echo "Command flood: N spoofed sources each complete the door once, at once; its start command"
        echo "takes $CMD_SECONDS s and its stop follows $CMD_TIMEOUT s later. knockd-lite flags: ${KNOCKD_LITE_ARGS:-defaults}"
        awk -F'\t' 'BEGIN {
                printf "%-14s %11s %10s %10s %8s %8s %7s %8s %7s %9s %8s %5s\n",
                    "server", "completions", "peak procs", "peak thrds", "starts", "stops", "log", "OPEN", "held", "busy", "peakRSS", "load"
                printf "%-14s %11s %10s %10s %8s %8s %7s %8s %7s %9s %8s %5s\n",
                    "", "", "under it", "", "run", "run", "lines", "SESAME", "back", "to s", "MiB", "1 min"
            }
            NR > 1 {
                if ($3 == "-") { printf "%-14s %11s  %s\n", $1, $2, $13; next }
                printf "%-14s %11s %10s %10s %8s %8s %7s %8s %7s %9s %8s %5s\n", $1, $2, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13
            }' "$CMD_TSV"
    fi
    echo
    echo "Idle latency: last knock packet (kernel capture time) to the command's date +%s.%N"
    echo "(includes starting the command: fork + /bin/sh -c + date alone takes $FLOOR)"
    awk -F'\t' 'BEGIN { printf "%-14s %7s %9s %10s %9s\n", "server", "knocks", "detected", "median ms", "worst ms" }
        NR > 1 {
            if ($3 == "-") { printf "%-14s %7s  %s\n", $1, $2, $6; next }
            printf "%-14s %7s %9s %10s %9s\n", $1, $2, $3, $4, $5
        }' "$IDLE_TSV"
} | tee "$TXT"
echo "written: $TXT $TSV $IDLE_TSV $CMD_TSV" >&2
