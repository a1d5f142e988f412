"""OptionManager: vCenter's advanced settings (``VpxSettings``) and each host's ``EsxHostAdvSettings``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyVmomi import vim

from .base import vmomi_method
from .unmodelled import Unmodelled

if TYPE_CHECKING:
    from ..vcenter import CallContext, VCenter


def _option_type(value: Any) -> Any:
    if isinstance(value, bool):
        return vim.option.BoolOption(valueIsReadonly=False, supported=True, defaultValue=value)
    if isinstance(value, int):
        return vim.option.LongOption(valueIsReadonly=False, min=-(2**63), max=2**63 - 1, defaultValue=value)
    return vim.option.StringOption(valueIsReadonly=False, defaultValue=str(value))


class OptionManager(Unmodelled):
    """vim.option.OptionManager with QueryOptions and UpdateOptions over an ordered set of settings.

    ``open_keys``: vCenter's VpxSettings accept new keys (advanced settings are added by name);
    an ESXi host's advanced options are a fixed set and an unknown key is InvalidName.
    """

    vim_type = vim.option.OptionManager

    def __init__(self, vc: VCenter, mo_id: str, settings: dict[str, Any], *, open_keys: bool) -> None:
        super().__init__(vc, mo_id)
        self.values = dict(settings)
        self.open_keys = open_keys
        self.defined = set(settings)

    def _option(self, key: str) -> Any:
        return vim.option.OptionValue(key=key, value=self.values[key])

    def prop_setting(self) -> list[Any]:
        return [self._option(key) for key in self.values]

    def prop_supportedOption(self) -> list[Any]:
        return [vim.option.OptionDef(key=key, label=key.rsplit(".", 1)[-1], summary=key,
                                     optionType=_option_type(self.values[key]))
                for key in self.values if key in self.defined]

    @vmomi_method()
    def QueryOptions(self, ctx: CallContext, name: str | None = None) -> list[Any]:
        # OptionManager.QueryOptions: "name: A particular setting, or a partial name ending in a dot
        # for a subtree of settings"; InvalidName when nothing matches.
        with self.vc.lock:
            if not name:
                return self.prop_setting()
            if name.endswith("."):
                found = [self._option(key) for key in self.values if key.startswith(name)]
            else:
                found = [self._option(name)] if name in self.values else []
            if not found:
                raise vim.fault.InvalidName(msg=f"A specified parameter was not correct: {name}", name=name)
            return found

    @vmomi_method("Global.Settings")
    def UpdateOptions(self, ctx: CallContext, changedValue: list[Any]) -> None:
        with self.vc.lock:
            for option in changedValue:
                if option.key not in self.values and not self.open_keys:
                    raise vim.fault.InvalidName(msg=f"A specified parameter was not correct: {option.key}",
                                                name=option.key)
            for option in changedValue:
                self.values[option.key] = option.value
            self.changed()
