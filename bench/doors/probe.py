#!/usr/bin/env python3
"""Door latency probe for bench/doors.sh, run in the client namespace.

For each source address in turn: send the door's knock (UDP hits) from it, then a TCP SYN
to the guarded port every --interval-us from the same address, each on a new non-blocking
socket, until one gets through (connected, or refused by a host that got the SYN). A SYN
the firewall drops stays unanswered, so the first SYN through tells when the door opened,
to within one interval. Prints one line per knock: the source and the microseconds from
the last knock packet to the send of the first SYN that got through ("-" if none did
within --timeout).
"""

import argparse
import errno
import select
import socket
import time


def knock(src, server, hits):
    """Sends the hits from src; returns the time just before the last one left."""
    last = 0
    for i, (port, proto) in enumerate(hits):
        if proto != "udp":
            raise SystemExit("probe.py sends UDP hits only")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((src, 0))
        if i == len(hits) - 1:
            last = time.perf_counter_ns()
        s.sendto(b"k", (server, port))
        s.close()
    return last


def probe(src, server, port, interval_ns, timeout_ns, t0):
    ep = select.epoll()
    socks = {}
    try:
        next_at = time.perf_counter_ns()
        while True:
            now = time.perf_counter_ns()
            if now - t0 > timeout_ns:
                return None
            if now >= next_at:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                s.bind((src, 0))
                sent = time.perf_counter_ns()
                s.connect_ex((server, port))
                socks[s.fileno()] = (s, sent)
                ep.register(s.fileno(), select.EPOLLOUT)
                next_at = sent + interval_ns
            for fd, _ in ep.poll(0):
                s, sent = socks[fd]
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                ep.unregister(fd)
                # A retransmitted SYN (1 s later) getting through is not a first SYN.
                if err in (0, errno.ECONNREFUSED) and time.perf_counter_ns() - sent < 500_000_000:
                    return sent - t0
    finally:
        for s, _ in socks.values():
            s.close()
        ep.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--knock", required=True, help="e.g. 7000:udp,8000:udp")
    p.add_argument("--sources", required=True, help="comma-separated source addresses")
    p.add_argument("--interval-us", type=int, default=100)
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--pause", type=float, default=0.2, help="seconds between knocks")
    a = p.parse_args()
    hits = []
    for h in a.knock.split(","):
        port, _, proto = h.partition(":")
        hits.append((int(port), proto or "udp"))
    for src in a.sources.split(","):
        t0 = knock(src, a.server, hits)
        took = probe(src, a.server, a.port, a.interval_us * 1000, int(a.timeout * 1e9), t0)
        print(f"{src}\t{'-' if took is None else took // 1000}", flush=True)
        time.sleep(a.pause)


if __name__ == "__main__":
    main()
