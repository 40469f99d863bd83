#!/usr/bin/env bash
# Door benchmark: from the last knock packet to the door open, for
#   nft      knockd-lite with an nftables door (Nft_Set: the address goes into a set over
#            netlink, no process started),
#   iptables knockd-lite with the classic iptables command door,
#   knockd   Debian's knockd 0.8 with the same iptables door.
# "Open" is a TCP SYN to the guarded port getting through a default-drop firewall: after
# each knock (from a fresh source address, so no door has to close first) the client sends
# a SYN every --interval-us until one is answered (bench/doors/probe.py). Median and worst
# over --knocks knocks per door.
#
# Run as root from anywhere in the repository:  bench/doors.sh [options]
# Everything happens in a namespace pair this script makes (192.0.2.0/24, 2001:db8::/64
# unused) and removes on exit; every nft/iptables command runs inside its server namespace.

set -euo pipefail

usage() {
    cat <<'USAGE'
usage: bench/doors.sh [--knocks N] [--doors "nft iptables knockd"] [--interval-us US]
                      [--no-build]

  --knocks       knocks per door (default 60, at least 50 for the README figures)
  --doors        which doors to measure (default "nft iptables knockd")
  --interval-us  microseconds between probe SYNs: the figures' resolution (default 100)
  --no-build     use the release knockd-lite already built

Environment: KNOCKD_LITE=PATH runs that knockd-lite binary; KEEP=1 keeps the scratch folder.
USAGE
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KNOCKS=60
DOORS="nft iptables knockd"
INTERVAL=100
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --knocks) KNOCKS=$2; shift ;;
        --doors) DOORS=$2; shift ;;
        --interval-us) INTERVAL=$2; shift ;;
        --no-build) BUILD=0 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "doors.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

die() { echo "doors.sh: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }
[ "$(id -u)" = 0 ] || die "needs root (network namespaces, firewalls in them)"
[ "$KNOCKS" -ge 1 ] 2>/dev/null || die "--knocks must be a whole number"
[ "$KNOCKS" -le 200 ] || die "--knocks: at most 200 (one client address each)"
for tool in ip nft iptables python3; do command -v "$tool" >/dev/null || die "$tool is missing"; done

LITE=${KNOCKD_LITE:-$ROOT/target/release/knockd-lite}
KNOCKD=/usr/sbin/knockd
PORT=2222
KNOCK="7000:udp,8000:udp"
if [ "$BUILD" = 1 ] && [ -z "${KNOCKD_LITE:-}" ]; then
    log "building knockd-lite (release)"
    (cd "$ROOT" && cargo build --release -q -p knockd-lite)
fi
[ -x "$LITE" ] || die "$LITE is missing (build it, or drop --no-build)"

ID=kdb$$
CLIENT=${ID}c SERVER=${ID}s CIF=${ID}c0 SIF=${ID}s0
WORK=$(mktemp -d /tmp/knock-doors-bench.XXXXXX)
OUT=$ROOT/bench/out
mkdir -p "$OUT"
STAMP=$(date +%Y%m%d-%H%M%S)
PIDS=()
teardown() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    # knockd 0.8 can hold SIGTERM blocked (seen: SigBlk 0x4000 in its status after 60
    # knocks, its stop children asleep), so a server still there after 5 s is killed.
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
    for ns in "$CLIENT" "$SERVER"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
}
cleanup() {
    teardown
    if [ -n "${KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

SOURCES=$(seq 10 $((9 + KNOCKS)) | sed 's/^/192.0.2./' | paste -sd,)

setup_pair() {
    ip netns add "$CLIENT"
    ip netns add "$SERVER"
    ip link add "$CIF" netns "$CLIENT" type veth peer name "$SIF" netns "$SERVER"
    ip -n "$CLIENT" addr add 192.0.2.1/24 dev "$CIF"
    for a in ${SOURCES//,/ }; do ip -n "$CLIENT" addr add "$a/24" dev "$CIF"; done
    ip -n "$SERVER" addr add 192.0.2.2/24 dev "$SIF"
    for ns in "$CLIENT" "$SERVER"; do ip -n "$ns" link set lo up; done
    ip -n "$CLIENT" link set "$CIF" up
    ip -n "$SERVER" link set "$SIF" up
    # The guarded service: accepts and closes.
    ip netns exec "$SERVER" python3 -c "
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', $PORT)); s.listen(1024)
while True:
    c, _ = s.accept(); c.close()
" &
    PIDS+=($!)
}

server_nft() { ip netns exec "$SERVER" nft "$@"; }
server_iptables() { ip netns exec "$SERVER" iptables "$@"; }

firewall_nft() {
    server_nft -f - <<NFT
table inet knock {
	set ssh4 {
		type ipv4_addr
		flags timeout
	}
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		iif "lo" accept
		tcp dport $PORT ip saddr @ssh4 accept
	}
}
NFT
}

firewall_iptables() {
    server_iptables -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    server_iptables -A INPUT -i lo -j ACCEPT
    server_iptables -P INPUT DROP
}

IPT_DOOR="    Start_Command = /usr/sbin/iptables -I INPUT -s %IP% -p tcp --dport $PORT -j ACCEPT
    Cmd_Timeout   = 600
    Stop_Command  = /usr/sbin/iptables -D INPUT -s %IP% -p tcp --dport $PORT -j ACCEPT"

write_conf() { # $1 = door lines
    cat > "$WORK/$door.conf" <<CONF
[options]
    LogFile = $WORK/$door.log
[bench]
    Sequence = 7000:udp,8000:udp
    Seq_Timeout = 5
$1
CONF
}

wait_log() { # $1 file, $2 text
    for _ in $(seq 200); do grep -qF -- "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
    die "timed out waiting for '$2' in $1"
}

RESULTS=()
for door in $DOORS; do
    log "door: $door ($KNOCKS knocks)"
    setup_pair
    case "$door" in
        nft)
            firewall_nft
            write_conf "    Nft_Set = inet knock ssh4
    Cmd_Timeout = 600"
            ip netns exec "$SERVER" "$LITE" -i "$SIF" -c "$WORK/$door.conf" --state-dir "$WORK/state-$door" \
                > "$WORK/$door.out" 2>&1 &
            PIDS+=($!)
            wait_log "$WORK/$door.log" "listening on"
            ;;
        iptables)
            firewall_iptables
            write_conf "$IPT_DOOR"
            ip netns exec "$SERVER" "$LITE" -i "$SIF" -c "$WORK/$door.conf" --state-dir "$WORK/state-$door" \
                > "$WORK/$door.out" 2>&1 &
            PIDS+=($!)
            wait_log "$WORK/$door.log" "listening on"
            ;;
        knockd)
            [ -x "$KNOCKD" ] || die "$KNOCKD is missing (apt-get install knockd)"
            firewall_iptables
            write_conf "$IPT_DOOR"
            ip netns exec "$SERVER" "$KNOCKD" -i "$SIF" -c "$WORK/$door.conf" > "$WORK/$door.out" 2>&1 &
            PIDS+=($!)
            wait_log "$WORK/$door.log" "listening on"
            ;;
        *) die "unknown door $door (nft, iptables, knockd)" ;;
    esac
    ip netns exec "$CLIENT" python3 "$ROOT/bench/doors/probe.py" --server 192.0.2.2 --port "$PORT" \
        --knock "$KNOCK" --sources "$SOURCES" --interval-us "$INTERVAL" > "$WORK/$door.tsv"
    cp "$WORK/$door.tsv" "$OUT/doors-$STAMP-$door.tsv"
    RESULTS+=("$door")
    teardown
done

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
{
    echo "door benchmark $STAMP: $KNOCKS knocks per door, probe every ${INTERVAL} us, load average $LOAD"
    printf '%-9s %8s %10s %10s %10s\n' door opened "median ms" "p90 ms" "worst ms"
    for door in "${RESULTS[@]}"; do
        python3 - "$door" "$OUT/doors-$STAMP-$door.tsv" <<'PY'
import sys
door, path = sys.argv[1], sys.argv[2]
vals, missing = [], 0
for line in open(path):
    _, us = line.split()
    if us == "-":
        missing += 1
    else:
        vals.append(int(us) / 1000)
vals.sort()
n = len(vals)
def q(p):
    return vals[min(n - 1, int(p * n))] if n else float("nan")
med = (vals[(n - 1) // 2] + vals[n // 2]) / 2 if n else float("nan")
print(f"{door:<9} {n:>5}/{n + missing:<3} {med:>9.2f} {q(0.9):>10.2f} {vals[-1] if n else float('nan'):>10.2f}")
PY
    done
} | tee "$OUT/doors-$STAMP.txt"
