"""Template lookup by name or inventory path, and placement resolution, from one batched read."""

from __future__ import annotations

import pytest

from pytest_vsphere_clone.client.errors import AmbiguousTemplate, InvalidPlacement, PlacementNotFound, TemplateNotFound
from pytest_vsphere_clone.client.inventory import Inventory, PlacementSettings, find_template
from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.simulator import Simulator


def test_one_view_and_one_retrieve(sim: Simulator, conn: VSphereConnection) -> None:
    sim.reset_counters()
    template = find_template(conn, "linux-template")
    counts = sim.counters()
    assert counts["RetrievePropertiesEx"] == 1 and counts["CreateContainerView"] == 1
    assert counts["DestroyView"] == 1 and counts["Fetch"] == 0
    assert sum(counts.values()) == 3
    assert template.name == "linux-template"
    assert template.path == "dc1/vm/linux-template"
    assert template.power_state == "poweredOff" and not template.frozen and not template.is_template
    assert [s.name for s in template.snapshots] == ["base"]
    assert template.current_snapshot == template.snapshots[0].ref
    assert template.os_family == "linux"
    assert template.host is not None and template.resource_pool is not None
    assert len(template.datastores) == 1 and len(template.networks) == 1


def test_frozen_and_windows_sources(sim: Simulator, conn: VSphereConnection) -> None:
    inventory = Inventory.load(conn)
    frozen = inventory.find_template("linux-frozen")
    assert frozen.power_state == "poweredOn" and frozen.frozen
    windows = inventory.find_template("windows-template")
    assert windows.os_family == "windows"


@pytest.mark.parametrize("wanted", ["dc1/vm/templates/ubuntu", "/dc1/vm/templates/ubuntu", "vm/templates/ubuntu"])
def test_find_by_inventory_path(shared_shapes_conn: VSphereConnection, wanted: str) -> None:
    template = find_template(shared_shapes_conn, wanted)
    assert template.path == "dc1/vm/templates/ubuntu"


def test_ambiguous_name_lists_the_matching_paths(shared_shapes_conn: VSphereConnection) -> None:
    with pytest.raises(AmbiguousTemplate) as raised:
        find_template(shared_shapes_conn, "ubuntu")
    assert raised.value.paths == ["dc1/vm/old/templates/ubuntu", "dc1/vm/templates/ubuntu"]
    assert "dc1/vm/old/templates/ubuntu, dc1/vm/templates/ubuntu" in str(raised.value)
    assert "--vsphere-template" in str(raised.value)


def test_ambiguous_path_suffix_is_ambiguous_too(shared_shapes_conn: VSphereConnection) -> None:
    with pytest.raises(AmbiguousTemplate):
        find_template(shared_shapes_conn, "templates/ubuntu")  # ends both paths
    assert find_template(shared_shapes_conn, "old/templates/ubuntu").path == "dc1/vm/old/templates/ubuntu"


def test_unknown_template_suggests_close_names(sim: Simulator, conn: VSphereConnection) -> None:
    with pytest.raises(TemplateNotFound) as raised:
        find_template(conn, "linux-templat")
    assert raised.value.close[0] == "linux-template"
    assert "did you mean 'linux-template'" in str(raised.value)
    with pytest.raises(TemplateNotFound) as raised:
        find_template(conn, "dc1/vm/linux-templates")
    assert "dc1/vm/linux-template" in raised.value.close


def test_unknown_template_without_anything_close(sim: Simulator, conn: VSphereConnection) -> None:
    with pytest.raises(TemplateNotFound) as raised:
        find_template(conn, "zzzzzz")
    assert raised.value.close == []
    assert "did you mean" not in str(raised.value)


def test_nested_snapshot_tree(shared_shapes_conn: VSphereConnection) -> None:
    template = find_template(shared_shapes_conn, "layered")
    assert [s.path for s in template.snapshots] == ["base", "base/updated", "base/updated/latest"]
    assert template.snapshot_named("updated") is not None
    assert template.snapshot_named("base/updated") == template.snapshot_named("updated")
    assert template.current_snapshot == template.snapshot_named("latest").ref  # type: ignore[union-attr]


# --- placement ---------------------------------------------------------------------------------------


def test_default_placement_is_the_templates_own(shared_shapes_conn: VSphereConnection) -> None:
    inventory = Inventory.load(shared_shapes_conn)
    template = inventory.find_template("linux-template")
    placement = inventory.resolve_placement(template)
    assert placement.folder == template.folder
    assert placement.resource_pool is None and placement.host is None
    assert placement.datastore is None and placement.network is None


def test_named_placement(shared_shapes_conn: VSphereConnection) -> None:
    inventory = Inventory.load(shared_shapes_conn)
    template = inventory.find_template("linux-template")
    placement = inventory.resolve_placement(template, PlacementSettings(
        cluster="cluster2", esxi_host="esx3", folder="vm/templates", datastore="datastore2", network="Test Network"))
    assert inventory.name(placement.host) == "esx3"
    assert inventory.path(placement.folder) == "dc1/vm/templates"
    assert inventory.name(placement.datastore) == "datastore2"
    assert placement.network_name == "Test Network"
    assert inventory.path(placement.resource_pool) == "dc1/host/cluster2/Resources"


def test_other_datacenter_defaults_to_its_vm_folder_and_pool(shared_shapes_conn: VSphereConnection) -> None:
    inventory = Inventory.load(shared_shapes_conn)
    template = inventory.find_template("linux-template")
    placement = inventory.resolve_placement(template, PlacementSettings(datacenter="dc2"))
    assert inventory.path(placement.folder) == "dc2/vm"
    assert inventory.path(placement.resource_pool) == "dc2/host/cluster9/Resources"


@pytest.mark.parametrize(("settings", "kind", "close"), [
    (PlacementSettings(datastore="datastore3"), "datastore", "datastore1"),
    (PlacementSettings(cluster="cluster3"), "cluster", "cluster1"),
    (PlacementSettings(esxi_host="esx4"), "esxi host", "esx1"),
    (PlacementSettings(network="VM Netwrk"), "network", "VM Network"),
    (PlacementSettings(folder="templatez"), "folder", "templates"),
    (PlacementSettings(datacenter="dc3"), "datacenter", "dc1"),
])
def test_unknown_placement_names_the_setting(shared_shapes_conn: VSphereConnection, settings: PlacementSettings,
                                             kind: str, close: str) -> None:
    inventory = Inventory.load(shared_shapes_conn)
    template = inventory.find_template("linux-template")
    with pytest.raises(PlacementNotFound) as raised:
        inventory.resolve_placement(template, settings)
    message = str(raised.value)
    assert message.startswith(kind)
    assert f"--vsphere-{kind.replace(' ', '-')}" in message
    assert close in raised.value.message


def test_placement_outside_the_datacenter_is_not_found(shared_shapes_conn: VSphereConnection) -> None:
    inventory = Inventory.load(shared_shapes_conn)
    template = inventory.find_template("linux-template")
    with pytest.raises(PlacementNotFound):
        inventory.resolve_placement(template, PlacementSettings(esxi_host="esx9"))  # lives in dc2


def test_ambiguous_folder_name(shared_shapes_conn: VSphereConnection) -> None:
    inventory = Inventory.load(shared_shapes_conn)
    template = inventory.find_template("linux-template")
    with pytest.raises(InvalidPlacement, match="dc1/vm/old/templates, dc1/vm/templates"):
        inventory.resolve_placement(template, PlacementSettings(folder="templates"))
