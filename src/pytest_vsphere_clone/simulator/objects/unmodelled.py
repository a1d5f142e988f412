"""Methods the simulator does not model answer NotImplemented, as the vSphere API lets a server do.

A method that exists on a managed object's WSDL type but has no simulated
implementation must not look like a typo (MethodNotFound) nor pretend to work:
the reference's NotImplemented fault ("the operation is not implemented") says
exactly that the server does not offer it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyVmomi import vmodl

from .base import SimObject

if TYPE_CHECKING:
    from ..vcenter import CallContext


@functools.cache
def wsdl_methods(vim_type: type) -> frozenset[str]:
    """The WSDL names of every method of ``vim_type`` (its base types included)."""
    names: set[str] = set()
    for klass in vim_type.__mro__:
        for info in getattr(klass, "_methodInfo", {}).values():
            names.add(info.wsdlName)
    return frozenset(names)


def not_implemented(type_name: str, method: str) -> Callable[..., Any]:
    """An implementation that answers NotImplemented (privileges are still checked by pyVmomi's metadata)."""

    def answer(ctx: CallContext, **_: Any) -> Any:
        raise vmodl.fault.NotImplemented(msg=f"{type_name}.{method} is not implemented by the simulator.")

    answer._vmomi = (None, None)  # type: ignore[attr-defined]
    return answer


class Unmodelled(SimObject):
    """Mix-in: a WSDL method of this type without a simulated implementation answers NotImplemented."""

    def method(self, name: str) -> Callable[..., Any] | None:
        impl = super().method(name)
        if impl is None and name in wsdl_methods(self.vim_type):
            return not_implemented(self.vim_type.__name__.rsplit(".", 1)[-1], name)
        return impl


class Manager(Unmodelled):
    """A singleton manager: fixed properties in ``props``, unmodelled methods answer NotImplemented."""

    def __init__(self, vc: Any, mo_id: str, **props: Any) -> None:
        super().__init__(vc, mo_id)
        self.props.update(props)


@functools.cache
def manager_class(vim_type: type) -> type[Manager]:
    """A Manager subclass for ``vim_type`` (for the many managers with nothing of their own to model)."""
    return type(f"Sim{vim_type.__name__.rsplit('.', 1)[-1]}", (Manager,), {"vim_type": vim_type})


def plain_manager(vc: Any, vim_type: type, mo_id: str, **props: Any) -> Manager:
    """A manager of ``vim_type`` whose properties are fixed values and whose methods are unmodelled."""
    return manager_class(vim_type)(vc, mo_id, **props)
