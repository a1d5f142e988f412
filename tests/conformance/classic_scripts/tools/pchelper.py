"""Finding objects: container views, and the classic PropertyCollector calls with specs built by hand."""

from __future__ import annotations

from typing import Any

from pyVmomi import vim, vmodl


def container_view(content: vim.ServiceInstanceContent, vim_types: list[type],
                   container: vim.ManagedEntity | None = None) -> vim.view.ContainerView:
    """A recursive container view of ``vim_types`` under ``container`` (default: the root folder)."""
    return content.viewManager.CreateContainerView(container or content.rootFolder, vim_types, True)


def get_obj(content: vim.ServiceInstanceContent, vim_type: type, name: str) -> Any:
    """The first object of ``vim_type`` called ``name``, found by reading each one's ``name``; None if none."""
    view = container_view(content, [vim_type])
    try:
        for obj in view.view:
            if obj.name == name:
                return obj
        return None
    finally:
        view.DestroyView()


def collect_properties(si: vim.ServiceInstance, view: vim.view.ContainerView, obj_type: type,
                       path_set: list[str]) -> list[dict[str, Any]]:
    """``path_set`` of every ``obj_type`` in ``view``: one RetrieveProperties call, one dict per object
    (the object itself under "obj")."""
    collector = si.content.propertyCollector
    traversal = vmodl.query.PropertyCollector.TraversalSpec(name="traverseEntities", path="view", skip=False,
                                                            type=vim.view.ContainerView)
    obj_spec = vmodl.query.PropertyCollector.ObjectSpec(obj=view, skip=True, selectSet=[traversal])
    prop_spec = vmodl.query.PropertyCollector.PropertySpec(type=obj_type, pathSet=path_set, all=False)
    filter_spec = vmodl.query.PropertyCollector.FilterSpec(objectSet=[obj_spec], propSet=[prop_spec])
    return _as_dicts(collector.RetrieveContents([filter_spec]))


def inventory_traversal() -> list[vmodl.query.PropertyCollector.SelectionSpec]:
    """The classic walk of the whole inventory from the root folder, without views: folders to their
    children, datacenters to their four folders, compute resources to hosts and pools, pools to
    their pools and VMs. Each step names the next ones by SelectionSpec name."""
    spec = vmodl.query.PropertyCollector

    def select(*names: str) -> list[Any]:
        return [spec.SelectionSpec(name=name) for name in names]

    return [
        spec.TraversalSpec(name="folderTraversal", type=vim.Folder, path="childEntity", skip=False,
                           selectSet=select("folderTraversal", "datacenterVmTraversal",
                                            "datacenterHostTraversal", "computeResourceHostTraversal",
                                            "computeResourceRpTraversal", "resourcePoolTraversal")),
        spec.TraversalSpec(name="datacenterVmTraversal", type=vim.Datacenter, path="vmFolder", skip=False,
                           selectSet=select("folderTraversal")),
        spec.TraversalSpec(name="datacenterHostTraversal", type=vim.Datacenter, path="hostFolder", skip=False,
                           selectSet=select("folderTraversal")),
        spec.TraversalSpec(name="computeResourceHostTraversal", type=vim.ComputeResource, path="host",
                           skip=False),
        spec.TraversalSpec(name="computeResourceRpTraversal", type=vim.ComputeResource, path="resourcePool",
                           skip=False, selectSet=select("resourcePoolTraversal")),
        spec.TraversalSpec(name="resourcePoolTraversal", type=vim.ResourcePool, path="resourcePool", skip=False,
                           selectSet=select("resourcePoolTraversal", "resourcePoolVmTraversal")),
        spec.TraversalSpec(name="resourcePoolVmTraversal", type=vim.ResourcePool, path="vm", skip=False),
    ]


def collect_from_root(si: vim.ServiceInstance, obj_type: type, path_set: list[str]) -> list[dict[str, Any]]:
    """``path_set`` of every ``obj_type`` in the inventory, walked with :func:`inventory_traversal`."""
    spec = vmodl.query.PropertyCollector
    obj_spec = spec.ObjectSpec(obj=si.content.rootFolder, skip=False, selectSet=inventory_traversal())
    filter_spec = spec.FilterSpec(objectSet=[obj_spec], propSet=[spec.PropertySpec(type=obj_type,
                                                                                   pathSet=path_set)])
    return _as_dicts(si.content.propertyCollector.RetrieveContents([filter_spec]))


def _as_dicts(contents: list[Any] | None) -> list[dict[str, Any]]:
    found = []
    for content in contents or []:
        values: dict[str, Any] = {prop.name: prop.val for prop in content.propSet}
        values["obj"] = content.obj
        found.append(values)
    return found
