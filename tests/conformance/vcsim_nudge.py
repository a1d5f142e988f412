"""Works around vcsim's late initial updates for new property filters with a steady trickle of changes.

The reference, ``PropertyCollector.WaitForUpdatesEx``: "Calculate the set of updates for each
existing filter in the session", returning the "Changes since the passed in version"; and
``ObjectUpdateKind.enter``: "A managed object became visible to a filter for the first time". A
filter created on a collector that already has a version therefore reports its objects (kind
``enter``) on the next WaitForUpdatesEx. vcsim 0.24 departs from this: after a collector's first
wait it computes updates only when some object of its inventory changes, so a new filter's
first values wait for an unrelated change, forever on an idle server. A client that keeps one
collector and adds a filter per VM (as the reference allows, and as the plugin does) then sees
nothing.

The nudge makes the idle server not idle: every ``interval`` it reconfigures one stock VM that no
test uses with an empty spec, a task that changes nothing but makes vcsim compute its pending
updates. It costs the plugin nothing and is invisible to it except as foreign tasks on the server.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from vcsim_server import Vcsim, vm_properties, wait_task

#: A stock VM of vcsim's VPX model that the tier neither clones nor lists as a clone.
NUDGED_VM = "DC0_C0_RP0_VM1"


class CollectorNudge:
    """A thread that causes one harmless inventory change every ``interval`` seconds."""

    def __init__(self, server: Vcsim, interval: float = 0.5) -> None:
        self.server = server
        self.interval = interval
        self.count = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vcsim-collector-nudge", daemon=True)

    def start(self) -> CollectorNudge:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        from pyVim.connect import Disconnect
        from pyVmomi import vim

        si = self.server.connect()
        try:
            vm = self._find(si)
            while not self._stop.wait(self.interval):
                try:
                    wait_task(vm.ReconfigVM_Task(vim.vm.ConfigSpec()), timeout=30)
                except Exception as exc:  # a stopped nudge would look like a plugin hang
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                self.count += 1
        finally:
            Disconnect(si)

    @staticmethod
    def _find(si: Any) -> Any:
        for vm, props in vm_properties(si, ["name"]).items():
            if props["name"] == NUDGED_VM:
                return vm
        raise LookupError(f"vcsim has no VM {NUDGED_VM}")


@contextlib.contextmanager
def nudging(server: Vcsim, interval: float = 0.5) -> Iterator[CollectorNudge]:
    """A running CollectorNudge for the block."""
    nudge = CollectorNudge(server, interval).start()
    try:
        yield nudge
    finally:
        nudge.stop()
