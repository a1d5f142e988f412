"""The start-up privilege checks: the clone privilege on the source (DeployTemplate from a vSphere template)
and what the hardware settings in use need (errors), and what a failed test's console screenshots need (a
warning: they are optional evidence).

The privileges are the client's tables (client/privileges.py), the ones ``vsphere-clone doctor`` checks,
on the objects vCenter checks them on: the folder the clones are made in (whose permissions they
inherit), the port groups of --vsphere-networks, the clones' datacenter and datastores. Each distinct
question is asked once per process (one HasPrivilegeOnEntities call), so a factory or named fixture asking
for the run's hardware costs nothing more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .options import OPTIONS

if TYPE_CHECKING:
    from ..client.hardware import ResolvedHardware
    from ..client.inventory import TemplateInfo
    from .connection_holder import ConnectionHolder
    from .reporter import Reporter
    from .settings import Settings
    from .templates import TemplateCatalog


class PrivilegeChecks:
    """Hardware and screenshot privileges of one process's clones, each question asked once."""

    def __init__(self, holder: ConnectionHolder, templates: TemplateCatalog, reporter: Reporter) -> None:
        self.holder = holder
        self.templates = templates
        self.reporter = reporter
        self._granted: set[tuple[Any, ...]] = set()
        self._screenshots_checked: set[Any] = set()
        self._nic_counts: dict[str, int] = {}

    def hardware(self, name: str, settings: Settings, resolved: ResolvedHardware | None) -> None:
        """Raise MissingHardwarePrivileges when the user lacks what ``resolved`` needs on clones of ``name``."""
        from ..client.privileges import check_hardware_privileges, hardware_privileges

        if resolved is None or resolved.request.empty:
            return
        template = self.templates.template(name)
        folder = self.clone_folder(template, settings)
        nic_count = self._nic_count(template) if resolved.request.networks else None
        groups = [group.ref for group in resolved.port_groups]
        key = (folder, tuple(hardware_privileges(resolved.request, nic_count)), tuple(groups))
        if key in self._granted:
            return
        check_hardware_privileges(self.holder.connection(), resolved.request, nic_count, folder=folder,
                                  port_groups=groups, template=name, label=self._label)
        self._granted.add(key)

    def _nic_count(self, template: TemplateInfo) -> int:
        """The source's NICs (read once: added NICs need one more privilege than moved ones)."""
        from pyVmomi import vim

        from ..client.hardware import source_devices

        if template.name not in self._nic_counts:
            devices = source_devices(self.holder.connection(), template.ref)
            self._nic_counts[template.name] = sum(isinstance(d, vim.vm.device.VirtualEthernetCard) for d in devices)
        return self._nic_counts[template.name]

    def source(self, name: str, settings: Settings) -> None:
        """Raise MissingPrivileges when the user may not clone ``name``; warn once (at the start and in the
        summary) when a failed test's clones could get no console screenshot, never an error. One
        HasPrivilegeOnEntities call for both. Screenshots are still attempted: each failed test then says
        in its own warning line why it has none."""
        from ..client.errors import MissingPrivileges
        from ..client.privileges import (
            SCREENSHOT_ON_CLONE,
            SCREENSHOT_ON_DATASTORE,
            missing_privileges,
            source_privilege,
        )

        template = self.templates.template(name)
        # What every clone needs on its source, checked at the start (the others may be granted on folders,
        # pools or datastores the clone only reaches later): Clone, or DeployTemplate from a vSphere template
        # (CloneVM_Task's reference; config.template is read with the inventory, no extra request).
        privilege = source_privilege(template.is_template)
        folder = self.clone_folder(template, settings)
        placement = self._placement(template, settings)
        stores = [template.datacenter, *([placement.datastore] if placement is not None and placement.datastore
                                         is not None else template.datastores)]
        screenshot_pairs = [(folder, SCREENSHOT_ON_CLONE),
                            *((store, SCREENSHOT_ON_DATASTORE) for store in dict.fromkeys(stores) if store is not None)]
        key = tuple(screenshot_pairs)
        if key in self._screenshots_checked:
            screenshot_pairs = []
        pairs = [(template.ref, privilege), *screenshot_pairs]
        conn = self.holder.connection()
        missing = missing_privileges(conn, list(dict.fromkeys(e for e, _ in pairs)), {p for _, p in pairs})
        if privilege in missing.get(template.ref, ()):
            where = f"template {name!r}"
            if template.is_template:
                where += ", which is marked as a vSphere template (cloning one is deploying it)"
            raise MissingPrivileges(conn.user, [privilege], where)
        self._screenshots_checked.add(key)
        lacking = "; ".join(f"{privilege} on {self._label(entity)}" for entity, privilege in screenshot_pairs
                            if privilege in missing.get(entity, ()))
        if lacking:
            message = (f"vCenter user {conn.user!r} lacks {lacking}: a failed test's clones of {name} get no console "
                       f"screenshot (a warning line each instead); grant {SCREENSHOT_ON_CLONE} and "
                       f"{SCREENSHOT_ON_DATASTORE} to the user's role for that evidence")
            self.reporter.progress(f"warning: {message}")
            self.reporter.warn(message)

    def clone_folder(self, template: TemplateInfo, settings: Settings) -> Any:
        """The folder clones of ``template`` with ``settings`` are made in."""
        placement = self._placement(template, settings)
        return placement.folder if placement is not None and placement.folder is not None else template.folder

    def _placement(self, template: TemplateInfo, settings: Settings) -> Any:
        from ..client.errors import VSphereCloneError
        from ..client.inventory import PlacementSettings

        try:
            return self.templates.inventory().resolve_placement(template, PlacementSettings(
                **{o.attr: getattr(settings, o.attr) for o in OPTIONS if o.group == "placement"}))
        except VSphereCloneError:
            return None  # a placement that cannot be found fails where clones are made, with its own line

    def _label(self, entity: Any) -> str:
        """``folder 'vm'``, ``port group 'VM Network 2'``: an entity as the error names it."""
        kind = type(entity).__name__.rsplit(".", 1)[-1]
        kind = {"Folder": "folder", "Datastore": "datastore", "Datacenter": "datacenter", "Network": "port group",
                "DistributedVirtualPortgroup": "port group"}.get(kind, kind)
        return f"{kind} {self.templates.inventory().name(entity)!r}"
