"""testinfra against the clone: ``vsphere_testinfra_host`` (``pip install pytest-vsphere-clone[testinfra]``).

Linux clones get testinfra's paramiko backend with the host key pinned to the guest's own;
Windows clones get its winrm backend.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("testinfra", reason="needs the testinfra extra: pip install pytest-vsphere-clone[testinfra]")


def test_hostname_file_and_command_agree(vsphere_testinfra_host: Any) -> None:
    host = vsphere_testinfra_host
    assert host.file("/etc/hostname").exists
    assert host.check_output("hostname") == host.file("/etc/hostname").content_string.strip()


def test_the_guest_runs_sshd(vsphere_testinfra_host: Any) -> None:
    assert vsphere_testinfra_host.run("pgrep -x sshd").rc == 0
