"""A Windows suite over WinRM, using the named fixture ``windows_vm`` from pytest.ini."""

from __future__ import annotations

from pytest_vsphere_clone.plugin.clone import Clone


def test_ipconfig_shows_the_discovered_address(windows_vm: Clone) -> None:
    assert windows_vm.os == "windows"
    result = windows_vm.run("ipconfig")
    assert result.exit_status == 0
    assert windows_vm.ip in result.stdout


def test_pywinrm_session_runs_powershell(windows_vm: Clone) -> None:
    response = windows_vm.winrm().run_ps("hostname")
    assert response.status_code == 0
    assert response.std_out.strip()


def test_unknown_commands_fail_as_cmd_does(windows_vm: Clone) -> None:
    result = windows_vm.run("no-such-tool")
    assert result.exit_status == 9009
    assert "is not recognized" in result.stderr
