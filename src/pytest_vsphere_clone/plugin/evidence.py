"""Failure evidence: the console screenshot of each clone a failed test used.

Taken when a test fails in its call or set-up phase, while its clones still run: CreateScreenshot_Task,
then the PNG fetched from the datastore (client/screenshot.py) and saved in ``--vsphere-artifacts``
(default: ``vsphere-artifacts`` under pytest's basetemp) as ``<test node id, made safe>--<clone>.png``.
The test's report says where (a section line ``vSphere console screenshot: PATH``); pytest-html shows
the image. A screenshot that cannot be taken is one warning line, never a failure.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .clone import Clone
    from .connection_holder import ConnectionHolder
    from .reporter import Reporter
    from .settings import Settings

log = logging.getLogger(__name__)

#: The report section holding the evidence lines.
SECTION = "vSphere evidence"
#: How each saved screenshot is named in the section (the run report reads it back).
SCREENSHOT_LINE = "vSphere console screenshot: "
#: And a screenshot that could not be taken.
NOT_TAKEN_LINE = "vSphere console screenshot of "
#: Seconds a screenshot may take (task and download) before it is given up.
SCREENSHOT_TIMEOUT = 30.0
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def evidence_name(nodeid: str, clone_name: str) -> str:
    """A file name for ``nodeid``'s screenshot of ``clone_name``: safe characters only, bounded length."""
    safe = _UNSAFE.sub("_", nodeid).strip("_.") or "test"
    if len(safe) > 120:  # long parametrized ids: keep them apart by a digest of the full id
        safe = f"{safe[:100]}-{hashlib.sha256(nodeid.encode()).hexdigest()[:12]}"
    return f"{safe}--{_UNSAFE.sub('_', clone_name)}.png"


def default_directory(config: pytest.Config) -> Path:
    """``vsphere-artifacts`` under pytest's basetemp (an xdist worker's basetemp is below the run's)."""
    factory: Any = getattr(config, "_tmp_path_factory", None)
    base = Path(factory.getbasetemp()) if factory is not None else Path.cwd()
    if hasattr(config, "workerinput"):
        base = base.parent
    return base / "vsphere-artifacts"


class Evidence:
    """Takes and saves failed tests' screenshots for one process."""

    def __init__(self, config: pytest.Config, settings: Settings, holder: ConnectionHolder,
                 reporter: Reporter) -> None:
        self.config = config
        self.settings = settings
        self.holder = holder
        self.reporter = reporter

    def directory(self) -> Path:
        return self.settings.artifacts or default_directory(self.config)

    def capture(self, nodeid: str, report: pytest.TestReport, used: list[tuple[str, Clone]], *,
                html: bool = False) -> None:
        """Screenshot each clone in ``used`` into the artifacts directory; lines into ``report``'s sections."""
        lines: list[str] = []
        images: list[tuple[str, bytes]] = []
        for _, clone in used:
            try:
                path = self._screenshot(nodeid, clone)
            except Exception as exc:  # evidence is best effort: never a failure of its own
                from ..client.faults import one_line

                line = f"{NOT_TAKEN_LINE}{clone.name} not taken: {one_line(exc)}"
                lines.append(line)
                self.reporter.warn(f"{nodeid}: {line}")
                continue
            lines.append(f"{SCREENSHOT_LINE}{path}")
            images.append((clone.name, path.read_bytes()))
        report.sections.append((SECTION, "\n".join(lines)))
        if html and images:
            from pytest_html import extras

            # pytest-html reads report.extras (any report attribute travels from xdist workers).
            report.extras = [*getattr(report, "extras", []),  # type: ignore[attr-defined]
                             *(extras.png(base64.b64encode(data).decode(), name=f"console of {name}")
                               for name, data in images)]

    def _screenshot(self, nodeid: str, clone: Clone) -> Path:
        from ..client import screenshot

        conn = self.holder.connection()
        vm = conn.ref("VirtualMachine", clone.moref)
        _, png = screenshot.capture(conn, vm, waiter=self.holder.waiter(), timeout=SCREENSHOT_TIMEOUT)
        directory = self.directory()
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / evidence_name(nodeid, clone.name)
        target.write_bytes(png)
        log.info("vsphere-clone: console screenshot of %s for %s: %s", clone.name, nodeid, target)
        return target
