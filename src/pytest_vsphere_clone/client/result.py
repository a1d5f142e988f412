"""The outcome of a command run in a guest (defined once, in pytest_vsphere_clone.results)."""

from __future__ import annotations

from ..results import CommandFailed, CommandResult

__all__ = ["CommandFailed", "CommandResult"]
