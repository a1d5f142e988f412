"""Machine-wide registry of live GuestHosts: unique subnet and name prefix per simulator.

Several simulators may run at once (one per pytest-xdist worker). Each claims an
index under a lock file; the index picks both its /24 subnet and its name tag
("pvcs042"), which prefixes every bridge, veth and network namespace it creates.
An entry records the owner's pid and start time, so an entry whose owner died
(SIGKILL, OOM) is recognised as stale and its resources are swept by the next
allocation - while a live owner's resources are never touched.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import GuestHostError
from . import procfs
from .host_tools import run

DEFAULT_REGISTRY_DIR = Path("/run/pytest-vsphere-clone-sim")
DEFAULT_NETWORK = "10.213.0.0/16"
NAME_PREFIX = "pvcs"
_MAX_INDEX = 999  # three digits keep "pvcsNNN-<guest>" within the 15-char interface name limit
_NAME_RE = re.compile(rf"^{NAME_PREFIX}(\d{{3}})(?:-|$)")


def tag_for(index: int) -> str:
    """Name prefix of everything owned by the simulator holding ``index``."""
    return f"{NAME_PREFIX}{index:03d}"


def index_of(name: str) -> int | None:
    """The index encoded in one of our resource names, or None if the name is not ours."""
    match = _NAME_RE.match(name)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class Allocation:
    """One simulator's claim."""

    index: int
    subnet: str
    owner_pid: int
    owner_start: int
    sim_id: str
    runtime_dir: str

    @property
    def tag(self) -> str:
        return tag_for(self.index)

    def owner_alive(self) -> bool:
        return procfs.is_alive(self.owner_pid, self.owner_start)


# Called with (index, allocation-or-None) to remove everything a dead simulator left.
Sweeper = Callable[[int, "Allocation | None"], None]
# Returns the indices for which resources (links, namespaces, processes) currently exist.
ResourceScanner = Callable[[], set[int]]


class Registry:
    """The registry directory: one JSON file per live simulator plus a lock file."""

    def __init__(self, directory: Path = DEFAULT_REGISTRY_DIR, network: str = DEFAULT_NETWORK) -> None:
        self.directory = Path(directory)
        net = ipaddress.IPv4Network(network)
        if net.prefixlen > 24:
            raise ValueError(f"network {network} is smaller than a /24")
        self._subnets = list(net.subnets(new_prefix=24))[: _MAX_INDEX + 1]

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        with open(self.directory / "lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _entry_path(self, index: int) -> Path:
        return self.directory / f"{tag_for(index)}.json"

    def _entries(self) -> Iterator[tuple[int, Allocation | None]]:
        for path in self.directory.glob(f"{NAME_PREFIX}*.json"):
            index = index_of(path.stem)
            if index is None:
                continue
            try:
                yield index, Allocation(**json.loads(path.read_text()))
            except (OSError, ValueError, TypeError):
                yield index, None  # torn or foreign file: treat as dead

    def allocate(self, sim_id: str, state_dir: Path, *, sweep: Sweeper, scan: ResourceScanner) -> Allocation:
        """Sweep what dead simulators left, then claim a free index for the calling process."""
        with self._locked():
            live: set[int] = set()
            for index, entry in self._entries():
                if entry is not None and entry.owner_alive():
                    live.add(index)
                    continue
                sweep(index, entry)
                self._entry_path(index).unlink(missing_ok=True)
            for index in scan() - live:
                sweep(index, None)  # resources without any registry entry: an owner that died early
            used_subnets = _routed_networks()
            for index, subnet in enumerate(self._subnets):
                if index in live or any(subnet.overlaps(net) for net in used_subnets):
                    continue
                entry = Allocation(
                    index=index,
                    subnet=str(subnet),
                    owner_pid=os.getpid(),
                    owner_start=_own_start_ticks(),
                    sim_id=sim_id,
                    runtime_dir=str(Path(state_dir).resolve() / tag_for(index)),
                )
                path = self._entry_path(index)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(asdict(entry)))
                tmp.rename(path)
                return entry
        raise GuestHostError(f"no free /24 left in {self._subnets[0]}..{self._subnets[-1]}")

    def release(self, allocation: Allocation) -> None:
        """Drop a claim (after its resources were removed)."""
        with self._locked():
            self._entry_path(allocation.index).unlink(missing_ok=True)


def _own_start_ticks() -> int:
    stat = procfs.read_stat(os.getpid())
    if stat is None:  # pragma: no cover - /proc/self always exists
        raise GuestHostError("cannot read /proc for the current process")
    return stat.start_ticks


def _routed_networks() -> list[ipaddress.IPv4Network]:
    """Networks the host already routes or has addresses in, which a new subnet must avoid."""
    routes = json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]) or "[]")
    nets = []
    for route in routes:
        dst = route.get("dst", "")
        if dst in ("", "default", "0.0.0.0/0"):
            continue
        try:
            nets.append(ipaddress.IPv4Network(dst, strict=False))
        except ValueError:
            continue
    return nets
