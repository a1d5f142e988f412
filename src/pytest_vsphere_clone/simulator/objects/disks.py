"""Virtual disks as chains of layers: base disks, snapshot deltas, linked-clone deltas, redo logs.

A VM's disk is its top layer; each layer points at its parent. Layers are
shared: a linked clone's delta has the snapshot's layer as parent, an instant
clone's delta has its source's layer as parent. Collapsing a chain merges the
layers that no other VM depends on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .inventory import Datastore

MB = 1024**2
#: The longest chain of delta disks vSphere supports (KB 67186).
MAX_CHAIN_LENGTH = 255


@dataclass(eq=False)
class DiskLayer:
    """One VMDK: a base disk or a delta on top of ``parent``."""

    key: int
    path: str  # "[datastore1] vmname/vmname-000001.vmdk"
    datastore: Datastore
    parent: DiskLayer | None
    size: int
    owner: str  # mo_id of the VM whose directory holds the file
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))

    def chain(self) -> list[DiskLayer]:
        """This layer and its ancestors, base disk first."""
        layers: list[DiskLayer] = []
        node: DiskLayer | None = self
        while node is not None:
            layers.append(node)
            node = node.parent
        return list(reversed(layers))

    def depth(self) -> int:
        return len(self.chain())

    def backing(self) -> Any:
        """The FlatVer2 backing a vCenter reports for this layer, parents included."""
        from pyVmomi import vim

        return vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
            fileName=self.path, diskMode="persistent", thinProvisioned=True, uuid=self.uuid,
            contentId=self.uuid.replace("-", "")[:32], datastore=self.datastore.ref,
            parent=self.parent.backing() if self.parent else None,
        )


class DiskStore:
    """Every layer of the simulated datastores and who depends on which."""

    def __init__(self) -> None:
        self.layers: dict[int, DiskLayer] = {}
        self._next_key = 1
        self._file_numbers: dict[str, int] = {}

    def create_base(self, vm_name: str, owner: str, datastore: Datastore, size: int) -> DiskLayer:
        return self._add(f"[{datastore.name}] {vm_name}/{vm_name}.vmdk", datastore, None, size, owner)

    def create_delta(self, vm_name: str, owner: str, datastore: Datastore, parent: DiskLayer) -> DiskLayer:
        """A new child delta of ``parent`` in the directory of ``vm_name``."""
        number = self._file_numbers.get(vm_name, 0) + 1
        self._file_numbers[vm_name] = number
        path = f"[{datastore.name}] {vm_name}/{vm_name}-{number:06d}.vmdk"
        return self._add(path, datastore, parent, 16 * MB, owner)

    def _add(self, path: str, datastore: Datastore, parent: DiskLayer | None, size: int, owner: str) -> DiskLayer:
        layer = DiskLayer(self._next_key, path, datastore, parent, size, owner)
        self._next_key += 1
        self.layers[layer.key] = layer
        return layer

    def copy_flat(self, top: DiskLayer, vm_name: str, owner: str, datastore: Datastore) -> DiskLayer:
        """A full, independent copy of a chain (full clones, promotion)."""
        size = sum(layer.size for layer in top.chain())
        return self._add(f"[{datastore.name}] {vm_name}/{vm_name}.vmdk", datastore, None, size, owner)

    def dependents(self, layer: DiskLayer, tops: list[DiskLayer]) -> int:
        """How many of the given disk tops have ``layer`` in their chain."""
        return sum(1 for top in tops if layer in top.chain())

    def collapse(self, top: DiskLayer, other_tops: list[DiskLayer], pinned: set[int]) -> DiskLayer:
        """Merge ``top``'s chain down as far as no other disk or snapshot depends on a layer.

        Layers used by other disks (``other_tops``) or held by snapshots
        (``pinned`` keys) stay; everything above the highest such layer is
        merged into one. Returns the new top.
        """
        chain = top.chain()
        keep_index = -1
        for index, layer in enumerate(chain[:-1]):
            if layer.key in pinned or self.dependents(layer, other_tops):
                keep_index = index
        merged_layers = chain[keep_index + 1:]
        if len(merged_layers) <= 1:
            return top
        base = merged_layers[0]
        merged = DiskLayer(base.key, base.path, base.datastore, base.parent,
                           sum(layer.size for layer in merged_layers), base.owner, base.uuid)
        for layer in merged_layers:
            self.layers.pop(layer.key, None)
        self.layers[merged.key] = merged
        return merged

    def release(self, top: DiskLayer | None, live_tops: list[DiskLayer], pinned: set[int]) -> None:
        """Delete the layers of a destroyed disk that nothing else depends on."""
        if top is None:
            return
        for layer in reversed(top.chain()):
            if layer.key in pinned or self.dependents(layer, live_tops):
                break
            self.layers.pop(layer.key, None)
