#!/usr/bin/env python3
"""Reads every knockd.conf of a folder with knockd 0.8 and with `knockd-lite --check`, and
prints one row per file: read the same, or refused and why.

    sudo tests/tools/conf-corpus.py CORPUS_DIR [KNOCKD_LITE] [--knockd PATH] [--show FILE]

By hand only (needs root, Debian's knockd and iproute2): no test calls it. knockd has no check
mode, so it runs for a moment with `-D` (which prints every directive as it reads it) inside a
network namespace made here (a veth pair, nothing sent) and a private mount namespace with a
tmpfs on /var/log and /run, so its log file and pid file go nowhere. A door's
`One_Time_Sequences` path is pointed, in a scratch copy read by both programs, at `NNN.otp`
when the folder has one (`NNN.otp.path` names the path the file expects).

"Same" compares what decides behaviour: LogFile, PidFile, UseSyslog, and per door (in order)
its name, sequence (or one-time list), Seq_Timeout, TCPFlags, the start and stop commands
for IPv4 and IPv6 after the `_6` fallback, Cmd_Timeout and Target. Interface is left out:
both programs are given `-i`.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid

FLAGS = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"]


def new_door(name):
    return {
        "name": name,
        "sequence": None,
        "one_time": None,
        "seq_timeout": 25,
        "tcpflags": {},
        "start": None,
        "start6": None,
        "cmd_timeout": 10,
        "stop": None,
        "stop6": None,
        "target": None,
    }


def effective(door):
    """Commands after the `_6` fallback; an empty command runs nothing."""
    out = dict(door)
    out["start6"] = door["start"] if door["start6"] is None else door["start6"]
    out["stop6"] = door["stop"] if door["stop6"] is None else door["stop6"]
    for k in ("start", "start6", "stop", "stop6"):
        if out[k] == "":
            out[k] = None
    # Neither program runs a stop command without a start command before it.
    if out["start"] is None:
        out["stop"] = None
    if out["start6"] is None:
        out["stop6"] = None
    out["tcpflags"] = ",".join(
        ("" if out["tcpflags"][f] else "!") + f for f in FLAGS if f in out["tcpflags"]
    )
    return out


def parse_knockd(stdout):
    """knockd -D's `config:` lines, read the way knockd applies them."""
    opts = {"log_file": None, "pid_file": "/var/run/knockd.pid", "syslog": False}
    doors = []
    door = None
    for line in stdout.splitlines():
        if not line.startswith("config: "):
            continue
        rest = line[len("config: "):]
        m = re.fullmatch(r"new section: '(.*)'", rest)
        if m:
            if m.group(1) != "options":
                door = new_door(m.group(1))
                doors.append(door)
            continue
        if rest.startswith("log file: "):
            opts["log_file"] = rest[len("log file: "):]
        elif rest.startswith("pid file: "):
            opts["pid_file"] = rest[len("pid file: "):]
        elif rest == "usesyslog":
            opts["syslog"] = True
        elif rest.startswith("interface: "):
            pass
        elif rest.startswith("tcp flag: "):
            flag = rest[len("tcp flag: "):]
            door["tcpflags"][flag.lstrip("!")] = not flag.startswith("!")
        elif door is not None and rest.startswith(door["name"] + ": "):
            kv = rest[len(door["name"]) + 2:]
            key, _, value = kv.partition(": ")
            if key == "sequence":
                if door["one_time"] is None:
                    door["sequence"] = value
            elif key == "one time sequences file":
                door["one_time"] = value
            elif key in ("seq_timeout", "cmd_timeout"):
                door[key] = int(value)
            elif key in ("start_command", "start_command_6", "stop_command", "stop_command_6"):
                short = key.replace("_command", "").replace("_6", "6")
                door[short] = value
            elif key == "target":
                door["target"] = value
    return opts, [effective(d) for d in doors]


def lite_command(value, v4):
    if value in ("none", "disabled") or value.startswith("none ("):
        return None
    if value.endswith(" (never runs: no start command)"):
        return None
    if value.startswith("same as IPv4"):
        return v4
    return value


def lite_seconds(value):
    s = value.split()[0].rstrip("s")
    return int(s) if s.isdigit() else s


def parse_lite(stdout):
    """`knockd-lite --check`'s report."""
    opts = {"log_file": None, "pid_file": None, "syslog": False}
    doors = []
    door = None
    raw = {}
    for line in stdout.splitlines():
        m = re.match(r"(log file|pid file|syslog):\s+(.*)", line)
        if m and door is None:
            key, value = m.groups()
            if key == "log file":
                value = value.split(" (")[0]
                opts["log_file"] = None if value == "none" else value
            elif key == "pid file":
                opts["pid_file"] = value
            else:
                opts["syslog"] = value == "yes"
            continue
        m = re.fullmatch(r"\[(.*)\] \(line \d+(?:, .*)?\)", line)
        if m:
            door = new_door(m.group(1))
            raw = {}
            doors.append((door, raw))
            continue
        if line.startswith("capture filter"):
            door = None
            continue
        m = re.fullmatch(r"  ([A-Za-z0-9 ()_-]+):\s+(.*)", line)
        if door is not None and m:
            raw[m.group(1).strip()] = m.group(2)
    out = []
    for door, raw in doors:
        if "sequence" in raw:
            door["sequence"] = raw["sequence"].split(" (")[0]
        if "one-time list" in raw:
            door["one_time"] = raw["one-time list"].rsplit(" (", 1)[0]
        door["seq_timeout"] = lite_seconds(raw.get("seq_timeout", "25s"))
        door["cmd_timeout"] = lite_seconds(raw.get("cmd_timeout", "10s"))
        flags = raw.get("tcpflags", "any").split(" (")[0]
        if flags != "any":
            for f in flags.split(","):
                door["tcpflags"][f.lstrip("!").upper()] = not f.startswith("!")
        start = lite_command(raw.get("start", "none"), None)
        stop = lite_command(raw.get("stop", "none"), None)
        door["start"] = start
        door["stop"] = stop
        door["start6"] = lite_command(raw.get("start (IPv6)", "none"), start)
        door["stop6"] = lite_command(raw.get("stop (IPv6)", "none"), stop)
        target = raw.get("target", "")
        door["target"] = None if target.startswith("the interface") else target
        d = effective(door)
        # Fixed sequences: compare ports and protocols (knockd has no per-hit flags).
        if d["sequence"] is not None and d["one_time"] is None:
            d["sequence"] = d["sequence"]
        out.append(d)
    return opts, out


def first_difference(k_opts, k_doors, l_opts, l_doors):
    for key in ("log_file", "pid_file", "syslog"):
        if k_opts[key] != l_opts[key]:
            return f"{key}: knockd {k_opts[key]!r}, knockd-lite {l_opts[key]!r}"
    if len(k_doors) != len(l_doors):
        return f"knockd has {len(k_doors)} doors, knockd-lite {len(l_doors)}"
    for kd, ld in zip(k_doors, l_doors):
        for key in kd:
            if key == "sequence" and kd["one_time"] is not None:
                continue
            if kd[key] != ld[key]:
                return f"[{kd['name']}] {key}: knockd {kd[key]!r}, knockd-lite {ld[key]!r}"
    return None


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, **kw)


def decode(b):
    return b.decode("utf-8", errors="surrogateescape")


def main():
    args = sys.argv[1:]
    knockd = shutil.which("knockd") or "/usr/sbin/knockd"
    show = None
    if "--knockd" in args:
        i = args.index("--knockd")
        knockd = args[i + 1]
        del args[i : i + 2]
    if "--show" in args:
        i = args.index("--show")
        show = args[i + 1]
        del args[i : i + 2]
    if not args:
        sys.exit(__doc__)
    corpus = os.path.abspath(args[0])
    lite = os.path.abspath(args[1] if len(args) > 1 else "target/debug/knockd-lite")
    ns = "cc" + uuid.uuid4().hex[:8]
    scratch = tempfile.mkdtemp(prefix="conf-corpus.")
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(
            ["ip", "-n", ns, "link", "add", "cc0", "type", "veth", "peer", "name", "cc1"],
            check=True,
        )
        for dev in ("cc0", "cc1", "lo"):
            subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True)
        files = sorted(f for f in os.listdir(corpus) if f.endswith(".conf"))
        if show:
            files = [show]
        counts = {}
        for name in files:
            row, detail = compare(corpus, name, scratch, ns, knockd, lite, show is not None)
            counts[row] = counts.get(row, 0) + 1
            print(f"{name}\t{row}" + (f"\t{detail}" if detail else ""))
        print()
        for row, n in sorted(counts.items()):
            print(f"{n:3}  {row}")
    finally:
        subprocess.run(["ip", "netns", "del", ns])
        shutil.rmtree(scratch, ignore_errors=True)


def compare(corpus, name, scratch, ns, knockd, lite, verbose):
    with open(os.path.join(corpus, name), "rb") as f:
        text = f.read()
    stem = name[: -len(".conf")]
    otp = os.path.join(corpus, stem + ".otp")
    if os.path.exists(otp):
        with open(otp + ".path") as f:
            expected = f.read().strip().encode()
        copy = os.path.join(scratch, stem + ".otp")
        shutil.copy(otp, copy)
        text = text.replace(expected, copy.encode())
    conf = os.path.join(scratch, name)
    with open(conf, "wb") as f:
        f.write(text)
    workdir = os.path.join(scratch, stem + ".run")
    os.makedirs(workdir, exist_ok=True)
    shell = (
        "mount -t tmpfs tmpfs /var/log && mount -t tmpfs tmpfs /run && "
        f'exec timeout -s INT 0.7 "$0" -D -i cc0 -c "$1"'
    )
    k = run(
        ["ip", "netns", "exec", ns, "unshare", "-m", "sh", "-c", shell, knockd, conf],
        cwd=workdir,
    )
    # One-time lists are written to by neither program here, but restore them anyway.
    if os.path.exists(otp):
        shutil.copy(otp, os.path.join(scratch, stem + ".otp"))
    l = run([lite, "--check", "-i", "cc0", "-c", conf], cwd=workdir)
    k_out, k_err = decode(k.stdout), decode(k.stderr)
    l_out, l_err = decode(l.stdout), decode(l.stderr)
    if verbose:
        print("--- knockd stdout\n" + k_out + "--- knockd stderr\n" + k_err)
        print("--- knockd-lite stdout\n" + l_out + "--- knockd-lite stderr\n" + l_err)
    k_ok = "usage: knockd" not in k_out
    l_ok = l.returncode == 0
    k_why = " / ".join(x for x in k_err.strip().splitlines() if "pcap" not in x) or "?"
    l_why = l_err.strip().replace(conf, name).replace("knockd-lite: ", "")
    l_warn = " | ".join(
        w.replace(conf, name).replace("knockd-lite: ", "")
        for w in l_err.strip().splitlines()
        if "warning" in w
    )
    if not k_ok and not l_ok:
        return "refused by both", f"knockd: {k_why}; knockd-lite: {l_why}"
    if not k_ok:
        return "knockd refuses, knockd-lite runs", f"knockd: {k_why}"
    if not l_ok:
        return "knockd-lite refuses", l_why
    diff = first_difference(*parse_knockd(k_out), *parse_lite(l_out))
    if diff:
        return "read differently", diff
    return "same as knockd 0.8", l_warn


if __name__ == "__main__":
    main()
