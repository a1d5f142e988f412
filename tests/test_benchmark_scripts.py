"""The benchmark scripts' own logic: the naive pyVmomi baseline really runs the whole lifecycle."""

from __future__ import annotations

import importlib.util
import ipaddress
import sys
from pathlib import Path
from types import ModuleType

import pytest

from pytest_vsphere_clone.simulator import Simulator

pytestmark = pytest.mark.guests

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str) -> ModuleType:
    """A script of benchmarks/ as a module (the directory is not a package)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_naive_lifecycle_completes_and_leaves_no_clone(guest_sim: Simulator) -> None:
    naive_flow = _load("naive_flow")
    before = guest_sim.vm_names()
    facts = guest_sim.connection_facts()
    si, content = naive_flow.connect(facts)
    try:
        guest_sim.reset_counters()
        result = naive_flow.run_lifecycle(content, facts, poll=0.02, timeout=60.0)
        counts = guest_sim.counters()
    finally:
        naive_flow.disconnect(si)
    assert ipaddress.ip_address(result.ip).version == 4
    assert result.name not in guest_sim.vm_names()
    assert guest_sim.vm_names() == before
    # It is the full lifecycle: every step was asked of the vCenter, and discovery ran in the guest.
    for method in ("CloneVM_Task", "PowerOnVM_Task", "PowerOffVM_Task", "Destroy_Task"):
        assert counts[method] == 1, (method, counts)
    assert counts["StartProgramInGuest"] == result.attempts
    assert counts["InitiateFileTransferFromGuest"] >= 1
