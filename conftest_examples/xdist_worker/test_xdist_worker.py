"""Worker scope (the default): one clone per xdist worker, made concurrently, shared by that worker's tests.

Run with ``-n 2``: each worker gets its own clone, named after the worker (gw0, gw1, ...).
"""

from __future__ import annotations

import os

from pytest_vsphere_clone.plugin.clone import Clone

#: The clone each worker saw first (module globals live once per worker process).
SEEN: dict[str, str] = {}


def test_the_clone_belongs_to_this_worker(vsphere_vm: Clone) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "master")
    assert f"-{worker}-" in vsphere_vm.name
    assert SEEN.setdefault(worker, vsphere_vm.name) == vsphere_vm.name


def test_every_test_of_the_worker_shares_that_clone(vsphere_vm: Clone) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "master")
    assert SEEN.setdefault(worker, vsphere_vm.name) == vsphere_vm.name
    # State carries over between the worker's tests: keep worker-scoped tests free of leftovers.
    assert vsphere_vm.run(f"echo {worker} > /tmp/worker-id && cat /tmp/worker-id").stdout.strip() == worker
