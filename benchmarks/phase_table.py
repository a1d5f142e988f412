"""The seeds' phase tables, reproduced on the simulator's ``seed`` profile and set against its limits.

For each row (clone type x discovery x OS) it runs N cycles of: clone, power on, boot (until
VMware Tools run), IP (active discovery through Guest Operations, or the Tools' report), connect
(SSH or WinRM), then destroys the clone. It prints min / max / avg per phase and in total, and
beside each the profile's own time for that phase (the limit: what the simulated vSphere needs
anyway) and measured / limit. Run as root (real guests):

    .venv/bin/python benchmarks/phase_table.py --cycles 10 --time-scale 0.2
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_vsphere_clone.client.clone import CloneRequest, clone_vm
from pytest_vsphere_clone.client.discovery import ActiveDiscovery, AddressFilter, ToolsDiscovery
from pytest_vsphere_clone.client.guest_ops import GuestOperations
from pytest_vsphere_clone.client.inventory import find_template
from pytest_vsphere_clone.client.nic_refresh import refresh_nics
from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.client.teardown import destroy
from pytest_vsphere_clone.client.waiter import Waiter
from pytest_vsphere_clone.connection import ssh, winrm_session
from pytest_vsphere_clone.plugin.provision import HOST_KEYS_COMMAND
from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig
from pytest_vsphere_clone.simulator.inventory import DEFAULT_INVENTORY, LINUX_GUEST_ID, WINDOWS_GUEST_ID

PHASES = ("clone", "power_on", "boot", "ip", "connect")
#: The seeds' own table (kitchen-vcenter, Windows 2016), for reading ours beside it.
SEED_NOTE = ("seeds, Windows: linked+tools 1.1 / 26.3 / 30.2 s; linked+active 1.0 / 35.0 / 11.2 s; "
             "instant 4.3 / 0.0 / 13.7 s (clone / boot / ip)")


@dataclass(frozen=True)
class Row:
    os: str
    clone_type: str
    source: str  # frozen | running | template
    discovery: str

    @property
    def template(self) -> str:
        base = "linux" if self.os == "linux" else "windows"
        return {"template": f"{base}-template", "frozen": f"{base}-frozen", "running": f"{base}-running"}[self.source]

    @property
    def label(self) -> str:
        source = f" ({self.source})" if self.clone_type == "instant" else ""
        return f"{self.os:<7} {self.clone_type}{source} + {self.discovery}"


ROWS = [Row(os, *kind) for os in ("linux", "windows") for kind in (
    ("linked", "template", "tools"), ("linked", "template", "active"),
    ("instant", "frozen", "active"), ("instant", "running", "active"))]


def inventory_file(directory: Path) -> Path:
    """The default inventory plus running (not frozen) sources for the running-source rows."""
    data = json.loads(json.dumps(DEFAULT_INVENTORY))
    data["datacenters"][0]["vms"] += [
        {"name": "linux-running", "guest_id": LINUX_GUEST_ID, "power": "poweredOn"},
        {"name": "windows-running", "guest_id": WINDOWS_GUEST_ID, "power": "poweredOn"},
    ]
    path = directory / "inventory.json"
    path.write_text(json.dumps(data))
    return path


def limits(sim: Simulator, row: Row) -> dict[str, float]:
    """The profile's own (scaled, mean) time for each phase of ``row``."""
    assert sim.vc is not None
    profile = sim.vc.profile
    if row.clone_type == "instant":
        return {"clone": profile.mean("clone.instant"), "power_on": 0.0, "boot": 0.0, "ip": 0.0, "connect": 0.0}
    ip = profile.mean(f"network.{row.os}")
    if row.discovery == "tools":
        # The Tools report at start (no address yet), then one poll interval later.
        ip = max(ip, profile.mean("tools.poll"))
    return {"clone": profile.mean("clone.linked"), "power_on": profile.mean("power_on"),
            "boot": profile.mean(f"boot.{row.os}"), "ip": ip, "connect": 0.0}


def cycle(conn: VSphereConnection, waiter: Waiter, sim: Simulator, row: Row, n: int) -> dict[str, float]:
    facts = sim.connection_facts()
    user = facts["WINDOWS_GUEST_USER"] if row.os == "windows" else facts["GUEST_USER"]
    password = facts["WINDOWS_GUEST_PASSWORD"] if row.os == "windows" else facts["GUEST_PASSWORD"]
    template = find_template(conn, row.template)
    timings: dict[str, float] = {}
    started = time.monotonic()
    result = clone_vm(conn, CloneRequest(template=template, name=f"bench-{row.os}-{row.clone_type}-{n}",
                                         clone_type=row.clone_type, power_on=False), waiter=waiter)
    timings["clone"] = time.monotonic() - started
    vm = result.vm
    try:
        mark = time.monotonic()
        if row.clone_type != "instant":
            waiter.wait_for_task(vm.PowerOnVM_Task(), 300, "power on")
        timings["power_on"] = time.monotonic() - mark
        mark = time.monotonic()
        waiter.wait_for_property(vm, "guest.toolsRunningStatus", lambda v: v == "guestToolsRunning", 300)
        timings["boot"] = time.monotonic() - mark
        mark = time.monotonic()
        address_filter = AddressFilter("ipv4")
        tools = ToolsDiscovery(conn, vm, waiter, address_filter)
        guest = GuestOperations(conn, vm, user, password, os_family=row.os)
        if row.clone_type == "instant":
            refresh_nics(guest)
        if row.discovery == "active":
            command = f"ip -o address show scope global; {HOST_KEYS_COMMAND}" if row.os == "linux" else None
            found = ActiveDiscovery(guest, address_filter, command=command, fallback=tools).discover(300)
            output = found.output
        else:
            found = tools.discover(300)
            output = guest.run(HOST_KEYS_COMMAND).stdout if row.os == "linux" else ""
        timings["ip"] = time.monotonic() - mark
        keys = tuple(line for line in output.splitlines() if line.startswith(("ssh-", "ecdsa-")))
        mark = time.monotonic()
        if row.os == "windows":
            winrm_session.connect(winrm_session.WinRMTarget(found.ip, 5985, user, password, "ntlm"), 60)
        else:
            ssh.connect(ssh.SshTarget(found.ip, 22, user, password, host_keys=keys), 60).close()
        timings["connect"] = time.monotonic() - mark
    finally:
        destroy(conn, vm, waiter=waiter)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--time-scale", type=float, default=0.2)
    parser.add_argument("--os", choices=("linux", "windows", "both"), default="both")
    args = parser.parse_args()
    rows = [r for r in ROWS if args.os in ("both", r.os)]
    with tempfile.TemporaryDirectory() as tmp, Simulator(SimulatorConfig(
            guests=True, profile="seed", time_scale=args.time_scale, inventory=inventory_file(Path(tmp)))) as sim:
        conn = VSphereConnection(sim.url, sim.user, sim.password, ca_bundle=sim.ca_file).connect()
        print(f"seed profile x {args.time_scale}, {args.cycles} cycles per row; seconds; limit = the profile's "
              "own time for the phase")
        print(SEED_NOTE)
        with Waiter(conn) as waiter:
            for row in rows:
                results = [cycle(conn, waiter, sim, row, n) for n in range(args.cycles)]
                report(row, results, limits(sim, row))
        conn.close()


def report(row: Row, results: list[dict[str, float]], limit: dict[str, float]) -> None:
    print(f"\n{row.label}")
    print(f"  {'phase':<9}{'min':>8}{'max':>8}{'avg':>8}{'limit':>8}{'avg/limit':>11}")
    totals = [sum(r.values()) for r in results]
    for phase in (*PHASES, "total"):
        values: list[Any] = totals if phase == "total" else [r.get(phase, 0.0) for r in results]
        bound = sum(limit.values()) if phase == "total" else limit[phase]
        avg = statistics.mean(values)
        ratio = f"{avg / bound:>11.2f}" if bound > 0 else f"{'-':>11}"
        print(f"  {phase:<9}{min(values):>8.2f}{max(values):>8.2f}{avg:>8.2f}{bound:>8.2f}{ratio}")


if __name__ == "__main__":
    main()
