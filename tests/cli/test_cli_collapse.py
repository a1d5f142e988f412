"""``vsphere-clone collapse``: merges a source's delta disks; refuses while clones use them or snapshots would go."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import Run, connect, make_clone

from pytest_vsphere_clone.client.marker import Marker
from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.client.teardown import destroy
from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig


def chain(sim: Simulator, name: str) -> int:
    return int(sim.find_vm(name).disk.depth())


def test_collapse_a_frozen_source_once_its_clones_are_gone(cli: Run, sim: Simulator, conn: VSphereConnection) -> None:
    for i in range(2):
        make_clone(conn, f"ic-{i}", "linux-frozen", clone_type="instant", marker=Marker.new("run-ic"))
    assert chain(sim, "linux-frozen") == 2
    refused = cli(sim, "collapse", "linux-frozen")
    assert refused.status == 1
    assert refused.out == "linux-frozen: disk chain length 2 before\n"
    assert ("2 VMs still use the disks of linux-frozen (ic-0, ic-1): destroy them first (for test clones: "
            "`vsphere-clone reap --run ID`), or pass --force") in refused.err
    assert chain(sim, "linux-frozen") == 2
    assert cli(sim, "reap", "--run", "run-ic").status == 0
    sim.reset_counters()
    result = cli(sim, "collapse", "linux-frozen")
    assert result.status == 0, result.err
    assert result.out.splitlines() == ["linux-frozen: disk chain length 2 before",
                                       "collapsing linux-frozen (promote) ...",
                                       "collapsed linux-frozen (promote): disk chain length 2 -> 1"]
    assert chain(sim, "linux-frozen") == 1 and sim.find_vm("linux-frozen").frozen
    assert sim.counters()["PromoteDisks_Task"] == 1
    again = cli(sim, "collapse", "linux-frozen")
    assert again.status == 0 and "nothing to collapse: linux-frozen has no delta disks" in again.out


def test_collapse_force_while_clones_exist(cli: Run, sim: Simulator, conn: VSphereConnection) -> None:
    make_clone(conn, "ic", "linux-frozen", clone_type="instant")  # not even marked: found by its disks
    result = cli(sim, "collapse", "linux-frozen", "--force")
    assert result.status == 0, result.err
    assert chain(sim, "linux-frozen") == 1
    assert "ic" in sim.vm_names()


def test_collapse_a_running_source_with_snapshot_mode(cli: Run, sim: Simulator, conn: VSphereConnection) -> None:
    make_clone(conn, "runner", clone_type="full", power_on=True)
    clones = [make_clone(conn, f"ic-{i}", "runner", clone_type="instant") for i in range(3)]
    assert chain(sim, "runner") == 4  # a running source gets one delta per clone
    for vm in clones:
        destroy(conn, vm)
    result = cli(sim, "collapse", "runner", "--mode", "snapshot")
    assert result.status == 0, result.err
    assert result.out.splitlines()[-1] == "collapsed runner (snapshot): disk chain length 4 -> 1"
    assert chain(sim, "runner") == 1
    assert not sim.find_vm("runner").all_snapshots()  # the helper snapshot is gone too


def test_collapse_refuses_to_delete_a_templates_snapshots(cli: Run, sim: Simulator) -> None:
    assert chain(sim, "linux-template") == 2  # its snapshot froze the base disk
    result = cli(sim, "collapse", "linux-template")
    assert result.status == 1
    line = result.error_lines[0]
    assert "would delete its snapshots (base)" in line and "pass --force" in line
    promote = cli(sim, "collapse", "linux-template", "--mode", "promote")
    assert promote.status == 1 and "cannot promote the disks of a VM with snapshots" in promote.err
    assert [s.name for s in sim.find_vm("linux-template").all_snapshots()] == ["base"]
    forced = cli(sim, "collapse", "linux-template", "--force")
    assert forced.status == 0, forced.err
    assert forced.out.splitlines()[-1] == "collapsed linux-template (snapshot): disk chain length 2 -> 1"
    assert not sim.find_vm("linux-template").all_snapshots()


def test_collapse_snapshot_mode_refuses_a_frozen_source(cli: Run, sim: Simulator, conn: VSphereConnection) -> None:
    make_clone(conn, "ic", "linux-frozen", clone_type="instant")
    result = cli(sim, "collapse", "linux-frozen", "--mode", "snapshot", "--force")
    assert result.status == 1
    assert "linux-frozen is frozen, and a frozen VM cannot take the snapshot" in result.err
    assert result.error_lines[-1].endswith("run `vsphere-clone collapse linux-frozen --mode promote`")
    assert chain(sim, "linux-frozen") == 2


def test_collapse_a_frozen_source_with_a_snapshot(cli: Run, tmp_path: Path) -> None:
    """A frozen source can take no snapshot, and vSphere promotes no disks of a VM with snapshots: every refusal
    names the one command that works (it deletes the snapshots, then promotes), never another refused one."""
    inventory = {"datacenters": [{"name": "dc1", "clusters": [{"name": "c1", "hosts": ["esx1"]}], "vms": [
        {"name": "golden", "snapshots": ["base"], "power": "poweredOn", "frozen": True}]}]}
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(inventory))
    with Simulator(SimulatorConfig(inventory=path)) as sim:
        with connect(sim) as conn:
            for i in range(2):
                destroy(conn, make_clone(conn, f"ic-{i}", "golden", clone_type="instant"))
        before = chain(sim, "golden")
        assert before > 1 and sim.find_vm("golden").frozen
        works = "`vsphere-clone collapse golden --mode promote --force`"
        for argv in ([], ["--mode", "promote"], ["--mode", "snapshot"], ["--mode", "snapshot", "--force"]):
            refused = cli(sim, "collapse", "golden", *argv)
            assert refused.status == 1, argv
            [line] = refused.error_lines
            assert line.startswith("vsphere-clone collapse: error: golden ") and f"run {works}" in line, line
            assert line.count("`vsphere-clone") == 1  # one way out, not a list to try in turn
        assert [s.name for s in sim.find_vm("golden").all_snapshots()] == ["base"]
        sim.reset_counters()
        result = cli(sim, "collapse", "golden", "--mode", "promote", "--force")
        assert result.status == 0, result.err
        assert result.out.splitlines()[1:] == ["deleting the snapshots of golden (base) ...",
                                               "collapsing golden (promote) ...",
                                               f"collapsed golden (promote): disk chain length {before} -> 1, its "
                                               f"snapshots (base) deleted"]
        vm = sim.find_vm("golden")
        assert chain(sim, "golden") == 1 and vm.frozen and not vm.all_snapshots()
        counts = sim.counters()
        assert counts["RemoveAllSnapshots_Task"] == 1 and counts["PromoteDisks_Task"] == 1
        assert counts["CreateSnapshot_Task"] == 0


def test_collapse_json(cli: Run, sim: Simulator, conn: VSphereConnection) -> None:
    nothing = cli(sim, "collapse", "linux-frozen", "--json")
    assert nothing.status == 0 and nothing.err == ""
    assert json.loads(nothing.out) == {"vm": "linux-frozen", "action": "nothing to collapse", "mode": None,
                                       "chain_before": [1], "chain_after": [1], "snapshots_deleted": []}
    destroy(conn, make_clone(conn, "ic", "linux-frozen", clone_type="instant"))
    done = cli(sim, "collapse", "linux-frozen", "--json")
    assert done.status == 0, done.err
    assert json.loads(done.out) == {"vm": "linux-frozen", "action": "collapsed", "mode": "promote",
                                    "chain_before": [2], "chain_after": [1], "snapshots_deleted": []}
    forced = cli(sim, "collapse", "linux-template", "--json", "--force")
    assert forced.status == 0, forced.err
    document = json.loads(forced.out)
    assert document["mode"] == "snapshot" and document["chain_after"] == [1]
    refused = cli(sim, "collapse", "linux-templat", "--json")
    assert refused.status == 1
    [line] = refused.error_lines
    assert json.loads(refused.out) == {"error": line.removeprefix("vsphere-clone collapse: error: "),
                                       "exit_status": 1}


def test_collapse_reports_a_failing_task(cli: Run, sim: Simulator, conn: VSphereConnection) -> None:
    destroy(conn, make_clone(conn, "ic", "linux-frozen", clone_type="instant"))
    sim.inject_fault("PromoteDisks_Task", "InvalidState", count=-1, in_task=True, message="disks are locked")
    result = cli(sim, "collapse", "linux-frozen")
    assert result.status == 1
    assert result.error_lines[-1] == (
        "vsphere-clone collapse: error: collapse (promote) of linux-frozen failed: InvalidState: disks are locked: "
        "check the VM's tasks and events in the vSphere Client, then run `vsphere-clone collapse linux-frozen` again")
    assert chain(sim, "linux-frozen") == 2
