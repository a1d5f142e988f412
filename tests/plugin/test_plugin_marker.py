"""``@pytest.mark.vsphere(**settings)``: per-test, class and module settings for ``vsphere_vm``.

Inner runs against the module's simulator with real guests. The inner tests record the clone they
got (SEEN_DIR/<test>.txt: worker, clone name, template, clone type); clone names start with the
clone's name prefix, so a marker's ``name_prefix`` shows which settings a clone was made with.
Counts of clone and destroy tasks come from the simulator.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from plugin_helpers import Inner, Outcome, SimHandle

#: Records the clone a test got; the inner test files import it from their conftest.
RECORDER = """
import os
from pathlib import Path

import pytest

@pytest.fixture
def record(request):
    def write(clone):
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        name = request.node.nodeid.replace("/", "_").replace(":", "_")
        (Path(os.environ["SEEN_DIR"]) / f"{name}.txt").write_text(
            f"{worker} {clone.name} {clone.template} {clone.clone_type}")
    return write
"""


def seen(directory: Path) -> dict[str, tuple[str, str, str, str]]:
    """Test (file name stem) -> (worker, clone name, template, clone type)."""
    return {p.stem: tuple(p.read_text().split()) for p in sorted(directory.glob("*.txt"))}  # type: ignore[misc]


def clone_of(records: dict[str, tuple[str, str, str, str]], test: str) -> str:
    """The clone name the test whose recorded name contains ``test`` got."""
    (found,) = [record[1] for name, record in records.items() if test in name]
    return found


@pytest.fixture
def seen_dir(inner: Inner) -> Path:
    path = inner.pytester.path / "seen"
    path.mkdir()
    inner.pytester.makeconftest(RECORDER)
    return path


# --- where a marker applies, and who shares a clone ------------------------------------------------------------

MARKED_MODULE = """
import pytest

pytestmark = pytest.mark.vsphere(name_prefix="modmark")

def test_module_marker(vsphere_vm, record):
    record(vsphere_vm)
    assert (vsphere_vm.template, vsphere_vm.clone_type) == ("linux-template", "linked")
    assert vsphere_vm.run("true").exit_status == 0

class TestClass:
    pytestmark = pytest.mark.vsphere(template="linux-frozen", clone_type="instant")

    def test_class_marker(self, vsphere_vm, vsphere_template, record):
        record(vsphere_vm)
        # The module's name_prefix and the class's template and clone type, merged.
        assert vsphere_template == "linux-frozen"
        assert (vsphere_vm.template, vsphere_vm.clone_type) == ("linux-frozen", "instant")

    @pytest.mark.vsphere(template="linux-template", clone_type="linked", name_prefix="fnmark")
    def test_function_marker(self, vsphere_vm, record):
        record(vsphere_vm)
        # The function's marker wins over the class's and the module's, key by key.
        assert (vsphere_vm.template, vsphere_vm.clone_type) == ("linux-template", "linked")
"""

PLAIN_MODULE = """
import pytest

def test_plain_first(vsphere_vm, record):
    record(vsphere_vm)

@pytest.mark.vsphere(name_prefix="modmark")
def test_equal_settings_elsewhere(vsphere_vm, record):
    record(vsphere_vm)

@pytest.mark.vsphere(clone_type="linked")
def test_marker_equal_to_the_run(vsphere_vm, record):
    record(vsphere_vm)

def test_plain_last(vsphere_vm, record):
    record(vsphere_vm)
"""


@pytest.mark.guests
def test_marker_on_module_class_and_function(inner: Inner, plugin_sim: SimHandle, seen_dir: Path) -> None:
    inner.pytester.makepyfile(test_marked=MARKED_MODULE, test_plain=PLAIN_MODULE)
    namespaces = plugin_sim.namespaces()
    plugin_sim.sim.reset_counters()
    outcome = inner.run("--vsphere-template=linux-template", "-p", "no:randomly", "-v", sim=plugin_sim,
                        env={"SEEN_DIR": str(seen_dir)})
    assert outcome.ret == 0, outcome.out
    outcome.result.assert_outcomes(passed=7)
    # Ids are unchanged: the marker's parametrization is hidden.
    assert "test_marked.py::TestClass::test_class_marker PASSED" in outcome.out
    assert "test_plain.py::test_plain_first PASSED" in outcome.out
    records = seen(seen_dir)
    run_clone = clone_of(records, "test_plain_first")
    assert run_clone.startswith("pytest-")
    # Unmarked tests share the run's clone, also around marked tests, and so does a marker that
    # changes nothing.
    assert clone_of(records, "test_plain_last") == run_clone
    assert clone_of(records, "test_marker_equal_to_the_run") == run_clone
    module_clone = clone_of(records, "test_module_marker")
    assert module_clone.startswith("modmark-")
    # Equal effective settings in another module: the same clone (worker scope).
    assert clone_of(records, "test_equal_settings_elsewhere") == module_clone
    class_clone = clone_of(records, "test_class_marker")
    assert class_clone.startswith("modmark-") and class_clone != module_clone
    assert clone_of(records, "test_function_marker").startswith("fnmark-")
    counters = plugin_sim.sim.counters()
    # linked: the run's, the module marker's, the function marker's; instant: the class marker's.
    assert (counters["CloneVM_Task"], counters["InstantClone_Task"], counters["Destroy_Task"]) == (3, 1, 4)
    states = dict(re.findall(r"^([a-z]+-[0-9a-f]{6}-\S+) .*\[(\w+)\]$", outcome.out, re.MULTILINE))
    assert sorted(states) == sorted({run_clone, module_clone, class_clone, clone_of(records, "test_function_marker")})
    assert set(states.values()) == {"destroyed"}
    inner.clean_after(outcome, plugin_sim, namespaces)


# --- the marker's scope ----------------------------------------------------------------------------------------

FUNCTION_SCOPE_MODULE = """
import pytest

pytestmark = pytest.mark.vsphere(template="linux-frozen", clone_type="instant", scope="function")

def test_fresh_first(vsphere_vm, record):
    record(vsphere_vm)
    assert vsphere_vm.run("test ! -e /tmp/left-behind && touch /tmp/left-behind").exit_status == 0

def test_fresh_second(vsphere_vm, record):
    record(vsphere_vm)
    assert vsphere_vm.run("test ! -e /tmp/left-behind").exit_status == 0  # not the first test's clone

@pytest.fixture(scope="session")
def app(vsphere_vm):
    # A broader fixture of the user's on a narrower marker's clone: set up again with each clone.
    assert vsphere_vm.run("test ! -e /tmp/app && touch /tmp/app").exit_status == 0
    yield vsphere_vm

@pytest.mark.parametrize("i", range(2))
def test_broader_fixture_on_the_test_clone(app, vsphere_vm, i):
    assert app is vsphere_vm

def test_testinfra_follows_the_marker_scope(vsphere_testinfra_host, vsphere_vm):
    # vsphere_testinfra_host has vsphere_vm's scope: the marker's (function), not the run's (worker).
    assert not vsphere_testinfra_host.file("/tmp/left-behind").exists
    assert vsphere_testinfra_host.run("hostname").rc == 0
"""

MODULE_SCOPE_MODULE = """
import pytest

pytestmark = pytest.mark.vsphere(scope="module", name_prefix="permodule")

def test_one(vsphere_vm, record):
    record(vsphere_vm)

def test_two(vsphere_vm, record):
    record(vsphere_vm)
"""


@pytest.mark.guests
def test_marker_scope_function_and_module(inner: Inner, plugin_sim: SimHandle, seen_dir: Path) -> None:
    inner.pytester.makepyfile(test_fresh=FUNCTION_SCOPE_MODULE, test_mod_a=MODULE_SCOPE_MODULE,
                              test_mod_b=MODULE_SCOPE_MODULE)
    namespaces = plugin_sim.namespaces()
    plugin_sim.sim.reset_counters()
    # The run's scope is worker: the markers' scopes are narrower.
    outcome = inner.run("--vsphere-template=linux-template", "-p", "no:randomly", sim=plugin_sim,
                        env={"SEEN_DIR": str(seen_dir)})
    assert outcome.ret == 0, outcome.out
    outcome.result.assert_outcomes(passed=9)
    records = seen(seen_dir)
    first, second = clone_of(records, "test_fresh_first"), clone_of(records, "test_fresh_second")
    assert first != second
    assert records[next(n for n in records if "test_fresh_first" in n)][2:] == ("linux-frozen", "instant")
    mod_a = {clone_of(records, f"test_mod_a.py__test_{n}") for n in ("one", "two")}
    mod_b = {clone_of(records, f"test_mod_b.py__test_{n}") for n in ("one", "two")}
    assert len(mod_a) == len(mod_b) == 1 and mod_a != mod_b
    assert next(iter(mod_a)).startswith("permodule-")
    counters = plugin_sim.sim.counters()
    assert (counters["InstantClone_Task"], counters["CloneVM_Task"], counters["Destroy_Task"]) == (5, 2, 7)
    inner.clean_after(outcome, plugin_sim, namespaces)


BROADER_MODULE = """
import pytest

@pytest.mark.vsphere(scope="worker", name_prefix="longer")
@pytest.mark.parametrize("i", range(2))
def test_shares_across_tests(vsphere_vm, record, i):
    record(vsphere_vm)

@pytest.mark.parametrize("i", range(2))
def test_unmarked(vsphere_vm, record, i):
    record(vsphere_vm)
"""


@pytest.mark.guests
def test_marker_scope_broader_than_the_run(inner: Inner, plugin_sim: SimHandle, seen_dir: Path) -> None:
    inner.pytester.makepyfile(test_broader=BROADER_MODULE)
    namespaces = plugin_sim.namespaces()
    plugin_sim.sim.reset_counters()
    outcome = inner.run("--vsphere-template=linux-frozen", "--vsphere-clone-type=instant", "--vsphere-scope=function",
                        sim=plugin_sim, env={"SEEN_DIR": str(seen_dir)})
    assert outcome.ret == 0, outcome.out
    outcome.result.assert_outcomes(passed=4)
    records = seen(seen_dir)
    marked = {record[1] for name, record in records.items() if "test_shares_across_tests" in name}
    unmarked = {record[1] for name, record in records.items() if "test_unmarked" in name}
    assert len(marked) == 1 and next(iter(marked)).startswith("longer-")
    assert len(unmarked) == 2  # the run's scope: one clone per test
    assert (plugin_sim.sim.counters()["InstantClone_Task"], plugin_sim.sim.counters()["Destroy_Task"]) == (3, 3)
    inner.clean_after(outcome, plugin_sim, namespaces)


XDIST_MODULE = """
import pytest

@pytest.mark.vsphere(scope="session", name_prefix="shared")
@pytest.mark.parametrize("i", range(4))
def test_shared_by_every_worker(vsphere_vm, record, i):
    record(vsphere_vm)

@pytest.mark.vsphere(name_prefix="perworker")
@pytest.mark.parametrize("i", range(4))
def test_per_worker(vsphere_vm, record, i):
    record(vsphere_vm)
"""


@pytest.mark.guests
def test_marker_scopes_under_xdist(inner: Inner, plugin_sim: SimHandle, seen_dir: Path) -> None:
    inner.pytester.makepyfile(test_xdist=XDIST_MODULE)
    namespaces = plugin_sim.namespaces()
    plugin_sim.sim.reset_counters()
    outcome = inner.run("--vsphere-template=linux-template", "-n", "2", "--dist=load", sim=plugin_sim,
                        env={"SEEN_DIR": str(seen_dir)})
    assert outcome.ret == 0, outcome.out
    outcome.result.assert_outcomes(passed=8)
    records = seen(seen_dir)
    shared = {record[1] for name, record in records.items() if "test_shared_by_every_worker" in name}
    assert len(shared) == 1 and next(iter(shared)).startswith("shared-")
    per_worker: dict[str, set[str]] = {}
    for name, (worker, clone, _, _) in records.items():
        if "test_per_worker" in name:
            per_worker.setdefault(worker, set()).add(clone)
    assert all(len(clones) == 1 and next(iter(clones)).startswith("perworker-") for clones in per_worker.values())
    assert len({clone for clones in per_worker.values() for clone in clones}) == len(per_worker)
    counters = plugin_sim.sim.counters()
    assert (counters["CloneVM_Task"], counters["Destroy_Task"]) == (1 + len(per_worker), 1 + len(per_worker))
    inner.clean_after(outcome, plugin_sim, namespaces)


# --- the template matrix -----------------------------------------------------------------------------------------

MATRIX_MODULE = """
import pytest

def test_matrix(vsphere_template):
    assert vsphere_template in ("linux-template", "debian-template")

@pytest.mark.vsphere(clone_type="full")
def test_matrix_with_marker(vsphere_template):
    assert vsphere_template in ("linux-template", "debian-template")

@pytest.mark.vsphere(template="linux-frozen", clone_type="instant")
def test_marker_template(vsphere_template):
    assert vsphere_template == "linux-frozen"

@pytest.mark.vsphere(template=["debian-template", "linux-frozen"])
def test_marker_templates(vsphere_template):
    assert vsphere_template in ("debian-template", "linux-frozen")
"""


@pytest.mark.guests
def test_marker_template_replaces_the_matrix(inner: Inner, plugin_sim: SimHandle) -> None:
    inner.pytester.makepyfile(test_matrix=MATRIX_MODULE)
    args = ("--vsphere-template=linux-template", "--vsphere-template=debian-template")
    collected = inner.run(*args, "--collect-only", "-q", sim=plugin_sim)
    assert collected.ret == 0, collected.out
    ids = sorted(line for line in collected.result.stdout.lines if line.startswith("test_matrix.py::"))
    assert ids == sorted([
        "test_matrix.py::test_matrix[linux-template]",
        "test_matrix.py::test_matrix[debian-template]",
        "test_matrix.py::test_matrix_with_marker[linux-template]",
        "test_matrix.py::test_matrix_with_marker[debian-template]",
        "test_matrix.py::test_marker_template",
        "test_matrix.py::test_marker_templates[debian-template]",
        "test_matrix.py::test_marker_templates[linux-frozen]",
    ])
    # vsphere_template alone makes no clone.
    outcome = inner.run(*args, sim=plugin_sim)
    assert outcome.ret == 0, outcome.out
    outcome.result.assert_outcomes(passed=7)
    assert plugin_sim.clones() == []


# --- bad markers -------------------------------------------------------------------------------------------------

BAD_MARKERS = {
    "test_bad_key": """
import pytest

class TestBad:
    pytestmark = pytest.mark.vsphere(colne_type="instant")

    def test_it(self, vsphere_vm):
        pass
""",
    "test_bad_value": """
import pytest

@pytest.mark.vsphere(template="linux-frozen", clone_type="quick")
def test_it(vsphere_vm):
    pass
""",
    "test_bad_scope": """
import pytest

pytestmark = pytest.mark.vsphere(scope="class")

def test_it(vsphere_vm):
    pass
""",
    "test_positional": """
import pytest

@pytest.mark.vsphere("linux-frozen")
def test_it(vsphere_vm):
    pass
""",
    "test_connection_setting": """
import pytest

@pytest.mark.vsphere(host="vc2.example")
def test_it(vsphere_vm):
    pass
""",
    "test_fine": """
def test_unmarked():
    pass
""",
}

#: The one line each bad marker gives, naming the node that carries it and the fix.
BAD_LINES = {
    "test_bad_key": "test_bad_key.py::TestBad: @pytest.mark.vsphere: 'colne_type' is not a placement, clone, guest, "
                    "hardware, discovery, time or teardown setting (did you mean clone_type?)",
    "test_bad_value": "test_bad_value.py::test_it: @pytest.mark.vsphere: invalid clone_type='quick': allowed: linked, "
                      "instant, full",
    "test_bad_scope": "test_bad_scope.py: @pytest.mark.vsphere: invalid scope='class': allowed: worker, session, "
                      "module, function",
    "test_positional": "test_positional.py::test_it: @pytest.mark.vsphere: takes settings as keyword arguments only",
    "test_connection_setting": "test_connection_setting.py::test_it: @pytest.mark.vsphere: 'host' is not a "
                               "placement, clone, guest, hardware, discovery, time or teardown setting",
}


def _error_sections(outcome: Outcome) -> dict[str, list[str]]:
    """Module -> the lines of its "ERROR collecting" section."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in outcome.result.stdout.lines:
        match = re.match(r"^_+ ERROR collecting (\S+) _+$", line)
        if match:
            current = sections.setdefault(match.group(1), [])
        elif line.startswith(("=", "_")):
            current = None
        elif current is not None and line.strip():
            current.append(line)
    return sections


@pytest.mark.parametrize("args", [(), ("-n", "2")], ids=["one-process", "xdist"])
def test_bad_marker_fails_collection_with_one_line(inner: Inner, args: tuple[str, ...]) -> None:
    inner.pytester.makepyfile(**BAD_MARKERS)
    # Checked whether or not the plugin is configured: no vCenter is needed to find a typo.
    outcome = inner.run(*args)
    assert outcome.ret == (pytest.ExitCode.TESTS_FAILED if args else pytest.ExitCode.INTERRUPTED), outcome.out
    sections = _error_sections(outcome)
    assert sorted(sections) == sorted(f"{name}.py" for name in BAD_LINES), outcome.out
    for name, line in BAD_LINES.items():
        lines = sections[f"{name}.py"]
        assert len(set(lines)) == 1 and lines[0].startswith(line), outcome.out  # one line (once per xdist worker)
    assert "Traceback" not in outcome.out


def test_marker_is_registered_and_needs_the_plugin_switched_on(inner: Inner) -> None:
    markers = inner.run("--markers", "--strict-markers")
    assert markers.ret == 0, markers.out
    assert any(line.startswith("@pytest.mark.vsphere(**settings): ") for line in markers.result.stdout.lines)
    inner.pytester.makepyfile(test_marked="""
import pytest

@pytest.mark.vsphere(template="linux-frozen", clone_type="instant", guest_password="s3cret-value")
def test_it(vsphere_vm):
    pass

@pytest.mark.vsphere(clone_type="instant")
def test_no_template(vsphere_vm):
    pass

@pytest.mark.vsphere(clone_type="instant")
def test_without_a_clone():
    pass
""")
    outcome = inner.run("--strict-markers", "-p", "no:randomly")
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED, outcome.out
    outcome.result.assert_outcomes(passed=1, errors=2)
    assert ("@pytest.mark.vsphere(template='linux-frozen', clone_type='instant', guest_password='***') needs the "
            "plugin switched on, and this run has no vSphere template: pass --vsphere-template=NAME (with "
            "--vsphere-host) or --vsphere-simulator") in outcome.out
    assert "s3cret-value" not in outcome.out
    assert "vSphere fixtures need a template: pass --vsphere-template=NAME" in outcome.out
    inner.clean_after(outcome)
