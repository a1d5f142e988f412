"""How long simulated operations take: latency profiles and a time scale."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

#: The seeds' measured phase times (kitchen-vcenter on nested vSphere, Windows 2016), in seconds:
#: linked clone 0.8-1.3 (avg 1.0), instant clone 3.7-5.0 (4.3), Windows boot 24.1-46.3 (35.0),
#: Tools' IP report every 30 s. Linux boot and guest-op latency are typical figures.
SEED_TIMES: dict[str, tuple[float, float]] = {
    "clone.linked": (0.8, 1.3),
    "clone.full": (20.0, 30.0),
    "clone.instant": (3.7, 5.0),
    "power_on": (0.3, 0.6),
    "power_off": (0.5, 1.0),
    "boot.linux": (8.0, 12.0),
    "boot.windows": (24.1, 46.3),
    # From Tools running to the guest's DHCP address: the seed's active discovery found Windows
    # addresses 3.0-22.4 s (avg 11.2) after boot, Linux ones in ~1.5 s.
    "network.linux": (0.5, 2.5),
    "network.windows": (3.0, 19.4),
    # An instant clone's NIC refresh, from the NIC reset to DHCP running: the seed's instant-clone
    # IP phase on Windows took 10.8-16.1 s (avg 13.7); Linux has no seed figure, so a typical
    # driver reload and link negotiation.
    "refresh.linux": (0.5, 1.5),
    "refresh.windows": (10.8, 16.1),
    "destroy": (0.4, 0.8),
    "snapshot.create": (0.5, 1.0),
    "snapshot.remove": (1.0, 2.0),
    "promote": (2.0, 4.0),
    "reconfigure": (0.2, 0.4),
    "tools.poll": (30.0, 30.0),
    "guest_op": (0.05, 0.15),
    "task.queue": (0.01, 0.03),
    # powershell.exe -NoProfile from start to running its script (Windows PowerShell 5.1 loading
    # .NET and its modules): a typical figure for a small VM.
    "powershell.start": (0.4, 0.9),
}

FAST_TIMES: dict[str, tuple[float, float]] = {
    "clone.linked": (0.02, 0.04),
    "clone.full": (0.05, 0.08),
    "clone.instant": (0.02, 0.04),
    "power_on": (0.005, 0.01),
    "power_off": (0.005, 0.01),
    "boot.linux": (0.0, 0.0),
    "boot.windows": (0.0, 0.0),
    "network.linux": (0.0, 0.0),
    "network.windows": (0.0, 0.0),
    "refresh.linux": (0.0, 0.0),
    "refresh.windows": (0.0, 0.0),
    "destroy": (0.005, 0.01),
    "snapshot.create": (0.005, 0.01),
    "snapshot.remove": (0.005, 0.01),
    "promote": (0.01, 0.02),
    "reconfigure": (0.005, 0.01),
    "tools.poll": (1.0, 1.0),
    "guest_op": (0.0, 0.0),
    "task.queue": (0.0, 0.0),
    "powershell.start": (0.0, 0.0),
}


@dataclass(frozen=True)
class LatencyProfile:
    """Durations of operations, as (min, max) ranges, multiplied by ``time_scale``."""

    name: str
    times: dict[str, tuple[float, float]] = field(default_factory=dict)
    time_scale: float = 1.0
    seed: int | None = None

    @classmethod
    def fast(cls, time_scale: float = 1.0) -> LatencyProfile:
        return cls("fast", dict(FAST_TIMES), time_scale)

    @classmethod
    def seed_profile(cls, time_scale: float = 1.0) -> LatencyProfile:
        return cls("seed", dict(SEED_TIMES), time_scale)

    @classmethod
    def named(cls, name: str, time_scale: float = 1.0) -> LatencyProfile:
        """The profile called ``name`` (``fast`` or ``seed``)."""
        if name == "fast":
            return cls.fast(time_scale)
        if name == "seed":
            return cls.seed_profile(time_scale)
        raise ValueError(f"unknown latency profile {name!r}: use 'fast' or 'seed'")

    def at_means(self) -> LatencyProfile:
        """The same profile with every operation taking its mean time: for measurements that must not
        depend on random draws (the slowest of eight random boots is not a scaling cost)."""
        return LatencyProfile(f"{self.name}-means", {op: ((lo + hi) / 2,) * 2 for op, (lo, hi) in self.times.items()},
                              self.time_scale, self.seed)

    def duration(self, operation: str) -> float:
        """A duration for one run of ``operation``, already scaled."""
        low, high = self.times.get(operation, (0.0, 0.0))
        return random.uniform(low, high) * self.time_scale

    def range(self, operation: str) -> tuple[float, float]:
        """The scaled (min, max) of ``operation``: for guests that draw their own durations."""
        low, high = self.times.get(operation, (0.0, 0.0))
        return low * self.time_scale, high * self.time_scale

    def mean(self, operation: str) -> float:
        """The scaled mean duration of ``operation`` (the limit benchmarks compare with)."""
        low, high = self.times.get(operation, (0.0, 0.0))
        return (low + high) / 2 * self.time_scale

    def sleep(self, operation: str) -> None:
        seconds = self.duration(operation)
        if seconds > 0:
            time.sleep(seconds)
