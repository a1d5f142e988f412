"""``vsphere_testinfra_host``: a testinfra Host for the clone (optional extra ``testinfra``)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from plugin_helpers import Inner, SimHandle

pytest.importorskip("testinfra", reason="pytest-testinfra is not installed (pip install -e '.[testinfra]')")

LINUX_TESTS = """
def test_hostname(vsphere_testinfra_host, vsphere_vm):
    host = vsphere_testinfra_host
    assert type(host.backend).NAME == "paramiko"
    hostname = host.check_output("hostname")
    assert hostname and hostname == vsphere_vm.run("hostname").stdout.strip()
    assert host.file("/etc/hostname").exists
    assert host.run("exit 3").rc == 3

def test_same_host_for_the_worker_scoped_clone(vsphere_testinfra_host):
    assert vsphere_testinfra_host.file("/etc/hostname").is_file
"""


@pytest.mark.guests
def test_testinfra_host_on_a_linux_clone(inner: Inner, plugin_sim: SimHandle) -> None:
    inner.pytester.makepyfile(test_infra=LINUX_TESTS)
    namespaces = plugin_sim.namespaces()
    outcome = inner.run("--vsphere-template=linux-template", sim=plugin_sim)
    assert outcome.ret == 0, outcome.out
    outcome.result.assert_outcomes(passed=2)
    inner.clean_after(outcome, plugin_sim, namespaces)


WRONG_KEY_TESTS = """
import paramiko
import pytest

@pytest.fixture(scope="session")
def vsphere_vm(vsphere_vm):
    # Pretend the guest reported another key: a different machine now answers at the clone's address.
    vsphere_vm.host_keys = ("ssh-rsa " + paramiko.RSAKey.generate(2048).get_base64(),)
    return vsphere_vm

def test_a_foreign_host_key_is_refused(vsphere_testinfra_host):
    with pytest.raises(paramiko.BadHostKeyException, match="does not match"):
        vsphere_testinfra_host.check_output("hostname")
"""


@pytest.mark.guests
def test_testinfra_host_refuses_a_host_key_that_is_not_the_guests(inner: Inner, plugin_sim: SimHandle) -> None:
    inner.pytester.makepyfile(test_infra=WRONG_KEY_TESTS)
    outcome = inner.run("--vsphere-template=linux-template", sim=plugin_sim)
    assert outcome.ret == 0, outcome.out
    outcome.result.assert_outcomes(passed=1)
    inner.clean_after(outcome, plugin_sim)


WINDOWS_TESTS = """
def test_winrm_host(vsphere_testinfra_host):
    assert type(vsphere_testinfra_host.backend).NAME == "winrm"
    assert vsphere_testinfra_host.check_output("hostname")
"""


@pytest.mark.guests
def test_testinfra_host_on_a_windows_clone_uses_winrm(inner: Inner, plugin_sim: SimHandle) -> None:
    inner.pytester.makepyfile(test_infra=WINDOWS_TESTS)
    facts = plugin_sim.facts
    outcome = inner.run("--vsphere-template=windows-template", f"--vsphere-guest-user={facts['WINDOWS_GUEST_USER']}",
                        "-W", "ignore::DeprecationWarning", sim=plugin_sim,
                        env={"VSPHERE_GUEST_PASSWORD": facts["WINDOWS_GUEST_PASSWORD"]})
    assert outcome.ret == 0, outcome.out
    outcome.result.assert_outcomes(passed=1)
    inner.clean_after(outcome, plugin_sim)


MISSING_TESTINFRA_CONFTEST = """
import sys
sys.modules["testinfra"] = None  # as if pytest-testinfra were not installed
"""


@pytest.mark.guests
def test_without_testinfra_the_fixture_fails_naming_the_extra(inner: Inner, plugin_sim: SimHandle) -> None:
    inner.pytester.makeconftest(MISSING_TESTINFRA_CONFTEST)
    inner.pytester.makepyfile(test_infra="def test_host(vsphere_testinfra_host):\n    pass\n")
    outcome = inner.run("--vsphere-template=linux-template", sim=plugin_sim)
    outcome.result.assert_outcomes(errors=1)
    assert "vsphere_testinfra_host needs pytest-testinfra: pip install pytest-vsphere-clone[testinfra]" in outcome.out
    assert "Traceback" not in outcome.out
    inner.clean_after(outcome, plugin_sim)


def test_the_plugin_does_not_import_testinfra() -> None:
    code = "import sys, pytest_vsphere_clone.plugin; print(sorted(m for m in sys.modules if m.startswith('testinfra')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
