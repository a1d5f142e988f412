"""Progress lines and warnings of one process of the run."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import pytest

log = logging.getLogger(__name__)


class Reporter:
    """Writes progress lines to the terminal (only the process that owns it) and collects warnings.

    xdist workers have no terminal: their progress goes to the log, and the controller relays it
    from the ledger (see :mod:`.controller`).
    """

    def __init__(self, config: pytest.Config | None, *, owns_terminal: bool) -> None:
        self.config = config
        self.owns_terminal = owns_terminal
        self.warnings: list[str] = []

    def progress(self, message: str) -> None:
        """``vsphere-clone: <message>`` on the terminal, visible without ``-s``."""
        log.info("vsphere-clone: %s", message)
        if not self.owns_terminal or self.config is None:
            return
        reporter: Any = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or self.config.option.verbose < 0:
            return
        # Clones are made inside fixtures, where pytest captures the terminal's file descriptors:
        # without suspending capture the line would end up in the test's captured output.
        capture: Any = self.config.pluginmanager.get_plugin("capturemanager")
        suspended = capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext()
        with suspended:
            writer = getattr(reporter, "_tw", None)
            if writer is not None and writer.width_of_current_line:
                reporter.write("\n")  # the test's progress dots leave the line open
            reporter.write_line(f"vsphere-clone: {message}")

    def warn(self, message: str) -> None:
        """A warning for the run's summary (and the log)."""
        self.warnings.append(message)
        log.warning("vsphere-clone: %s", message)
