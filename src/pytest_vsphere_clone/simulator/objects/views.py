"""ViewManager with container and list views, and the SearchIndex."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from .base import ManagedEntity, vmomi_method
from .host import dns_config
from .inventory import Datacenter, Folder, HostSystem
from .unmodelled import Unmodelled

if TYPE_CHECKING:
    from ..vcenter import CallContext, VCenter


def descendants(root: ManagedEntity, recursive: bool) -> list[ManagedEntity]:
    """Entities below ``root`` (direct children only unless ``recursive``), VMs included."""
    from .virtual_machine import VirtualMachine

    found: list[ManagedEntity] = []
    seen: set[str] = set()
    # Listed once, and VMs (which hold nothing) are not scanned: per-node scans made a view O(VMs²).
    vms = root.vc.of_type(VirtualMachine)

    def visit(node: ManagedEntity) -> None:
        children = list(node.children())
        if not isinstance(node, Folder | VirtualMachine):
            # Hosts and pools list VMs too; folders already hold them as children.
            children += [vm for vm in vms if (vm.host is node or vm.pool is node) and vm not in children]
        for child in children:
            if child.mo_id in seen:
                continue
            seen.add(child.mo_id)
            found.append(child)
            if recursive:
                visit(child)

    visit(root)
    return found


class ContainerView(Unmodelled):
    """vim.view.ContainerView: the live list of entities of some types below a container."""

    vim_type = vim.view.ContainerView
    dynamic_properties = frozenset({"view"})

    def __init__(self, vc: VCenter, mo_id: str, container: ManagedEntity, types: list[Any], recursive: bool,
                 session_key: str | None) -> None:
        super().__init__(vc, mo_id)
        self.container = container
        self.types = tuple(types)
        self.recursive = recursive
        self.session_key = session_key

    def prop_container(self) -> Any:
        return self.container.ref

    def prop_type(self) -> list[Any]:
        return list(self.types)

    def prop_recursive(self) -> bool:
        return self.recursive

    def prop_view(self) -> list[Any]:
        if not self.container.alive:
            return []
        return [e.ref for e in descendants(self.container, self.recursive)
                if not self.types or isinstance(e.ref, self.types)]

    @vmomi_method()
    def DestroyView(self, ctx: CallContext) -> None:
        self.vc.remove(self)


class ListView(Unmodelled):
    """vim.view.ListView: a list of objects the client sets, changes and resets."""

    vim_type = vim.view.ListView

    def __init__(self, vc: VCenter, mo_id: str, refs: list[Any], session_key: str | None = None) -> None:
        super().__init__(vc, mo_id)
        self.refs: list[Any] = []
        self.session_key = session_key
        self._add(refs)

    def prop_view(self) -> list[Any]:
        return [r for r in self.refs if r._moId in self.vc.objects]

    def _add(self, refs: list[Any] | None) -> list[Any]:
        """Add the objects that exist; the unresolved ones are returned (ModifyListView, ResetListView)."""
        unresolved = []
        known = {r._moId for r in self.refs}
        for ref in refs or ():
            obj = self.vc.objects.get(getattr(ref, "_moId", None) or "")
            if obj is None or not isinstance(ref, obj.vim_type):
                unresolved.append(ref)
            elif obj.mo_id not in known:
                known.add(obj.mo_id)
                self.refs.append(obj.ref)
        return unresolved

    @vmomi_method()
    def ModifyListView(self, ctx: CallContext, add: list[Any] | None = None,
                       remove: list[Any] | None = None) -> list[Any]:
        # ModifyListView: "Returns: A list of objects that could not be resolved."
        with self.vc.lock:
            gone = {r._moId for r in remove or ()}
            self.refs = [r for r in self.refs if r._moId not in gone]
            unresolved = self._add(add)
            self.changed()
            return unresolved

    @vmomi_method()
    def ResetListView(self, ctx: CallContext, obj: list[Any] | None = None) -> list[Any]:
        # ResetListView: "Replaces the list with an entirely new set of objects. If the entire set is
        # changing, this is less data to send than a delta." Unresolved objects are returned.
        with self.vc.lock:
            self.refs = []
            unresolved = self._add(obj)
            self.changed()
            return unresolved

    @vmomi_method()
    def ResetListViewFromView(self, ctx: CallContext, view: Any) -> None:
        with self.vc.lock:
            source = self.vc.lookup(view)
            self.refs = []
            self._add(list(source.get_property("view") or []))
            self.changed()

    @vmomi_method()
    def DestroyView(self, ctx: CallContext) -> None:
        self.vc.remove(self)


class ViewManager(Unmodelled):
    """vim.view.ViewManager."""

    vim_type = vim.view.ViewManager

    def prop_viewList(self) -> list[Any]:
        return [v.ref for v in self.vc.of_type(ContainerView)] + [v.ref for v in self.vc.of_type(ListView)]

    @vmomi_method()
    def CreateContainerView(self, ctx: CallContext, container: Any, type: list[Any] | None = None,
                            recursive: bool = False) -> Any:
        with self.vc.lock:
            target = self.vc.lookup_as(container, ManagedEntity)
            if not isinstance(target, Folder | Datacenter) and not target.children():
                raise vmodl.fault.InvalidArgument(msg="The container must be a folder, datacenter or compute "
                                                      "resource", invalidProperty="container")
            view = ContainerView(self.vc, self.vc.new_id("session[view]"), target, type or [], bool(recursive),
                                 ctx.session.key if ctx.session else None)
            self.vc.add(view)
            return view.ref

    @vmomi_method()
    def CreateListView(self, ctx: CallContext, obj: list[Any] | None = None) -> Any:
        with self.vc.lock:
            for stale in self.vc.of_type(ListView):
                if stale.session_key is not None and self.vc.sessions.peek(stale.session_key) is None:
                    self.vc.remove(stale)  # views belong to their session and end with it
            for ref in obj or ():
                self.vc.lookup(ref)
            view = ListView(self.vc, self.vc.new_id("session[view]"), obj or [],
                            ctx.session.key if ctx.session else None)
            self.vc.add(view)
            return view.ref


class SearchIndex(Unmodelled):
    """vim.SearchIndex: find entities by inventory path, name, UUID or IP."""

    vim_type = vim.SearchIndex

    def _root(self) -> Folder:
        return self.vc.root_folder

    @vmomi_method()
    def FindByInventoryPath(self, ctx: CallContext, inventoryPath: str) -> Any:
        with self.vc.lock:
            node: ManagedEntity = self._root()
            for part in [p for p in inventoryPath.strip("/").split("/") if p]:
                match = next((c for c in node.children() if c.name == part), None)
                if match is None:
                    return None
                node = match
            return node.ref

    @vmomi_method()
    def FindChild(self, ctx: CallContext, entity: Any, name: str) -> Any:
        with self.vc.lock:
            parent = self.vc.lookup_as(entity, ManagedEntity)
            match = next((c for c in parent.children() if c.name == name), None)
            return match.ref if match else None

    def _vms(self, datacenter: Any) -> list[Any]:
        from .virtual_machine import VirtualMachine

        vms = self.vc.of_type(VirtualMachine)
        if datacenter is not None:
            dc = self.vc.lookup_as(datacenter, Datacenter)
            vms = [vm for vm in vms if vm.inventory_path().startswith(dc.name + "/")]
        return vms

    @vmomi_method()
    def FindByUuid(self, ctx: CallContext, uuid: str, vmSearch: bool, datacenter: Any = None,
                   instanceUuid: bool | None = None) -> Any:
        with self.vc.lock:
            if not vmSearch:
                return None
            for vm in self._vms(datacenter):
                if (vm.instance_uuid if instanceUuid else vm.uuid) == uuid:
                    return vm.ref
            return None

    def _hosts(self, datacenter: Any) -> list[HostSystem]:
        hosts = self.vc.of_type(HostSystem)
        if datacenter is not None:
            dc = self.vc.lookup_as(datacenter, Datacenter)
            hosts = [host for host in hosts if host.inventory_path().startswith(dc.name + "/")]
        return hosts

    def _by_ip(self, ip: str, vmSearch: bool, datacenter: Any) -> list[Any]:
        # FindByIp: "The IP address for a virtual machine is the one returned from VMware tools,
        # ipAddress"; vmSearch "If true, search for virtual machines, otherwise search for hosts"
        # (a host by its management address).
        if vmSearch:
            return [vm.ref for vm in self._vms(datacenter) if vm.prop_guest().ipAddress == ip]
        return [host.ref for host in self._hosts(datacenter) if host.address == ip]

    def _by_dns_name(self, dnsName: str, vmSearch: bool, datacenter: Any) -> list[Any]:
        # FindByDnsName: "The DNS name for a virtual machine is the one returned from VMware tools,
        # hostName"; a host is known by its name in the inventory (the name it was added by) or by
        # the fully qualified name of its DNS configuration. DNS names compare without case (RFC 4343).
        wanted = dnsName.lower()
        if vmSearch:
            return [vm.ref for vm in self._vms(datacenter) if (vm.prop_guest().hostName or "").lower() == wanted]
        found = []
        for host in self._hosts(datacenter):
            dns = dns_config(host)
            fqdn = f"{dns.hostName}.{dns.domainName}" if dns.domainName else dns.hostName
            if wanted in (host.name.lower(), fqdn.lower()):
                found.append(host.ref)
        return found

    @vmomi_method()
    def FindByIp(self, ctx: CallContext, ip: str, vmSearch: bool, datacenter: Any = None) -> Any:
        with self.vc.lock:
            return next(iter(self._by_ip(ip, vmSearch, datacenter)), None)

    @vmomi_method()
    def FindAllByIp(self, ctx: CallContext, ip: str, vmSearch: bool, datacenter: Any = None) -> list[Any]:
        with self.vc.lock:
            return self._by_ip(ip, vmSearch, datacenter)

    @vmomi_method()
    def FindByDnsName(self, ctx: CallContext, dnsName: str, vmSearch: bool, datacenter: Any = None) -> Any:
        with self.vc.lock:
            return next(iter(self._by_dns_name(dnsName, vmSearch, datacenter)), None)

    @vmomi_method()
    def FindAllByDnsName(self, ctx: CallContext, dnsName: str, vmSearch: bool,
                         datacenter: Any = None) -> list[Any]:
        with self.vc.lock:
            return self._by_dns_name(dnsName, vmSearch, datacenter)

    @vmomi_method()
    def FindAllByUuid(self, ctx: CallContext, uuid: str, vmSearch: bool, datacenter: Any = None,
                      instanceUuid: bool | None = None) -> list[Any]:
        with self.vc.lock:
            return [vm.ref for vm in self._vms(datacenter)
                    if vmSearch and (vm.instance_uuid if instanceUuid else vm.uuid) == uuid]

    @vmomi_method()
    def FindByDatastorePath(self, ctx: CallContext, datacenter: Any, path: str) -> Any:
        with self.vc.lock:
            for vm in self._vms(datacenter):
                if vm.vm_path() == path:
                    return vm.ref
            return None
