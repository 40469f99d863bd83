#!/usr/bin/env python3
"""Independent reference implementation of knock-hmac-v1 (see knock-hmac-v1.md).

Used to compute the test vectors pinned in knock-core/src/hmac.rs. Standard library only.
usage: knock_hmac_v1_ref.py   (prints the vectors)
"""
import hashlib, hmac, struct

FLAG_NAMES = ["fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr"]

def words(key, door, counter):
    i = 0
    while True:
        msg = b"knock-hmac-v1\x00" + door.encode() + b"\x00" + struct.pack(">QI", counter, i)
        block = hmac.new(key, msg, hashlib.sha256).digest()
        for j in range(0, 32, 2):
            yield struct.unpack(">H", block[j:j + 2])[0]
        i += 1

def derive(key, door, counter, n=4, lo=1024, hi=65535, protocols="tcp", flags=None):
    pool = hi - lo + 1
    limit = 65536 - (65536 % pool)
    ws = words(key, door, counter)
    ports = []
    while len(ports) < n:
        w = next(ws)
        if w >= limit:
            continue
        p = lo + w % pool
        if p not in ports:
            ports.append(p)
    out = []
    for p in ports:
        proto = protocols
        if protocols == "mixed":
            proto = "tcp" if next(ws) % 2 == 0 else "udp"
        s = f"{p}:{proto}"
        if proto == "tcp" and flags:
            s += ":" + "+".join(f for f in FLAG_NAMES if f in flags)
        out.append(s)
    return ",".join(out)

if __name__ == "__main__":
    key = b"correct horse battery staple"
    print("1", derive(key, "ssh", 1_700_000_000 // 30))
    print("2", derive(key, "ssh", 0, n=6, lo=7000, hi=7009, protocols="mixed"))
    print("3", derive(key, "web door \u2713", 1_800_000_000 // 60, n=3, protocols="udp"))
    print("4", derive(key, "flags", 123_456, protocols="mixed", flags={"fin", "psh"}))
