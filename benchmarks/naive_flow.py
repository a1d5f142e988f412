"""The plugin's lifecycle as a plain pyVmomi script: the request baseline of ``plugin_requests.py``.

One linked clone of a template, powered on, its IPv4 address found through Guest Operations
(``ip -o address show`` run in the guest, its output fetched over HTTPS), then powered off and
destroyed. It is written the way a typical user script is: properties read by attribute access
(one request each), tasks, Tools and guest processes polled every ``poll`` seconds. It uses
nothing of the plugin. Run alone (root: real guests) it prints one lifecycle's requests:

    .venv/bin/python benchmarks/naive_flow.py --time-scale 0.1
"""

from __future__ import annotations

import argparse
import re
import secrets
import ssl
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

#: Seconds between polls on real timings (scale it with the simulator's time scale).
POLL = 1.0
TEMPLATE = "linux-template"
#: A fixed path, as a script would hard-code it: each clone is its own guest.
GUEST_OUTPUT = "/tmp/naive-flow-ip.txt"
DISCOVERY_ARGUMENTS = f"-c 'ip -o address show scope global > {GUEST_OUTPUT} 2>&1'"
_IPV4 = re.compile(r"\binet (\d{1,3}(?:\.\d{1,3}){3})/")


@dataclass(frozen=True)
class Lifecycle:
    """What one lifecycle found: the clone's name and address, discovery commands run, wall time."""

    name: str
    ip: str
    attempts: int
    seconds: float


def connect(facts: Mapping[str, str]) -> tuple[Any, Any]:
    """(ServiceInstance, ServiceContent) of a session opened with ``facts`` (the simulator's CA verified)."""
    host, port = facts["HOST"].rsplit(":", 1)
    context = ssl.create_default_context(cafile=facts["CA_FILE"])
    si = SmartConnect(host=host, port=int(port), user=facts["USER"], pwd=facts["PASSWORD"], sslContext=context)
    return si, si.RetrieveContent()


def disconnect(si: Any) -> None:
    Disconnect(si)


def find_vm(content: Any, name: str) -> Any:
    """The VM called ``name``, found by walking a container view and reading each ``vm.name``."""
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        for vm in view.view:
            if vm.name == name:
                return vm
    finally:
        view.Destroy()
    raise LookupError(f"no VM named {name!r}")


def wait_for_task(task: Any, poll: float, deadline: float) -> Any:
    """The task's result, polling ``task.info`` (one read per poll, so the baseline is not padded)."""
    while True:
        info = task.info
        if info.state == vim.TaskInfo.State.success:
            return info.result
        if info.state == vim.TaskInfo.State.error:
            raise info.error
        if time.monotonic() > deadline:
            raise TimeoutError(f"task {task._moId} still {info.state}")
        time.sleep(poll)


def wait_for_tools(vm: Any, poll: float, deadline: float) -> None:
    while vm.guest.toolsRunningStatus != "guestToolsRunning":
        if time.monotonic() > deadline:
            raise TimeoutError("VMware Tools did not start")
        time.sleep(poll)


def discover_ipv4(content: Any, vm: Any, auth: Any, facts: Mapping[str, str], poll: float,
                  deadline: float) -> tuple[str, int]:
    """(address, commands run): run ``ip -o address`` in the guest until it shows an IPv4 address."""
    manager = content.guestOperationsManager
    processes, files = manager.processManager, manager.fileManager
    spec = vim.vm.guest.ProcessManager.ProgramSpec(programPath="/bin/sh", arguments=DISCOVERY_ARGUMENTS)
    download = ssl.create_default_context(cafile=facts["CA_FILE"])
    host = facts["HOST"].rsplit(":", 1)[0]
    attempts = 0
    while time.monotonic() < deadline:
        attempts += 1
        try:
            pid = processes.StartProgramInGuest(vm, auth, spec)
            while processes.ListProcessesInGuest(vm, auth, [pid])[0].exitCode is None:
                time.sleep(poll)
            transfer = files.InitiateFileTransferFromGuest(vm, auth, GUEST_OUTPUT)
            # ESXi answers "https://*/..." meaning "the host you asked": put ours in.
            url = transfer.url.replace("://*", f"://{host}", 1)
            with urllib.request.urlopen(url, context=download, timeout=30) as response:
                text = response.read().decode("utf-8", "replace")
            files.DeleteFileInGuest(vm, auth, GUEST_OUTPUT)
        except vim.fault.GuestOperationsUnavailable:
            text = ""  # Tools just started and do not take commands yet: try again
        match = _IPV4.search(text)
        if match:
            return match.group(1), attempts
        time.sleep(poll)
    raise TimeoutError(f"no IPv4 address after {attempts} discovery commands")


def run_lifecycle(content: Any, facts: Mapping[str, str], *, poll: float = POLL, template: str = TEMPLATE,
                  name: str | None = None, timeout: float = 600.0) -> Lifecycle:
    """Clone ``template`` (linked), power on, find its IPv4 address, power off and destroy it."""
    started = time.monotonic()
    deadline = started + timeout
    name = name or f"naive-{secrets.token_hex(4)}"
    source = find_vm(content, template)
    spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(diskMoveType="createNewChildDiskBacking"),
                            snapshot=source.snapshot.currentSnapshot, powerOn=False, template=False)
    clone = wait_for_task(source.CloneVM_Task(folder=source.parent, name=name, spec=spec), poll, deadline)
    try:
        wait_for_task(clone.PowerOnVM_Task(), poll, deadline)
        wait_for_tools(clone, poll, deadline)
        auth = vim.vm.guest.NamePasswordAuthentication(username=facts["GUEST_USER"],
                                                       password=facts["GUEST_PASSWORD"])
        ip, attempts = discover_ipv4(content, clone, auth, facts, poll, deadline)
    except BaseException:
        # A failed run must not leave its clone behind; only this path asks for the power state.
        if clone.runtime.powerState != vim.VirtualMachine.PowerState.poweredOff:
            wait_for_task(clone.PowerOffVM_Task(), poll, time.monotonic() + 300.0)
        wait_for_task(clone.Destroy_Task(), poll, time.monotonic() + 300.0)
        raise
    wait_for_task(clone.PowerOffVM_Task(), poll, deadline)
    wait_for_task(clone.Destroy_Task(), poll, deadline)
    return Lifecycle(name, ip, attempts, time.monotonic() - started)


def main() -> None:
    from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=0.1, help="the seed profile's time scale")
    args = parser.parse_args()
    with Simulator(SimulatorConfig(guests=True, profile="seed", time_scale=args.time_scale)) as sim:
        facts = sim.connection_facts()
        si, content = connect(facts)
        sim.reset_counters()
        result = run_lifecycle(content, facts, poll=POLL * args.time_scale)
        counts = sim.counters()  # before the logout
        disconnect(si)
    print(f"{result.name}: {result.ip} after {result.attempts} discovery command(s), {result.seconds:.2f} s")
    for method, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {method:<32} {n:>3}")
    print(f"  {'total':<32} {sum(counts.values()):>3}")


if __name__ == "__main__":
    main()
