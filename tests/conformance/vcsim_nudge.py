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
from collections.abc import Iterator
from typing import Any

from vcsim_loop import VcsimLoop
from vcsim_server import Vcsim, vm_properties, wait_task

#: A stock VM of vcsim's VPX model that the tier neither clones nor lists as a clone.
NUDGED_VM = "DC0_C0_RP0_VM1"


class CollectorNudge(VcsimLoop):
    """A thread that causes one harmless inventory change every ``interval`` seconds."""

    name = "vcsim-collector-nudge"

    def __init__(self, server: Vcsim, interval: float = 0.5) -> None:
        super().__init__(server, interval)
        self.count = 0
        self._vm: Any = None

    def prepare(self, si: Any) -> None:
        for vm, props in vm_properties(si, ["name"]).items():
            if props["name"] == NUDGED_VM:
                self._vm = vm
                return
        raise LookupError(f"vcsim has no VM {NUDGED_VM}")

    def step(self, si: Any) -> None:
        from pyVmomi import vim

        wait_task(self._vm.ReconfigVM_Task(vim.vm.ConfigSpec()), timeout=30)
        self.count += 1


@contextlib.contextmanager
def nudging(server: Vcsim, interval: float = 0.5) -> Iterator[CollectorNudge]:
    """A running CollectorNudge for the block."""
    nudge = CollectorNudge(server, interval).start()
    try:
        yield nudge
    finally:
        nudge.stop()
