"""``vsphere-clone list`` and ``reap``: marked VMs only, expired/orphaned rules, dry runs that touch nothing."""

from __future__ import annotations

import json

from cli_helpers import TEMPLATES, Run, make_clone, orphan_marker

from pytest_vsphere_clone.client.marker import Marker
from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.simulator import Simulator


def populate(conn: VSphereConnection) -> None:
    """live (run-a), expired (run-b), orphaned (run-c, its maker's pid is dead), and two VMs without the marker."""
    make_clone(conn, "live-1", marker=Marker.new("run-a", "gw0", ttl=3600))
    make_clone(conn, "live-2", "linux-frozen", clone_type="instant", marker=Marker.new("run-a", "gw1", ttl=3600))
    make_clone(conn, "expired-1", marker=Marker.new("run-b", "gw0", ttl=-120))
    make_clone(conn, "orphan-1", marker=orphan_marker("run-c"))
    make_clone(conn, "unmarked-off")
    make_clone(conn, "unmarked-on", power_on=True)


def test_list_shows_marked_vms_only(cli: Run, sim: Simulator, conn: VSphereConnection) -> None:
    populate(conn)
    result = cli(sim, "list")
    assert result.status == 0 and result.err == ""
    lines = result.out.splitlines()
    assert lines[0].split() == ["NAME", "RUN", "WORKER", "HOST", "PID", "CREATED", "EXPIRES", "STATUS", "POWER", "IP",
                                "TEST"]
    rows = {line.split()[0]: line for line in lines[1:-1]}
    assert set(rows) == {"live-1", "live-2", "expired-1", "orphan-1"}
    # STATUS, POWER, then IP and TEST ("-": no address reported, not kept by a test).
    assert rows["live-1"].split()[-4:] == ["live", "poweredOff", "-", "-"]
    assert rows["live-2"].split()[-4:-2] == ["live", "poweredOn"]
    assert rows["expired-1"].split()[-4] == "expired" and "ago)" in rows["expired-1"]
    assert rows["orphan-1"].split()[-4] == "orphaned"
    assert lines[-1].startswith("4 marked VMs, 2 expired or orphaned")


def test_list_json(cli: Run, sim: Simulator, conn: VSphereConnection) -> None:
    populate(conn)
    result = cli(sim, "list", "--json")
    assert result.status == 0
    entries = {entry["name"]: entry for entry in json.loads(result.out)}
    assert set(entries) == {"live-1", "live-2", "expired-1", "orphan-1"}
    live = entries["live-1"]
    assert live["run_id"] == "run-a" and live["worker"] == "gw0" and live["template"] == "linux-template"
    assert live["expired"] is False and live["orphaned"] is False and live["power_state"] == "poweredOff"
    assert live["ip"] is None and live["test"] is None  # powered off, and no test kept it
    assert live["created"].endswith("Z") and live["expires"] > live["created"] and live["moref"].startswith("vm-")
    assert entries["expired-1"]["expired"] is True and entries["expired-1"]["orphaned"] is False
    assert entries["orphan-1"]["orphaned"] is True and entries["orphan-1"]["expired"] is False
    only_a = json.loads(cli(sim, "list", "--json", "--run", "run-a").out)
    assert sorted(entry["name"] for entry in only_a) == ["live-1", "live-2"]


def test_list_nothing(cli: Run, sim: Simulator, conn: VSphereConnection) -> None:
    make_clone(conn, "unmarked")
    result = cli(sim, "list")
    assert result.status == 0 and result.out == "no VM carries the pytest-vsphere-clone marker\n"
    assert json.loads(cli(sim, "list", "--json").out) == []


def test_reap_dry_run_destroys_nothing(cli: Run, sim: Simulator, conn: VSphereConnection) -> None:
    populate(conn)
    before = sim.vm_names()
    sim.reset_counters()
    result = cli(sim, "reap", "--dry-run")
    assert result.status == 0
    assert result.out.splitlines() == [
        "would destroy expired-1 (run run-b, worker gw0; expired 2m ago)",
        f"would destroy orphan-1 (run run-c, worker gw0; orphaned: its process "
        f"{json.loads(cli(sim, 'list', '--json', '--run', 'run-c').out)[0]['pid']} on this machine is gone)",
        "dry run: 2 VMs would be destroyed; nothing was touched",
    ]
    assert sim.vm_names() == before
    counts = sim.counters()
    assert counts["Destroy_Task"] == 0 and counts["PowerOffVM_Task"] == 0


def test_reap_destroys_expired_and_orphaned_only(cli: Run, sim: Simulator, conn: VSphereConnection) -> None:
    populate(conn)
    result = cli(sim, "reap")
    assert result.status == 0, result.err
    assert [line.split()[:2] for line in result.out.splitlines()[:-1]] == [["destroyed", "expired-1"],
                                                                           ["destroyed", "orphan-1"]]
    assert result.out.splitlines()[-1] == "reaped 2 of 2 selected VMs"
    assert set(sim.vm_names()) == TEMPLATES | {"live-1", "live-2", "unmarked-off", "unmarked-on"}
    again = cli(sim, "reap", "--all-expired")
    assert again.status == 0 and again.out == "nothing to reap: 2 marked VMs, none expired or orphaned\n"


def test_reap_a_run(cli: Run, sim: Simulator, conn: VSphereConnection) -> None:
    populate(conn)
    result = cli(sim, "reap", "--run", "run-a")
    assert result.status == 0
    assert "destroyed live-1 (run run-a, worker gw0)" in result.out
    assert "destroyed live-2 (run run-a, worker gw1)" in result.out
    assert set(sim.vm_names()) == TEMPLATES | {"expired-1", "orphan-1", "unmarked-off", "unmarked-on"}
    none = cli(sim, "reap", "--run", "run-zzz")
    assert none.status == 0 and "no marked VM belongs to run 'run-zzz' (2 marked in total)" in none.out


def test_reap_older_than_never_touches_unmarked_vms(cli: Run, sim: Simulator, conn: VSphereConnection) -> None:
    populate(conn)
    result = cli(sim, "reap", "--older-than", "0s")
    assert result.status == 0
    assert result.out.splitlines()[-1] == "reaped 4 of 4 selected VMs"
    assert set(sim.vm_names()) == TEMPLATES | {"unmarked-off", "unmarked-on"}
    assert sim.find_vm("unmarked-on").power_state == "poweredOn"
    young = cli(sim, "reap", "--older-than", "1h")
    assert young.status == 0 and "no marked VM was created more than 1h00m ago" in young.out


def test_reap_reports_what_it_could_not_destroy(cli: Run, sim: Simulator, conn: VSphereConnection) -> None:
    make_clone(conn, "stuck", marker=Marker.new("run-s", ttl=-60))
    make_clone(conn, "fine", marker=Marker.new("run-s", ttl=-60))
    stuck = sim.find_vm("stuck")
    sim.inject_fault("Destroy_Task", "InvalidState", count=-1, mo_id=stuck.mo_id, message="the VM is locked")
    result = cli(sim, "reap")
    assert result.status == 1
    assert "destroyed fine" in result.out
    assert "FAILED to destroy stuck (run run-s, worker master; expired 1m ago): InvalidState" in result.out
    line = result.error_lines[-1]
    assert line.startswith("vsphere-clone reap: error: could not destroy 1 VM (stuck)")
    assert "run `vsphere-clone reap` again" in line
    assert set(sim.vm_names()) == TEMPLATES | {"stuck"}


def test_reap_json(cli: Run, sim: Simulator, conn: VSphereConnection) -> None:
    populate(conn)
    dry = cli(sim, "reap", "--dry-run", "--json")
    assert dry.status == 0 and dry.err == ""
    report = json.loads(dry.out)
    assert report["dry_run"] is True and report["selection"] == "expired-or-orphaned"
    assert report["selected"] == 2 and report["destroyed"] == [] and report["error"] is None
    vms = {vm["name"]: vm for vm in report["vms"]}
    assert set(vms) == {"expired-1", "orphan-1"}
    assert vms["expired-1"]["action"] == "would destroy" and vms["expired-1"]["expired"] is True
    assert vms["expired-1"]["reason"] == "run run-b, worker gw0; expired 2m ago"
    assert vms["orphan-1"]["orphaned"] is True and "orphaned: its process" in vms["orphan-1"]["reason"]
    assert set(sim.vm_names()) >= {"expired-1", "orphan-1"}
    done = json.loads(cli(sim, "reap", "--run", "run-a", "--json").out)
    assert done["dry_run"] is False and done["selection"] == "run" and done["run_id"] == "run-a"
    assert done["destroyed"] == ["live-1", "live-2"]
    assert [(vm["name"], vm["action"], vm["reason"]) for vm in done["vms"]] == [
        ("live-1", "destroyed", "run run-a, worker gw0"), ("live-2", "destroyed", "run run-a, worker gw1")]
    assert not {"live-1", "live-2"} & set(sim.vm_names())
    none = json.loads(cli(sim, "reap", "--run", "run-zzz", "--json").out)
    assert none["selected"] == 0 and none["vms"] == []


def test_reap_json_reports_what_it_could_not_destroy(cli: Run, sim: Simulator, conn: VSphereConnection) -> None:
    make_clone(conn, "stuck", marker=Marker.new("run-s", ttl=-60))
    sim.inject_fault("Destroy_Task", "InvalidState", count=-1, mo_id=sim.find_vm("stuck").mo_id,
                     message="the VM is locked")
    result = cli(sim, "reap", "--json")
    assert result.status == 1
    report = json.loads(result.out)  # one document, the failure inside it
    [vm] = report["vms"]
    assert vm["name"] == "stuck" and vm["action"] == "failed" and "InvalidState" in vm["error"]
    assert report["failed"] == ["stuck"] and report["destroyed"] == []
    assert result.error_lines == [f"vsphere-clone reap: error: {report['error']}"]
    assert report["error"].startswith("could not destroy 1 VM (stuck)")
