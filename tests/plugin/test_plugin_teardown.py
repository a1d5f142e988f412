"""Teardown: keep never / on-failure / always, the before-destroy hook, and collapsing the source's deltas.

What was kept or destroyed is read from the simulator after the run; the
source's delta disks from its disk chain (``sim.find_vm(name).disk.chain()``).
Kept clones are destroyed by the test afterwards (``vsphere-clone reap``'s
function, by run id), so the next test starts from the templates alone.
"""

from __future__ import annotations

import re
import time

import pytest
from plugin_helpers import Inner, SimHandle

from pytest_vsphere_clone.client.guest_ops import GuestOperations
from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.client.teardown import list_marked, reap

pytestmark = pytest.mark.guests

PASS_FAIL_PASS = """
import pytest

@pytest.mark.parametrize("outcome", ["pass-1", "fail", "pass-2"])
def test_one_clone_each(vsphere_vm, outcome):
    print("CLONE-OF", outcome, vsphere_vm.name)
    assert vsphere_vm.run("true").exit_status == 0
    assert outcome != "fail"
"""


def clone_of(out: str, outcome: str) -> str:
    """The clone the inner test with ``outcome`` printed it got (-s output may share a line)."""
    found = re.search(rf"CLONE-OF {outcome} (\S+)", out)
    assert found, out
    return found.group(1)


def test_keep_on_failure_keeps_only_the_failing_tests_clone(inner: Inner, plugin_sim: SimHandle,
                                                            conn: VSphereConnection, reap_kept: None) -> None:
    inner.pytester.makepyfile(test_keep=PASS_FAIL_PASS)
    outcome = inner.run("--vsphere-template=linux-template", "--vsphere-scope=function",
                        "--vsphere-keep=on-failure", "-s", sim=plugin_sim)
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED, outcome.out
    outcome.result.assert_outcomes(passed=2, failed=1)
    failing = clone_of(outcome.out, "fail")
    assert plugin_sim.clones() == [failing]
    states = outcome.summary_states()
    assert states == {clone_of(outcome.out, "pass-1"): "destroyed", failing: "kept",
                      clone_of(outcome.out, "pass-2"): "destroyed"}
    # Kept means usable: still running, with its guest.
    assert plugin_sim.sim.find_vm(failing).power_state == "poweredOn"
    assert outcome.run_dirs() == []
    # ... and tidy: discovery's result file, left for a later command to delete, was deleted
    # when the clone was kept (a destroyed clone takes it with it).
    vm = next(v for v in list_marked(conn) if v.name == failing)
    guest = GuestOperations(conn, vm.ref, plugin_sim.facts["GUEST_USER"], plugin_sim.facts["GUEST_PASSWORD"],
                            os_family="linux")
    assert guest.run("ls -a /tmp").stdout.count("pytest-vsphere-clone-") == 2  # the listing's own two


def test_a_kept_clone_whose_guest_cannot_delete_files_is_still_kept(inner: Inner, plugin_sim: SimHandle,
                                                                    reap_kept: None) -> None:
    # The guest's Tools refuse file operations from the moment the test has its clone: deleting the
    # discovery's result file at keep time fails, is retried a little, and costs the run nothing.
    inner.pytester.makepyfile(test_keep=PASS_FAIL_PASS.replace('outcome != "fail"', "True"))
    plugin_sim.sim.inject_fault("DeleteFileInGuest", "GuestOperationsUnavailable", count=-1)
    plugin_sim.sim.reset_counters()
    started = time.monotonic()
    try:
        outcome = inner.run("--vsphere-template=linux-template", "--vsphere-keep=always", sim=plugin_sim)
    finally:
        plugin_sim.sim.clear_faults()
    assert outcome.ret == 0, outcome.out
    assert set(outcome.summary_states().values()) == {"kept"} and len(plugin_sim.clones()) == 1
    assert plugin_sim.sim.counters()["DeleteFileInGuest"] >= 2  # tried, and tried again
    assert time.monotonic() - started < 60 and "Traceback" not in outcome.out


def test_keep_on_failure_with_worker_scope_keeps_the_shared_clone(inner: Inner, plugin_sim: SimHandle,
                                                                 reap_kept: None) -> None:
    inner.pytester.makepyfile(test_keep=PASS_FAIL_PASS)
    outcome = inner.run("--vsphere-template=linux-template", "--vsphere-keep=on-failure", "-s", sim=plugin_sim)
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED, outcome.out
    assert plugin_sim.clones() == [clone_of(outcome.out, "fail")]
    assert list(outcome.summary_states().values()) == ["kept"]


def test_keep_on_failure_destroys_everything_when_all_pass(inner: Inner, plugin_sim: SimHandle) -> None:
    inner.pytester.makepyfile(test_keep=PASS_FAIL_PASS.replace('outcome != "fail"', "True"))
    namespaces = plugin_sim.namespaces()
    outcome = inner.run("--vsphere-template=linux-template", "--vsphere-scope=function",
                        "--vsphere-keep=on-failure", sim=plugin_sim)
    assert outcome.ret == 0, outcome.out
    assert set(outcome.summary_states().values()) == {"destroyed"}
    inner.clean_after(outcome, plugin_sim, namespaces)


def test_keep_always_keeps_every_clone(inner: Inner, plugin_sim: SimHandle, reap_kept: None) -> None:
    inner.pytester.makepyfile(test_keep=PASS_FAIL_PASS)
    outcome = inner.run("--vsphere-template=linux-template", "--vsphere-scope=function",
                        "--vsphere-keep=always", "-s", sim=plugin_sim)
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED, outcome.out
    kept = sorted(clone_of(outcome.out, o) for o in ("pass-1", "fail", "pass-2"))
    assert plugin_sim.clones() == kept
    assert outcome.summary_states() == dict.fromkeys(kept, "kept")


def test_kept_clones_survive_the_next_run_and_reap_until_their_ttl(inner: Inner, plugin_sim: SimHandle,
                                                                   conn: VSphereConnection, reap_kept: None) -> None:
    """A kept clone is there to be looked at: neither the next run on this machine nor a default
    ``vsphere-clone reap`` (expired or orphaned) may destroy it before its ttl, though its process is gone."""
    inner.pytester.makepyfile(test_keep=PASS_FAIL_PASS)
    first = inner.run("--vsphere-template=linux-template", "--vsphere-keep=on-failure", "-s", sim=plugin_sim)
    kept = clone_of(first.out, "fail")
    assert plugin_sim.clones() == [kept]
    second = inner.run("--vsphere-template=linux-template", "-k", "pass", sim=plugin_sim)
    assert second.ret == 0, second.out
    assert plugin_sim.clones() == [kept], second.out
    assert reap(conn).selected == []
    assert plugin_sim.clones() == [kept]


HOOKS_CONFTEST = """
from pathlib import Path

def pytest_vsphere_clone_spec(request, template, spec):
    # CloneSpec (linked/full) carries a ConfigSpec; change the clone's CPU count through it.
    spec.config.numCPUs = 3
    Path("spec-hook.txt").write_text(f"{template} {type(spec).__name__} {request.fixturename}")

def pytest_vsphere_clone_ready(clone):
    with open("ready-hook.txt", "a") as f:
        f.write(f"{clone.name} {clone.ip}\\n")

def pytest_vsphere_clone_before_destroy(clone, failed):
    with open("before-destroy.txt", "a") as f:
        f.write(f"{clone.name} {failed}\\n")
    return True if "keep-me" in Path("wanted.txt").read_text() else None
"""

HOOKS_TEST = """
def test_spec_hook_changed_the_clone(vsphere_vm):
    assert vsphere_vm.vm.config.hardware.numCPU == 3
    assert vsphere_vm.run("true").exit_status == 0
"""


@pytest.mark.parametrize("wanted", ["keep-me", "destroy"])
def test_hooks_modify_the_spec_see_ready_clones_and_may_keep(inner: Inner, plugin_sim: SimHandle,
                                                            reap_kept: None, wanted: str) -> None:
    inner.pytester.makeconftest(HOOKS_CONFTEST)
    inner.pytester.makepyfile(test_hooks=HOOKS_TEST)
    (inner.pytester.path / "wanted.txt").write_text(wanted)
    outcome = inner.run("--vsphere-template=linux-template", sim=plugin_sim)
    assert outcome.ret == 0, outcome.out
    path = inner.pytester.path
    assert path.joinpath("spec-hook.txt").read_text() == "linux-template vim.vm.CloneSpec vsphere_vm"
    name, ip = path.joinpath("ready-hook.txt").read_text().split()
    assert ip.count(".") == 3
    assert path.joinpath("before-destroy.txt").read_text() == f"{name} False\n"
    if wanted == "keep-me":
        assert plugin_sim.clones() == [name]
        assert outcome.summary_states() == {name: "kept"}
    else:
        assert plugin_sim.clones() == []
        assert outcome.summary_states() == {name: "destroyed"}


def chain(plugin_sim: SimHandle, name: str) -> list[str]:
    """The files of a VM's disk chain, base disk first (white-box read of the simulator)."""
    assert plugin_sim.sim.vc is not None
    with plugin_sim.sim.vc.lock:
        disk = plugin_sim.sim.find_vm(name).disk
        return [layer.path for layer in disk.chain()]


INSTANT_TESTS = """
import pytest

@pytest.mark.parametrize("i", range(3))
def test_instant(vsphere_vm, i):
    assert vsphere_vm.run("true").exit_status == 0
"""


@pytest.mark.parametrize("mode", ["promote", "snapshot"])
def test_collapse_leaves_the_source_without_the_clones_deltas(inner: Inner, plugin_sim: SimHandle,
                                                               mode: str) -> None:
    source = f"collapse-{mode}"
    inner.pytester.makepyfile(test_instant=INSTANT_TESTS)
    before = chain(plugin_sim, source)
    namespaces = plugin_sim.namespaces()
    # First without collapsing: each instant clone of a running source leaves a delta on it.
    grown = inner.run(f"--vsphere-template={source}", "--vsphere-clone-type=instant", "--vsphere-scope=function",
                      sim=plugin_sim)
    assert grown.ret == 0, grown.out
    assert "each clone adds a delta disk" in grown.out  # the running-source warning
    assert len(chain(plugin_sim, source)) == len(before) + 3
    outcome = inner.run(f"--vsphere-template={source}", "--vsphere-clone-type=instant", "--vsphere-scope=function",
                        f"--vsphere-collapse={mode}", sim=plugin_sim)
    assert outcome.ret == 0, outcome.out
    after = chain(plugin_sim, source)
    assert len(after) == 1, after
    assert f"collapsed the delta disks of {source} ({mode})" in outcome.out
    assert plugin_sim.sim.find_vm(source).all_snapshots() == []
    inner.clean_after(outcome, plugin_sim, namespaces)


def test_collapse_waits_for_kept_clones(inner: Inner, plugin_sim: SimHandle, reap_kept: None) -> None:
    """Collapse runs once every clone of the source is gone: a kept clone still needs the source's deltas."""
    inner.pytester.makepyfile(test_instant=INSTANT_TESTS)
    before = chain(plugin_sim, "collapse-kept")
    outcome = inner.run("--vsphere-template=collapse-kept", "--vsphere-clone-type=instant",
                        "--vsphere-scope=function", "--vsphere-collapse=promote", "--vsphere-keep=always",
                        sim=plugin_sim)
    assert outcome.ret == 0, outcome.out
    assert len(plugin_sim.clones()) == 3
    assert len(chain(plugin_sim, "collapse-kept")) == len(before) + 3
    assert "warning: did not collapse collapse-kept (promote): clones of it were kept" in outcome.out


def test_collapse_of_a_linked_clone_template_keeps_its_snapshot(inner: Inner, plugin_sim: SimHandle) -> None:
    """Linked clones leave no delta on their source; collapsing must not delete the snapshot they need."""
    inner.pytester.makepyfile(test_instant=INSTANT_TESTS)
    namespaces = plugin_sim.namespaces()
    before = chain(plugin_sim, "linux-template")
    outcome = inner.run("--vsphere-template=linux-template", "--vsphere-collapse=snapshot", sim=plugin_sim)
    assert outcome.ret == 0, outcome.out
    assert [s.name for s in plugin_sim.sim.find_vm("linux-template").all_snapshots()] == ["base"]
    assert chain(plugin_sim, "linux-template") == before
    # Nothing to collapse, so no collapse attempt and no error about one.
    assert "could not collapse" not in outcome.out and "collapsed the delta disks" not in outcome.out
    assert not outcome.lines_with("error:"), outcome.out
    inner.clean_after(outcome, plugin_sim, namespaces)


@pytest.mark.parametrize("fail", [True, False], ids=["a-test-fails", "all-pass"])
def test_keep_on_failure_with_a_session_clone_shared_by_workers(inner: Inner, plugin_sim: SimHandle,
                                                               reap_kept: None, fail: bool) -> None:
    source = PASS_FAIL_PASS if fail else PASS_FAIL_PASS.replace('outcome != "fail"', "True")
    inner.pytester.makepyfile(test_keep=source)
    outcome = inner.run("--vsphere-template=linux-template", "--vsphere-scope=session", "--vsphere-keep=on-failure",
                        "-n", "2", sim=plugin_sim)
    assert outcome.ret == (pytest.ExitCode.TESTS_FAILED if fail else pytest.ExitCode.OK), outcome.out
    states = outcome.summary_states()
    assert len(states) == 1
    assert plugin_sim.clones() == (list(states) if fail else [])
    assert list(states.values()) == (["kept"] if fail else ["destroyed"])


POWER_OFF_CONFTEST = """
def pytest_vsphere_clone_spec(request, template, spec):
    # As a server that does not honour CloneSpec.powerOn would: the clone task leaves it off.
    spec.powerOn = False
"""


def test_a_clone_left_powered_off_by_its_clone_task_is_powered_on(inner: Inner, plugin_sim: SimHandle) -> None:
    inner.pytester.makeconftest(POWER_OFF_CONFTEST)
    inner.pytester.makepyfile(test_power="""
def test_runs(vsphere_vm):
    assert vsphere_vm.vm.runtime.powerState == "poweredOn"
    assert vsphere_vm.timings["power_on"] > 0
    assert vsphere_vm.run("true").exit_status == 0
""")
    outcome = inner.run("--vsphere-template=linux-template", "--vsphere-ip-timeout=60", sim=plugin_sim)
    assert outcome.ret == 0, outcome.out
    assert "still powered off after its clone task (CloneSpec.powerOn not honoured); powered it on" in outcome.out
    assert plugin_sim.clones() == []


# --- each clone's own teardown settings ------------------------------------------------------------


def test_a_factory_clone_with_keep_always_survives_a_keep_never_run(inner: Inner, plugin_sim: SimHandle,
                                                                   reap_kept: None) -> None:
    inner.pytester.makepyfile(test_factory_keep="""
def test_keeps_one(vsphere_vm_factory):
    kept = vsphere_vm_factory(keep="always")
    gone = vsphere_vm_factory()
    print("CLONE-OF kept", kept.name)
    print("CLONE-OF gone", gone.name)
""")
    outcome = inner.run("--vsphere-template=linux-template", "--vsphere-keep=never", "-s", sim=plugin_sim)
    assert outcome.ret == 0, outcome.out
    kept, gone = clone_of(outcome.out, "kept"), clone_of(outcome.out, "gone")
    assert plugin_sim.clones() == [kept], outcome.out
    assert outcome.summary_states() == {kept: "kept", gone: "destroyed"}


def test_a_named_fixture_with_keep_on_failure_is_kept_only_when_its_test_fails(inner: Inner, plugin_sim: SimHandle,
                                                                              reap_kept: None) -> None:
    inner.pytester.makefile(".ini", pytest="""
[pytest]
vsphere_fixtures =
    box: template=linux-template scope=function keep=on-failure
""")
    inner.pytester.makepyfile(test_named_keep="""
def test_pass(box):
    print("CLONE-OF pass", box.name)

def test_fail(box):
    print("CLONE-OF fail", box.name)
    assert False, "on purpose"
""")
    outcome = inner.run("-s", sim=plugin_sim)  # the run's own --vsphere-keep stays never
    assert outcome.ret == 1, outcome.out
    failed, passed = clone_of(outcome.out, "fail"), clone_of(outcome.out, "pass")
    assert plugin_sim.clones() == [failed], outcome.out
    assert outcome.summary_states() == {failed: "kept", passed: "destroyed"}


def test_progress_lines_reach_the_terminal_without_s(inner: Inner, plugin_sim: SimHandle) -> None:
    # Clones are made in fixtures, whose output pytest captures: the progress lines must not be
    # captured (a passing test's captured output is never shown, so seeing them proves it).
    inner.pytester.makepyfile(test_quiet="def test_one(vsphere_vm):\n    assert vsphere_vm.ip\n")
    outcome = inner.run("--vsphere-template=linux-template", sim=plugin_sim)
    assert outcome.ret == 0, outcome.out
    assert re.search(r"^vsphere-clone: pytest-\w+-master-1: cloning linux-template", outcome.out, re.MULTILINE), \
        outcome.out
    assert re.search(r"^vsphere-clone: pytest-\w+-master-1: ready at ", outcome.out, re.MULTILINE), outcome.out


def test_an_instant_clone_whose_refresh_round_fails_retries_it_instead_of_trusting_tools(
        inner: Inner, plugin_sim: SimHandle) -> None:
    # The first discovery round carries the NIC refresh; if it fails before running, the Tools'
    # report would keep naming the source's address: the round is tried again instead.
    inner.pytester.makepyfile(test_instant="def test_one(vsphere_vm):\n"
                                           "    assert vsphere_vm.run('true').exit_status == 0\n")
    plugin_sim.sim.inject_fault("StartProgramInGuest", "SystemError", count=1)
    try:
        outcome = inner.run("--vsphere-template=linux-frozen", "--vsphere-clone-type=instant",
                            "--vsphere-ip-timeout=45", sim=plugin_sim)
    finally:
        plugin_sim.sim.clear_faults()
    assert outcome.ret == 0, outcome.out
    assert plugin_sim.clones() == []
