"""Finding and removing host resources by name tag: crash recovery and a teardown safety net."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
from pathlib import Path

from ..errors import GuestHostError
from . import procfs
from .host_registry import Allocation, index_of, tag_for
from .host_tools import run

NETNS_DIR = Path("/run/netns")


def _netns_names() -> list[str]:
    try:
        return os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []


def _link_names() -> list[str]:
    return [link["ifname"] for link in json.loads(run(["ip", "-j", "link", "show"]) or "[]")]


def _dnsmasq_pids(tag: str | None) -> dict[int, int]:
    """Map pid -> index of our dnsmasq processes (all, or those of one tag).

    Only those serving this network namespace's bridges: a simulator in a user namespace of its own
    (a run without root, see rootless.py) has its own registry, so a tag elsewhere is someone else's.
    """
    found = {}
    own_netns = procfs.ns_inode("/proc/self/ns/net")
    for pid in procfs.pids_in_namespace("net", own_netns):
        argv = procfs.cmdline(pid)
        if not argv or os.path.basename(argv[0]) != "dnsmasq":
            continue
        for arg in argv:
            if arg.startswith("--interface="):
                index = index_of(arg.removeprefix("--interface="))
                if index is not None and (tag is None or tag_for(index) == tag):
                    found[pid] = index
    return found


def scan_indices() -> set[int]:
    """Indices for which any of our namespaces, links or DHCP servers exist."""
    names = _netns_names() + _link_names()
    indices = {i for i in map(index_of, names) if i is not None}
    return indices | set(_dnsmasq_pids(None).values())


def remove_netns(name: str) -> None:
    """Kill every process of a named network namespace, then delete the namespace."""
    path = NETNS_DIR / name
    try:
        inode = procfs.ns_inode(str(path))
    except FileNotFoundError:
        return
    procfs.kill_netns(inode)
    run(["ip", "netns", "delete", name], check=False)


def sweep(index: int, allocation: Allocation | None) -> None:
    """Remove every resource carrying ``index``'s tag, plus its runtime directory if known."""
    tag = tag_for(index)
    errors = []
    for name in _netns_names():
        if index_of(name) == index:
            try:
                remove_netns(name)
            except (GuestHostError, TimeoutError) as exc:
                errors.append(str(exc))
    for pid in _dnsmasq_pids(tag):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for name in _link_names():
        if index_of(name) == index:
            run(["ip", "link", "delete", name], check=False)
    if allocation is not None:
        shutil.rmtree(allocation.runtime_dir, ignore_errors=True)
    if errors:
        raise GuestHostError(f"could not sweep {tag}: {'; '.join(errors)}")
