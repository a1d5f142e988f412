"""Build the simulated inventory: the default shape, or one loaded from a JSON file.

Shape (every key optional but ``datacenters``)::

    {"api_type": "VirtualCenter",  # or "HostAgent": answer as an ESXi host reached directly
     "datacenters": [{"name": "dc1",
        "datastores": [{"name": "datastore1", "capacity_gb": 2048}],
        "networks": ["VM Network"],
        "clusters": [{"name": "cluster1", "hosts": ["esx1", {"name": "esx2", "cpu_cores": 32, "memory_gb": 512}]}],
        "vms": [{"name": "linux-template", "guest_id": "ubuntu64Guest", "folder": "",
                 "host": "esx1", "power": "poweredOff", "frozen": false, "template": false,
                 "snapshots": ["base"], "tools": true, "cpus": 2, "memory_mb": 2048,
                 "networks": ["VM Network"],  # port group of each NIC (default: the datacenter's first)
                 "dhcp_client": "dhclient", "machine_id": null}]}],
     "users": [{"name": "readonly@vsphere.local", "password": "...", "denied": ["VirtualMachine.*"]}]}

A Linux VM's image (see guests/os_image.py): ``dhcp_client`` "networkd" makes systemd-networkd its DHCP
client (its client identity derived from /etc/machine-id); ``machine_id`` "fixed" (or 32 hex digits)
keeps a committed /etc/machine-id in the template, which its clones copy. The default (null) is an
emptied machine-id, as a prepared template has: each VM's first boot makes its own.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

from pyVmomi import vim

from .auth import PRIVILEGES
from .objects.custom_fields import CustomFieldsManager
from .objects.disks import MB
from .objects.events import event_manager
from .objects.host import HostHardware, product
from .objects.inventory import (
    GB,
    ClusterComputeResource,
    Datacenter,
    Datastore,
    Folder,
    HostSystem,
    Network,
)
from .objects.managers import build_helper_objects, build_service_managers
from .objects.property_collector import PropertyCollector
from .objects.service import AuthorizationManager, ServiceInstance, SessionManager
from .objects.views import SearchIndex, ViewManager
from .objects.virtual_machine import VirtualMachine
from .tasks import TaskManager
from .vcenter import VCenter

API_TYPES = ("VirtualCenter", "HostAgent")
LINUX_GUEST_ID = "ubuntu64Guest"
WINDOWS_GUEST_ID = "windows2019srvNext_64Guest"

DEFAULT_INVENTORY: dict[str, Any] = {
    "datacenters": [
        {
            "name": "dc1",
            "datastores": [{"name": "datastore1", "capacity_gb": 2048}],
            # A second port group for clones' extra NICs (--vsphere-networks): guests see them as eth1...
            "networks": ["VM Network", "VM Network 2"],
            "clusters": [{"name": "cluster1", "hosts": ["esx1", "esx2"]}],
            "vms": [
                {"name": "linux-template", "guest_id": LINUX_GUEST_ID, "snapshots": ["base"]},
                {"name": "linux-frozen", "guest_id": LINUX_GUEST_ID, "power": "poweredOn", "frozen": True},
                {"name": "windows-template", "guest_id": WINDOWS_GUEST_ID, "snapshots": ["base"]},
                {"name": "windows-frozen", "guest_id": WINDOWS_GUEST_ID, "power": "poweredOn", "frozen": True},
            ],
        }
    ],
}


class InventoryError(ValueError):
    """An inventory file that cannot be built; the message says what to fix."""


def load_inventory_file(path: Path) -> dict[str, Any]:
    """Read an inventory description from JSON, with errors that name the file."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise InventoryError(f"cannot read inventory file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise InventoryError(f"inventory file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("datacenters"), list):
        raise InventoryError(f"inventory file {path} needs a top-level 'datacenters' list")
    return data


def build_service(vc: VCenter) -> None:
    """Create the ServiceInstance, its managers and the root folder."""
    if vc.options.api_type not in API_TYPES:
        raise InventoryError(f"api_type must be one of {', '.join(API_TYPES)}, not {vc.options.api_type!r}")
    root = Folder(vc, "group-d1", "Datacenters", None, ["Folder", "Datacenter"])
    vc.root_folder = root
    managers = {
        "propertyCollector": PropertyCollector(vc, "propertyCollector"),
        "viewManager": ViewManager(vc, "ViewManager"),
        "sessionManager": SessionManager(vc, "SessionManager"),
        "authorizationManager": AuthorizationManager(vc, "AuthorizationManager"),
        "searchIndex": SearchIndex(vc, "SearchIndex"),
        "taskManager": TaskManager(vc, "TaskManager"),
        "customFieldsManager": CustomFieldsManager(vc, "CustomFieldsManager"),
        **build_service_managers(vc),
    }
    about = product() if vc.options.host_agent else vim.AboutInfo(
        name="VMware vCenter Server", fullName="VMware vCenter Server 8.0.3 build-24022515 (pytest-vsphere-clone "
        "simulator)", vendor="VMware, Inc.", version="8.0.3", build="24022515", localeVersion="INTL",
        localeBuild="000", osType="linux-x64", productLineId="vpx", apiType="VirtualCenter", apiVersion="8.0.3.0",
        instanceUuid=vc.instance_uuid, licenseProductName="VMware VirtualCenter Server", licenseProductVersion="8.0")
    content = vim.ServiceInstanceContent(rootFolder=root.ref, about=about,
                                         **{name: mo.ref for name, mo in managers.items()})
    # The guest runtime, when the simulator runs guests, replaces the guest operations managers.
    si = ServiceInstance(vc, content)
    vc.service_instance = si
    for obj in (root, si, *managers.values(), *build_helper_objects(vc)):
        vc.add(obj)


def _denied(patterns: list[str]) -> set[str]:
    denied: set[str] = set()
    for pattern in patterns:
        matches = fnmatch.filter(PRIVILEGES, pattern)
        if not matches:
            raise InventoryError(f"user privilege pattern {pattern!r} matches no known privilege")
        denied.update(matches)
    return denied


def build_inventory(vc: VCenter, data: dict[str, Any]) -> None:
    """Populate ``vc`` from an inventory description (see the module docstring)."""
    try:
        for user in data.get("users", []):
            try:
                vc.authorizer.add_user(user["name"], user["password"], _denied(user.get("denied", [])))
            except KeyError as exc:
                raise InventoryError(f"inventory user entry lacks {exc}") from None
        for dc_data in data["datacenters"]:
            _build_datacenter(vc, dc_data)
    except InventoryError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # A malformed entry (a string where an object belongs, a number that is not one, a
        # missing name) must still be a clear InventoryError, not a bare KeyError from the builder.
        raise InventoryError(f"malformed inventory entry: {type(exc).__name__}: {exc}") from None


def _build_datacenter(vc: VCenter, data: dict[str, Any]) -> None:
    root = vc.root_folder
    try:
        dc = Datacenter(vc, vc.new_id("datacenter"), data["name"], root)
    except KeyError:
        raise InventoryError("every datacenter needs a 'name'") from None
    vc.add(dc)
    root.attach(dc)
    datastores = []
    for ds_data in data.get("datastores", [{"name": "datastore1"}]):
        if "name" not in ds_data:
            raise InventoryError(f"datacenter {dc.name}: every datastore needs a 'name'")
        ds = Datastore(vc, vc.new_id("datastore"), ds_data["name"], dc.datastore_folder,
                       int(ds_data.get("capacity_gb", 2048)) * GB)
        vc.add(ds)
        for owned in ds.owned:
            vc.add(owned)
        dc.datastore_folder.attach(ds)
        datastores.append(ds)
    networks = []
    for name in data.get("networks", ["VM Network"]):
        net = Network(vc, vc.new_id("network"), name, dc.network_folder)
        vc.add(net)
        dc.network_folder.attach(net)
        networks.append(net)
    hosts: dict[str, HostSystem] = {}
    clusters: dict[str, ClusterComputeResource] = {}
    for cluster_data in data.get("clusters", []):
        if "name" not in cluster_data:
            raise InventoryError(f"datacenter {dc.name}: every cluster needs a 'name'")
        cluster = ClusterComputeResource(vc, vc.new_id("domain-c"), cluster_data["name"], dc.host_folder)
        vc.add(cluster)
        dc.host_folder.attach(cluster)
        clusters[cluster.name] = cluster
        for host_data in cluster_data.get("hosts", []):
            host_name, hardware = _host_hardware(host_data)
            host = HostSystem(vc, vc.new_id("host"), host_name, cluster, hardware)
            host.datastores = list(datastores)
            host.networks = list(networks)
            vc.add(host)
            for owned in host.owned:
                vc.add(owned)
            cluster.hosts.append(host)
            hosts[host_name] = host
    if not hosts:
        raise InventoryError(f"datacenter {dc.name} needs at least one cluster with one host")
    first_cluster = next(iter(clusters.values()))
    for vm_data in data.get("vms", []):
        add_vm(vc, dc, vm_data, hosts, clusters, first_cluster, datastores, networks)


def _host_hardware(data: str | dict[str, Any]) -> tuple[str, HostHardware]:
    """A host entry: its name, or {"name", "cpu_cores", "memory_gb"} (two sockets share the cores)."""
    if isinstance(data, str):
        return data, HostHardware()
    if "name" not in data:
        raise InventoryError("every host needs a 'name'")
    default = HostHardware()
    cores = int(data.get("cpu_cores", default.cores))
    memory_gb = int(data.get("memory_gb", default.memory_bytes // GB))
    if cores < 2 or cores % 2 or memory_gb < 1:
        raise InventoryError(f"host {data['name']}: cpu_cores must be an even number >= 2 and memory_gb >= 1")
    return str(data["name"]), HostHardware(cores_per_package=cores // 2, memory_bytes=memory_gb * GB)


def _os_image(vm: VirtualMachine, data: dict[str, Any]) -> None:
    """The image's machine-id and DHCP client, checked (Linux guests only)."""
    dhcp_client = data.get("dhcp_client", "dhclient")
    machine_id = data.get("machine_id")
    if machine_id is None and dhcp_client == "dhclient":
        return
    from .guests.os_image import new_machine_id, valid_machine_id  # the guests package only when needed

    if dhcp_client not in ("dhclient", "networkd"):
        raise InventoryError(f"VM {vm.name}: dhcp_client must be dhclient or networkd, not {dhcp_client!r}")
    if machine_id is not None and machine_id != "fixed" and not valid_machine_id(str(machine_id)):
        raise InventoryError(f"VM {vm.name}: machine_id must be \"fixed\" or 32 lower-case hex digits, "
                             f"not {machine_id!r}")
    if (machine_id is not None or dhcp_client != "dhclient") and vm.family != "linux":
        raise InventoryError(f"VM {vm.name}: machine_id and dhcp_client apply to Linux guests only")
    vm.networkd = dhcp_client == "networkd"
    vm.initial_machine_id = new_machine_id() if machine_id == "fixed" else machine_id


def _folder(vc: VCenter, dc: Datacenter, path: str) -> Folder:
    folder = dc.vm_folder
    for part in [p for p in path.split("/") if p]:
        existing = next((c for c in folder.children() if c.name == part and isinstance(c, Folder)), None)
        if existing is None:
            existing = Folder(vc, vc.new_id("group-v"), part, folder, ["Folder", "VirtualMachine", "VirtualApp"])
            vc.add(existing)
            folder.attach(existing)
        folder = existing
    return folder


def add_vm(vc: VCenter, dc: Datacenter, data: dict[str, Any], hosts: dict[str, HostSystem],
           clusters: dict[str, ClusterComputeResource], default_cluster: ClusterComputeResource,
           datastores: list[Datastore], networks: list[Network]) -> VirtualMachine:
    """Add one VM described by ``data`` (state only: guests are started by the simulator)."""
    name = data.get("name")
    if not name:
        raise InventoryError("every VM needs a 'name'")
    host_name = data.get("host")
    if host_name is not None and host_name not in hosts:
        raise InventoryError(f"VM {name}: unknown host {host_name!r} (known: {', '.join(hosts)})")
    cluster_name = data.get("cluster")
    if cluster_name is not None and cluster_name not in clusters:
        raise InventoryError(f"VM {name}: unknown cluster {cluster_name!r} (known: {', '.join(clusters)})")
    cluster = clusters[cluster_name] if cluster_name is not None else default_cluster
    host = hosts[host_name] if host_name else cluster.hosts[0]
    folder = _folder(vc, dc, data.get("folder", ""))
    if any(child.name == name for child in folder.children()):  # a vCenter folder holds unique names
        raise InventoryError(f"VM {name}: the name is used twice in folder {folder.name!r}")
    by_name = {net.name: net for net in networks}
    nic_networks = data.get("networks", [networks[0].name] if networks else [])
    unknown = [n for n in nic_networks if n not in by_name]
    if unknown:
        raise InventoryError(f"VM {name}: networks must name port groups of its datacenter "
                             f"({', '.join(by_name) or 'none'}), not {', '.join(unknown)}")
    vm = VirtualMachine(vc, vc.new_id("vm"), name, folder, pool=cluster.root_pool, host=host,
                        datastore=datastores[0], networks=[by_name[n] for n in nic_networks],
                        guest_id=data.get("guest_id", LINUX_GUEST_ID), num_cpu=int(data.get("cpus", 2)),
                        memory_mb=int(data.get("memory_mb", 2048)), template=bool(data.get("template", False)))
    vm.tools_installed = bool(data.get("tools", True))
    _os_image(vm, data)
    vm.disk = vc.disks.create_base(name, vm.mo_id, datastores[0], int(data.get("disk_mb", 4096)) * MB)
    vc.add(vm)
    folder.attach(vm)
    for snap_name in data.get("snapshots", []):
        vm.take_snapshot(snap_name, f"{snap_name} snapshot of {name}", quiesced=False)
    power = data.get("power", "poweredOff")
    if power not in ("poweredOn", "poweredOff"):
        raise InventoryError(f"VM {name}: power must be poweredOn or poweredOff, not {power!r}")
    vm.initial_power = power
    vm.initial_frozen = bool(data.get("frozen", False))
    if vm.initial_frozen and power != "poweredOn":
        raise InventoryError(f"VM {name}: a frozen VM must be poweredOn")
    events = event_manager(vc)
    if events is not None:  # the inventory's VMs were created before the simulator started
        events.vm_event(vim.event.VmCreatedEvent, vm, userName="")
    return vm
