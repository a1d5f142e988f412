"""The end-of-run sweep of clones whose clone task's outcome the run never saw (issue #5).

The janitor runs in this process against a simulator without guests, with the run's ledger
in a temporary directory: each case starts a clone task itself (as a worker whose waits all
failed would have left it) and lets the sweep decide. A clone is recorded destroyed only once
no clone task that could still make it runs and no VM of it exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim

from pytest_vsphere_clone.client.inventory import find_template
from pytest_vsphere_clone.client.marker import Marker
from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.client.task_reads import poll_tasks
from pytest_vsphere_clone.plugin.connection_holder import ConnectionHolder
from pytest_vsphere_clone.plugin.janitor import Janitor
from pytest_vsphere_clone.plugin.ledger import Ledger
from pytest_vsphere_clone.plugin.reporter import Reporter
from pytest_vsphere_clone.plugin.settings import Settings
from pytest_vsphere_clone.plugin.templates import TemplateCatalog
from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig

RUN_ID = "c0ffee"


@pytest.fixture
def slow_sim() -> Iterator[Simulator]:
    """Time scale 40: a linked clone task runs 0.8-1.6 s, so it is still running when the sweep starts."""
    with Simulator(SimulatorConfig(time_scale=40.0)) as simulator:
        yield simulator


@pytest.fixture
def conn(slow_sim: Simulator) -> Iterator[VSphereConnection]:
    connection = VSphereConnection(f"{slow_sim.host}:{slow_sim.port}", slow_sim.user, slow_sim.password,
                                   ca_bundle=slow_sim.ca_file, timeout=30.0).connect()
    yield connection
    connection.close()


def janitor_for(conn: VSphereConnection, tmp_path: Path, clone_timeout: float = 15.0) -> tuple[Janitor, Ledger]:
    """A janitor built as the plugin builds one, from its collaborators (no run object needed)."""
    ledger = Ledger(tmp_path / "ledger.jsonl")
    settings = Settings().replace(clone_timeout=clone_timeout)
    holder = ConnectionHolder.of(conn, settings)
    janitor = Janitor(holder, ledger, Reporter(None, owns_terminal=False), TemplateCatalog(holder), hook=None,
                      run_id=RUN_ID, defaults=settings)
    return janitor, ledger


def start_clone(conn: VSphereConnection, name: str, template_name: str = "linux-template") -> Any:
    """A linked clone task with the run's marker in its spec, as the plugin starts one."""
    template = find_template(conn, template_name)
    marker = Marker.new(RUN_ID, template=template_name)
    spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(diskMoveType="createNewChildDiskBacking"),
                            snapshot=template.current_snapshot,
                            config=vim.vm.ConfigSpec(annotation=marker.annotation()))
    return template.ref.CloneVM_Task(folder=template.folder, name=name, spec=spec)


def test_a_clone_task_known_by_its_key_is_awaited_before_the_look(slow_sim: Simulator, conn: VSphereConnection,
                                                                  tmp_path: Path) -> None:
    janitor, ledger = janitor_for(conn, tmp_path)
    ledger.creating("c1", "master", "linux-template", "function", "linked")
    task = start_clone(conn, "c1")
    ledger.task("c1", task._moId)
    # Every task wait refused, and the look by name held past the task's end (the race of issue #5).
    slow_sim.inject_fault("CreateFilter", "NoPermission", count=-1)
    slow_sim.inject_fault("DestroyView", count=1, delay=2.0)
    # Found once its task ended; destroyed though no wait works (its tasks are read to their end).
    assert janitor.sweep(ledger.live(), reason="end of run") == 1
    assert janitor.errors == []
    slow_sim.clear_faults()
    assert slow_sim.vm_names().count("c1") == 0
    assert ledger.entries()["c1"].state == "destroyed"


def test_a_clone_task_whose_key_was_never_recorded_is_found_in_recent_tasks(
        slow_sim: Simulator, conn: VSphereConnection, tmp_path: Path) -> None:
    janitor, ledger = janitor_for(conn, tmp_path)
    ledger.creating("c1", "master", "dc1/vm/linux-template", "function", "linked")  # an inventory path
    start_clone(conn, "c1")  # its answer "lost": no task key in the ledger
    slow_sim.inject_fault("DestroyView", count=1, delay=2.0)
    assert janitor.sweep(ledger.live(), reason="end of run") == 1
    assert janitor.errors == []
    assert "c1" not in slow_sim.vm_names()
    assert ledger.entries()["c1"].state == "destroyed"


def test_a_failed_clone_task_made_no_clone(slow_sim: Simulator, conn: VSphereConnection, tmp_path: Path) -> None:
    janitor, ledger = janitor_for(conn, tmp_path)
    ledger.creating("c1", "master", "linux-template", "function", "linked")
    slow_sim.inject_fault("CloneVM_Task", "NoPermission", count=1, in_task=True)
    task = start_clone(conn, "c1")
    ledger.task("c1", task._moId)
    assert janitor.sweep(ledger.live(), reason="end of run") == 0
    assert janitor.errors == []
    assert poll_tasks(conn, [task], 1)[task].state == "error"
    assert ledger.entries()["c1"].state == "destroyed"


def test_a_clone_task_still_running_at_the_timeout_keeps_the_clone_in_the_ledger(
        slow_sim: Simulator, conn: VSphereConnection, tmp_path: Path) -> None:
    janitor, ledger = janitor_for(conn, tmp_path, clone_timeout=0.2)
    ledger.creating("c1", "master", "linux-template", "function", "linked")
    task = start_clone(conn, "c1")
    ledger.task("c1", task._moId)
    assert janitor.sweep(ledger.live(), reason="end of run") == 0
    [error] = janitor.errors
    assert error.startswith("could not tell whether c1 exists (end of run): timed out after 0.2 s waiting for "
                            f"the clone task(s) of c1 ({task._moId}) to end (last seen: {task._moId}: state="), error
    assert "`vsphere-clone reap`" in error
    assert ledger.entries()["c1"].live  # never "destroyed" on a guess
    assert poll_tasks(conn, [task], 10)[task].state == "success"
    assert "c1" in slow_sim.vm_names()  # what the timeout was right not to forget


def test_clone_tasks_of_other_templates_are_not_awaited(slow_sim: Simulator, conn: VSphereConnection,
                                                        tmp_path: Path) -> None:
    janitor, ledger = janitor_for(conn, tmp_path, clone_timeout=0.2)
    ledger.creating("c1", "master", "no-such-template", "function", "linked")  # keyless, its task never ran
    other = start_clone(conn, "someone-elses")
    assert janitor.sweep(ledger.live(), reason="end of run") == 0
    assert janitor.errors == []
    assert ledger.entries()["c1"].state == "destroyed"
    poll_tasks(conn, [other], 10)
