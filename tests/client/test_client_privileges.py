"""Up-front privilege checks with HasPrivilegeOnEntities."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_vsphere_clone.client.errors import MissingPrivileges
from pytest_vsphere_clone.client.inventory import find_template
from pytest_vsphere_clone.client.privileges import check_privileges, missing_privileges, required_privileges
from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.simulator import Simulator


def test_required_privileges_by_flow() -> None:
    linked = required_privileges("linked", guest_ops=False)
    assert "VirtualMachine.Provisioning.Clone" in linked and "VirtualMachine.Config.EditDevice" not in linked
    instant = required_privileges("instant", collapse=True)
    assert {"VirtualMachine.Config.EditDevice", "VirtualMachine.GuestOperations.Execute",
            "VirtualMachine.Provisioning.PromoteDisks"} <= set(instant)
    # CloneVM_Task's reference: from a template, DeployTemplate on the source instead of Clone.
    deploy = required_privileges("linked", source_is_template=True)
    assert "VirtualMachine.Provisioning.DeployTemplate" in deploy and "VirtualMachine.Provisioning.Clone" not in deploy


def test_administrator_has_everything(sim: Simulator, conn: VSphereConnection) -> None:
    template = find_template(conn, "linux-template")
    check_privileges(conn, [template.ref], required_privileges("instant", collapse=True))


def test_missing_privileges_are_listed(sim: Simulator, connect: Callable[..., VSphereConnection]) -> None:
    denied = {"VirtualMachine.Provisioning.Clone", "VirtualMachine.GuestOperations.Execute"}
    sim.add_user("ci@vsphere.local", "ci-pw", denied=denied)
    conn = connect(sim, user="ci@vsphere.local", password="ci-pw")
    template = find_template(conn, "linux-template")
    assert missing_privileges(conn, [template.ref], required_privileges()) == {template.ref: sorted(denied)}
    with pytest.raises(MissingPrivileges) as raised:
        check_privileges(conn, [template.ref], required_privileges(), "linux-template")
    assert raised.value.privileges == sorted(denied)
    assert "on linux-template" in str(raised.value) and "ci@vsphere.local" in str(raised.value)
