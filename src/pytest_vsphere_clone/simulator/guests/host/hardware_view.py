"""What a Linux guest sees of its virtual hardware: CPUs, memory, disks and extra NICs.

A guest runs on the host's kernel, so its /proc and /sys would show the host's machine. As lxcfs does
for containers, the guest's mount namespace gets its own views, written by the simulator from the VM's
configuration into the guest's tools directory (``/run/vmware-tools/hw``) and bound over:

- ``/proc/cpuinfo`` (one ``processor`` block per virtual CPU) and ``/sys/devices/system/cpu/online``
  (``getconf _NPROCESSORS_ONLN``, ``lscpu``); the guest's processes are pinned to that many host CPUs
  (``nproc`` counts its affinity), as far as the host has them;
- ``/proc/meminfo`` (``free``): MemTotal is the VM's memory;
- ``/sys/block`` and ``/sys/dev/block`` (``lsblk``): one SCSI disk per virtual disk, ``sda`` the first,
  with its size, major:minor 8:16n, vendor VMware, model "Virtual disk".

NICs after the first are interfaces ``eth1``... in the guest's network namespace, with the NIC's MAC
and carrier: the guest sees them and VMware Tools report them on their port group, but they carry no
traffic (the simulator has one layer-2 network, its bridge, behind eth0). Each is a veth whose host end
(``<guest>x<N>``, up, on no bridge) goes away with the guest's network namespace.

Files are rewritten in place when the hardware changes (ReconfigVM_Task): bind mounts keep their
inodes, so the guest sees the new values without new mounts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import GuestError
from . import pidns
from .host_tools import ip_batch, run

if TYPE_CHECKING:
    from ..guest import Guest

log = logging.getLogger(__name__)

#: The views' directory as the guest sees it (its tools directory is bound at /run/vmware-tools).
GUEST_DIR = "/run/vmware-tools/hw"
SCSI_MAJOR = 8
_SECTOR = 512
#: (view file, guest path) bound as files.
_FILES = (("cpuinfo", "/proc/cpuinfo"), ("meminfo", "/proc/meminfo"), ("cpu-online", "/sys/devices/system/cpu/online"))
#: (view directory, guest path) bound as directories.
_DIRS = (("block", "/sys/block"), ("dev-block", "/sys/dev/block"))


@dataclass(frozen=True)
class HardwareView:
    """The hardware a guest sees: from the VM's config.hardware."""

    cpus: int
    memory_mb: int
    #: Capacity in KB of each disk, the first disk first.
    disks_kb: tuple[int, ...]
    #: MACs of the NICs after the first (eth1, eth2, ...).
    extra_nic_macs: tuple[str, ...] = ()


def present(guest: Guest, view: HardwareView, *, mount: bool) -> None:
    """Show ``guest`` its hardware: write the views, bind them at its boot (``mount``), add NICs, pin CPUs.

    A failure is logged, not raised: the guest runs on, seeing the host's hardware.
    """
    try:
        # The guest's namespace handle (package-internal): it refuses a guest that is off or frozen.
        namespace = guest._ops_namespace()
        pin_cpus(guest.pids(), view.cpus, spread=zlib.crc32(guest.name.encode()))
        write_view(guest.runtime_dir / "tools" / "hw", view)
        if mount:
            mount_view(namespace.enter([]))
    except (GuestError, OSError) as exc:
        log.warning("guest %s: could not show it its CPUs, memory and disks: %s", guest.vm_id, exc)
    if not view.extra_nic_macs:
        return  # no extra NIC: not even the look at the guest's interfaces on the boot path
    try:
        add_nics(guest.name, view.extra_nic_macs, {nic.name for nic in guest.interfaces()})
    except (GuestError, OSError) as exc:
        log.warning("guest %s: could not show it its extra NICs: %s", guest.vm_id, exc)


def write_view(hw_dir: Path, view: HardwareView) -> None:
    """Write (or rewrite in place) the view files under ``hw_dir`` (the host's path of GUEST_DIR)."""
    hw_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    _write(hw_dir / "cpuinfo", _cpuinfo(view.cpus))
    _write(hw_dir / "meminfo", _meminfo(view.memory_mb))
    _write(hw_dir / "cpu-online", "0\n" if view.cpus == 1 else f"0-{view.cpus - 1}\n")
    block, dev_block = hw_dir / "block", hw_dir / "dev-block"
    for directory in (block, dev_block):
        directory.mkdir(exist_ok=True)
    wanted = {_disk_name(i): kb for i, kb in enumerate(view.disks_kb)}
    for entry in list(block.iterdir()):
        if entry.name not in wanted:
            shutil.rmtree(entry)
    for entry in list(dev_block.iterdir()):
        entry.unlink()
    for index, (name, kb) in enumerate(wanted.items()):
        disk = block / name
        (disk / "queue").mkdir(parents=True, exist_ok=True)
        (disk / "device").mkdir(exist_ok=True)
        number = f"{SCSI_MAJOR}:{16 * index}"
        files = {"dev": number, "size": str(kb * 1024 // _SECTOR), "removable": "0", "ro": "0", "hidden": "0",
                 "queue/rotational": "0", "queue/logical_block_size": str(_SECTOR),
                 "queue/physical_block_size": str(_SECTOR), "device/type": "0", "device/vendor": "VMware  ",
                 "device/model": "Virtual disk    ", "device/state": "running"}
        for relative, text in files.items():
            _write(disk / relative, text + "\n")
        # /sys/dev/block/MAJ:MIN -> ../../block/NAME, as sysfs links them (lsblk reads disks through it).
        (dev_block / number).symlink_to(f"../../block/{name}")


def mount_view(enter: list[str]) -> None:
    """Bind the views over the guest's /proc and /sys files; ``enter`` prefixes a command to run in the
    guest's mount namespace (GuestNamespace.enter). Not ``mount -a`` of an fstab: entered without the
    guest's PID namespace, libmount finds no /proc/self/mountinfo in the guest's /proc and skips it all."""
    binds = [f'mount -n --bind "{GUEST_DIR}/{name}" "{target}"' for name, target in (*_FILES, *_DIRS)]
    run([*enter, "/bin/sh", "-ec", " && ".join(binds)])


def add_nics(netns: str, macs: tuple[str, ...], existing: set[str]) -> None:
    """Interfaces eth1... with ``macs`` in the guest's network namespace ``netns`` (those not there yet)."""
    host_side, guest_side = [], []
    for index, mac in enumerate(macs, start=1):
        name, peer = f"eth{index}", f"{netns}x{index}"
        if name in existing or len(peer) > 15:  # IFNAMSIZ
            continue
        host_side += [f"link add {peer} type veth peer name {name} address {mac} netns {netns}", f"link set {peer} up"]
        guest_side.append(f"link set {name} up")
    if host_side:
        ip_batch(host_side)
        ip_batch(guest_side, netns=netns)


def pin_cpus(pids: list[int], cpus: int, spread: int = 0) -> None:
    """Pin the guest's processes (and so their children, and the processes Guest Operations start later)
    to ``cpus`` host CPUs, or all when the host has fewer: ``nproc`` and sched_getaffinity count those.
    ``spread`` picks where the CPUs start, so small guests do not all share the host's first CPU."""
    available = sorted(os.sched_getaffinity(0))
    start = spread % len(available)
    chosen = set((available * 2)[start:start + cpus]) if cpus < len(available) else set(available)
    if pids:
        with contextlib.suppress(OSError):
            pidns.set_affinity(os.stat(f"/proc/{pids[0]}/ns/pid").st_ino,
                               chosen if len(chosen) < len(available) else None)
    for pid in pids:
        with contextlib.suppress(OSError):  # a process that just ended
            for task in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(task), chosen)


def _disk_name(index: int) -> str:
    """sda, sdb, ..., sdz, sdaa: the kernel's SCSI disk names."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("a") + rest) + name
    return "sd" + name


def _write(path: Path, text: str) -> None:
    """Rewrite ``path`` in place (same inode: a bind mount of it shows the new text)."""
    with open(path, "w", encoding="ascii") as f:
        f.write(text)


def _cpuinfo(cpus: int) -> str:
    """The host's first processor block, once per virtual CPU (one core per socket, as vSphere's default)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            first = f.read().split("\n\n")[0]
    except OSError:
        first = "processor\t: 0"
    blocks = []
    for number in range(cpus):
        lines = []
        for line in first.splitlines():
            key = line.split(":")[0].strip()
            value = {"processor": number, "physical id": number, "apicid": number, "initial apicid": number,
                     "core id": 0, "cpu cores": 1, "siblings": 1}.get(key)
            lines.append(f"{line.split(':')[0]}: {value}" if value is not None else line)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n\n"


def _meminfo(memory_mb: int) -> str:
    """A guest that has just booted: most of its memory free."""
    total = memory_mb * 1024
    used = min(total // 10, 200 * 1024)
    rows = [("MemTotal", total), ("MemFree", total - used), ("MemAvailable", total - used // 2),
            ("Buffers", 0), ("Cached", used // 2), ("SwapCached", 0), ("Active", used // 2),
            ("Inactive", used // 4), ("Shmem", 0), ("SReclaimable", 0), ("SwapTotal", 0), ("SwapFree", 0)]
    return "".join(f"{key + ':':<16}{value:>8} kB\n" for key, value in rows)
