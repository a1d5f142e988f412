"""Files in and out of a clone: ``put`` / ``get`` over SFTP (the Linux default) or Guest Operations."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_vsphere_clone.client.errors import FileTransferFailed
from pytest_vsphere_clone.plugin.clone import Clone


def test_put_bytes_and_read_them_back(vsphere_vm: Clone) -> None:
    vsphere_vm.put(b"[main]\nlevel = debug\n", "/tmp/example.ini")
    assert vsphere_vm.run("grep level /tmp/example.ini").stdout == "level = debug\n"
    assert vsphere_vm.get("/tmp/example.ini") == b"[main]\nlevel = debug\n"


def test_a_local_file_through_guest_operations(vsphere_vm: Clone, tmp_path: Path) -> None:
    local = tmp_path / "payload.txt"
    local.write_text("no network needed\n")
    vsphere_vm.put(local, "/tmp/payload.txt", via="guest")  # VMware Tools, HTTPS to the ESXi host
    vsphere_vm.get("/tmp/payload.txt", tmp_path / "back.txt")  # SFTP
    assert (tmp_path / "back.txt").read_text() == "no network needed\n"


def test_a_missing_guest_file_is_one_line(vsphere_vm: Clone) -> None:
    with pytest.raises(FileTransferFailed, match="no such file in the guest") as raised:
        vsphere_vm.get("/tmp/never-written")
    assert raised.value.path == "/tmp/never-written"
