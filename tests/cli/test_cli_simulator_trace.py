"""``vsphere-clone simulator --trace``: one line per SOAP call, with its method, object, result or fault and time."""

from __future__ import annotations

import base64
import json
import re
import signal
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import read_facts, start
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

KEYS = ("URL", "HOST", "USER", "PASSWORD", "CA_FILE")
LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} (?P<method>\S+) (?P<this>\S+) (?P<outcome>(?:->|!!) .+) (?P<ms>\d+\.\d) ms$")


def _start(*argv: str) -> subprocess.Popen[bytes]:
    return start("--no-guests", *argv)


def _facts(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> dict[str, str]:
    return read_facts(proc, KEYS, timeout)


@pytest.fixture
def traced(request: pytest.FixtureRequest) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, str]]]:
    proc = _start(*getattr(request, "param", ("--trace",)))
    try:
        yield proc, _facts(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)


def _stop(proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    return err.decode()


def _counters(facts: dict[str, str], context: ssl.SSLContext) -> dict[str, int]:
    request = urllib.request.Request(f"https://{facts['HOST']}/admin/counters")
    token = base64.b64encode(f"{facts['USER']}:{facts['PASSWORD']}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        counters: dict[str, int] = json.loads(response.read())
    return counters


def _exercise(facts: dict[str, str]) -> ssl.SSLContext:
    """Calls that succeed and one that faults, through the real pyVmomi client."""
    host, port = facts["HOST"].rsplit(":", 1)
    context = ssl.create_default_context(cafile=facts["CA_FILE"])
    with pytest.raises(vim.fault.InvalidLogin):
        SmartConnect(host=host, port=int(port), user=facts["USER"], pwd="not the password", sslContext=context)
    si = SmartConnect(host=host, port=int(port), user=facts["USER"], pwd=facts["PASSWORD"], sslContext=context)
    try:
        assert len(si.content.rootFolder.childEntity) == 1
        si.content.searchIndex.FindByInventoryPath("dc1/vm/linux-template")
    finally:
        Disconnect(si)
    return context


@pytest.mark.parametrize("traced", [("--trace",)], indirect=True)
def test_trace_writes_one_line_per_soap_call_to_stderr(traced: tuple[subprocess.Popen[bytes], dict[str, str]]) -> None:
    proc, facts = traced
    context = _exercise(facts)
    calls = sum(_counters(facts, context).values())
    err = _stop(proc)
    lines = [m for m in map(LINE.match, err.splitlines()) if m]
    assert len(lines) == calls, err  # every call, and nothing else in that shape
    seen = {(m["method"], m["this"], m["outcome"].split(" ", 2)[1]) for m in lines}
    assert ("RetrieveServiceContent", "ServiceInstance:ServiceInstance", "ServiceContent") in seen
    assert ("Login", "SessionManager:SessionManager", "UserSession") in seen
    assert ("Login", "SessionManager:SessionManager", "InvalidLogin") in seen  # a fault: "!! InvalidLogin ..."
    assert ("Fetch(childEntity)", "Folder:group-d1", "ManagedEntity[1]") in seen
    assert ("Logout", "SessionManager:SessionManager", "unset") in seen
    [bad_login] = [m for m in lines if m["outcome"].startswith("!! InvalidLogin")]
    assert '"Cannot complete login due to an incorrect user name or password."' in bad_login["outcome"]
    found = [m for m in lines if m["method"] == "FindByInventoryPath"]
    assert [m["outcome"] for m in found] == [f"-> VirtualMachine:{_vm_id(lines)}"]


def _vm_id(lines: list[re.Match[str]]) -> str:
    [found] = [m for m in lines if m["method"] == "FindByInventoryPath"]
    return found["outcome"].rsplit(":", 1)[1]


@pytest.mark.parametrize("traced", [()], indirect=True)
def test_without_trace_nothing_is_logged(traced: tuple[subprocess.Popen[bytes], dict[str, str]]) -> None:
    proc, facts = traced
    _exercise(facts)
    err = _stop(proc)
    assert not [line for line in err.splitlines() if LINE.match(line)], err


def test_trace_to_a_file(tmp_path: Path) -> None:
    trace = tmp_path / "soap.trace"
    proc = _start("--trace", str(trace))
    try:
        facts = _facts(proc)
        context = _exercise(facts)
        calls = sum(_counters(facts, context).values())
        err = _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert not [line for line in err.splitlines() if LINE.match(line)]
    lines = trace.read_text().splitlines()
    assert len(lines) == calls and all(LINE.match(line) for line in lines), lines


def test_an_unwritable_trace_file_is_refused_before_serving(tmp_path: Path) -> None:
    proc = _start("--trace", str(tmp_path / "no-such-dir" / "soap.trace"))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert b"URL=" not in out
    assert "cannot write the trace to" in err.decode()
