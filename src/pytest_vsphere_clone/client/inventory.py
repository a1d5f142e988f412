"""Find the template and resolve placement, from one batched read of the inventory.

One ContainerView over the whole inventory and one RetrievePropertiesEx give every VM's
clone-relevant properties and the name and parent of every container, which is enough
to compute inventory paths ("dc1/vm/templates/linux") and resolve placement names
without further calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import props
from .errors import AmbiguousTemplate, InvalidPlacement, PlacementNotFound, TemplateNotFound, close_matches

if TYPE_CHECKING:
    from .session import VSphereConnection

#: What a clone needs to know about its source, fetched for every VM in the one batch.
VM_PATHS = ("name", "parent", "runtime.powerState", "runtime.instantCloneFrozen", "snapshot", "config.template",
            "config.guestId", "guest.guestFamily", "runtime.host", "resourcePool", "datastore", "network")
#: Containers: name and parent build inventory paths; pools, hosts and clusters resolve placement.
NAMED_PATHS = ("name", "parent")


@dataclass(frozen=True)
class SnapshotRef:
    """One snapshot of a VM: name, slash-joined path in the tree, reference."""

    name: str
    path: str
    ref: Any


@dataclass(frozen=True)
class TemplateInfo:
    """What the clone strategies need about a source VM or template."""

    ref: Any
    name: str
    path: str
    power_state: str
    frozen: bool
    is_template: bool
    guest_family: str | None
    guest_id: str | None
    host: Any
    resource_pool: Any
    datastores: tuple[Any, ...]
    networks: tuple[Any, ...]
    folder: Any
    datacenter: Any
    snapshots: tuple[SnapshotRef, ...] = ()
    current_snapshot: Any = None

    @property
    def os_family(self) -> str:
        """``windows`` or ``linux``, from Tools' guestFamily or else the configured guestId."""
        family = (self.guest_family or "").lower()
        if family.startswith("windows") or (not family and "win" in (self.guest_id or "").lower()):
            return "windows"
        return "linux"

    def snapshot_named(self, name: str) -> SnapshotRef | None:
        """The snapshot called ``name`` or at tree path ``name`` (``base/updated``); None if absent."""
        for snap in self.snapshots:
            if snap.path == name:
                return snap
        matches = [s for s in self.snapshots if s.name == name]
        return matches[-1] if matches else None


@dataclass(frozen=True)
class PlacementSettings:
    """Placement as the user names it; None means "the template's own"."""

    datacenter: str | None = None
    cluster: str | None = None
    resource_pool: str | None = None
    esxi_host: str | None = None
    folder: str | None = None
    datastore: str | None = None
    network: str | None = None


@dataclass(frozen=True)
class Placement:
    """Resolved placement: references for the clone spec (None: vSphere's default, the source's own)."""

    folder: Any
    resource_pool: Any = None
    host: Any = None
    datastore: Any = None
    network: Any = None
    network_name: str | None = None


@dataclass
class Inventory:
    """Names, parents and VM properties of the whole inventory, from one read."""

    objects: dict[Any, props.ObjectProps] = field(default_factory=dict)

    @classmethod
    def load(cls, conn: VSphereConnection) -> Inventory:
        """Read the inventory (one view, one RetrievePropertiesEx)."""
        from pyVmomi import vim

        types: dict[type, Sequence[str]] = {
            vim.VirtualMachine: VM_PATHS,
            vim.Folder: NAMED_PATHS,
            vim.Datacenter: NAMED_PATHS,
            vim.ComputeResource: (*NAMED_PATHS, "resourcePool"),
            vim.HostSystem: NAMED_PATHS,
            vim.ResourcePool: NAMED_PATHS,
            vim.Datastore: NAMED_PATHS,
            vim.Network: NAMED_PATHS,
        }
        found = props.container_contents(conn, types)
        return cls({o.ref: o for o in found})

    def name(self, ref: Any) -> str:
        obj = self.objects.get(ref)
        return str(obj.get("name", ref._moId)) if obj is not None else str(ref._moId)

    def path(self, ref: Any) -> str:
        """The inventory path: names from the datacenter down (the root folder left out)."""
        parts: list[str] = []
        node = ref
        seen: set[Any] = set()
        while node is not None and node in self.objects and node not in seen:
            seen.add(node)
            obj = self.objects[node]
            if obj.get("parent") is None:
                break  # the root folder has no parent and no place in paths
            parts.append(str(obj.get("name", "")))
            node = obj.get("parent")
        return "/".join(reversed(parts))

    def ancestor(self, ref: Any, kind: type) -> Any:
        """The nearest ancestor of ``ref`` (itself included) that is a ``kind``."""
        node = ref
        while node is not None:
            if isinstance(node, kind):
                return node
            obj = self.objects.get(node)
            node = obj.get("parent") if obj is not None else None
        return None

    def of_type(self, kind: type) -> list[props.ObjectProps]:
        return [o for ref, o in self.objects.items() if isinstance(ref, kind)]

    # --- templates ---------------------------------------------------------------------

    def find_template(self, wanted: str) -> TemplateInfo:
        """The VM called ``wanted``, or at inventory path ``wanted`` (a path suffix is enough)."""
        from pyVmomi import vim

        key = wanted.strip().strip("/")
        vms = self.of_type(vim.VirtualMachine)
        if "/" in key:
            parts = key.split("/")
            matches = [vm for vm in vms if self.path(vm.ref).split("/")[-len(parts):] == parts]
            candidates = [self.path(vm.ref) for vm in vms]
            lookup = key
        else:
            matches = [vm for vm in vms if vm.get("name") == key]
            candidates = [str(vm.get("name", "")) for vm in vms]
            lookup = key
        if not matches:
            raise TemplateNotFound(wanted, close_matches(lookup, candidates))
        if len(matches) > 1:
            raise AmbiguousTemplate(wanted, sorted(self.path(vm.ref) for vm in matches))
        return self.template_info(matches[0])

    def template_info(self, vm: props.ObjectProps) -> TemplateInfo:
        from pyVmomi import vim

        snapshot_info = vm.get("snapshot")
        snapshots = tuple(_walk_snapshots(snapshot_info.rootSnapshotList if snapshot_info else []))
        host = vm.get("runtime.host")
        pool = vm.get("resourcePool")
        if pool is None and host is not None:
            # Templates have no pool; clones of them go to the pool of the template's host's cluster.
            compute = self.objects.get(self.objects.get(host, props.ObjectProps(host)).get("parent"))
            pool = compute.get("resourcePool") if compute is not None else None
        return TemplateInfo(
            ref=vm.ref, name=str(vm.get("name", "")), path=self.path(vm.ref),
            power_state=str(vm.get("runtime.powerState", "poweredOff")),
            frozen=bool(vm.get("runtime.instantCloneFrozen", False)),
            is_template=bool(vm.get("config.template", False)),
            guest_family=vm.get("guest.guestFamily"), guest_id=vm.get("config.guestId"),
            host=host, resource_pool=pool, datastores=tuple(vm.get("datastore", ())),
            networks=tuple(vm.get("network", ())), folder=vm.get("parent"),
            datacenter=self.ancestor(vm.ref, vim.Datacenter), snapshots=snapshots,
            current_snapshot=snapshot_info.currentSnapshot if snapshot_info else None)

    # --- placement ---------------------------------------------------------------------

    def resolve_placement(self, template: TemplateInfo, settings: PlacementSettings | None = None) -> Placement:
        """References for ``settings`` within the template's datacenter (or the named one)."""
        from pyVmomi import vim

        settings = settings or PlacementSettings()
        datacenter = template.datacenter
        if settings.datacenter:
            datacenter = self._named(vim.Datacenter, settings.datacenter, "datacenter", None)
        cluster = None
        if settings.cluster:
            cluster = self._named(vim.ComputeResource, settings.cluster, "cluster", datacenter)
        host = None
        if settings.esxi_host:
            host = self._named(vim.HostSystem, settings.esxi_host, "esxi_host", cluster or datacenter)
        pool = None
        if settings.resource_pool:
            pool = self._named(vim.ResourcePool, settings.resource_pool, "resource_pool", cluster or datacenter)
        elif cluster is not None or host is not None:
            compute = cluster or self.objects[host].get("parent")
            pool = self.objects[compute].get("resourcePool")
        elif template.is_template or datacenter != template.datacenter:
            pool = template.resource_pool if datacenter == template.datacenter else self._first_pool(datacenter)
        folder = template.folder
        if settings.folder:
            folder = self._named(vim.Folder, settings.folder, "folder", datacenter)
        elif datacenter != template.datacenter:
            folder = self._vm_folder(datacenter)
        datastore = self._named(vim.Datastore, settings.datastore, "datastore", datacenter) \
            if settings.datastore else None
        network = self._named(vim.Network, settings.network, "network", datacenter) if settings.network else None
        return Placement(folder=folder, resource_pool=pool, host=host, datastore=datastore, network=network,
                         network_name=self.name(network) if network is not None else None)

    def _named(self, kind: type, name: str, setting: str, scope: Any) -> Any:
        """The one object of ``kind`` called (or at path) ``name`` below ``scope``."""
        key = name.strip().strip("/")
        candidates = [o for o in self.of_type(kind) if scope is None or self._below(o.ref, scope)]
        if "/" in key:
            parts = key.split("/")
            matches = [o for o in candidates if self.path(o.ref).split("/")[-len(parts):] == parts]
            names = [self.path(o.ref) for o in candidates]
        else:
            matches = [o for o in candidates if o.get("name") == key]
            names = [str(o.get("name", "")) for o in candidates]
        if not matches:
            raise PlacementNotFound(setting, name, close_matches(key, names))
        if len(matches) > 1:
            paths = sorted(self.path(o.ref) for o in matches)
            raise InvalidPlacement(f"{setting.replace('_', ' ')} {name!r} is ambiguous ({', '.join(paths)}): set "
                                   f"--vsphere-{setting.replace('_', '-')} to one of these paths")
        return matches[0].ref

    def _below(self, ref: Any, scope: Any) -> bool:
        node = ref
        while node is not None:
            if node == scope:
                return True
            obj = self.objects.get(node)
            node = obj.get("parent") if obj is not None else None
        return False

    def _vm_folder(self, datacenter: Any) -> Any:
        from pyVmomi import vim

        for folder in self.of_type(vim.Folder):
            if folder.get("parent") == datacenter and folder.get("name") == "vm":
                return folder.ref
        raise PlacementNotFound("folder", f"{self.name(datacenter)}/vm")

    def _first_pool(self, datacenter: Any) -> Any:
        from pyVmomi import vim

        for compute in self.of_type(vim.ComputeResource):
            if self._below(compute.ref, datacenter) and compute.get("resourcePool") is not None:
                return compute["resourcePool"]
        raise PlacementNotFound("resource_pool", f"(any in {self.name(datacenter)})")


def _walk_snapshots(trees: Iterable[Any], prefix: str = "") -> Iterable[SnapshotRef]:
    for tree in trees or ():
        path = f"{prefix}/{tree.name}" if prefix else str(tree.name)
        yield SnapshotRef(str(tree.name), path, tree.snapshot)
        yield from _walk_snapshots(tree.childSnapshotList, path)


def find_template(conn: VSphereConnection, wanted: str) -> TemplateInfo:
    """The template called (or at inventory path) ``wanted``; raises TemplateNotFound / AmbiguousTemplate."""
    return Inventory.load(conn).find_template(wanted)
