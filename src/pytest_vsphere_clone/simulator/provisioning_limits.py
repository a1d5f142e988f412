"""vCenter's limits on simultaneous provisioning and migrations: costs per host and datastore; the rest queue.

vSphere documentation, "Limits on Simultaneous Migrations" (vCenter Server and Host Management):
"Each operation, such as a migration with vMotion or cloning a virtual machine, is assigned a
resource cost. Each host, datastore, or network resource, has a maximum cost that it can support
at any one time. Any new migration or provisioning operation that causes a resource to exceed its
maximum cost does not proceed immediately, but is queued until other operations complete and
release resources. Each of the network, datastore, and host limits must be satisfied for the
operation to proceed."

Its tables: every host has a maximum cost of 8; vMotion costs 1 against it, Storage vMotion and
vMotion without shared storage 4, "other provisioning operations" (cloning, deployment, cold
migration) 1. Every datastore has a maximum cost of 128; vMotion costs 1 against the shared
datastore, Storage vMotion 16. vCenter reads the host maximum from its advanced setting
``config.vpxd.ResourceManager.maxCostPerEsx6xHost`` (vpxd.cfg's ResourceManager/maxCostPerEsx6xHost),
so an administrator may change it; the simulator reads it from its VpxSettings the same way.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .objects.base import SimObject
    from .vcenter import VCenter

HOST_MAX_COST = 8
DATASTORE_MAX_COST = 128
#: The vCenter advanced setting (OptionManager VpxSettings) holding a host's maximum cost.
HOST_MAX_COST_SETTING = "config.vpxd.ResourceManager.maxCostPerEsx6xHost"

#: Host costs of the documented operations.
PROVISIONING_HOST_COST = 1  # cloning, deployment, cold migration
VMOTION_HOST_COST = 1
STORAGE_VMOTION_HOST_COST = 4  # also vMotion without shared storage
#: Datastore costs.
VMOTION_DATASTORE_COST = 1
STORAGE_VMOTION_DATASTORE_COST = 16

Costs = Mapping["SimObject", int]
_POLL = 0.2  # a queued operation looks again this often (a changed limit wakes nobody)


class ResourceLimits:
    """Admits operations whose costs fit every resource they touch; the others wait, first come first served."""

    def __init__(self, vc: VCenter) -> None:
        self.vc = vc
        self._cond = threading.Condition()
        self._used: Counter[str] = Counter()
        self._tickets = itertools.count()
        self._waiting: list[tuple[int, Costs]] = []

    def limit(self, resource: SimObject) -> int:
        """The maximum cost ``resource`` (a host or a datastore) supports at once."""
        from .objects.inventory import HostSystem

        if isinstance(resource, HostSystem):
            settings = self.vc.objects.get("VpxSettings")
            value = getattr(settings, "values", {}).get(HOST_MAX_COST_SETTING, HOST_MAX_COST)
            try:
                return max(1, int(value))
            except (TypeError, ValueError):
                return HOST_MAX_COST
        return DATASTORE_MAX_COST

    def in_use(self, resource: SimObject) -> int:
        """The cost running operations hold on ``resource`` now."""
        with self._cond:
            return self._used[resource.mo_id]

    def _fits(self, costs: Costs) -> bool:
        # An operation costlier than a resource's whole maximum still runs once the resource is idle:
        # a lowered limit must not make it wait forever.
        return all(self._used[r.mo_id] == 0 or self._used[r.mo_id] + cost <= self.limit(r)
                   for r, cost in costs.items())

    def _blocked_by_earlier(self, ticket: int, costs: Costs) -> bool:
        """An operation queued before this one waits for one of its resources: it goes first."""
        wanted = {r.mo_id for r in costs}
        return any(other < ticket and wanted & {r.mo_id for r in other_costs} for other, other_costs in self._waiting)

    def acquire(self, costs: Costs, give_up: Callable[[], bool]) -> bool:
        """Wait until ``costs`` fit, then hold them; False (nothing held) once ``give_up()`` is true."""
        if not costs:
            return True
        with self._cond:
            entry = (next(self._tickets), costs)
            self._waiting.append(entry)
            try:
                while self._blocked_by_earlier(entry[0], costs) or not self._fits(costs):
                    if give_up():
                        return False
                    self._cond.wait(_POLL)
                for resource, cost in costs.items():
                    self._used[resource.mo_id] += cost
                return True
            finally:
                self._waiting.remove(entry)
                self._cond.notify_all()  # the next in line may fit now

    def release(self, costs: Costs) -> None:
        """Give back what :meth:`acquire` took."""
        if not costs:
            return
        with self._cond:
            for resource, cost in costs.items():
                self._used[resource.mo_id] -= cost
                if self._used[resource.mo_id] <= 0:
                    del self._used[resource.mo_id]
            self._cond.notify_all()


def provisioning_costs(*hosts: Any) -> dict[SimObject, int]:
    """Cloning, deployment or cold migration: 1 against each host involved (source and destination)."""
    return {host: PROVISIONING_HOST_COST for host in hosts if host is not None}
