"""Reports and failure evidence (issue 15): JUnit properties, pytest-html extras, the JSON run report,
console screenshots of failed tests' clones, and how a kept clone is reached.

One inner run under xdist (-n 2) exercises it all against the simulator with real guests: the JUnit
XML, the HTML report, the JSON report, the screenshots and the summary are read back from disk and
the terminal; ``vsphere-clone list --json`` then reads the kept clones' markers from the vCenter.
"""

from __future__ import annotations

import html
import json
import re
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from plugin_helpers import Inner, SimHandle

pytestmark = pytest.mark.guests

TESTS = """
import pytest
from pyVim.task import WaitForTask

def test_plain(vsphere_vm):
    assert vsphere_vm.run("true").exit_status == 0

def test_fails_with_two_clones(vsphere_vm, vsphere_vm_factory):
    extra = vsphere_vm_factory()
    assert extra.name != vsphere_vm.name
    assert False, "deliberate failure"

def test_fails_powered_off(vsphere_vm_factory):
    clone = vsphere_vm_factory()
    WaitForTask(clone.vm.PowerOffVM_Task())
    assert False, "deliberate failure, no screen to show"

def test_named(web):
    assert web.ip

@pytest.mark.vsphere(scope="function")
def test_marked(vsphere_vm):
    assert vsphere_vm.ip
"""


def _properties(case: ET.Element) -> list[tuple[str, str]]:
    return [(p.get("name", ""), p.get("value", "")) for p in case.iter("property")]


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_junit_html_json_report_screenshots_and_kept_clones(inner: Inner, plugin_sim: SimHandle, reap_kept: None,
                                                             pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_reports=TESTS)
    artifacts = pytester.path / "evidence"
    pytester.makeini(f"""
        [pytest]
        vsphere_fixtures =
            web: template=linux-template scope=function
        vsphere_artifacts = {artifacts}
    """)
    junit, report_html, report_json = (pytester.path / n for n in ("junit.xml", "report.html", "run.json"))
    outcome = inner.run("-n", "2", "--vsphere-template=linux-template", "--vsphere-keep=on-failure",
                        f"--junitxml={junit}", f"--html={report_html}", "--self-contained-html",
                        f"--vsphere-report={report_json}", sim=plugin_sim, timeout=240)
    out = outcome.out
    assert outcome.ret == 1, out
    assert re.search(r"3 passed", out) and re.search(r"2 failed", out), out
    assert "INTERNALERROR" not in out and "Traceback" not in out, out
    secrets = [plugin_sim.facts["PASSWORD"], plugin_sim.facts["GUEST_PASSWORD"]]

    # --- JUnit XML: per test, the clones' properties; several clones told apart by their fixture.
    junit_text = junit.read_text()
    assert not any(secret in junit_text for secret in secrets)
    cases = {c.get("name"): c for c in ET.fromstring(junit_text).iter("testcase")}
    plain = dict(_properties(cases["test_plain"]))
    assert plain["vsphere_vm"].startswith("pytest-") and plain["vsphere_template"] == "linux-template"
    assert plain["vsphere_clone_type"] == "linked" and re.fullmatch(r"\d+\.\d+\.\d+\.\d+", plain["vsphere_ip"])
    assert plain["vsphere_moref"].startswith("vm-")
    for phase in ("clone", "power_on", "ip", "connect"):
        assert float(plain[f"vsphere_{phase}_s"]) >= 0
    two = dict(_properties(cases["test_fails_with_two_clones"]))
    factory_vm = two["vsphere_vm[vsphere_vm_factory#1]"]
    assert factory_vm.startswith("pytest-") and factory_vm != two["vsphere_vm"]
    assert two["vsphere_ip[vsphere_vm_factory#1]"] != two["vsphere_ip"]
    named = dict(_properties(cases["test_named"]))
    assert named["vsphere_vm[web]"].startswith("pytest-") and "vsphere_vm" not in named
    marked = dict(_properties(cases["test_marked"]))
    assert marked["vsphere_vm"] not in (plain["vsphere_vm"], two["vsphere_vm"])  # its own function-scoped clone

    # --- Screenshots: one per clone of the failed test, named after the test; a failed screenshot is one line.
    shots = sorted(artifacts.glob("*.png"))
    assert [p.name for p in shots] == sorted(
        f"test_reports.py_test_fails_with_two_clones--{name}.png" for name in (two["vsphere_vm"], factory_vm))
    assert all(_png_size(p) == (720, 400) for p in shots)
    for shot in shots:
        assert f"vSphere console screenshot: {shot}" in out
    off = dict(_properties(cases["test_fails_powered_off"]))["vsphere_vm[vsphere_vm_factory#1]"]
    not_taken = [line for line in out.splitlines() if line.startswith(f"vSphere console screenshot of {off} not taken")]
    assert len(not_taken) == 1 and "InvalidPowerState" in not_taken[0], out  # the test's evidence section

    # --- pytest-html: the clone table on each test's row, the screenshots as images.
    page = report_html.read_text()
    blob = re.search(r'data-jsonblob="([^"]*)"', page)
    assert blob, page[:500]
    data = json.loads(html.unescape(blob.group(1)))
    tests = {nodeid: rows for nodeid, rows in data["tests"].items()}
    plain_row = tests["test_reports.py::test_plain"][0]
    tables = [e["content"] for e in plain_row["extras"] if e["format_type"] == "html"]
    assert tables and plain["vsphere_vm"] in tables[0] and plain["vsphere_ip"] in tables[0]
    failed_row = next(r for r in tests["test_reports.py::test_fails_with_two_clones"] if r["result"] == "Failed")
    images = [e for e in failed_row["extras"] if e["format_type"] == "image"]
    assert len(images) == 2 and all(e["content"].startswith("data:image/png;base64,") for e in images)
    assert not any(secret in page for secret in secrets)

    # --- JSON run report, gathered by the controller from both workers.
    report_text = report_json.read_text()
    assert not any(secret in report_text for secret in secrets)
    report = json.loads(report_text)
    assert report["schema"] == 1 and re.fullmatch(r"[0-9a-f]{6}", report["run_id"]) and report["exit_status"] == 1
    assert report["settings"]["password"] == {"value": "***", "source": "env"}
    assert report["settings"]["keep"] == {"value": "on-failure", "source": "cli"}
    clones = {c["name"]: c for c in report["clones"]}
    # The workers' vsphere_vm (one or two: whichever ran its tests), 2 from the factory, named, marked.
    assert len(clones) == report["totals"]["clones"] and 5 <= len(clones) <= 6
    assert {c["worker"] for c in clones.values()} <= {"gw0", "gw1"}
    first = clones[plain["vsphere_vm"]]
    assert first["template"] == "linux-template" and first["clone_type"] == "linked" and first["scope"] == "worker"
    assert first["ip"] == plain["vsphere_ip"] and set(first["timings"]) == {"clone", "power_on", "ip", "connect"}
    assert {"nodeid": "test_reports.py::test_plain", "outcome": "passed", "screenshots": []} in first["tests"]
    failing = clones[two["vsphere_vm"]]
    failed_test = next(t for t in failing["tests"] if t["nodeid"].endswith("test_fails_with_two_clones"))
    assert failed_test["outcome"] == "failed" and len(failed_test["screenshots"]) == 2
    assert failing["outcome"] == "failed" and failing["kept"] and failing["state"] == "kept"
    assert failing["kept_by"] == "test_reports.py::test_fails_with_two_clones"
    assert failing["reach"] == f"ssh {plugin_sim.facts['GUEST_USER']}@{failing['ip']}"
    assert clones[named["vsphere_vm[web]"]]["state"] == "destroyed"
    assert clones[named["vsphere_vm[web]"]]["tests"] == [
        {"nodeid": "test_reports.py::test_named", "outcome": "passed", "screenshots": []}]
    totals = report["totals"]
    # The failed tests' clones are kept (keep=on-failure), the others destroyed.
    assert totals["kept"] == 3 and totals["destroyed"] == len(clones) - 3 and totals["left"] == 0
    assert totals["tests"] == 5 and totals["failed_tests"] == 2 and totals["screenshots"] == 2
    assert set(totals["phases"]) == {"clone", "power_on", "ip", "connect"}
    assert any("not taken" in w for w in report["warnings"])
    # ... and the controller's summary names it too, though a worker tried.
    assert [line for line in out.splitlines() if line.startswith("warning: ") and off in line and "not taken" in line]

    # --- The kept clone's summary line says how to reach it, and `vsphere-clone list` names IP and test.
    [kept_line] = [line for line in out.splitlines() if line.startswith(failing["name"] + " ")]
    assert kept_line.endswith(f"-> ssh {plugin_sim.facts['GUEST_USER']}@{failing['ip']} "
                              f"(kept by test_reports.py::test_fails_with_two_clones) [kept]"), kept_line
    assert outcome.summary_states()[failing["name"]] == "kept"
    f = plugin_sim.facts
    env = {"VSPHERE_HOST": f["HOST"], "VSPHERE_USER": f["USER"], "VSPHERE_PASSWORD": f["PASSWORD"],
           "VSPHERE_CA_BUNDLE": f["CA_FILE"], "PATH": "/usr/bin:/bin"}
    listed = subprocess.run([sys.executable, "-m", "pytest_vsphere_clone.cli", "list", "--json"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows[failing["name"]]["ip"] == failing["ip"]
    assert rows[failing["name"]]["test"] == "test_reports.py::test_fails_with_two_clones"
    assert rows[factory_vm]["test"] == "test_reports.py::test_fails_with_two_clones"


def test_how_a_kept_clone_is_reached_and_evidence_file_names() -> None:
    from pytest_vsphere_clone.plugin.clone import Clone
    from pytest_vsphere_clone.plugin.evidence import evidence_name
    from pytest_vsphere_clone.plugin.settings import Settings
    from pytest_vsphere_clone.plugin.summary import how_to_reach

    linux = Clone("c1", "vm-1", "10.0.0.5", "linux", "t", "linked")
    assert how_to_reach(linux, Settings(guest_user="root")) == "ssh root@10.0.0.5"
    assert how_to_reach(linux, Settings(guest_user="ops", ssh_port=2222)) == "ssh -p 2222 ops@10.0.0.5"
    windows = Clone("c2", "vm-2", "10.0.0.6", "windows", "t", "linked")
    assert how_to_reach(windows, Settings(guest_user="Administrator", winrm_ssl=True, winrm_port=5986)) == \
        "WinRM https://10.0.0.6:5986/wsman (user Administrator)"
    assert how_to_reach(Clone("c3", "vm-3", "", "linux", "t", "linked"), Settings()) == ""
    assert evidence_name("tests/test_a.py::test_x[linux-template]", "pytest-ab-gw0-1") == \
        "tests_test_a.py_test_x_linux-template--pytest-ab-gw0-1.png"
    long_ids = [f"tests/test_a.py::test_x[{'p' * 200}-{i}]" for i in range(2)]
    names = {evidence_name(nodeid, "c") for nodeid in long_ids}
    assert len(names) == 2 and all(len(n) < 140 for n in names)


def test_a_report_or_artifacts_path_that_cannot_be_written_is_a_usage_error(inner: Inner,
                                                                            pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_nothing="def test_nothing(vsphere_vm):\n    pass\n")
    taken = pytester.path / "a-file"
    taken.write_text("")
    for args, expected in (
            ([f"--vsphere-report={pytester.path}"], f"--vsphere-report={pytester.path} is a directory: name a file"),
            ([f"--vsphere-artifacts={taken}"], f"--vsphere-artifacts={taken}: cannot create {taken}"),
            ([f"--vsphere-report={taken}/run.json"], f"--vsphere-report={taken}/run.json: cannot create {taken}")):
        outcome = inner.run("--vsphere-simulator", *args)
        assert outcome.ret == pytest.ExitCode.USAGE_ERROR, outcome.out
        errors = outcome.lines_with("ERROR: ")
        assert len(errors) == 1 and expected in errors[0] and "name a" in errors[0], outcome.out
        assert "Traceback" not in outcome.out and outcome.run_dirs() == []


FAILING = """
def test_clone_task_fault(vsphere_vm_factory):
    vsphere_vm_factory()

def test_no_ip_in_time(vsphere_vm_factory):
    vsphere_vm_factory(ip_network="192.0.2.0/24", ip_timeout=2)

def test_ssh_login_refused(vsphere_vm_factory):
    vsphere_vm_factory(discovery="tools", ssh_host_key_policy="accept-new", guest_password="Wrong-Guest-Pw-1")

def test_made(vsphere_vm_factory):
    assert vsphere_vm_factory().ip
"""


def test_json_report_records_clones_that_failed_to_be_made(inner: Inner, plugin_sim: SimHandle,
                                                           pytester: pytest.Pytester) -> None:
    # One inner run, one clone failing in each phase that can fail: its clone task ends with a fault
    # (injected into the simulator, the first clone task only), no usable address in time, SSH refusing
    # the guest login; the last one is made, to show a made clone has no error.
    pytester.makepyfile(test_failing=FAILING)
    report_json = pytester.path / "run.json"
    namespaces = plugin_sim.namespaces()
    plugin_sim.sim.inject_fault("CloneVM_Task", "InsufficientResourcesFault", count=1, in_task=True,
                                message="not enough memory on esx1 (injected)")
    try:
        outcome = inner.run("--vsphere-template=linux-template", f"--vsphere-report={report_json}",
                            sim=plugin_sim, timeout=240)
    finally:
        plugin_sim.sim.clear_faults()
    assert outcome.ret == pytest.ExitCode.TESTS_FAILED, outcome.out
    assert "3 failed" in outcome.out and "1 passed" in outcome.out, outcome.out
    inner.clean_after(outcome, plugin_sim, namespaces)
    text = report_json.read_text()
    for secret in ("Wrong-Guest-Pw-1", plugin_sim.facts["PASSWORD"], plugin_sim.facts["GUEST_PASSWORD"]):
        assert secret not in text
    report = json.loads(text)
    clones = sorted(report["clones"], key=lambda c: int(c["name"].rsplit("-", 1)[1]))
    assert len(clones) == 4 and report["totals"]["failed"] == 3 and report["totals"]["left"] == 0
    assert [c["state"] for c in clones] == ["destroyed"] * 4
    assert [c["outcome"] for c in clones] == ["failed", "failed", "failed", "passed"]
    assert [c["failed_phase"] for c in clones] == ["clone", "ip", "connect", None]
    task_fault, no_ip, refused, made = clones
    [error] = task_fault["errors"]
    assert "InsufficientResourcesFault" in error and "not enough memory on esx1 (injected)" in error, error
    assert task_fault["moref"] is None and task_fault["timings"] == {}
    [error] = no_ip["errors"]
    assert "no usable IP" in error and "within 2 s" in error and "outside 192.0.2.0/24" in error, error
    [error] = refused["errors"]
    assert error.startswith(f"{refused['name']} (") and "refused the credentials" in error, error
    assert made["errors"] == [] and made["ip"]
    for clone in clones:
        assert all("\n" not in e for e in clone["errors"])
        assert outcome.summary_states()[clone["name"]] == "destroyed"
