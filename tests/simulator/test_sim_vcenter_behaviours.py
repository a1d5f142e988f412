"""Documented vCenter behaviours the simulator models, seen through the real pyVmomi client.

- At most 8 provisioning operations run at once per ESXi host; more queue (vSphere docs, "Limits on
  Simultaneous Migrations").
- InstantClone_Task (and cloning at all) is not available on a direct ESXi connection (vSphere SDK
  guide, "Limitations of Instant Clones").
- Windows Guest Operations run with a filtered, non-elevated token unless the user is the built-in
  Administrator (ansible/ansible #66472, vmware/pyvmomi-community-samples #272).
- systemd-networkd guests derive their DHCP client identity from /etc/machine-id: clones of a template
  that keeps one get the same lease (systemd #9609, chef/bento #1062).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim, vmodl
from sim_helpers import close, connect, linked_clone_spec, vm_by_name, wait, wait_fault

from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig
from pytest_vsphere_clone.simulator.guests import guest_support_problem
from pytest_vsphere_clone.simulator.inventory import InventoryError
from pytest_vsphere_clone.simulator.latency import FAST_TIMES, LatencyProfile

PC = vmodl.query.PropertyCollector
HOST_LIMIT_SETTING = "config.vpxd.ResourceManager.maxCostPerEsx6xHost"

#: Two hosts with a template and a frozen source each, two datastores and four running VMs on esx1.
INVENTORY: dict[str, Any] = {"datacenters": [{
    "name": "dc1",
    "datastores": [{"name": "datastore1"}, {"name": "datastore2"}],
    "clusters": [{"name": "cluster1", "hosts": ["esx1", "esx2"]}],
    "vms": [
        {"name": "linux-template", "host": "esx1", "snapshots": ["base"]},
        {"name": "linux-frozen", "host": "esx1", "power": "poweredOn", "frozen": True},
        {"name": "other-template", "host": "esx2", "snapshots": ["base"]},
        *({"name": f"running-{n}", "host": "esx1", "power": "poweredOn"} for n in range(4)),
    ],
}]}


@pytest.fixture
def busy_sim(tmp_path: Path) -> Iterator[Simulator]:
    """A simulator whose clones and relocations take half a second each: long enough to overlap."""
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(INVENTORY))
    with Simulator(SimulatorConfig(inventory=path)) as simulator:
        assert simulator.vc is not None
        simulator.vc.options.profile = LatencyProfile("slow-provisioning", {
            **FAST_TIMES, "clone.linked": (0.5, 0.5), "clone.instant": (0.5, 0.5), "relocate": (0.5, 0.5)})
        yield simulator


@pytest.fixture
def busy_si(busy_sim: Simulator) -> Iterator[Any]:
    si = connect(busy_sim)
    yield si
    close(si)


def _states(si: Any, tasks: list[Any]) -> list[str]:
    """Every task's info.state, read in one RetrievePropertiesEx."""
    spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=t) for t in tasks],
                         propSet=[PC.PropertySpec(type=vim.Task, pathSet=["info.state"])])
    result = si.content.propertyCollector.RetrievePropertiesEx(specSet=[spec], options=PC.RetrieveOptions())
    state = {o.obj._moId: o.propSet[0].val for o in result.objects}
    return [state[t._moId] for t in tasks]


def _most_at_once(infos: list[Any]) -> int:
    """The most tasks that ran at the same time, from their startTime and completeTime."""
    events: list[tuple[datetime, int]] = []
    for info in infos:
        events += [(info.startTime, 1), (info.completeTime, -1)]
    running = most = 0
    for _, change in sorted(events):  # at equal times an end (-1) sorts before a start
        running += change
        most = max(most, running)
    return most


def _linked_clones(template: Any, names: list[str], **location: Any) -> list[Any]:
    snapshot = template.snapshot.currentSnapshot
    return [template.CloneVM_Task(folder=template.parent, name=name,
                                  spec=linked_clone_spec(snapshot, location=vim.vm.RelocateSpec(
                                      diskMoveType="createNewChildDiskBacking", **location)))
            for name in names]


def _entity(si: Any, kind: type, name: str) -> Any:
    view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [kind], True)
    try:
        return next(obj for obj in view.view if obj.name == name)
    finally:
        view.DestroyView()


# --- at most 8 provisioning operations per host ---------------------------------------------------


def test_ten_clones_on_one_host_run_eight_at_a_time(busy_si: Any) -> None:
    template, frozen = vm_by_name(busy_si, "linux-template"), vm_by_name(busy_si, "linux-frozen")
    tasks = _linked_clones(template, [f"linked-{n}" for n in range(6)])
    tasks += [frozen.InstantClone_Task(spec=vim.vm.InstantCloneSpec(name=f"instant-{n}",
                                                                    location=vim.vm.RelocateSpec()))
              for n in range(4)]
    states = _states(busy_si, tasks)
    # Eight run; the ninth and tenth wait in "queued" (the task-queue draw of the fast profile is 0).
    assert states.count("running") <= 8
    assert "queued" in states, states
    for task in tasks:
        wait(task)
    infos = [t.info for t in tasks]
    assert [i.state for i in infos] == ["success"] * 10
    assert _most_at_once(infos) == 8
    assert sorted(i.result.name for i in infos) == sorted([f"linked-{n}" for n in range(6)]
                                                          + [f"instant-{n}" for n in range(4)])
    # The queued ones started only after one of the first eight had ended.
    first_end = min(i.completeTime for i in infos)
    assert sum(i.startTime >= first_end for i in infos) >= 2


def test_the_limit_is_per_host(busy_si: Any) -> None:
    tasks = _linked_clones(vm_by_name(busy_si, "linux-template"), [f"esx1-{n}" for n in range(10)])
    others = _linked_clones(vm_by_name(busy_si, "other-template"), ["esx2-0", "esx2-1"])
    states = _states(busy_si, tasks + others)
    assert "queued" in states[:10], states  # esx1 is at its maximum...
    assert states[10:] == ["running", "running"], states  # ...esx2 is not
    for task in tasks + others:
        wait(task)


def test_a_clone_to_another_host_costs_against_both(busy_si: Any) -> None:
    esx2 = _entity(busy_si, vim.HostSystem, "esx2")
    blockers = _linked_clones(vm_by_name(busy_si, "other-template"), [f"on-esx2-{n}" for n in range(8)])
    # The source is on esx1, the clone goes to esx2: esx2 has no room left.
    [across] = _linked_clones(vm_by_name(busy_si, "linux-template"), ["across"], host=esx2)
    assert _states(busy_si, [across]) == ["queued"]
    for task in blockers:
        wait(task)
    assert wait(across).runtime.host == esx2
    assert across.info.startTime >= min(t.info.completeTime for t in blockers)


def test_the_host_maximum_is_a_vcenter_advanced_setting(busy_si: Any) -> None:
    settings = busy_si.content.setting
    settings.UpdateOptions(changedValue=[vim.option.OptionValue(key=HOST_LIMIT_SETTING, value=2)])
    assert settings.QueryOptions(HOST_LIMIT_SETTING)[0].value == 2
    tasks = _linked_clones(vm_by_name(busy_si, "linux-template"), [f"two-{n}" for n in range(4)])
    for task in tasks:
        wait(task)
    assert _most_at_once([t.info for t in tasks]) == 2


def test_storage_vmotion_costs_four_against_the_host(busy_si: Any) -> None:
    datastore2 = _entity(busy_si, vim.Datastore, "datastore2")
    vms = [vm_by_name(busy_si, f"running-{n}") for n in range(3)]
    # Powered on, a move to another datastore is a Storage vMotion: 4 of the host's 8, so two at once.
    tasks = [vm.RelocateVM_Task(spec=vim.vm.RelocateSpec(datastore=datastore2)) for vm in vms]
    for task in tasks:
        wait(task)
    assert _most_at_once([t.info for t in tasks]) == 2
    assert all(list(vm.datastore) == [datastore2] and vm.runtime.powerState == "poweredOn" for vm in vms)


def test_vmotion_and_cold_migration_cost_one(busy_si: Any) -> None:
    esx2 = _entity(busy_si, vim.HostSystem, "esx2")
    running = [vm_by_name(busy_si, f"running-{n}") for n in range(4)]
    template = vm_by_name(busy_si, "linux-template")
    cold = [wait(t) for t in _linked_clones(template, [f"cold-{n}" for n in range(4)])]  # powered off
    tasks = [vm.RelocateVM_Task(spec=vim.vm.RelocateSpec(host=esx2)) for vm in running + cold]
    for task in tasks:
        wait(task)
    assert 2 < _most_at_once([t.info for t in tasks]) <= 8  # 4 vMotions and 4 cold migrations fit esx1's 8
    assert all(vm.runtime.host == esx2 for vm in running + cold)


# --- a direct ESXi connection offers no cloning ---------------------------------------------------


@pytest.fixture
def esxi_sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(api_type="HostAgent")) as simulator:
        yield simulator


def test_esxi_mode_reports_a_host_agent(esxi_sim: Simulator) -> None:
    si = connect(esxi_sim)
    try:
        about = si.content.about
        assert (about.apiType, about.productLineId, about.name) == ("HostAgent", "embeddedEsx", "VMware ESXi")
        assert about.fullName.startswith("VMware ESXi 8.0.3")
    finally:
        close(si)


def test_esxi_mode_refuses_instant_and_linked_clones(esxi_sim: Simulator) -> None:
    si = connect(esxi_sim)
    try:
        frozen, template = vm_by_name(si, "linux-frozen"), vm_by_name(si, "linux-template")
        before = esxi_sim.vm_names()
        # As ESXi does: the task starts and ends with NotSupported (the vSphere SDK guide, "Limitations
        # of Instant Clones": not available when connected directly to ESXi; govmomi #1469: "ESXi does
        # not support the CloneVM method, regardless of license").
        for task in (frozen.InstantClone_Task(spec=vim.vm.InstantCloneSpec(name="ic", location=vim.vm.RelocateSpec())),
                     *_linked_clones(template, ["lc"])):
            fault = wait_fault(task)
            assert isinstance(fault, vmodl.fault.NotSupported), fault
            assert fault.msg == "The operation is not supported on the object."
        assert esxi_sim.vm_names() == before
    finally:
        close(si)


def test_the_inventory_file_may_ask_for_esxi(tmp_path: Path) -> None:
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps({"api_type": "HostAgent", **INVENTORY}))
    with Simulator(SimulatorConfig(inventory=path)) as simulator:
        si = connect(simulator)
        try:
            assert si.content.about.apiType == "HostAgent"
        finally:
            close(si)
    path.write_text(json.dumps({"api_type": "ESXi", **INVENTORY}))
    with pytest.raises(InventoryError, match="api_type must be one of VirtualCenter, HostAgent, not 'ESXi'"):
        Simulator(SimulatorConfig(inventory=path)).start()


def test_a_vcenter_clones(shared_si: Any) -> None:
    assert shared_si.content.about.apiType == "VirtualCenter"


# --- real guests ----------------------------------------------------------------------------------

#: Templates for the guest tests: a Windows one, and Linux ones whose DHCP client is systemd-networkd.
GUEST_INVENTORY: dict[str, Any] = {"datacenters": [{
    "name": "dc1",
    "datastores": [{"name": "datastore1"}],
    "clusters": [{"name": "cluster1", "hosts": ["esx1"]}],
    "vms": [
        {"name": "windows-template", "guest_id": "windows2019srvNext_64Guest", "snapshots": ["base"]},
        # systemd-networkd guests: one template keeps its machine-id, the other was prepared (emptied).
        {"name": "networkd-kept", "dhcp_client": "networkd", "machine_id": "fixed", "snapshots": ["base"]},
        {"name": "networkd-prepared", "dhcp_client": "networkd", "snapshots": ["base"]},
    ],
}]}
CMD = r"C:\Windows\System32\cmd.exe"


@pytest.fixture(scope="module")
def gsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    reason = guest_support_problem()
    if reason:
        pytest.skip(reason)
    path = tmp_path_factory.mktemp("inventory") / "inventory.json"
    path.write_text(json.dumps(GUEST_INVENTORY))
    with Simulator(SimulatorConfig(guests=True, inventory=path)) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def gsi(gsim: Simulator) -> Iterator[Any]:
    si = connect(gsim)
    yield si
    close(si)


def _until(check: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """Poll a client-visible condition; the deadline only bounds a hang (nothing is timed)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(0.05)


def _running_clone(si: Any, template_name: str, name: str) -> Any:
    [task] = _linked_clones(vm_by_name(si, template_name), [name])
    vm = wait(task)
    wait(vm.PowerOnVM_Task())
    _until(lambda: vm.guest.toolsRunningStatus == "guestToolsRunning", what=f"Tools in {name}")
    return vm


def _destroy(vm: Any) -> None:
    if vm.runtime.powerState == "poweredOn":
        wait(vm.PowerOffVM_Task())
    wait(vm.Destroy_Task())


def _guest_run(si: Any, vm: Any, user: str, password: str, program: str, arguments: str) -> int:
    """Start a program through Guest Operations and wait (ListProcessesInGuest) for its exit code."""
    processes = si.content.guestOperationsManager.processManager
    auth = vim.vm.guest.NamePasswordAuthentication(username=user, password=password)
    pid = processes.StartProgramInGuest(vm, auth, vim.vm.guest.ProcessManager.ProgramSpec(
        programPath=program, arguments=arguments))
    found: list[Any] = []

    def ended() -> bool:
        found[:] = processes.ListProcessesInGuest(vm, auth, [pid])
        return bool(found) and found[0].exitCode is not None

    _until(ended, 30.0, f"exit of {program} {arguments}")
    return int(found[0].exitCode)


# --- Windows: Guest Operations run with a filtered token but for the built-in Administrator ------


def test_windows_guest_operations_of_another_administrator_are_not_elevated(gsim: Simulator, gsi: Any) -> None:
    facts = gsim.connection_facts()
    password = facts["WINDOWS_GUEST_PASSWORD"]
    vm = _running_clone(gsi, "windows-template", "uac")
    try:
        admin, other = facts["WINDOWS_GUEST_USER"], facts["WINDOWS_LOCAL_ADMIN_USER"]
        assert (admin, other) == ("Administrator", "LocalAdmin")
        ip = vm.guest.ipAddress

        def run(user: str, command: str) -> int:
            return _guest_run(gsi, vm, user, password, CMD, f"/c {command}")

        out = r"C:\Users\LocalAdmin\out.txt"
        # The second administrator logs in and runs what needs no elevation...
        assert run(other, f"ipconfig > {out}") == 0
        assert run(other, f'findstr /c:"{ip}" {out}') == 0
        # ...but renewing a lease and disabling an adapter need it: its token is filtered.
        assert run(other, f"ipconfig /renew > {out}") == 1
        assert run(other, f'findstr /c:"The requested operation requires elevation." {out}') == 0
        assert run(other, f'netsh interface set interface "Ethernet0" disable > {out}') == 1
        assert run(other, f'findstr /c:"The requested operation requires elevation (Run as administrator)." '
                          f'{out}') == 0
        assert vm.guest.net[0].connected and run(other, f"ipconfig > {out}") == 0
        assert run(other, f'findstr /c:"{ip}" {out}') == 0  # the adapter is still up, with its address
        # The built-in Administrator's token is a full one, through Guest Operations too.
        assert run(admin, "ipconfig /renew") == 0
        assert run(admin, f'netsh interface show interface > {out}') == 0
    finally:
        _destroy(vm)


# --- systemd-networkd: the DHCP client identity comes from /etc/machine-id ------------------------

NETWORK_UNIT = "/etc/systemd/network/80-vmware-eth0.network"


def _sh(gsim: Simulator, gsi: Any, vm: Any, script: str) -> int:
    facts = gsim.connection_facts()
    quoted = "'" + script.replace("'", "'\"'\"'") + "'"
    return _guest_run(gsi, vm, facts["GUEST_USER"], facts["GUEST_PASSWORD"], "/bin/sh", f"-c {quoted}")


def _address(vm: Any, other_than: str | None = None) -> str:
    """The address VMware Tools report (once there is one, and it is not ``other_than``)."""
    _until(lambda: vm.guest.ipAddress not in (None, other_than), what=f"an address of {vm.name}")
    return str(vm.guest.ipAddress)


def test_clones_of_a_template_that_keeps_its_machine_id_share_one_lease(gsim: Simulator, gsi: Any) -> None:
    kept = gsim.find_vm("networkd-kept").initial_machine_id  # what the template's image holds
    first, second = (_running_clone(gsi, "networkd-kept", f"kept-{n}") for n in range(2))
    try:
        assert _sh(gsim, gsi, first, f"grep -qx {kept} /etc/machine-id") == 0
        assert _sh(gsim, gsi, second, f"grep -qx {kept} /etc/machine-id") == 0
        # One client identity (networkd's DUID from the machine-id), so the DHCP server, which keys
        # leases by it, hands the second clone the first one's address: two VMs, one IP.
        assert _address(second) == _address(first)
        assert first.guest.net[0].macAddress != second.guest.net[0].macAddress
    finally:
        for vm in (first, second):
            _destroy(vm)


def test_clones_of_a_prepared_template_get_their_own_machine_id_and_lease(gsim: Simulator, gsi: Any) -> None:
    first, second = (_running_clone(gsi, "networkd-prepared", f"prepared-{n}") for n in range(2))
    try:
        assert _address(first) != _address(second)
        # Each made its own machine-id at its first boot (read from its disk, white-box: the guests
        # cannot see each other's files).
        assert gsim.vc is not None and gsim.vc.guests is not None
        first_id = (gsim.vc.guests.disk_dir(gsim.find_vm("prepared-0")) / "etc" / "machine-id").read_text().strip()
        assert _sh(gsim, gsi, first, f"grep -qx {first_id} /etc/machine-id") == 0
        assert _sh(gsim, gsi, second, f"grep -qx {first_id} /etc/machine-id") == 1
        assert _sh(gsim, gsi, second, "grep -qxE '[0-9a-f]{32}' /etc/machine-id") == 0
    finally:
        for vm in (first, second):
            _destroy(vm)


@pytest.mark.parametrize("fix", ["ClientIdentifier=mac", "empty machine-id"])
def test_either_fix_gives_a_clone_its_own_lease(gsim: Simulator, gsi: Any, fix: str) -> None:
    first, second = (_running_clone(gsi, "networkd-kept", f"fix-{n}") for n in range(2))
    try:
        shared = _address(first)
        assert _address(second) == shared
        if fix == "ClientIdentifier=mac":
            assert _sh(gsim, gsi, second, f"printf '\\n[DHCPv4]\\nClientIdentifier=mac\\n' >> {NETWORK_UNIT}") == 0
        else:
            assert _sh(gsim, gsi, second, ": > /etc/machine-id") == 0
        second.RebootGuest()
        assert _address(second, other_than=shared) != shared  # its own identity: a lease of its own
        if fix == "empty machine-id":
            assert _sh(gsim, gsi, second, "test -s /etc/machine-id") == 0  # the boot made a new one
    finally:
        for vm in (first, second):
            _destroy(vm)


@pytest.mark.parametrize(("entry", "error"), [
    ({"dhcp_client": "dhcpcd"}, "dhcp_client must be dhclient or networkd, not 'dhcpcd'"),
    ({"machine_id": "ABC"}, "machine_id must be \"fixed\" or 32 lower-case hex digits, not 'ABC'"),
    ({"machine_id": "fixed", "guest_id": "windows2019srvNext_64Guest"}, "apply to Linux guests only"),
])
def test_inventory_image_settings_are_checked(tmp_path: Path, entry: dict[str, Any], error: str) -> None:
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps({"datacenters": [{"name": "dc1", "clusters": [{"name": "c", "hosts": ["esx1"]}],
                                                 "vms": [{"name": "bad", **entry}]}]}))
    with pytest.raises(InventoryError, match=error.replace("(", r"\(")):
        Simulator(SimulatorConfig(inventory=path)).start()
