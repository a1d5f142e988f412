"""Hooks other plugins and conftest.py files can implement (registered in pytest_addhooks)."""

from __future__ import annotations

from typing import Any

import pytest

hookspec = pytest.hookspec


@hookspec
def pytest_vsphere_clone_spec(request: Any, template: str, spec: Any) -> None:
    """Modify the clone spec (a pyVmomi CloneSpec or InstantCloneSpec) before the clone task starts.

    ``request`` is the pytest FixtureRequest that asked for the clone (None for
    run-wide clones made outside a test).
    """


@hookspec
def pytest_vsphere_clone_ready(clone: Any) -> None:
    """Called once a clone is up: IP found and (SSH/WinRM) connection checked.

    ``clone`` is the ``Clone`` the test will get; under xdist the hook runs in the worker
    that made it.
    """


@hookspec(firstresult=True)
def pytest_vsphere_clone_before_destroy(clone: Any, failed: bool) -> bool | None:
    """Called before a clone is destroyed; return True to keep it (then it is reported as kept).

    ``failed`` says whether a test that used the clone failed. True keeps the clone whatever
    ``--vsphere-keep`` says; None or False leaves the decision to ``--vsphere-keep``.
    """
