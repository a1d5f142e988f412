"""Boot latency and memory of real guests (run as root).

For each of N Linux guests booted one after another: the time from ``boot()``
(PowerOn) to ``boot()`` returning (sshd listening), to a DHCP address, to sshd
sending its banner on that address, and to a completed paramiko login. Then,
with all N guests alive and idle, the memory each uses (sum of its processes'
RSS), and the time to shut them down.

    sudo python benchmarks/guest_boot.py [--guests 20]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import paramiko

from pytest_vsphere_clone.simulator.guests import GuestHost, GuestSpec, missing_prerequisites
from pytest_vsphere_clone.simulator.guests.host import procfs

PASSWORD = "bench-pw"


def _banner(ip: str) -> None:
    with socket.create_connection((ip, 22), timeout=5) as sock:
        sock.recv(64)


def _login(ip: str) -> None:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(ip, username="bench", password=PASSWORD, look_for_keys=False, allow_agent=False, timeout=5)
    client.close()


def _row(label: str, values: list[float], unit: str = "ms", scale: float = 1000.0) -> str:
    scaled = [v * scale for v in values]
    return (
        f"  {label:<34} median {statistics.median(scaled):8.1f} {unit}"
        f"   min {min(scaled):8.1f}   max {max(scaled):8.1f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--guests", type=int, default=20)
    args = parser.parse_args()
    problems = missing_prerequisites()
    if problems:
        print("cannot run guests here: " + "; ".join(problems), file=sys.stderr)
        return 2

    timings: dict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="guest-bench-") as tmp, GuestHost(Path(tmp) / "state", "bench") as host:
        guests = []
        for n in range(args.guests):
            spec = GuestSpec(
                vm_id=f"vm-{n}",
                hostname=f"bench{n}",
                mac=f"00:50:56:10:{n >> 8:02x}:{n & 0xFF:02x}",
                family="linux",
                disk_dir=Path(tmp) / f"disk{n}",
                user="bench",
                password=PASSWORD,
            )
            guest = host.create_guest(spec)
            start = time.perf_counter()
            guest.boot()
            timings["boot() returns (sshd listening)"].append(time.perf_counter() - start)
            ip = guest.wait_for_ip()
            timings["DHCP address"].append(time.perf_counter() - start)
            _banner(ip)
            timings["sshd banner on the address"].append(time.perf_counter() - start)
            _login(ip)
            timings["paramiko login done"].append(time.perf_counter() - start)
            guests.append(guest)

        time.sleep(0.5)  # let login sessions end: measure idle guests
        per_guest = [g.rss_bytes() for g in guests]
        per_guest_pss = [sum(procfs.pss_bytes(pid) for pid in g.pids()) for g in guests]
        per_process: dict[str, list[int]] = defaultdict(list)
        for guest in guests:
            for pid in guest.pids():
                stat = procfs.read_stat(pid)
                if stat is not None:
                    per_process[stat.comm].append(procfs.rss_bytes(pid))

        start = time.perf_counter()
        for guest in guests:
            guest.shutdown()
        shutdown = (time.perf_counter() - start) / len(guests)

    print(f"{args.guests} Linux guests, booted one after another (time since boot() was called):")
    for label, values in timings.items():
        print(_row(label, values))
    mib = 1 / 2**20
    print(f"\nmemory with {args.guests} idle guests alive (sum over each guest's processes):")
    print(_row("RSS per guest", [float(v) for v in per_guest], "MiB", mib))
    for comm, sizes in sorted(per_process.items()):
        print(_row(f"  {comm} RSS (x{len(sizes)})", [float(v) for v in sizes], "MiB", mib))
    print(_row("PSS per guest (shared pages split)", [float(v) for v in per_guest_pss], "MiB", mib))
    print(f"  {'total RSS / PSS':<34} {sum(per_guest) * mib:8.1f} / {sum(per_guest_pss) * mib:.1f} MiB")
    print(f"\nshutdown: {shutdown * 1000:.1f} ms per guest")
    return 0


if __name__ == "__main__":
    sys.exit(main())
