"""A vCenter address that accepts TCP and never answers: pytest, ``list`` and ``doctor`` give up in time.

The connect timeout covers the TCP connect, the TLS handshake, the API version probe and the
first SOAP calls. A local server accepts connections and never sends a byte; each run gets a
timeout of its own far above the connect timeout, so a hang fails the test instead of stalling it
(no assertion on how fast anything is).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from plugin_helpers import Inner

CONNECT_TIMEOUT = "2"
#: Any CA file: the TLS handshake never gets far enough to verify anything.
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
#: Far above the connect timeout: reaching it means the command hung.
HANG = 90.0


@pytest.fixture
def silent_vcenter() -> Iterator[str]:
    """``127.0.0.1:PORT`` of a server that accepts every connection and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(conn)  # held open, never read from or written to

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for conn in accepted:
            conn.close()


def test_pytest_gives_up_with_one_line(inner: Inner, silent_vcenter: str) -> None:
    inner.pytester.makepyfile(test_a="def test_vm(vsphere_vm):\n    pass\n")
    outcome = inner.run(f"--vsphere-host={silent_vcenter}", "--vsphere-user=u@vsphere.local",
                        "--vsphere-template=linux-template", f"--vsphere-ca-bundle={CA_BUNDLE}",
                        f"--vsphere-connect-timeout={CONNECT_TIMEOUT}", env={"VSPHERE_PASSWORD": "Silent-Secret-1"},
                        timeout=HANG)
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR, outcome.out
    errors = [line for line in outcome.result.stderr.lines if line.startswith("ERROR: ")]
    assert len(errors) == 1, outcome.out
    assert f"cannot reach vCenter {silent_vcenter}: no answer within 2 s" in errors[0]
    assert "--vsphere-connect-timeout" in errors[0] and "--vsphere-host" in errors[0]
    assert "Traceback" not in outcome.out and "Silent-Secret-1" not in outcome.out
    assert outcome.run_dirs() == []


def vsphere_clone(*argv: str, host: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSPHERE_")}
    env.update(VSPHERE_HOST=host, VSPHERE_USER="u@vsphere.local", VSPHERE_PASSWORD="Silent-Secret-2",
               VSPHERE_CA_BUNDLE=CA_BUNDLE, VSPHERE_CONNECT_TIMEOUT=CONNECT_TIMEOUT)
    return subprocess.run([sys.executable, "-m", "pytest_vsphere_clone.cli", *argv], env=env, capture_output=True,
                          text=True, timeout=HANG)


def test_list_gives_up_with_one_line(silent_vcenter: str) -> None:
    result = vsphere_clone("list", host=silent_vcenter)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"vsphere-clone list: error: cannot reach vCenter {silent_vcenter}: "
                               f"no answer within 2 s")
    assert "--connect-timeout" in lines[0] and "Silent-Secret-2" not in result.stderr


def test_doctor_gives_up_with_one_fail_line(silent_vcenter: str) -> None:
    result = vsphere_clone("doctor", host=silent_vcenter)
    assert result.returncode == 1, result.stdout + result.stderr
    fails = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 1, result.stdout
    assert f"connection: cannot reach vCenter {silent_vcenter}: no answer within 2 s" in fails[0]
    assert result.stdout.splitlines()[-1] == "doctor: 1 FAIL"
    assert "Traceback" not in result.stderr and "Silent-Secret-2" not in result.stdout + result.stderr
