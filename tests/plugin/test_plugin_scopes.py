"""How many clones each scope makes, under xdist too, and what --collect-only does (nothing).

Counts come from the simulator (requests it served: CloneVM_Task, Destroy_Task)
and from the inner tests themselves, which record the clone they got in a
file per test, so "one clone per worker" means: as many distinct clones as
workers, each used by every test of its worker.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from plugin_helpers import Inner, SimHandle

pytestmark = pytest.mark.guests

#: Each test records which clone it got: SEEN_DIR/<nodeid-ish>.txt = "worker clone-name ip".
RECORDING_TESTS = """
import os, pytest
from pathlib import Path

@pytest.mark.parametrize("i", range({count}))
def test_records_its_clone(vsphere_vm, i, request):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "master")
    assert vsphere_vm.run("true").exit_status == 0
    name = request.node.nodeid.replace("/", "_").replace(":", "_")
    (Path(os.environ["SEEN_DIR"]) / f"{{name}}.txt").write_text(f"{{worker}} {{vsphere_vm.name}} {{vsphere_vm.ip}}")
"""


def seen(directory: Path) -> list[tuple[str, str, str]]:
    """(worker, clone name, ip) for every test that ran."""
    return [tuple(p.read_text().split()) for p in sorted(directory.glob("*.txt"))]  # type: ignore[misc]


@pytest.fixture
def seen_dir(inner: Inner) -> Path:
    path = inner.pytester.path / "seen"
    path.mkdir()
    return path


def test_worker_scope_makes_one_clone_per_worker(inner: Inner, plugin_sim: SimHandle, seen_dir: Path) -> None:
    inner.pytester.makepyfile(test_many=RECORDING_TESTS.format(count=12))
    namespaces = plugin_sim.namespaces()
    plugin_sim.sim.reset_counters()
    outcome = inner.run("--vsphere-template=linux-template", "-n", "4", sim=plugin_sim,
                        env={"SEEN_DIR": str(seen_dir)})
    assert outcome.ret == 0, outcome.out
    outcome.result.assert_outcomes(passed=12)
    counters = plugin_sim.sim.counters()
    assert (counters["CloneVM_Task"], counters["Destroy_Task"]) == (4, 4)
    records = seen(seen_dir)
    assert len(records) == 12
    by_worker: dict[str, set[str]] = {}
    for worker, name, _ in records:
        by_worker.setdefault(worker, set()).add(name)
    assert sorted(by_worker) == ["gw0", "gw1", "gw2", "gw3"]
    assert all(len(names) == 1 for names in by_worker.values()), by_worker
    assert len({name for names in by_worker.values() for name in names}) == 4
    # Names say which worker made them: PREFIX-RUNID-WORKER-N.
    assert all(f"-{worker}-" in next(iter(names)) for worker, names in by_worker.items())
    assert set(outcome.summary_states().values()) == {"destroyed"} and len(outcome.summary_states()) == 4
    inner.clean_after(outcome, plugin_sim, namespaces)


def test_session_scope_makes_one_clone_for_all_workers(inner: Inner, plugin_sim: SimHandle,
                                                      seen_dir: Path) -> None:
    inner.pytester.makepyfile(test_many=RECORDING_TESTS.format(count=12))
    namespaces = plugin_sim.namespaces()
    plugin_sim.sim.reset_counters()
    outcome = inner.run("--vsphere-template=linux-template", "--vsphere-scope=session", "-n", "4",
                        sim=plugin_sim, env={"SEEN_DIR": str(seen_dir)})
    assert outcome.ret == 0, outcome.out
    outcome.result.assert_outcomes(passed=12)
    counters = plugin_sim.sim.counters()
    assert (counters["CloneVM_Task"], counters["Destroy_Task"]) == (1, 1)
    records = seen(seen_dir)
    assert len(records) == 12
    assert {worker for worker, _, _ in records} == {"gw0", "gw1", "gw2", "gw3"}
    assert len({(name, ip) for _, name, ip in records}) == 1
    assert list(outcome.summary_states().values()) == ["destroyed"]
    inner.clean_after(outcome, plugin_sim, namespaces)


def test_function_scope_makes_one_clone_per_test(inner: Inner, plugin_sim: SimHandle, seen_dir: Path) -> None:
    inner.pytester.makepyfile(test_many=RECORDING_TESTS.format(count=3))
    namespaces = plugin_sim.namespaces()
    plugin_sim.sim.reset_counters()
    outcome = inner.run("--vsphere-template=linux-frozen", "--vsphere-clone-type=instant",
                        "--vsphere-scope=function", sim=plugin_sim, env={"SEEN_DIR": str(seen_dir)})
    assert outcome.ret == 0, outcome.out
    outcome.result.assert_outcomes(passed=3)
    counters = plugin_sim.sim.counters()
    assert (counters["InstantClone_Task"], counters["Destroy_Task"]) == (3, 3)
    assert len({name for _, name, _ in seen(seen_dir)}) == 3
    inner.clean_after(outcome, plugin_sim, namespaces)


def test_module_scope_makes_one_clone_per_module(inner: Inner, plugin_sim: SimHandle, seen_dir: Path) -> None:
    source = RECORDING_TESTS.format(count=2)
    inner.pytester.makepyfile(test_first=source, test_second=source)
    namespaces = plugin_sim.namespaces()
    plugin_sim.sim.reset_counters()
    outcome = inner.run("--vsphere-template=linux-template", "--vsphere-scope=module", sim=plugin_sim,
                        env={"SEEN_DIR": str(seen_dir)})
    assert outcome.ret == 0, outcome.out
    outcome.result.assert_outcomes(passed=4)
    assert (plugin_sim.sim.counters()["CloneVM_Task"], plugin_sim.sim.counters()["Destroy_Task"]) == (2, 2)
    names: dict[str, set[str]] = {}
    for path in seen_dir.glob("*.txt"):
        module = path.name.split(".py")[0]
        names.setdefault(module, set()).add(path.read_text().split()[1])
    assert sorted(names) == ["test_first", "test_second"]
    assert all(len(v) == 1 for v in names.values()) and names["test_first"] != names["test_second"]
    inner.clean_after(outcome, plugin_sim, namespaces)


MATRIX_TESTS = """
import pytest

def test_clone_is_of_its_template(vsphere_vm, vsphere_template):
    assert vsphere_vm.template == vsphere_template
    assert vsphere_vm.run("true").exit_status == 0

@pytest.mark.parametrize("n", [1, 2])
def test_template_only(vsphere_template, n):
    assert vsphere_template in ("linux-template", "debian-template")
"""

MATRIX_ARGS = ("--vsphere-template=linux-template", "--vsphere-template=debian-template")
_IP = re.compile(r"\d+\.\d+\.\d+\.\d+")


def test_template_matrix_ids_are_template_names_in_every_worker(inner: Inner, plugin_sim: SimHandle) -> None:
    inner.pytester.makepyfile(test_matrix=MATRIX_TESTS)
    collected = inner.run(*MATRIX_ARGS, "--collect-only", "-q", sim=plugin_sim)
    assert collected.ret == 0, collected.out
    ids = sorted(line for line in collected.result.stdout.lines if line.startswith("test_matrix.py::"))
    assert ids == sorted([
        "test_matrix.py::test_clone_is_of_its_template[linux-template]",
        "test_matrix.py::test_clone_is_of_its_template[debian-template]",
        "test_matrix.py::test_template_only[linux-template-1]",
        "test_matrix.py::test_template_only[linux-template-2]",
        "test_matrix.py::test_template_only[debian-template-1]",
        "test_matrix.py::test_template_only[debian-template-2]",
    ])
    assert not any(_IP.search(i) for i in ids)
    # Under xdist every worker collects on its own; xdist refuses to run if their ids differ.
    namespaces = plugin_sim.namespaces()
    plugin_sim.sim.reset_counters()
    outcome = inner.run(*MATRIX_ARGS, "-n", "2", "-v", sim=plugin_sim)
    assert outcome.ret == 0, outcome.out
    outcome.result.assert_outcomes(passed=6)
    ran = sorted(set(re.findall(r"(test_matrix\.py::\S+)", outcome.result.stdout.str())))
    assert ran == ids
    assert plugin_sim.sim.counters()["CloneVM_Task"] <= 4  # at most one per template per worker
    inner.clean_after(outcome, plugin_sim, namespaces)


HEAVY_CHECK = """
import sys
from pathlib import Path

def pytest_collection_finish(session):
    heavy = sorted(m for m in ("pyVmomi", "paramiko", "winrm") if m in sys.modules)
    Path("heavy-modules.txt").write_text(" ".join(heavy) or "none")
"""


def test_collect_only_creates_nothing_and_imports_no_pyvmomi(inner: Inner, plugin_sim: SimHandle) -> None:
    inner.pytester.makeconftest(HEAVY_CHECK)
    inner.pytester.makepyfile(test_matrix=MATRIX_TESTS)
    namespaces = plugin_sim.namespaces()
    plugin_sim.sim.reset_counters()
    outcome = inner.run(*MATRIX_ARGS, "--vsphere-scope=function", "--collect-only", sim=plugin_sim)
    assert outcome.ret == 0, outcome.out
    assert (inner.pytester.path / "heavy-modules.txt").read_text() == "none"
    assert sum(plugin_sim.sim.counters().values()) == 0  # not even a login
    inner.clean_after(outcome, plugin_sim, namespaces)


def test_collect_only_with_the_embedded_simulator_starts_none(inner: Inner) -> None:
    inner.pytester.makeconftest(HEAVY_CHECK)
    inner.pytester.makepyfile(test_matrix=MATRIX_TESTS.replace("debian-template", "linux-frozen"))
    outcome = inner.run("--vsphere-simulator", "--collect-only", "-q")
    assert outcome.ret == 0, outcome.out
    assert (inner.pytester.path / "heavy-modules.txt").read_text() == "none"
    assert "test_matrix.py::test_clone_is_of_its_template" in outcome.out
    inner.clean_after(outcome)
