"""``vsphere-clone doctor``: one OK/WARN/FAIL/SKIP line per check, FAIL lines name the fix, exit 1 on any FAIL."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from cli_helpers import Run, make_clone

from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.commands.doctor_privileges import privilege_plan
from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig


def lines_of(out: str) -> dict[str, tuple[str, str]]:
    """label -> (status, detail) of every check line."""
    checks = {}
    for line in out.splitlines():
        if line.startswith("doctor: "):
            continue
        status, rest = line.split(None, 1)
        label, detail = rest.split(": ", 1)
        checks[label] = (status, detail)
    return checks


def test_doctor_without_templates(cli: Run, sim: Simulator) -> None:
    result = cli(sim, "doctor")
    assert result.status == 0, result.out
    checks = lines_of(result.out)
    assert checks["connection"][0] == "OK" and "pytest-vsphere-clone simulator" in checks["connection"][1]
    assert checks["tls"] == ("OK", f"certificate verified against {sim.ca_file}")
    assert checks["login"] == ("OK", "logged in as 'administrator@vsphere.local'")
    assert checks["privileges"][0] == "OK"
    assert checks["templates"][0] == "SKIP" and "--template" in checks["templates"][1]
    assert result.out.splitlines()[-1] == "doctor: 4 OK, 1 SKIP"


def test_doctor_linked_template_ready(cli: Run, sim: Simulator) -> None:
    result = cli(sim, "doctor", "--template", "linux-template", env={"VSPHERE_GUEST_USER": "root",
                                                                     "VSPHERE_GUEST_PASSWORD": "guest-pw-1"},
                 secrets=("guest-pw-1",))
    assert result.status == 0, result.out
    checks = lines_of(result.out)
    assert checks["template linux-template"] == ("OK", "found at dc1/vm/linux-template (VM, poweredOff)")
    status, detail = checks["privileges for linux-template"]
    assert status == "OK" and "linux-template (VM), vm (folder), Resources (resource pool), datastore1 (datastore)" \
        in detail
    assert checks["linked source linux-template"] == ("OK", "current snapshot 'base'; linked clones branch from it")
    assert checks["VMware Tools in linux-template"][0] == "OK"
    assert checks["guest login to linux-template"][0] == "SKIP"  # powered off: nothing to log in to
    assert checks["screenshot privileges for linux-template"][0] == "OK"
    assert "hardware for linux-template" not in checks  # no hardware setting given


def test_doctor_template_problems(cli: Run, sim: Simulator) -> None:
    result = cli(sim, "doctor", "--template", "linux-frozen", "--template", "linux-templat",
                 env={"VSPHERE_TEMPLATE": "ignored-when-options-are-given"})
    assert result.status == 1
    checks = lines_of(result.out)
    status, detail = checks["linked source linux-frozen"]
    assert status == "FAIL" and "has no snapshot, which a linked clone needs: create a snapshot" in detail
    assert "--clone-type=full" in detail and "--vsphere-" not in detail
    status, detail = checks["template linux-templat"]
    assert status == "FAIL" and "did you mean 'linux-template'" in detail and "set --template" in detail
    assert "ignored-when-options-are-given" not in result.out


def test_doctor_named_snapshot(cli: Run, sim: Simulator) -> None:
    result = cli(sim, "doctor", env={"VSPHERE_TEMPLATE": "linux-template", "VSPHERE_SNAPSHOT": "gold"})
    assert result.status == 1
    status, detail = lines_of(result.out)["linked source linux-template"]
    assert status == "FAIL" and "has no snapshot 'gold' (it has 'base')" in detail and "--snapshot" in detail


def test_doctor_instant_sources(cli: Run, sim: Simulator) -> None:
    result = cli(sim, "doctor", "--clone-type", "instant", "--template", "linux-frozen", "--template",
                 "windows-template")
    assert result.status == 1
    checks = lines_of(result.out)
    assert checks["instant source linux-frozen"][0] == "OK"
    assert checks["VMware Tools in linux-frozen"][0] == "SKIP"
    status, detail = checks["instant source windows-template"]
    assert status == "FAIL" and "is poweredOff, but an instant clone needs a running or frozen source" in detail
    assert "`vsphere-clone freeze windows-template`" in detail
    assert checks["guest login to linux-frozen"][0] == "WARN"  # no guest credentials given


def test_doctor_lists_missing_privileges_where_they_are_needed(cli: Run, sim: Simulator) -> None:
    denied = {"VirtualMachine.Provisioning.Clone", "VirtualMachine.GuestOperations.Execute",
              "Datastore.AllocateSpace"}
    sim.add_user("tester@vsphere.local", "tester-secret", denied=denied)
    result = cli(sim, "doctor", "--template", "linux-template",
                 env={"VSPHERE_USER": "tester@vsphere.local", "VSPHERE_PASSWORD": "tester-secret"},
                 secrets=("tester-secret",))
    assert result.status == 1
    status, detail = lines_of(result.out)["privileges for linux-template"]
    assert status == "FAIL"
    assert detail == ("user 'tester@vsphere.local' lacks VirtualMachine.Provisioning.Clone on linux-template (VM); "
                      "VirtualMachine.GuestOperations.Execute on vm (folder); Datastore.AllocateSpace on datastore1 "
                      "(datastore): grant them to the user's role on those objects (or a parent, with propagation)")
    assert result.out.splitlines()[-1] == "doctor: 7 OK, 1 WARN, 1 FAIL"


def test_privilege_plan_covers_every_required_privilege(sim: Simulator, conn: VSphereConnection) -> None:
    from pytest_vsphere_clone.client.inventory import find_template
    from pytest_vsphere_clone.client.privileges import EXTRA_PRIVILEGES, required_privileges

    info = find_template(conn, "linux-frozen")
    for clone_type in ("linked", "instant", "full"):
        for collapse in ("none", "promote"):
            plan = privilege_plan(info, clone_type, collapse, False, conn.content.rootFolder)
            placed = {p for _, privileges in plan for p in privileges}
            wanted = set(required_privileges(clone_type, guest_ops=True, collapse=collapse != "none"))
            assert placed == wanted | set(EXTRA_PRIVILEGES["marker-field"])


def test_doctor_hardware_port_groups(cli: Run, sim: Simulator) -> None:
    result = cli(sim, "doctor", "--template", "linux-template", "--networks", "VM Network", "--networks",
                 "VM Netwrk 2", "--disks", "8")
    assert result.status == 1
    checks = lines_of(result.out)
    assert checks["port groups for linux-template"] == (
        "FAIL", "port group 'VM Netwrk 2' of --networks not found (did you mean 'VM Network 2'?): this datacenter "
                "has 'VM Network', 'VM Network 2'; name one of these")
    assert checks["hardware for linux-template"] == (
        "OK", "linked clones of linux-template can take 2 NICs on named port groups, 1 extra disk (8 GB)")
    # The same settings from the plugin's environment variables (VSPHERE_NETWORKS is comma-separated).
    fine = cli(sim, "doctor", "--template", "linux-template",
               env={"VSPHERE_NETWORKS": "VM Network,VM Network 2", "VSPHERE_DISKS": "8"})
    assert fine.status == 0, fine.out
    assert lines_of(fine.out)["port groups for linux-template"] == (
        "OK", "NIC 1 on 'VM Network', NIC 2 on 'VM Network 2': found among the datacenter's networks")
    bad = cli(sim, "doctor", "--template", "linux-template", "--cpus", "0")
    assert bad.status == 2 and bad.out == ""
    assert bad.err.strip() == "vsphere-clone doctor: error: invalid value '0' for --cpus: must be at least 1"


def test_doctor_refuses_hardware_an_instant_clone_cannot_take(cli: Run, sim: Simulator) -> None:
    result = cli(sim, "doctor", "--clone-type", "instant", "--template", "linux-frozen",
                 env={"VSPHERE_CPUS": "2", "VSPHERE_EXTRA_CONFIG": "guestinfo.role=web"})
    assert result.status == 1
    assert lines_of(result.out)["hardware for linux-frozen"] == (
        "FAIL", "instant clones of linux-frozen cannot change CPUs, memory or disks (InstantCloneSpec allows only "
                "extraConfig and NIC edits): use --clone-type linked or full")
    nics = cli(sim, "doctor", "--clone-type", "instant", "--template", "linux-frozen", "--networks", "VM Network 2",
               "--networks", "VM Network", "--extra-config", "guestinfo.role=web")
    assert nics.status == 1
    status, detail = lines_of(nics.out)["hardware for linux-frozen"]
    assert status == "FAIL" and detail.startswith("--networks names 2 NICs but linux-frozen has 1, and an instant "
                                                  "clone cannot add NICs")
    moved = cli(sim, "doctor", "--clone-type", "instant", "--template", "linux-frozen", "--networks", "VM Network 2",
                "--extra-config", "guestinfo.role=web")
    assert lines_of(moved.out)["hardware for linux-frozen"] == (
        "OK", "instant clones of linux-frozen can take 1 NIC on named port groups, extraConfig keys guestinfo.role")


def test_doctor_hardware_privileges_only_for_the_settings_in_use(cli: Run, sim: Simulator) -> None:
    denied = {"VirtualMachine.Config.CPUCount", "VirtualMachine.Config.AdvancedConfig", "Network.Assign",
              "VirtualMachine.Config.AddNewDisk"}
    sim.add_user("hw@vsphere.local", "hw-secret-1", denied=denied)
    user = {"VSPHERE_USER": "hw@vsphere.local", "VSPHERE_PASSWORD": "hw-secret-1"}
    result = cli(sim, "doctor", "--json", "--template", "linux-template", "--cpus", "2", "--memory-mb", "1024",
                 "--networks", "VM Network 2", "--extra-config", "guestinfo.token=tok-1234",
                 env=user, secrets=("hw-secret-1",))
    assert result.status == 1
    report = json.loads(result.out)
    checks = {check["name"]: check for check in report["checks"]}
    assert checks["privileges for linux-template"] == {
        "name": "privileges for linux-template", "verdict": "fail",
        "detail": "user 'hw@vsphere.local' lacks VirtualMachine.Config.AdvancedConfig, VirtualMachine.Config.CPUCount "
                  "on vm (folder); Network.Assign on VM Network 2 (port group): grant them to the user's role on "
                  "those objects (or a parent, with propagation)"}  # AddNewDisk: no --disks, not needed
    assert checks["hardware for linux-template"]["detail"] == (
        "linked clones of linux-template can take 2 CPUs, 1024 MB of memory, 1 NIC on named port groups, extraConfig "
        "keys guestinfo.token")
    assert "tok-1234" not in result.out  # an extraConfig value may be a token
    # Without hardware settings the same user lacks nothing the run needs.
    plain = cli(sim, "doctor", "--template", "linux-template", env=user, secrets=("hw-secret-1",))
    assert plain.status == 0, plain.out
    assert lines_of(plain.out)["privileges for linux-template"][0] == "OK"


def test_doctor_screenshot_privileges_are_a_warning(cli: Run, sim: Simulator) -> None:
    sim.add_user("noshot@vsphere.local", "noshot-secret", denied={"VirtualMachine.Interact.CreateScreenshot",
                                                                  "Datastore.Browse"})
    result = cli(sim, "doctor", "--template", "linux-template",
                 env={"VSPHERE_USER": "noshot@vsphere.local", "VSPHERE_PASSWORD": "noshot-secret"},
                 secrets=("noshot-secret",))
    assert result.status == 0, result.out  # screenshots are optional evidence: a WARN, not a FAIL
    assert lines_of(result.out)["screenshot privileges for linux-template"] == (
        "WARN", "user 'noshot@vsphere.local' lacks VirtualMachine.Interact.CreateScreenshot on vm (folder); "
                "Datastore.Browse on dc1 (datacenter); Datastore.Browse on datastore1 (datastore): a failed test's "
                "clones get no console screenshot (a warning line instead); grant them to the user's role for that "
                "evidence")


@pytest.mark.guests
def test_doctor_checks_guest_credentials(cli: Run, guest_sim: Simulator, guest_conn: VSphereConnection) -> None:
    make_clone(guest_conn, "runner", clone_type="full", power_on=True)
    result = cli(guest_sim, "doctor", "--clone-type", "instant", "--template", "runner", "--template",
                 "linux-frozen")
    assert result.status == 0, result.out
    checks = lines_of(result.out)
    status, detail = checks["instant source runner"]
    assert status == "WARN" and "running but not frozen" in detail and "`vsphere-clone freeze runner`" in detail
    assert checks["VMware Tools in runner"] == ("OK", "running (version 12389)")
    assert checks["guest login to runner"] == ("OK", "guest user 'root' (from VSPHERE_GUEST_USER) can run programs "
                                                     "(`true` through Guest Operations)")
    assert checks["guest login to linux-frozen"][0] == "SKIP"
    assert result.out.splitlines()[-1].endswith("1 WARN, 2 SKIP")
    wrong = cli(guest_sim, "doctor", "--clone-type", "instant", "--template", "runner",
                env={"VSPHERE_GUEST_PASSWORD": "wrong-guest-pw"}, secrets=("wrong-guest-pw",))
    assert wrong.status == 1
    assert lines_of(wrong.out)["guest login to runner"] == (
        "FAIL", "guest OS of VM 'runner' rejected the login of guest user 'root': check --guest-user and "
                "--guest-password (guest user from VSPHERE_GUEST_USER)")


@pytest.mark.guests
def test_doctor_checks_windows_guest_credentials(cli: Run, guest_sim: Simulator,
                                                 guest_conn: VSphereConnection) -> None:
    make_clone(guest_conn, "win", "windows-template", clone_type="full", power_on=True)
    facts = guest_sim.connection_facts()
    # The simulator's Linux account (its GUEST_USER, root) as every template's guest user: said, and why it fails.
    as_root = cli(guest_sim, "doctor", "--clone-type", "full", "--template", "win")
    assert as_root.status == 1
    checks = lines_of(as_root.out)
    status, detail = checks["guest user for win"]
    assert status == "WARN" and detail.startswith("guest user 'root' (from VSPHERE_GUEST_USER) is a Linux account, "
                                                  "but win runs Windows")
    assert "`vsphere-clone doctor --template win --guest-user USER`" in detail and "WINDOWS_GUEST_USER" in detail
    status, detail = checks["guest login to win"]
    assert status == "FAIL" and "guest user 'root'" in detail and "(guest user from VSPHERE_GUEST_USER)" in detail
    # The advice, followed: the Windows account (the simulator's WINDOWS_GUEST_USER) logs in.
    result = cli(guest_sim, "doctor", "--clone-type", "full", "--template", "win", "--guest-user",
                 facts["WINDOWS_GUEST_USER"], env={"VSPHERE_GUEST_PASSWORD": facts["WINDOWS_GUEST_PASSWORD"]})
    assert result.status == 0, result.out
    checks = lines_of(result.out)
    assert "guest user for win" not in checks
    assert checks["guest login to win"] == (
        "OK", "guest user 'Administrator' (from --guest-user) can run programs (`exit 0` through Guest Operations)")


def test_doctor_connection_problems(cli: Run, sim: Simulator) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    unreachable = cli(sim, "doctor", env={"VSPHERE_HOST": f"127.0.0.1:{port}"})
    assert unreachable.status == 1
    assert unreachable.out.splitlines()[0].startswith(f"FAIL  connection: cannot reach vCenter 127.0.0.1:{port}")
    assert unreachable.out.splitlines()[-1] == "doctor: 1 FAIL"

    no_ca = cli(sim, "doctor", env={"VSPHERE_CA_BUNDLE": None})
    assert no_ca.status == 1
    checks = lines_of(no_ca.out)
    assert checks["connection"][0] == "OK"
    assert checks["tls"][0] == "FAIL" and "pass --ca-bundle=PATH" in checks["tls"][1]

    wrong = cli(sim, "doctor", env={"VSPHERE_PASSWORD": "wrong-vc-pw"}, secrets=("wrong-vc-pw",))
    assert wrong.status == 1
    checks = lines_of(wrong.out)
    assert checks["tls"][0] == "OK"
    assert checks["login"][0] == "FAIL" and "check --user and --password" in checks["login"][1]

    insecure = cli(sim, "doctor", "--insecure", env={"VSPHERE_CA_BUNDLE": None})
    assert insecure.status == 0, insecure.out
    assert lines_of(insecure.out)["tls"][0] == "WARN"
    assert insecure.err == ""  # the WARN line says it; no second warning from the client's log


def test_doctor_vms_without_tools(cli: Run, tmp_path: Path) -> None:
    inventory = {"datacenters": [{"name": "dc1", "clusters": [{"name": "c1", "hosts": ["esx1"]}], "vms": [
        {"name": "bare-off", "snapshots": ["base"], "tools": False},
        {"name": "bare-on", "snapshots": ["base"], "tools": False, "power": "poweredOn"},
    ]}]}
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(inventory))
    with Simulator(SimulatorConfig(inventory=path)) as sim:
        result = cli(sim, "doctor", "--template", "bare-off", "--template", "bare-on", "--tools-wait", "0.5")
    assert result.status == 1
    checks = lines_of(result.out)
    status, detail = checks["VMware Tools in bare-off"]
    assert status == "FAIL" and detail.startswith("not installed: install open-vm-tools (Linux)")
    status, detail = checks["VMware Tools in bare-on"]
    assert status == "FAIL" and "not running (toolsRunningStatus=guestToolsNotRunning after waiting 0.5 s)" in detail


def test_doctor_says_which_guest_user_it_checks_for_a_windows_template(cli: Run, sim: Simulator) -> None:
    guest = {"VSPHERE_GUEST_USER": "root", "VSPHERE_GUEST_PASSWORD": "guest-pw-1"}
    result = cli(sim, "doctor", "--template", "windows-template", "--template", "linux-template", env=guest,
                 secrets=("guest-pw-1",))
    assert result.status == 0, result.out
    checks = lines_of(result.out)
    status, detail = checks["guest user for windows-template"]
    assert status == "WARN"
    assert detail == ("guest user 'root' (from VSPHERE_GUEST_USER) is a Linux account, but windows-template runs "
                      "Windows and the guest user is one for every template: check it with `vsphere-clone doctor "
                      "--template windows-template --guest-user USER` and give pytest the same USER for it "
                      "(VSPHERE_GUEST_USER), USER being a Windows account (the bundled simulator's "
                      "WINDOWS_GUEST_USER)")
    assert checks["guest login to windows-template"] == (
        "SKIP", "cannot be tried while windows-template is poweredOff; the clones will use guest user 'root' (from "
                "VSPHERE_GUEST_USER)")
    assert "guest user for linux-template" not in checks  # root fits Linux
    given = cli(sim, "doctor", "--template", "linux-template", "--guest-user", "Administrator", env=guest,
                secrets=("guest-pw-1",))
    status, detail = lines_of(given.out)["guest user for linux-template"]
    assert status == "WARN" and detail.startswith("guest user 'Administrator' (from --guest-user) is a Windows "
                                                  "account, but linux-template runs Linux")
    assert "(the bundled simulator's GUEST_USER)" in detail


def test_doctor_json(cli: Run, sim: Simulator) -> None:
    result = cli(sim, "doctor", "--json", "--template", "linux-template", "--template", "linux-templat",
                 env={"VSPHERE_GUEST_USER": "root", "VSPHERE_GUEST_PASSWORD": "guest-pw-1"}, secrets=("guest-pw-1",))
    assert result.status == 1 and result.err == ""  # exit status as without --json
    report = json.loads(result.out)
    checks = {check["name"]: check for check in report["checks"]}
    assert set(report["checks"][0]) == {"name", "verdict", "detail"}
    assert checks["login"] == {"name": "login", "verdict": "ok", "detail": "logged in as 'administrator@vsphere.local'"}
    assert checks["template linux-templat"]["verdict"] == "fail"
    assert "did you mean 'linux-template'" in checks["template linux-templat"]["detail"]
    assert checks["guest login to linux-template"]["verdict"] == "skip"
    assert report["counts"] == {"ok": sum(c["verdict"] == "ok" for c in report["checks"]), "warn": 0, "fail": 1,
                                "skip": 1}
    assert report["exit_status"] == 1
    assert "guest-pw-1" not in result.out and sim.password not in result.out
    clean = cli(sim, "doctor", "--json")
    assert clean.status == 0 and json.loads(clean.out)["exit_status"] == 0
    unreachable = cli(sim, "doctor", "--json", env={"VSPHERE_PASSWORD": "wrong-vc-pw"}, secrets=("wrong-vc-pw",))
    assert unreachable.status == 1
    assert [c["verdict"] for c in json.loads(unreachable.out)["checks"]] == ["ok", "ok", "fail"]


def test_doctor_asks_deploy_template_of_a_vsphere_template(cli: Run, sim: Simulator, conn: VSphereConnection) -> None:
    # CloneVM_Task: "source is template, destination is virtual machine - VirtualMachine.Provisioning.DeployTemplate".
    from pytest_vsphere_clone.client.inventory import find_template

    find_template(conn, "linux-template").ref.MarkAsTemplate()
    sim.add_user("deployer@vsphere.local", "deployer-secret", denied={"VirtualMachine.Provisioning.DeployTemplate"})
    env = {"VSPHERE_USER": "deployer@vsphere.local", "VSPHERE_PASSWORD": "deployer-secret"}
    result = cli(sim, "doctor", "--template", "linux-template", env=env, secrets=("deployer-secret",))
    assert result.status == 1
    checks = lines_of(result.out)
    assert checks["template linux-template"] == ("OK", "found at dc1/vm/linux-template (vSphere template, poweredOff)")
    assert checks["privileges for linux-template"] == (
        "FAIL", "user 'deployer@vsphere.local' lacks VirtualMachine.Provisioning.DeployTemplate on linux-template "
                "(vSphere template): grant them to the user's role on those objects (or a parent, with propagation)")
    assert checks["linked source linux-template"][0] == "OK"  # its snapshot 'base': linked clones deploy from it
    # No instant clone from a template: it cannot be powered on.
    result = cli(sim, "doctor", "--clone-type", "instant", "--template", "linux-template")
    status, detail = lines_of(result.out)["instant source linux-template"]
    assert status == "FAIL" and detail.startswith(
        "template 'linux-template' is a vSphere template (config.template), which cannot be powered on, but an "
        "instant clone needs a running or frozen source: convert it to a VM (`govc vm.markasvm linux-template`)")
