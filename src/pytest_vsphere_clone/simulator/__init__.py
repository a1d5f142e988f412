"""The bundled vCenter simulator ("moto for vSphere").

A vSphere SOAP endpoint built on pyVmomi's own types and serializer, so the
real pyVmomi client talks to it over HTTPS. Importing this package is cheap;
pyVmomi is loaded when ``Simulator`` is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .simulator import Simulator, SimulatorConfig

__all__ = ["Simulator", "SimulatorConfig"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import simulator

        return getattr(simulator, name)
    raise AttributeError(name)
