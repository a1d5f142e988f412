"""The seeds' phase tables, reproduced on the simulator's ``seed`` profile and set against its limits.

For each row (clone type x discovery x OS) it runs N cycles of: clone, power on, boot (until
VMware Tools run), IP (active discovery through Guest Operations, or the Tools' report), connect
(SSH or WinRM), then destroys the clone. It prints min / max / avg per phase and in total, and
beside each the profile's own time for that phase (the limit: what the simulated vSphere needs
anyway) and measured / limit. Run as root (real guests):

    .venv/bin/python benchmarks/phase_table.py --cycles 10 --time-scale 1 --parallel --json phases.json
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import functools
import json
import re
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_vsphere_clone.client.clone import clone_vm
from pytest_vsphere_clone.client.clone_request import CloneRequest
from pytest_vsphere_clone.client.discovery import ActiveDiscovery, AddressFilter, ToolsDiscovery
from pytest_vsphere_clone.client.guest_ops import GuestOperations
from pytest_vsphere_clone.client.inventory import find_template
from pytest_vsphere_clone.client.nic_refresh import (
    check_linux_prelude,
    check_windows_prelude,
    linux_prelude,
    windows_prelude,
)
from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.client.teardown import destroy
from pytest_vsphere_clone.client.waiter import Waiter
from pytest_vsphere_clone.connection import ssh, winrm_session
from pytest_vsphere_clone.plugin.provision import HOST_KEYS_COMMAND
from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig
from pytest_vsphere_clone.simulator.inventory import DEFAULT_INVENTORY, LINUX_GUEST_ID, WINDOWS_GUEST_ID

#: The seeds' phases (their total is clone + boot + IP); connecting is shown after the total.
PHASES = ("clone", "power_on", "boot", "ip")
RATIO_TARGET = 1.05
#: With active discovery the IP is known this long (seed seconds, so x time scale) after the guest has it.
LAG_TARGET = 0.5
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


def limits(sim: Simulator, row: Row, vm_id: str) -> dict[str, float]:
    """The simulated vSphere's and guest's own time for each phase of this cycle: what the profile
    drew for this clone's tasks and guest (whatever the tool, it cannot be faster). Active discovery
    adds the one Guest Operations call that must follow the address (reading it), an instant
    clone's refresh also the call that starts it (at the profile's mean). Connecting (SSH/WinRM)
    is not one of the seeds' phases: it is shown, but not limited."""
    from pytest_vsphere_clone.client.task_reads import task_method
    from pytest_vsphere_clone.simulator.objects.virtual_machine import VirtualMachine
    from pytest_vsphere_clone.simulator.tasks import Task

    assert sim.vc is not None
    profile = sim.vc.profile
    vm = sim.vc.objects[vm_id]
    assert isinstance(vm, VirtualMachine)
    tasks = list(sim.vc.of_type(Task))
    clone = next(t for t in tasks if getattr(t.info.result, "_moId", None) == vm_id)
    on_vm = [t for t in tasks if t.info.entity is not None and t.info.entity._moId == vm_id]
    # By the method that made each task (a vCenter's descriptionId reads "VirtualMachine.powerOn").
    power_on = next((t for t in on_vm if task_method(t.info) == "PowerOnVM_Task"), None)
    # A running source's instant clone is made with its NICs disconnected (it must not show up
    # with the source's network identity) and reconnected by a reconfigure: vSphere's time too.
    reconnect = sum(t.drawn for t in on_vm if task_method(t.info) == "ReconfigVM_Task")
    guest_op = profile.mean("guest_op")
    if row.clone_type == "instant":
        return {"clone": clone.drawn + reconnect, "power_on": 0.0, "boot": 0.0,
                "ip": vm.drawn["refresh"] + 2 * guest_op}
    if row.discovery == "tools":
        # The Tools report as they start (no address yet), then one poll interval later.
        ip = max(vm.drawn["network"], profile.mean("tools.poll"))
    else:
        ip = vm.drawn["network"] + guest_op
    return {"clone": clone.drawn, "power_on": power_on.drawn if power_on is not None else 0.0,
            "boot": vm.drawn["boot"], "ip": ip}


class AddressWatch:
    """When the guest itself got its address: ``ip monitor address`` in the guest's namespace.

    The kernel's own event, timestamped by ``ip -ts``, is the moment the guest has the address;
    discovery's lag is the time from there until the client knows it.
    """

    _LINE = re.compile(r"^\[(?P<ts>[0-9T:.-]+)\]\s+(?P<deleted>Deleted )?\d+:\s+eth0\s+inet (?P<ip>[0-9.]+)/")

    def __init__(self, sim: Simulator, vm_id: str, ignore: str | None = None) -> None:
        assert sim.vc is not None and sim.vc.guests is not None
        guest = None
        deadline = time.monotonic() + 30
        while guest is None:  # the guest's namespace appears once its boot has begun
            guest = sim.vc.guests.host.guest(vm_id)
            if guest is None or not Path(f"/run/netns/{guest.name}").exists():
                guest = None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no guest for {vm_id}")
                time.sleep(0.002)
        self.ignore = ignore
        self.got: tuple[str, float] | None = None
        while True:
            self._process = subprocess.Popen(["ip", "-n", guest.name, "-ts", "-4", "monitor", "address"],
                                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            try:  # a namespace still being set up refuses to be entered: try again
                self._process.wait(0.05)
            except subprocess.TimeoutExpired:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"cannot watch the namespace of {vm_id}")
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            match = self._LINE.match(line)
            if match and not match["deleted"] and match["ip"] != self.ignore and self.got is None:
                stamp = datetime.datetime.fromisoformat(match["ts"]).timestamp()
                self.got = (match["ip"], stamp)

    def lag(self, ip: str, known_at: float) -> float | None:
        """Seconds from the guest having ``ip`` to ``known_at`` (None if the watch missed it)."""
        self._process.terminate()
        self._process.wait()
        if self.got is None or self.got[0] != ip:
            return None
        return known_at - self.got[1]


def cycle(conn: VSphereConnection, waiter: Waiter, sim: Simulator, row: Row, n: int) -> dict[str, float]:
    facts = sim.connection_facts()
    user = facts["WINDOWS_GUEST_USER"] if row.os == "windows" else facts["GUEST_USER"]
    password = facts["WINDOWS_GUEST_PASSWORD"] if row.os == "windows" else facts["GUEST_PASSWORD"]
    template = find_template(conn, row.template)
    timings: dict[str, float] = {}
    started = time.monotonic()
    name = f"bench-{row.os}-{row.clone_type}-{row.source}-{row.discovery}-{n}"  # unique across parallel rows
    result = clone_vm(conn, CloneRequest(template=template, name=name, clone_type=row.clone_type, power_on=False),
                      waiter=waiter)
    timings["clone"] = time.monotonic() - started
    vm = result.vm
    try:
        mark = time.monotonic()
        stale = None
        if row.clone_type != "instant":
            waiter.wait_for_task(vm.PowerOnVM_Task(), 300, "power on")
        else:
            stale = sim.vc.guests.host.guest(vm._moId).primary_ip()  # type: ignore[union-attr]
        timings["power_on"] = time.monotonic() - mark
        mark = time.monotonic()  # the watch's set-up counts against the boot: the guest goes on meanwhile
        watch = AddressWatch(sim, vm._moId, ignore=stale)
        waiter.wait_for_property(vm, "guest.toolsRunningStatus", lambda v: v == "guestToolsRunning", 300)
        timings["boot"] = time.monotonic() - mark
        mark = time.monotonic()
        address_filter = AddressFilter("ipv4")
        tools = ToolsDiscovery(conn, vm, waiter, address_filter)
        guest = GuestOperations(conn, vm, user, password, os_family=row.os)
        # As the plugin does: an instant clone's refresh rides in discovery's first round.
        prelude: str | None = None
        check: Any = None
        if row.clone_type == "instant":
            if row.os == "linux":
                prelude, check = linux_prelude(), functools.partial(check_linux_prelude, guest)
            else:
                prelude, check = windows_prelude(), functools.partial(check_windows_prelude, guest)
        if row.discovery == "active":
            found = ActiveDiscovery(guest, address_filter, fallback=tools,
                                    also_run=HOST_KEYS_COMMAND if row.os == "linux" else None,
                                    prelude=prelude, check_prelude=check).discover(300)
            output = found.output
        else:
            found = tools.discover(300)
            output = guest.run(HOST_KEYS_COMMAND).stdout if row.os == "linux" else ""
        timings["ip"] = time.monotonic() - mark
        lag = watch.lag(found.ip, time.time())
        if lag is not None:
            timings["ip_lag"] = lag
        keys = tuple(line for line in output.splitlines() if line.startswith(("ssh-", "ecdsa-")))
        mark = time.monotonic()
        if row.os == "windows":
            winrm_session.connect(winrm_session.WinRMTarget(found.ip, 5985, user, password, "ntlm"), 60)
        else:
            ssh.connect(ssh.SshTarget(found.ip, 22, user, password, host_keys=keys), 60).close()
        timings["connect"] = time.monotonic() - mark
        timings.update({f"limit.{phase}": value for phase, value in limits(sim, row, vm._moId).items()})
    finally:
        destroy(conn, vm, waiter=waiter)
    return timings


def run_row(sim: Simulator, row: Row, cycles: int) -> list[dict[str, float]]:
    """``cycles`` cycles of ``row`` on a connection (and waiter) of its own."""
    conn = VSphereConnection(sim.url, sim.user, sim.password, ca_bundle=sim.ca_file).connect()
    try:
        with Waiter(conn) as waiter:
            return [cycle(conn, waiter, sim, row, n) for n in range(cycles)]
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--os", choices=("linux", "windows", "both"), default="both")
    parser.add_argument("--rows", default="", help="only rows whose label contains this (e.g. 'instant')")
    parser.add_argument("--parallel", action="store_true",
                        help="run the rows side by side (each row's cycles stay sequential): the simulator "
                             "mostly waits, so this shortens a time-scale-1 run to its slowest row")
    parser.add_argument("--json", type=Path, help="also write the figures here (for benchmarks/plot_phases.py)")
    args = parser.parse_args()
    rows = [r for r in ROWS if args.os in ("both", r.os) and args.rows in r.label]
    with tempfile.TemporaryDirectory() as tmp, Simulator(SimulatorConfig(
            guests=True, profile="seed", time_scale=args.time_scale, inventory=inventory_file(Path(tmp)))) as sim:
        side_by_side = " (rows in parallel)" if args.parallel else ""
        print(f"seed profile x {args.time_scale}, {args.cycles} cycles per row{side_by_side}; seconds; "
              "limit = the profile's own time for the phase")
        print(SEED_NOTE)
        if args.parallel:
            with concurrent.futures.ThreadPoolExecutor(len(rows)) as pool:
                futures = [pool.submit(run_row, sim, row, args.cycles) for row in rows]
                results = [f.result() for f in futures]
        else:
            results = [run_row(sim, row, args.cycles) for row in rows]
        table = [report(row, res, args.time_scale) for row, res in zip(rows, results, strict=True)]
    held = all(t["ratio"] <= RATIO_TARGET for t in table)
    print(f"\nevery row total/limit <= {RATIO_TARGET}: {'OK' if held else 'MISSED'}")
    if args.json:
        figures = {"time_scale": args.time_scale, "cycles": args.cycles, "rows": table}
        args.json.write_text(json.dumps(figures, indent=1))


def report(row: Row, results: list[dict[str, float]], time_scale: float) -> dict[str, Any]:
    """Print ``row``'s table (limits: the average of the cycles' own); return its figures."""
    limit = {phase: statistics.mean(r[f"limit.{phase}"] for r in results) for phase in PHASES}
    print(f"\n{row.label}")
    print(f"  {'phase':<9}{'min':>8}{'max':>8}{'avg':>8}{'limit':>8}{'avg/limit':>11}")
    figures: dict[str, Any] = {"row": row.label.strip(), "phases": {}}
    totals = [sum(r.get(phase, 0.0) for phase in PHASES) for r in results]
    for phase in (*PHASES, "total", "connect"):
        values: list[Any] = totals if phase == "total" else [r.get(phase, 0.0) for r in results]
        bound = sum(limit.values()) if phase == "total" else limit.get(phase, 0.0)
        avg = statistics.mean(values)
        ratio = f"{avg / bound:>11.2f}" if bound > 0 else f"{'-':>11}"
        print(f"  {phase:<9}{min(values):>8.2f}{max(values):>8.2f}{avg:>8.2f}{bound:>8.2f}{ratio}")
        figures["phases"][phase] = {"min": min(values), "max": max(values), "avg": avg, "limit": bound}
    figures["ratio"] = statistics.mean(totals) / sum(limit.values())
    print(f"  {' '.join(row.label.split())}: total / limit {figures['ratio']:.3f} <= {RATIO_TARGET} "
          f"{'OK' if figures['ratio'] <= RATIO_TARGET else 'MISSED'}")
    lags = [r["ip_lag"] for r in results if "ip_lag" in r]
    if lags and row.discovery == "active":
        target = LAG_TARGET * time_scale
        average, worst = statistics.mean(lags), max(lags)
        print(f"  {'ip lag':<9}{min(lags):>8.2f}{worst:>8.2f}{average:>8.2f}"
              f"   (IP known after the guest has it; target <= {target:.2f}: "
              f"avg {'OK' if average <= target else 'MISSED'}, max {'OK' if worst <= target else 'MISSED'})")
        figures["ip_lag"] = {"min": min(lags), "max": worst, "avg": average, "target": target}
    return figures


if __name__ == "__main__":
    main()
