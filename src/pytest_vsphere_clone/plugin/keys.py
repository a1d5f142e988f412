"""Where the plugin keeps its state in pytest: the settings' stash key and its plugin objects' names."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .clone import Clone
    from .settings import Settings

#: The run's settings, resolved once in pytest_configure (also when the plugin stays idle).
SETTINGS_KEY: pytest.StashKey[Settings] = pytest.StashKey()
#: The clones ``vsphere_vm_factory`` made for a test, in order (on the test item's stash). Here,
#: not in reports.py, so that the fixtures module does not import the reports (and Clone) at start-up.
FACTORY_CLONES: pytest.StashKey[list[Clone]] = pytest.StashKey()
#: The names the run's plugin objects are registered under.
RUN_PLUGIN = "vsphere-clone-run"
CONTROLLER_PLUGIN = "vsphere-clone-controller"
XDIST_PLUGIN = "vsphere-clone-xdist"
REPORTS_PLUGIN = "vsphere-clone-reports"
RUN_REPORT_PLUGIN = "vsphere-clone-run-report"
