#!/usr/bin/env python3
"""Power operations on a VM: on, off and reset as tasks polled through ``task.info``; guest shutdown
and reboot through VMware Tools, followed by reading ``vm.runtime.powerState`` and ``vm.guest``."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from pyVmomi import vim
from tools import cli, pchelper, service_instance, tasks

ACTIONS = ("on", "off", "reset", "shutdown-guest", "reboot-guest")


def wait_for(vm: vim.VirtualMachine, what: str, check: Callable[[], bool], timeout: float) -> None:
    """Poll until ``check()`` is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            tasks.fail(f"{vm.name}: not {what} after {timeout:.0f} s (power {vm.runtime.powerState}, "
                       f"tools {vm.guest.toolsRunningStatus})")
        time.sleep(1)


def main() -> int:
    parser = cli.build_parser(__doc__.splitlines()[0])
    parser.add_argument("-v", "--vm-name", required=True, help="name of the VM")
    parser.add_argument("actions", nargs="+", choices=ACTIONS, help="what to do, in order")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for each step")
    args = cli.parse(parser)
    si = service_instance.connect(args)
    content = si.RetrieveContent()
    vm = pchelper.get_obj(content, vim.VirtualMachine, args.vm_name)
    if vm is None:
        tasks.fail(f"no VM called {args.vm_name}")
    print(f"{vm.name}: power={vm.runtime.powerState} tools={vm.guest.toolsRunningStatus}")

    def tools_running() -> bool:
        return vm.guest.toolsRunningStatus == "guestToolsRunning"

    try:
        for action in args.actions:
            if action == "on":
                tasks.poll_task(vm.PowerOnVM_Task(), "PowerOnVM_Task", args.timeout)
                wait_for(vm, "running VMware Tools", tools_running, args.timeout)
            elif action == "off":
                tasks.poll_task(vm.PowerOffVM_Task(), "PowerOffVM_Task", args.timeout)
            elif action == "reset":
                boot = vm.runtime.bootTime
                tasks.poll_task(vm.ResetVM_Task(), "ResetVM_Task", args.timeout)
                if vm.runtime.bootTime == boot:
                    tasks.fail(f"{vm.name}: bootTime {boot} unchanged by a reset")
                wait_for(vm, "running VMware Tools", tools_running, args.timeout)
            elif action == "shutdown-guest":
                vm.ShutdownGuest()
                wait_for(vm, "powered off", lambda: vm.runtime.powerState == "poweredOff", args.timeout)
            elif action == "reboot-guest":
                # RebootGuest returns at once; the VM stays powered on while the guest restarts, and
                # scripts then wait for the Tools to run and report an address again.
                vm.RebootGuest()
                wait_for(vm, "back from a reboot",
                         lambda: tools_running() and vm.guest.ipAddress is not None, args.timeout)
            print(f"{action}: power={vm.runtime.powerState} tools={vm.guest.toolsRunningStatus} "
                  f"ip={vm.guest.ipAddress or '-'}")
    except tasks.TaskFailed as exc:
        tasks.fail(str(exc))
    except vim.fault.VimFault as exc:
        tasks.fail(f"{type(exc).__name__}: {exc.msg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
