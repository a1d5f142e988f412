#!/usr/bin/env python3
"""Change a VM's CPU count, memory and annotation with ReconfigVM_Task, powering it off first if needed.

The tasks are followed by polling ``task.info``; the result is read back from ``vm.config`` and
``vm.summary.config``.
"""

from __future__ import annotations

import sys

from pyVmomi import vim
from tools import cli, pchelper, service_instance, tasks


def main() -> int:
    parser = cli.build_parser(__doc__.splitlines()[0])
    parser.add_argument("-v", "--vm-name", required=True, help="name of the VM")
    parser.add_argument("--cpus", type=int, help="new number of virtual CPUs")
    parser.add_argument("--memory-mb", type=int, help="new memory size in MB")
    parser.add_argument("--annotation", help="new annotation (notes)")
    args = cli.parse(parser)
    si = service_instance.connect(args)
    content = si.RetrieveContent()
    vm = pchelper.get_obj(content, vim.VirtualMachine, args.vm_name)
    if vm is None:
        tasks.fail(f"no VM called {args.vm_name}")
    hardware = vm.config.hardware
    print(f"{vm.name}: power={vm.runtime.powerState} cpus={hardware.numCPU} memory_mb={hardware.memoryMB} "
          f"annotation={vm.config.annotation!r} cpuHotAdd={vm.config.cpuHotAddEnabled}")

    spec = vim.vm.ConfigSpec()
    if args.cpus:
        spec.numCPUs = args.cpus
    if args.memory_mb:
        spec.memoryMB = args.memory_mb
    if args.annotation is not None:
        spec.annotation = args.annotation
    try:
        # Without CPU/memory hot add, a running VM's CPUs and memory change only while it is off.
        hot = vm.config.cpuHotAddEnabled and vm.config.memoryHotAddEnabled
        if (args.cpus or args.memory_mb) and vm.runtime.powerState == "poweredOn" and not hot:
            tasks.poll_task(vm.PowerOffVM_Task(), "PowerOffVM_Task")
        tasks.poll_task(vm.ReconfigVM_Task(spec=spec), "ReconfigVM_Task")
    except tasks.TaskFailed as exc:
        tasks.fail(str(exc))

    hardware = vm.config.hardware
    summary = vm.summary.config
    print(f"{vm.name}: power={vm.runtime.powerState} cpus={hardware.numCPU} memory_mb={hardware.memoryMB} "
          f"annotation={vm.config.annotation!r}")
    print(f"summary.config: numCpu={summary.numCpu} memorySizeMB={summary.memorySizeMB} "
          f"annotation={summary.annotation!r}")
    wanted = {"numCPU": (args.cpus, hardware.numCPU, summary.numCpu),
              "memoryMB": (args.memory_mb, hardware.memoryMB, summary.memorySizeMB),
              "annotation": (args.annotation, vm.config.annotation, summary.annotation)}
    for name, (want, config_value, summary_value) in wanted.items():
        if want is not None and (config_value != want or summary_value != want):
            tasks.fail(f"{name}: asked for {want!r}, config says {config_value!r}, summary {summary_value!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
