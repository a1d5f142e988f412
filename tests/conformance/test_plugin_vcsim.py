"""The plugin against govmomi's vcsim: a vSphere server nobody here wrote, used as a new user would.

Each test starts a fresh vcsim (see vcsim_server.py) and runs ``pytest`` with the plugin, or the
``vsphere-clone`` command, as a separate process with its settings on the command line. After
every run: no clone left in vcsim, every failure one line, no traceback.

Where vcsim departs from the vSphere Web Services API reference the tier works around it, never
the plugin:

- VMware Tools: vcsim runs no guests, so no Tools report anything. The Tools player
  (vcsim_tools.py) reports what a booted guest's Tools would, through vcsim's ``SET.guest.*``
  extraConfig keys, with the address of a real sshd (local_sshd.py).
- Guest Operations: vcsim serves ``GuestOperationsManager`` only for container-backed VMs. The
  tier's user has no Guest Operations, only an SSH key: ``--vsphere-discovery=tools`` and
  ``--vsphere-ssh-host-key-policy=accept-new``.
- Linked clones: vcsim ignores ``VirtualMachineRelocateSpec.diskMoveType`` ("Manner in which to
  move the virtual disk to the target datastore", here ``createNewChildDiskBacking``: "Create a new
  child disk backing on the destination datastore") and copies every disk. The tier therefore
  checks the linked-clone path's calls and outcome, not the disk chain.
- Instant clones: vcsim has no ``InstantClone_Task``; the instant path is not run here.
- ``VirtualMachineCloneSpec.powerOn`` ("Specifies whether or not the new VirtualMachine should be
  powered on after creation") is not honoured by vcsim 0.24: the clone is created powered off.
  The plugin checks the clone's power state after the clone task, as a client must when a server
  does not honour the flag, so this needs no workaround.
- ``VirtualMachineCloneSpec.config.annotation`` is dropped by vcsim (it copies only the spec's
  extraConfig and instanceUuid); the marker the plugin also sets as a custom attribute still
  reaches the clone, which is what ``list`` and ``reap`` read.
- ``CustomFieldsManager.SetField`` ("Assigns a value to a custom field on an entity") appends a
  second value with the same key in vcsim instead of replacing the first, so a kept clone's
  marker update (its process taken out, so that no later run finds it orphaned) is not what
  readers see first. The keep test therefore reaps by run id and does not check that a kept
  clone survives the next run.
- ``VirtualMachine.CreateScreenshot_Task`` does not exist in vcsim 0.24 (it faults MethodNotFound): the
  failure-evidence test checks that a failed test then says in one line that no screenshot was taken.
- New property filters: vcsim reports a filter's first values only after some unrelated change
  (see vcsim_nudge.py); the nudge supplies such changes.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from plugin_run import Outcome, kill_group
from vcsim_fixtures import VcsimTier
from vcsim_server import NO_SNAPSHOT_TEMPLATE, TEMPLATE

#: Two modules of two tests each; every test records which clone it got and runs a command over SSH.
INNER_MODULE = '''
import json
import os


def record(vm, request):
    line = {"test": request.node.nodeid, "vm": vm.name, "ip": vm.ip,
            "worker": os.environ.get("PYTEST_XDIST_WORKER", "master"),
            "echo": vm.run("echo conformance").stdout.strip()}
    with open(os.environ["CONFORMANCE_RECORDS"], "a") as out:
        out.write(json.dumps(line) + "\\n")


def test_one(vsphere_vm, request):
    record(vsphere_vm, request)


def test_two(vsphere_vm, request):
    record(vsphere_vm, request)
'''

#: A test that holds its clone until the run is killed.
INNER_HOLD = '''
import os
import pathlib
import time


def test_hold(vsphere_vm):
    pathlib.Path(os.environ["CONFORMANCE_RECORDS"]).write_text(vsphere_vm.name)
    time.sleep(600)
'''

#: Clones per scope for INNER_MODULE without xdist: one per run, run, module, test.
CLONES_PER_SCOPE = {"worker": 1, "session": 1, "module": 2, "function": 4}


def write_suite(tier: VcsimTier) -> None:
    for name in ("test_alpha.py", "test_beta.py"):
        (tier.shell.workdir / name).write_text(INNER_MODULE)


def records(tier: VcsimTier) -> list[dict[str, Any]]:
    path = tier.shell.records
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def leftovers(tier: VcsimTier, outcome: Outcome) -> list[str]:
    """What breaks the tier's rules after a run: clones left in vcsim, tracebacks, multi-line failures."""
    problems = outcome.problems()
    clones = tier.server.clones()
    if clones:
        problems.append(f"clones left in vcsim: {clones}")
    return problems


def assert_suite_passed(tier: VcsimTier, outcome: Outcome, tests: int = 4) -> list[dict[str, Any]]:
    """Every inner test passed over SSH to the guest's address, and nothing was left behind."""
    assert outcome.returncode == 0, outcome.report()
    assert leftovers(tier, outcome) == [], outcome.report()
    found = records(tier)
    assert len(found) == tests, outcome.report()
    assert {r["echo"] for r in found} == {"conformance"}
    assert {r["ip"] for r in found} <= set(tier.guest.addresses), outcome.report()
    # Every clone the tests got was one the Tools player saw boot: nothing reached a stock VM.
    assert {r["vm"] for r in found} <= set(tier.player.booted)
    return found


def assert_usage_error(tier: VcsimTier, outcome: Outcome, *words: str) -> str:
    """The run stopped at start with exit 4 and one ``ERROR:`` line naming ``words``; nothing was made."""
    assert leftovers(tier, outcome) == [], outcome.report()
    assert outcome.returncode == 4, outcome.report()
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), outcome.report()
    for word in words:
        assert word in lines[0], outcome.report()
    assert tier.player.booted == [], outcome.report()
    return lines[0]


# --- clone types and scopes ------------------------------------------------------------------


@pytest.mark.parametrize("scope", sorted(CLONES_PER_SCOPE))
def test_linked_clones_per_scope(vcsim_tier: VcsimTier, scope: str) -> None:
    write_suite(vcsim_tier)
    outcome = vcsim_tier.shell.pytest(*vcsim_tier.shell.plugin_args("linked", scope))
    found = assert_suite_passed(vcsim_tier, outcome)
    assert len({r["vm"] for r in found}) == CLONES_PER_SCOPE[scope], outcome.report()


def test_full_clone(vcsim_tier: VcsimTier) -> None:
    """Full clones, by a user who switches TLS verification off instead of naming the CA."""
    write_suite(vcsim_tier)
    outcome = vcsim_tier.shell.pytest(*vcsim_tier.shell.plugin_args("full", "worker", insecure=True))
    found = assert_suite_passed(vcsim_tier, outcome)
    assert len({r["vm"] for r in found}) == 1


def test_full_clone_needs_no_snapshot(vcsim_tier: VcsimTier) -> None:
    """A full clone copies the template's current state: a template without a snapshot is fine."""
    write_suite(vcsim_tier)
    outcome = vcsim_tier.shell.pytest(*vcsim_tier.shell.plugin_args("full", "session",
                                                                      template=NO_SNAPSHOT_TEMPLATE))
    assert_suite_passed(vcsim_tier, outcome)


def test_progress_is_visible_without_s(vcsim_tier: VcsimTier) -> None:
    """PRODUCT.md: "progress through pytest's terminal reporter (visible without -s)"."""
    write_suite(vcsim_tier)
    outcome = vcsim_tier.shell.pytest(*vcsim_tier.shell.plugin_args("linked", "worker"))
    assert_suite_passed(vcsim_tier, outcome)
    # A passing run shows no captured output: what is in stdout reached the terminal.
    assert re.search(r"^vsphere-clone: pytest-\w+-master-1: cloning conformance-template", outcome.stdout,
                     re.MULTILINE), outcome.report()
    assert re.search(r"^vsphere-clone: pytest-\w+-master-1: ready at ", outcome.stdout, re.MULTILINE), \
        outcome.report()


# --- xdist ------------------------------------------------------------------------------------


def test_xdist_worker_scope(vcsim_tier: VcsimTier) -> None:
    """``-n 2``: each worker has its own clone, kept for all of its tests, at an address of its own.

    The two clones live at the same time, so the Tools player must give them two addresses (see
    vcsim_tools.py): the plugin refuses a clone whose address another live clone of the run has.
    """
    write_suite(vcsim_tier)
    outcome = vcsim_tier.shell.pytest("-n", "2", *vcsim_tier.shell.plugin_args("linked", "worker"))
    found = assert_suite_passed(vcsim_tier, outcome)
    by_worker: dict[str, set[str]] = {}
    for record in found:
        by_worker.setdefault(record["worker"], set()).add(record["vm"])
    assert all(len(vms) == 1 for vms in by_worker.values()), f"{by_worker}\n{outcome.report()}"
    assert len({vm for vms in by_worker.values() for vm in vms}) == len(by_worker), f"{by_worker}\n{outcome.report()}"
    addresses = {r["vm"]: r["ip"] for r in found}
    assert len(set(addresses.values())) == len(addresses), f"{addresses}\n{outcome.report()}"


def test_xdist_session_scope(vcsim_tier: VcsimTier) -> None:
    """``-n 2`` with scope session: one clone shared by both workers, destroyed by the controller."""
    write_suite(vcsim_tier)
    outcome = vcsim_tier.shell.pytest("-n", "2", *vcsim_tier.shell.plugin_args("linked", "session"))
    found = assert_suite_passed(vcsim_tier, outcome)
    assert len({r["vm"] for r in found}) == 1, outcome.report()


# --- keep, list, reap, kill ---------------------------------------------------------------------


def test_keep_list_reap(vcsim_tier: VcsimTier) -> None:
    """A kept clone outlives the run, ``list`` shows it with its run, ``reap --run`` destroys it.

    Not checked here: that ``list`` calls the kept clone live rather than orphaned. On vcsim it is
    orphaned, because vcsim's SetField adds the kept marker next to the first one instead of
    replacing it (see the module docstring).
    """
    shell = vcsim_tier.shell
    write_suite(vcsim_tier)
    outcome = shell.pytest(*shell.plugin_args("linked", "worker"), "--vsphere-keep=always")
    assert outcome.returncode == 0, outcome.report()
    assert outcome.problems() == [], outcome.report()
    kept = {r["vm"] for r in records(vcsim_tier)}
    assert len(kept) == 1 and vcsim_tier.server.clones() == sorted(kept), outcome.report()

    listed = shell.cli("list", "--json")
    assert listed.returncode == 0 and listed.problems() == [], listed.report()
    rows = json.loads(listed.stdout)
    assert [row["name"] for row in rows] == sorted(kept), listed.report()
    assert rows[0]["template"] == TEMPLATE, listed.report()

    reaped = shell.cli("reap", "--run", rows[0]["run_id"])
    assert reaped.returncode == 0, reaped.report()
    assert leftovers(vcsim_tier, reaped) == [], reaped.report()
    again = shell.cli("list", "--json")
    assert json.loads(again.stdout) == [], again.report()


def test_sigkill_then_reap(vcsim_tier: VcsimTier) -> None:
    """A run killed with SIGKILL (no teardown at all) leaves its clone; ``reap`` finds it orphaned."""
    shell = vcsim_tier.shell
    (shell.workdir / "test_hold.py").write_text(INNER_HOLD)
    process = shell.start_pytest(*shell.plugin_args("linked", "worker"))
    deadline = time.monotonic() + 120
    while not shell.records.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    held = shell.records.read_text() if shell.records.exists() else ""
    stdout, stderr = kill_group(process)
    assert held, f"the run never got its clone:\n{stdout}\n{stderr}"
    assert vcsim_tier.server.clones() == [held]

    reaped = shell.cli("reap")
    assert reaped.returncode == 0, reaped.report()
    assert held in reaped.stdout and "orphaned" in reaped.stdout, reaped.report()
    assert leftovers(vcsim_tier, reaped) == [], reaped.report()


# --- a guest that never reports a usable address ------------------------------------------------


def test_no_usable_address(vcsim_tier: VcsimTier) -> None:
    """Tools report only a link-local address: every test errors with one line naming what was seen,
    and the half-made clone is destroyed."""
    vcsim_tier.player.addresses = ["169.254.10.10"]
    write_suite(vcsim_tier)
    args = [a for a in vcsim_tier.shell.plugin_args() if not a.startswith("--vsphere-ip-timeout=")]
    outcome = vcsim_tier.shell.pytest(*args, "--vsphere-ip-timeout=5")
    assert outcome.returncode == 1, outcome.report()
    assert leftovers(vcsim_tier, outcome) == [], outcome.report()
    failures = outcome.failure_texts()
    assert len(failures) == 4, outcome.report()
    assert all("169.254.10.10" in text and "link-local" in text for text in failures), outcome.report()
    assert len(vcsim_tier.player.booted) == 1, outcome.report()


# --- bad input ------------------------------------------------------------------------------------


def test_unknown_template(vcsim_tier: VcsimTier) -> None:
    write_suite(vcsim_tier)
    outcome = vcsim_tier.shell.pytest(*vcsim_tier.shell.plugin_args(template="no-such-template"))
    assert_usage_error(vcsim_tier, outcome, "no-such-template")


def test_wrong_password(vcsim_tier: VcsimTier) -> None:
    write_suite(vcsim_tier)
    args = [a for a in vcsim_tier.shell.plugin_args() if not a.startswith("--vsphere-password=")]
    outcome = vcsim_tier.shell.pytest(*args, "--vsphere-password=not-the-password")
    line = assert_usage_error(vcsim_tier, outcome, "password")
    assert "not-the-password" not in outcome.output and vcsim_tier.server.password not in line


def test_linked_clone_of_template_without_snapshot(vcsim_tier: VcsimTier) -> None:
    """Linked clones branch off a snapshot: none is an error naming the fix, never a silent full clone."""
    write_suite(vcsim_tier)
    outcome = vcsim_tier.shell.pytest(*vcsim_tier.shell.plugin_args("linked", template=NO_SNAPSHOT_TEMPLATE))
    assert_usage_error(vcsim_tier, outcome, NO_SNAPSHOT_TEMPLATE, "snapshot")



# --- failure evidence -------------------------------------------------------------------------------

FAILING_MODULE = """
import pytest


def test_fails(vsphere_vm):
    assert vsphere_vm.ip
    pytest.fail("deliberate failure")
"""


def test_a_failed_tests_screenshot_on_a_server_without_it_is_one_warning(vcsim_tier: VcsimTier) -> None:
    """A failed test's console screenshot is best effort: govmomi's vcsim 0.24 has no
    ``CreateScreenshot_Task`` (it answers with a fault, as a server that does not implement a method
    does), so the run says in one line that none was taken, fails only with the test's own
    assertion and leaves nothing behind."""
    (vcsim_tier.shell.workdir / "test_fails.py").write_text(FAILING_MODULE)
    outcome = vcsim_tier.shell.pytest(*vcsim_tier.shell.plugin_args("linked", "worker"))
    assert outcome.returncode == 1, outcome.report()
    assert leftovers(vcsim_tier, outcome) == [], outcome.report()
    failures = outcome.failure_texts()
    assert len(failures) == 1 and "deliberate failure" in failures[0], outcome.report()
    not_taken = [line for line in outcome.output.splitlines() if "vSphere console screenshot of " in line]
    assert not_taken and all("not taken: CreateScreenshot_Task failed" in line for line in not_taken), \
        outcome.report()
