"""The inventory and its templates, read once per process (they do not move mid-run)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..client.inventory import Inventory, TemplateInfo
    from .connection_holder import ConnectionHolder


class TemplateCatalog:
    """Looks templates up by name or inventory path, once each."""

    def __init__(self, holder: ConnectionHolder) -> None:
        self.holder = holder
        self._inventory: Inventory | None = None
        self._templates: dict[str, TemplateInfo] = {}

    def inventory(self) -> Inventory:
        """The inventory (one read per process)."""
        from ..client.inventory import Inventory

        if self._inventory is None:
            self._inventory = Inventory.load(self.holder.connection())
        return self._inventory

    def template(self, name: str) -> TemplateInfo:
        """The template called ``name`` (looked up once per process)."""
        if name not in self._templates:
            self._templates[name] = self.inventory().find_template(name)
        return self._templates[name]
