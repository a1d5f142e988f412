"""Datastore contents derived from the simulated VMs and disk layers, and the HostDatastoreBrowser.

A datastore holds one folder per VM directory: the VM's configuration files and
the disk layers stored there (base disks, snapshot and linked-clone deltas,
instant-clone deltas), plus folders made with FileManager.MakeDirectory. A
virtual disk is listed once, by its descriptor, whose size is its data's, and
whose extent (``-flat.vmdk``, ``-delta.vmdk``) is named in ``diskExtents``, as
an ESXi browser reports it (VmDiskFileQuery: "the virtual disk primary file").
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pyVmomi import VmomiSupport, vim, vmodl

from .base import vmomi_method
from .unmodelled import Unmodelled

if TYPE_CHECKING:
    from ..vcenter import CallContext, VCenter
    from .disks import DiskLayer
    from .inventory import Datastore
    from .virtual_machine import VirtualMachine

B = vim.host.DatastoreBrowser
_PATH = re.compile(r"^\[(?P<ds>[^\]]+)\]\s*(?P<rel>.*)$")
#: The file kind each FileQuery type matches, and the FileInfo type that describes it.
QUERY_KINDS: dict[type, str] = {
    B.FolderQuery: "folder", B.VmConfigQuery: "config", B.TemplateVmConfigQuery: "template", B.VmDiskQuery: "disk",
    B.VmLogQuery: "log", B.VmNvramQuery: "nvram", B.VmSnapshotQuery: "snapshot", B.IsoImageQuery: "iso",
    B.FloppyImageQuery: "floppy",
}
INFO_TYPES: dict[str, type] = {
    "folder": B.FolderInfo, "config": B.VmConfigInfo, "template": B.TemplateVmConfigInfo, "disk": B.VmDiskInfo,
    "log": B.VmLogInfo, "nvram": B.VmNvramInfo, "snapshot": B.VmSnapshotInfo, "iso": B.IsoImageInfo,
    "floppy": B.FloppyImageInfo,
}


@dataclass
class DatastoreFile:
    """One file (or folder) as the browser presents it."""

    name: str
    kind: str  # a QUERY_KINDS value, or "other"
    size: int
    modified: float
    layer: DiskLayer | None = None
    vm: VirtualMachine | None = None


@dataclass
class Folder:
    """A datastore folder: its files and subfolders by name."""

    files: dict[str, DatastoreFile] = field(default_factory=dict)
    folders: dict[str, Folder] = field(default_factory=dict)
    created: float = 0.0


def parse_datastore_path(path: str) -> tuple[str, str]:
    """``"[ds] dir/file"`` -> ``("ds", "dir/file")``; InvalidDatastorePath when malformed."""
    match = _PATH.match(path or "")
    if match is None:
        raise vim.fault.InvalidDatastorePath(msg=f"Invalid datastore path '{path}'.", datastorePath=path or "")
    return match["ds"], match["rel"].strip().strip("/")


def _vm_files(vm: VirtualMachine) -> list[DatastoreFile]:
    name = vm.vm_path().rsplit("/", 1)[-1][: -len(".vmx")]
    config_kind = "template" if vm.template else "config"
    config_name = f"{name}.vmtx" if vm.template else f"{name}.vmx"
    # A BIOS nvram is 8684 bytes; Windows guests boot EFI, whose nvram is larger.
    nvram = 270840 if vm.family == "windows" else 8684
    files = [DatastoreFile(config_name, config_kind, 3 * 1024, vm.created, vm=vm),
             DatastoreFile(f"{name}.vmsd", "other", 0 if not vm.all_snapshots() else 1024, vm.created, vm=vm),
             DatastoreFile(f"{name}.vmxf", "other", 263, vm.created, vm=vm),
             DatastoreFile(f"{name}.nvram", "nvram", nvram, vm.created, vm=vm)]
    if vm.power_state == "poweredOn":
        booted = vm.boot_time or vm.created
        files.append(DatastoreFile("vmware.log", "log", 256 * 1024, booted, vm=vm))
        files.append(DatastoreFile(f"{name}-{vm.uuid[:8]}.vswp", "other", vm.memory_mb * 1024**2, booted, vm=vm))
        files.append(DatastoreFile(f"vmx-{name}-{vm.uuid[:8]}.vswp", "other", 100 * 1024**2, booted, vm=vm))
    # Screenshots (CreateScreenshot_Task) stay in the VM's folder until the VM is destroyed.
    files.extend(DatastoreFile(file_name, "other", len(stored.data), stored.created, vm=vm)
                 for file_name, stored in vm.stored_files().items())
    for node in vm.all_snapshots():
        files.append(DatastoreFile(f"{name}-Snapshot{node.snapshot_id}.vmsn", "snapshot",
                                   32 * 1024 + (vm.memory_mb * 1024**2 if node.power_state == "poweredOn" else 0),
                                   node.created, vm=vm))
    return files


def datastore_tree(vc: VCenter, ds: Datastore) -> Folder:
    """Everything stored on ``ds`` now, as folders (caller holds the lock)."""
    from .virtual_machine import VirtualMachine

    root = Folder()

    def folder(rel: str, created: float) -> Folder:
        node = root
        for part in [p for p in rel.split("/") if p]:
            node = node.folders.setdefault(part, Folder(created=created))
        return node

    for rel, created in ds.directories.items():
        folder(rel, created)
    owners = {vm.mo_id: vm for vm in vc.of_type(VirtualMachine)}
    for vm in owners.values():
        if vm.datastore is ds:
            directory = parse_datastore_path(vm.vm_path())[1].rsplit("/", 1)[0]
            target = folder(directory, vm.created)
            for item in _vm_files(vm):
                target.files[item.name] = item
    for layer in vc.disks.layers.values():
        if layer.datastore is not ds:
            continue
        directory, _, file_name = parse_datastore_path(layer.path)[1].rpartition("/")
        owner = owners.get(layer.owner)
        created = owner.created if owner is not None else 0.0
        folder(directory, created).files[file_name] = DatastoreFile(file_name, "disk", layer.size + 1024, created,
                                                                    layer=layer, vm=owner)
    return root


def find_folder(root: Folder, rel: str) -> Folder | None:
    node = root
    for part in [p for p in rel.split("/") if p]:
        child = node.folders.get(part)
        if child is None:
            return None
        node = child
    return node


def extent_path(layer: DiskLayer) -> str:
    """The data file behind a descriptor: ``-flat.vmdk`` for a base disk, ``-delta.vmdk`` for a delta."""
    return layer.path.replace(".vmdk", "-delta.vmdk" if layer.parent else "-flat.vmdk")


class HostDatastoreBrowser(Unmodelled):
    """vim.host.DatastoreBrowser over the datastores of a Datastore or a HostSystem."""

    vim_type = vim.host.DatastoreBrowser

    def __init__(self, vc: VCenter, mo_id: str, datastores: Any) -> None:
        super().__init__(vc, mo_id)
        #: A callable: the datastores browsable now (a host's list can change).
        self.datastores = datastores

    def prop_datastore(self) -> list[Any]:
        return [ds.ref for ds in self.datastores()]

    def prop_supportedType(self) -> list[Any]:
        return [query() for query in QUERY_KINDS]

    @vmomi_method("Datastore.Browse")
    def SearchDatastore_Task(self, ctx: CallContext, datastorePath: str, searchSpec: Any = None) -> Any:
        return self._start(ctx, "SearchDatastore_Task", datastorePath, searchSpec, recursive=False)

    @vmomi_method("Datastore.Browse")
    def SearchDatastoreSubFolders_Task(self, ctx: CallContext, datastorePath: str, searchSpec: Any = None) -> Any:
        return self._start(ctx, "SearchDatastoreSubFolders_Task", datastorePath, searchSpec, recursive=True)

    def _start(self, ctx: CallContext, method: str, path: str, spec: Any, recursive: bool) -> Any:
        with self.vc.lock:
            named = _PATH.match(path or "")
            ds = next((d for d in self.datastores() if named and d.name == named["ds"]), None)
            if ds is not None:
                # SearchDatastore_Task: "The Datastore.Browse privilege must be held on the datastore
                # identified by the datastore path."
                ctx.require("Datastore.Browse", ds)

        def search() -> Any:
            # The search's faults (a malformed path, an unknown datastore or folder, a bad query) are
            # the task's error, as SearchDatastore_Task lists them.
            ds_name, rel = parse_datastore_path(path)
            if ds is None:
                raise vim.fault.InvalidDatastore(msg=f"Invalid datastore '{ds_name}'.", name=ds_name)
            kinds = self._query_kinds(spec)
            with self.vc.lock:
                start = find_folder(datastore_tree(self.vc, ds), rel)
                if start is None:
                    raise vim.fault.FileNotFound(msg=f"File [{ds_name}] {rel} was not found", file=path)
                results: list[Any] = []
                self._search(ds, start, rel, spec, kinds, recursive, results)
            if not recursive:
                return results[0]
            return VmomiSupport.GetVmodlType("vim.host.DatastoreBrowser.SearchResults[]")(results)

        # TaskInfo.entity must be a ManagedEntity: the datastore searched (or, for a bad path, the first
        # one this browser covers).
        entity = ds if ds is not None else next(iter(self.datastores()), None)
        if entity is None:
            raise vim.fault.InvalidDatastore(msg="This browser has no datastores.", name=path)
        return self.vc.tasks.start(ctx, entity, method, "browse", search)

    @staticmethod
    def _query_kinds(spec: Any) -> set[str] | None:
        queries = list(spec.query or []) if spec is not None else []
        if not queries:
            return None  # SearchSpec.query: "If this query object is not present, then all files ... are matched."
        kinds: set[str] = set()
        for query in queries:
            kind = QUERY_KINDS.get(type(query))
            if type(query) is B.Query:
                return None  # the base FileQuery matches every file
            if kind is None or kind in kinds:
                # SearchDatastore_Task: InvalidArgument "if the SearchSpec contains duplicate file types".
                raise vmodl.fault.InvalidArgument(msg="The search specification repeats a file type or names an "
                                                      "unknown one.", invalidProperty="searchSpec.query")
            kinds.add(kind)
        return kinds

    def _search(self, ds: Datastore, folder: Folder, rel: str, spec: Any, kinds: set[str] | None, recursive: bool,
                results: list[Any]) -> None:
        folder_path = f"[{ds.name}] {rel}" if rel else f"[{ds.name}]"
        entries = [DatastoreFile(name, "folder", 0, sub.created) for name, sub in folder.folders.items()]
        entries += list(folder.files.values())
        patterns = list(spec.matchPattern or []) if spec is not None else []
        insensitive = bool(spec.searchCaseInsensitive) if spec is not None else False
        matched = [e for e in entries if (kinds is None or e.kind in kinds) and self._matches(e.name, patterns,
                                                                                               insensitive)]
        folders_first = bool(spec.sortFoldersFirst) if spec is not None else False
        # SearchSpec.sortFoldersFirst: "By default, files are sorted in alphabetical order regardless of
        # file type. If this flag is set to true, folders are placed at the start of the list".
        matched.sort(key=lambda e: (folders_first and e.kind != "folder", e.name))
        details = spec.details if spec is not None else None
        results.append(B.SearchResults(datastore=ds.ref, folderPath=folder_path,
                                       file=[self._info(e, details, spec, kinds) for e in matched]))
        if recursive:
            for name in sorted(folder.folders):
                self._search(ds, folder.folders[name], f"{rel}/{name}" if rel else name, spec, kinds, True, results)

    @staticmethod
    def _matches(name: str, patterns: list[str], insensitive: bool) -> bool:
        if not patterns:
            return True
        if insensitive:
            return any(fnmatch.fnmatch(name.lower(), p.lower()) for p in patterns)
        return any(fnmatch.fnmatchcase(name, p) for p in patterns)

    @staticmethod
    def _info(entry: DatastoreFile, details: Any, spec: Any, kinds: set[str] | None) -> Any:
        # FileQueryFlags: details apply to every file; the type-specific FileInfo is returned when the
        # file type is asked for (details.fileType) or its query is in the search.
        typed = entry.kind in INFO_TYPES and (
            entry.kind == "folder" or (details is not None and details.fileType) or (kinds and entry.kind in kinds))
        info = (INFO_TYPES[entry.kind] if typed else B.FileInfo)(path=entry.name)
        if details is not None and details.fileSize:
            info.fileSize = entry.size
        if details is not None and details.modification:
            info.modification = datetime.fromtimestamp(entry.modified, tz=timezone.utc)
        if details is not None and details.fileOwner:
            info.owner = "root"
        if isinstance(info, B.VmDiskInfo) and entry.layer is not None:
            disk_details = next((q.details for q in (spec.query or []) if isinstance(q, B.VmDiskQuery)), None) \
                if spec is not None else None
            if disk_details is not None:
                HostDatastoreBrowser._disk_details(info, entry.layer, disk_details)
        return info

    @staticmethod
    def _disk_details(info: Any, layer: DiskLayer, wanted: Any) -> None:
        if wanted.diskType:
            info.diskType = vim.vm.device.VirtualDisk.FlatVer2BackingInfo
        if wanted.capacityKb:
            info.capacityKb = 16 * 1024 * 1024  # the simulated disks' capacity (VirtualDisk.capacityInKB)
        if wanted.hardwareVersion:
            info.hardwareVersion = 4  # the VMDK format version of a VMFS disk descriptor
        if wanted.controllerType:
            info.controllerType = vim.vm.device.VirtualLsiLogicController
        if wanted.diskExtents:
            info.diskExtents = [extent_path(layer)]
        if wanted.thin:
            info.thin = True
