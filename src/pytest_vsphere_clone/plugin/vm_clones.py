"""``vsphere_vm``'s clones in one process: one per template, settings and scope owner, shared by equal tests.

pytest caches a fixture's value for one parameter at a time: a test with another
``@pytest.mark.vsphere`` (or another template) sets ``vsphere_vm`` up again. Its clones live
here instead, so that the run's clone and a marker's survive each other: made on first use,
released (kept or destroyed) when their owner ends: the session for worker and session scope,
the module or the test for module and function scope. A clone that failed to set up is
remembered for its owner too, as pytest remembers a fixture's error: one attempt per scope.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from .options import SECRET_NAMES

if TYPE_CHECKING:
    from .clone import Clone
    from .settings import Settings


@dataclass(frozen=True)
class VmKey:
    """What makes two tests' ``vsphere_vm`` the same clone."""

    template: str
    #: The clone's settings, their template list narrowed to ``template``.
    settings: Settings
    #: worker, session, module or function (the settings' scope, session read as worker without xdist).
    scope: str
    #: nodeid of the node whose end releases the clone ("" for the session).
    owner: str

    def digest(self) -> str:
        """A name for the key that every xdist worker computes alike (secrets left out: they do not
        change which VM the clone is, only how a worker logs in to it)."""
        parts = [f"template={self.template!r}", f"scope={self.scope!r}"]
        parts += [f"{f.name}={getattr(self.settings, f.name)!r}" for f in dataclasses.fields(self.settings)
                  if f.compare and f.name.replace("_", "-") not in SECRET_NAMES]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


class VmClones:
    """The process's ``vsphere_vm`` clones by key; ``make`` raises VSphereCloneError with a one-line reason."""

    def __init__(self, make: Callable[[pytest.FixtureRequest, VmKey], Clone],
                 release: Callable[[Clone], None]) -> None:
        self._make = make
        self._release = release
        self._entries: dict[VmKey, Clone | str] = {}

    def get(self, request: pytest.FixtureRequest, template: str, settings: Settings, scope: str) -> Clone:
        """The clone for ``vsphere_vm``'s request: made now, or the one an equal earlier test got."""
        from ..client.errors import VSphereCloneError

        # The node of the request's scope (the marker's, through its parametrization): the session, the
        # module or the test.
        owner = request.node
        key = VmKey(template, settings.replace(template=(template,)), scope, owner.nodeid)
        if key not in self._entries:
            try:
                self._entries[key] = self._make(request, key)
            except VSphereCloneError as exc:
                self._entries[key] = str(exc)
            # After the fixtures that use the clone: they are finalized first (they were set up after it).
            owner.addfinalizer(functools.partial(self._end, key))
        entry = self._entries[key]
        if isinstance(entry, str):
            pytest.fail(entry, pytrace=False)
        return entry

    def _end(self, key: VmKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None and not isinstance(entry, str):
            self._release(entry)
