"""Files in and out of a Windows clone: ``put`` / ``get`` go through VMware Tools Guest Operations."""

from __future__ import annotations

from pytest_vsphere_clone.plugin.clone import Clone


def test_put_a_file_and_type_it_over_winrm(windows_vm: Clone) -> None:
    windows_vm.put(b"setting=1\r\n", "C:\\Windows\\Temp\\example.ini")
    assert windows_vm.run("type C:\\Windows\\Temp\\example.ini").stdout == "setting=1\r\n"
    assert windows_vm.get("C:\\Windows\\Temp\\example.ini") == b"setting=1\r\n"
