"""Users whose roles lack privileges: every checked method answers NoPermission naming the privilege."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim
from sim_helpers import linked_clone_spec, vm_by_name, wait

from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig

LIMITED = "limited@vsphere.local"
LIMITED_PASSWORD = "limited-password"


def _clone(si: Any) -> Any:
    vm = vm_by_name(si, "linux-template")
    return vm.CloneVM_Task(folder=vm.parent, name="denied-clone", spec=linked_clone_spec(vm.snapshot.currentSnapshot))


def _instant_clone(si: Any) -> Any:
    vm = vm_by_name(si, "linux-frozen")
    return vm.InstantClone_Task(spec=vim.vm.InstantCloneSpec(name="denied-instant", location=vim.vm.RelocateSpec()))


def _reconfig(**spec: Any) -> Callable[[Any], Any]:
    return lambda si: vm_by_name(si, "linux-template").ReconfigVM_Task(spec=vim.vm.ConfigSpec(**spec))


def _nic_edit(si: Any) -> Any:
    vm = vm_by_name(si, "linux-template")
    nic = next(d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard))
    nic.connectable.connected = False
    change = vim.vm.device.VirtualDeviceSpec(operation="edit", device=nic)
    return vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[change]))


#: (privilege the user lacks, a call that needs it)
DENIED_CALLS: list[tuple[str, Callable[[Any], Any]]] = [
    ("VirtualMachine.Provisioning.Clone", _clone),
    ("VirtualMachine.Inventory.CreateFromExisting", _clone),
    ("Resource.AssignVMToPool", _clone),
    ("Datastore.AllocateSpace", _clone),
    ("VirtualMachine.Provisioning.Clone", _instant_clone),
    ("VirtualMachine.Interact.PowerOn", lambda si: vm_by_name(si, "linux-template").PowerOnVM_Task()),
    ("VirtualMachine.Interact.PowerOff", lambda si: vm_by_name(si, "linux-frozen").PowerOffVM_Task()),
    ("VirtualMachine.Interact.Reset", lambda si: vm_by_name(si, "linux-frozen").ResetVM_Task()),
    ("VirtualMachine.Inventory.Delete", lambda si: vm_by_name(si, "linux-template").Destroy_Task()),
    ("VirtualMachine.State.CreateSnapshot",
     lambda si: vm_by_name(si, "linux-template").CreateSnapshot_Task(name="s", memory=False, quiesce=False)),
    ("VirtualMachine.State.RemoveSnapshot", lambda si: vm_by_name(si, "linux-template").RemoveAllSnapshots_Task()),
    ("VirtualMachine.State.RemoveSnapshot",
     lambda si: vm_by_name(si, "linux-template").snapshot.currentSnapshot.RemoveSnapshot_Task(removeChildren=False)),
    ("VirtualMachine.State.RevertToSnapshot",
     lambda si: vm_by_name(si, "linux-template").RevertToCurrentSnapshot_Task()),
    ("VirtualMachine.Provisioning.PromoteDisks",
     lambda si: vm_by_name(si, "linux-template").PromoteDisks_Task(unlink=True)),
    ("VirtualMachine.Config.AdvancedConfig", _reconfig(extraConfig=[vim.option.OptionValue(key="a", value="b")])),
    ("VirtualMachine.Config.Annotation", _reconfig(annotation="denied")),
    ("VirtualMachine.Config.Rename", _reconfig(name="renamed")),
    ("VirtualMachine.Config.EditDevice", _nic_edit),
    ("Global.SetCustomField", lambda si: vm_by_name(si, "linux-template").setCustomValue(key="owner", value="x")),
    ("Global.ManageCustomFields",
     lambda si: si.content.customFieldsManager.AddCustomFieldDef(name="f", moType=vim.VirtualMachine)),
]


@pytest.mark.parametrize(("privilege", "call"), DENIED_CALLS,
                         ids=[f"{p}-{getattr(c, '__name__', '')}" for p, c in DENIED_CALLS])
def test_missing_privilege_is_no_permission_naming_it(sim: Simulator, client_factory: Callable[..., Any],
                                                      privilege: str, call: Callable[[Any], Any]) -> None:
    admin = client_factory(sim)
    admin.content.customFieldsManager.AddCustomFieldDef(name="owner", moType=vim.VirtualMachine)
    sim.add_user(LIMITED, LIMITED_PASSWORD, denied={privilege})
    limited = client_factory(sim, LIMITED, LIMITED_PASSWORD)
    names_before = sim.vm_names()
    with pytest.raises(vim.fault.NoPermission) as raised:
        call(limited)
    fault = raised.value
    assert fault.privilegeId == privilege
    assert privilege in fault.msg
    assert [p for entry in fault.missingPrivileges for p in entry.privilegeIds] == [privilege]
    assert sim.vm_names() == names_before  # refused before anything happened
    # The administrator passes the privilege check (the operation itself may still refuse, e.g. promoting a
    # VM that has snapshots).
    result = call(admin)
    if isinstance(result, vim.Task):
        WaitForTask(result, raiseOnError=False)
        assert not isinstance(result.info.error, vim.fault.NoPermission)


def test_limited_user_may_still_do_what_the_role_allows(sim: Simulator, client_factory: Callable[..., Any]) -> None:
    sim.add_user(LIMITED, LIMITED_PASSWORD, denied={"VirtualMachine.Inventory.Delete"})
    limited = client_factory(sim, LIMITED, LIMITED_PASSWORD)
    clone = wait(_clone(limited))
    assert clone.name == "denied-clone"
    with pytest.raises(vim.fault.NoPermission):
        clone.Destroy_Task()


def test_has_privilege_on_entities(sim: Simulator, client_factory: Callable[..., Any]) -> None:
    admin = client_factory(sim)
    sim.add_user(LIMITED, LIMITED_PASSWORD, denied={"VirtualMachine.Interact.PowerOn"})
    limited = client_factory(sim, LIMITED, LIMITED_PASSWORD)
    limited_key = limited.content.sessionManager.currentSession.key
    admin_key = admin.content.sessionManager.currentSession.key
    vm = vm_by_name(admin, "linux-template")
    manager = admin.content.authorizationManager
    asked = ["VirtualMachine.Interact.PowerOn", "VirtualMachine.Interact.PowerOff"]
    result = manager.HasPrivilegeOnEntities(entity=[vm, admin.content.rootFolder], sessionId=limited_key,
                                            privId=asked)
    assert [r.entity for r in result] == [vm, admin.content.rootFolder]
    for entry in result:
        assert {a.privId: a.isGranted for a in entry.privAvailability} == {
            "VirtualMachine.Interact.PowerOn": False, "VirtualMachine.Interact.PowerOff": True}
    admin_result = manager.HasPrivilegeOnEntities(entity=[vm], sessionId=admin_key, privId=asked)
    assert all(a.isGranted for a in admin_result[0].privAvailability)
    with pytest.raises(vim.fault.NotFound):
        manager.HasPrivilegeOnEntities(entity=[vm], sessionId="no-such-session", privId=asked)


def test_fetch_user_privilege_on_entities(sim: Simulator, client_factory: Callable[..., Any]) -> None:
    admin = client_factory(sim)
    sim.add_user(LIMITED, LIMITED_PASSWORD, denied={"VirtualMachine.Provisioning.Clone",
                                                     "VirtualMachine.Inventory.Delete"})
    vm = vm_by_name(admin, "linux-template")
    manager = admin.content.authorizationManager
    [entry] = manager.FetchUserPrivilegeOnEntities(entities=[vm], userName=LIMITED)
    assert entry.entity == vm
    assert "VirtualMachine.Interact.PowerOn" in entry.privileges
    assert "VirtualMachine.Provisioning.Clone" not in entry.privileges
    assert "VirtualMachine.Inventory.Delete" not in entry.privileges
    [admin_entry] = manager.FetchUserPrivilegeOnEntities(entities=[vm], userName=sim.user)
    assert "VirtualMachine.Provisioning.Clone" in admin_entry.privileges
    with pytest.raises(vim.ManagedObjectNotFound):
        manager.FetchUserPrivilegeOnEntities(entities=[vim.VirtualMachine("vm-999999")], userName=LIMITED)


def test_users_from_config_and_role_listing(client_factory: Callable[..., Any]) -> None:
    denied = frozenset({"VirtualMachine.Interact.Reset"})
    config = SimulatorConfig(extra_users=(("ops@vsphere.local", "ops-pw", denied),))
    with Simulator(config) as simulator:
        ops = client_factory(simulator, "ops@vsphere.local", "ops-pw")
        with pytest.raises(vim.fault.NoPermission) as raised:
            vm_by_name(ops, "linux-frozen").ResetVM_Task()
        assert raised.value.privilegeId == "VirtualMachine.Interact.Reset"
        privileges = {p.privId for p in ops.content.authorizationManager.privilegeList}
        assert {"VirtualMachine.Interact.Reset", "VirtualMachine.Provisioning.Clone"} <= privileges
