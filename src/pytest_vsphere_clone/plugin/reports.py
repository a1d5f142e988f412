"""What each test's report says about the clones it used: JUnit XML properties and pytest-html extras.

Every test that used a clone (``vsphere_vm``, a named fixture, ``vsphere_vm_factory``, a marker's
``vsphere_vm``) gets ``user_properties`` as ``record_property`` would add them, which ``--junitxml``
writes as ``<property>`` elements (docs/reports.md lists them). A clone from ``vsphere_vm`` has the
plain names (``vsphere_vm``, ``vsphere_ip``, ...); any other clone's names carry its fixture in
brackets (``vsphere_ip[web]``, ``vsphere_ip[vsphere_vm_factory#2]``), so several clones of one test
stay apart in any JUnit consumer. Nothing secret is ever among them.

With pytest-html installed and ``--html`` given, the same facts are a table on the test's row, and a
failed test's console screenshot an image (see :mod:`.evidence`). pytest_html is imported only then.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import pytest

from .clone import PHASES
from .keys import FACTORY_CLONES

if TYPE_CHECKING:
    from .clone import Clone
    from .evidence import Evidence

#: The fixture whose clone has the plain property names.
PLAIN_FIXTURE = "vsphere_vm"
#: The property carrying a clone's name; every other property of the clone follows it.
NAME_PROPERTY = "vsphere_vm"


def clones_of(item: pytest.Item) -> list[tuple[str, Clone]]:
    """(fixture label, clone) for every clone the test used, each once: fixtures first, then the factory's."""
    from .clone import Clone

    found: list[tuple[str, Clone]] = []
    seen: set[int] = set()
    funcargs = getattr(item, "funcargs", None) or {}
    for name, value in funcargs.items():
        if isinstance(value, Clone) and id(value) not in seen:
            seen.add(id(value))
            found.append((name, value))
    factory_clones: list[Clone] = item.stash.get(FACTORY_CLONES, [])
    for number, clone in enumerate(factory_clones, 1):
        if id(clone) not in seen:
            seen.add(id(clone))
            found.append((f"vsphere_vm_factory#{number}", clone))
    return found


def property_name(base: str, label: str) -> str:
    """``vsphere_ip`` for vsphere_vm's clone, ``vsphere_ip[web]`` for the named fixture web's."""
    return base if label == PLAIN_FIXTURE else f"{base}[{label}]"


def clone_properties(label: str, clone: Clone) -> list[tuple[str, str]]:
    """The JUnit properties of one clone: name, moref, template, clone type, IP and phase seconds."""
    values = [(NAME_PROPERTY, clone.name), ("vsphere_moref", clone.moref), ("vsphere_template", clone.template),
              ("vsphere_clone_type", clone.clone_type), ("vsphere_ip", clone.ip)]
    values += [(f"vsphere_{phase}_s", f"{clone.timings[phase]:.3f}") for phase in PHASES if phase in clone.timings]
    return [(property_name(name, label), value) for name, value in values]


def clone_names(user_properties: Any) -> list[str]:
    """The names of the clones a report's ``user_properties`` record (for the controller's run report)."""
    names = []
    for name, value in user_properties or ():
        if str(name) == NAME_PROPERTY or str(name).startswith(f"{NAME_PROPERTY}["):
            names.append(str(value))
    return names


def html_table(used: list[tuple[str, Clone]]) -> str:
    """The clones as an HTML table for pytest-html."""
    head = ["fixture", "VM", "moref", "template", "clone type", "IP", *(f"{p} s" for p in PHASES)]
    rows = []
    for label, clone in used:
        cells = [label, clone.name, clone.moref, clone.template, clone.clone_type, clone.ip or "-"]
        cells += [f"{clone.timings[p]:.2f}" if p in clone.timings else "-" for p in PHASES]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    header = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
    return f'<table class="vsphere-clones"><caption>vSphere clones</caption>{header}{"".join(rows)}</table>'


def html_extras_wanted(config: pytest.Config) -> bool:
    """True when pytest-html is installed and writes a report in this run."""
    return config.pluginmanager.hasplugin("html") and bool(config.getoption("htmlpath", None))


class CloneReports:
    """Per process: the properties, pytest-html extras and evidence of each test that used clones, and
    which test keeps a clone (the last that failed with it, else the last that used it)."""

    def __init__(self, config: pytest.Config, evidence: Evidence) -> None:
        self.config = config
        self.evidence = evidence
        self._last_test: dict[str, str] = {}
        self._failed_test: dict[str, str] = {}

    def keeping_test(self, clone: Clone) -> str:
        """The node id of the test that keeps ``clone`` ("" if no test used it)."""
        return self._failed_test.get(clone.name) or self._last_test.get(clone.name, "")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        used = clones_of(item)
        # Before the report is made: pytest copies item.user_properties into it (and into later phases').
        recorded = {name for name, _ in item.user_properties}
        for label, clone in used:
            for name, value in clone_properties(label, clone):
                if name not in recorded:
                    item.user_properties.append((name, value))
                    recorded.add(name)
        outcome = yield
        if not used:
            return
        report: pytest.TestReport = outcome.get_result()
        for _, clone in used:
            self._last_test[clone.name] = item.nodeid
            if report.failed:
                self._failed_test[clone.name] = item.nodeid
        wants_html = html_extras_wanted(self.config)
        if wants_html and (report.when == "call" or (report.when == "setup" and report.failed)):
            from pytest_html import extras  # installed: html_extras_wanted checked the plugin

            report.extras = [*getattr(report, "extras", []),  # type: ignore[attr-defined]
                             extras.html(html_table(used))]
        if report.failed and report.when in ("setup", "call"):
            self.evidence.capture(item.nodeid, report, used, html=wants_html)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Under xdist, the controller's summary also names the screenshots a worker could not take."""
        from .evidence import NOT_TAKEN_LINE, SECTION

        if getattr(report, "node", None) is None:  # this process's own report: its evidence warned already
            return
        for section, text in report.sections:
            if section == SECTION:
                for line in text.splitlines():
                    if line.startswith(NOT_TAKEN_LINE):
                        self.evidence.reporter.warn(f"{report.nodeid}: {line}")


def register(config: pytest.Config, run: Any) -> CloneReports:
    """Register this process's clone reports (and their evidence) beside ``run`` (a VSphereRun)."""
    from .evidence import Evidence
    from .keys import REPORTS_PLUGIN

    reports = CloneReports(config, Evidence(config, run.settings, run.holder, run.reporter))
    run.janitor.keeping_test = reports.keeping_test
    config.pluginmanager.register(reports, REPORTS_PLUGIN)
    return reports
