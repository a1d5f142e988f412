"""Benchmark of the bundled vCenter simulator's API, through the real pyVmomi client over HTTPS.

Prints, each beside its target:
- the median latency of RetrievePropertiesEx (one VM, and every VM through a container view; with
  500 VMs too, for scale),
- the median round trip of a linked CloneVM_Task (the call plus pyVim's WaitForTask) in the fast
  profile, with the SOAP calls it takes and the time per call once the simulated clone time is removed,
- the simulator's resident memory with 500 VMs in its inventory (a generated inventory file, and the
  default inventory grown to 500 VMs by linked clones).

The simulator runs as its own process (``vsphere-clone simulator --no-guests``), as users run it, so
the memory figures are its own and the client's work does not share its interpreter.

    .venv/bin/python benchmarks/simulator_api.py [--calls 300] [--clones 40]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import secrets
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

PC = vmodl.query.PropertyCollector
SOAP_CALL_TARGET_MS = 5.0
MEMORY_TARGET_MB = 200.0
VM_COUNT = 500


class RunningSimulator:
    """A ``vsphere-clone simulator`` child process and the facts it printed."""

    def __init__(self, process: subprocess.Popen[str], facts: dict[str, str], password: str) -> None:
        self.process = process
        self.facts = facts
        self.password = password
        self.host, port = facts["HOST"].rsplit(":", 1)
        self.port = int(port)
        self.context = ssl.create_default_context(cafile=facts["CA_FILE"])

    def connect(self) -> Any:
        return SmartConnect(host=self.host, port=self.port, user=self.facts["USER"], pwd=self.password,
                            sslContext=self.context)

    def rss_mb(self) -> tuple[float, float]:
        """(current, peak) resident memory of the simulator process in MiB, from /proc."""
        fields: dict[str, float] = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
        return fields["VmRSS"], fields["VmHWM"]

    def counters(self) -> dict[str, int]:
        return dict(self._admin("GET", "/admin/counters"))

    def reset_counters(self) -> None:
        self._admin("DELETE", "/admin/counters")

    def _admin(self, method: str, path: str) -> Any:
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=30)
        try:
            token = base64.b64encode(f"{self.facts['USER']}:{self.password}".encode()).decode()
            conn.request(method, path, headers={"Authorization": f"Basic {token}"})
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"admin {method} {path}: HTTP {response.status} {body!r}")
            return json.loads(body)
        finally:
            conn.close()


@contextmanager
def simulator(*args: str) -> Iterator[RunningSimulator]:
    """Run ``vsphere-clone simulator --no-guests`` with ``args`` until the block ends."""
    password = secrets.token_urlsafe(12)
    command = [sys.executable, "-m", "pytest_vsphere_clone.cli", "simulator", "--no-guests", "--password", password,
               *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        facts: dict[str, str] = {}
        assert process.stdout is not None
        while "CA_FILE" not in facts or "HOST" not in facts:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"the simulator exited with {process.wait()} before printing its facts")
            key, _, value = line.strip().partition("=")
            facts[key] = value
        yield RunningSimulator(process, facts, password)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def timed(call: Callable[[], Any], count: int) -> list[float]:
    """Wall-clock milliseconds of ``count`` runs of ``call``, after a few warm-up runs."""
    for _ in range(min(10, count)):
        call()
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def verdict(value: float, target: float) -> str:
    return "OK" if value < target else "OVER TARGET"


def report(label: str, samples: list[float], target: float | None = None, unit: str = "ms") -> None:
    median = statistics.median(samples)
    p90 = statistics.quantiles(samples, n=10)[-1] if len(samples) >= 10 else max(samples)
    line = f"  {label:<52} median {median:8.2f} {unit}   p90 {p90:8.2f} {unit}   (n={len(samples)})"
    if target is not None:
        line += f"   target < {target:g} {unit}: {verdict(median, target)}"
    print(line)


def vm_view_spec(si: Any, paths: list[str]) -> tuple[Any, Any]:
    content = si.content
    view = content.viewManager.CreateContainerView(container=content.rootFolder, type=[vim.VirtualMachine],
                                                   recursive=True)
    spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[
            PC.TraversalSpec(name="view", type=vim.view.ContainerView, path="view", skip=False)])],
        propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=paths)])
    return view, spec


def retrieve_all(si: Any, spec: Any) -> list[Any]:
    pc = si.content.propertyCollector
    result = pc.RetrievePropertiesEx(specSet=[spec], options=PC.RetrieveOptions(maxObjects=1000))
    objects = list(result.objects) if result else []
    while result and result.token:
        result = pc.ContinueRetrievePropertiesEx(token=result.token)
        objects.extend(result.objects)
    return objects


def bench_latency(calls: int, clones: int) -> None:
    print("Latency (fast profile; client and simulator on this machine, real pyVmomi over HTTPS)")
    with simulator("--profile", "fast") as sim:
        si = sim.connect()
        try:
            pc = si.content.propertyCollector
            template = si.content.searchIndex.FindByInventoryPath("dc1/vm/linux-template")
            one_vm = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=template)], propSet=[PC.PropertySpec(
                type=vim.VirtualMachine, pathSet=["name", "runtime.powerState"])])
            report("RetrievePropertiesEx, 1 VM, 2 properties",
                   timed(lambda: pc.RetrievePropertiesEx(specSet=[one_vm], options=PC.RetrieveOptions()), calls),
                   SOAP_CALL_TARGET_MS)
            view, all_vms = vm_view_spec(si, ["name", "runtime.powerState", "config.hardware.numCPU"])
            report("RetrievePropertiesEx, container view, 4 VMs x 3",
                   timed(lambda: pc.RetrievePropertiesEx(specSet=[all_vms], options=PC.RetrieveOptions()), calls),
                   SOAP_CALL_TARGET_MS)
            view.DestroyView()
            report("CurrentTime (the floor: one trivial SOAP call)", timed(si.CurrentTime, calls),
                   SOAP_CALL_TARGET_MS)

            snapshot = template.snapshot.currentSnapshot
            spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(diskMoveType="createNewChildDiskBacking"),
                                    snapshot=snapshot)
            round_trips: list[float] = []
            simulated: list[float] = []
            soap_calls: list[int] = []
            for index in range(clones):
                sim.reset_counters()
                start = time.perf_counter()
                task = template.CloneVM_Task(folder=template.parent, name=f"bench-{index}", spec=spec)
                WaitForTask(task)
                round_trips.append((time.perf_counter() - start) * 1000)
                soap_calls.append(sum(sim.counters().values()))
                info = task.info
                simulated.append((info.completeTime - info.queueTime).total_seconds() * 1000)
            report("CloneVM_Task linked round trip (call + WaitForTask)", round_trips)
            report("  of which the task itself (queueTime->completeTime)", simulated)
            calls_per_trip = statistics.median(soap_calls)
            per_call = [(trip - sim_ms) / max(1, n) for trip, sim_ms, n in zip(round_trips, simulated, soap_calls,
                                                                                strict=True)]
            print(f"  {'  SOAP calls per round trip':<52} median {calls_per_trip:8.0f}")
            report("  per SOAP call, simulated clone time removed", per_call, SOAP_CALL_TARGET_MS)
        finally:
            Disconnect(si)
            si._stub.DropConnections()


def generated_inventory(path: Path, count: int) -> None:
    """An inventory like the default one, with ``count`` VMs in all (each with one snapshot)."""
    vms: list[dict[str, Any]] = []
    for index in range(count):
        vms.append({"name": f"vm-{index:04d}", "folder": f"group-{index // 100}", "host": f"esx{index % 2 + 1}",
                    "guest_id": "ubuntu64Guest" if index % 4 else "windows2019srvNext_64Guest",
                    "power": "poweredOn" if index % 3 == 0 else "poweredOff",
                    "frozen": index % 30 == 0, "snapshots": ["base"]})
    data = {"datacenters": [{"name": "dc1", "datastores": [{"name": "datastore1", "capacity_gb": 65536}],
                             "networks": ["VM Network"], "clusters": [{"name": "cluster1", "hosts": ["esx1", "esx2"]}],
                             "vms": vms}]}
    path.write_text(json.dumps(data))


def exercise(si: Any) -> int:
    """Read every VM's heavy properties once (as a client listing the inventory would)."""
    view, spec = vm_view_spec(si, ["name", "config", "runtime", "summary", "layoutEx", "snapshot"])
    try:
        return len(retrieve_all(si, spec))
    finally:
        view.DestroyView()


def bench_memory() -> None:
    print(f"Memory of the simulator process with {VM_COUNT} VMs (resident set, from /proc)")
    with simulator("--profile", "fast") as sim:
        idle, _ = sim.rss_mb()
    print(f"  {'default inventory (4 VMs), idle':<52} RSS {idle:8.1f} MB")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "inventory-500.json"
        generated_inventory(path, VM_COUNT)
        with simulator("--profile", "fast", "--inventory", str(path)) as sim:
            si = sim.connect()
            try:
                seen = exercise(si)
                view, names = vm_view_spec(si, ["name", "runtime.powerState"])
                retrieval = timed(lambda: retrieve_all(si, names), 30)
                view.DestroyView()
            finally:
                Disconnect(si)
                si._stub.DropConnections()
            rss, peak = sim.rss_mb()
        report(f"RetrievePropertiesEx, container view, {VM_COUNT} VMs x 2", retrieval)
        print(f"  {f'generated inventory file, {seen} VMs, all read once':<52} RSS {rss:8.1f} MB   peak {peak:8.1f} MB"
              f"   target < {MEMORY_TARGET_MB:g} MB: {verdict(peak, MEMORY_TARGET_MB)}")
    with simulator("--profile", "fast") as sim:
        si = sim.connect()
        try:
            template = si.content.searchIndex.FindByInventoryPath("dc1/vm/linux-template")
            spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(diskMoveType="createNewChildDiskBacking"),
                                    snapshot=template.snapshot.currentSnapshot)
            existing = len(si.content.rootFolder.childEntity[0].vmFolder.childEntity)
            pending: list[Any] = []
            for index in range(VM_COUNT - existing):
                pending.append(template.CloneVM_Task(folder=template.parent, name=f"clone-{index:04d}", spec=spec))
                if len(pending) == 50:  # at most 50 tasks in flight, as a busy test suite would have
                    for task in pending:
                        WaitForTask(task)
                    pending = []
            for task in pending:
                WaitForTask(task)
            seen = exercise(si)
        finally:
            Disconnect(si)
            si._stub.DropConnections()
        rss, peak = sim.rss_mb()
    print(f"  {f'default inventory + linked clones, {seen} VMs':<52} RSS {rss:8.1f} MB   peak {peak:8.1f} MB"
          f"   target < {MEMORY_TARGET_MB:g} MB: {verdict(peak, MEMORY_TARGET_MB)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300, help="timed calls per RetrievePropertiesEx figure")
    parser.add_argument("--clones", type=int, default=40, help="timed CloneVM_Task round trips")
    args = parser.parse_args()
    print(f"pytest-vsphere-clone simulator benchmark (python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    bench_latency(args.calls, args.clones)
    bench_memory()
    return 0


if __name__ == "__main__":
    sys.exit(main())
