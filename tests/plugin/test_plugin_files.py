"""``Clone.put`` / ``Clone.get`` in a real inner run: SFTP and Guest Operations on a Linux clone, Guest
Operations on a Windows clone (read back with cmd.exe's ``type`` over WinRM), and the one-line errors
of a missing local or guest path.

One inner pytest run (pytester subprocess) against the module's simulator with real guests: the
plugin -> pyVmomi -> simulator over HTTPS -> the ESXi host's /guestFile service -> the guest, and
paramiko SFTP to the guest's real sshd.
"""

from __future__ import annotations

import pytest
from plugin_helpers import Inner, SimHandle

pytestmark = pytest.mark.guests

FILES_TESTS = r'''
import hashlib
import os

import pytest

from pytest_vsphere_clone.client import FileTransferFailed

ROUTES = {None: "SFTP", "sftp": "SFTP", "guest": "Guest Operations"}


def test_linux_files(vsphere_vm, tmp_path):
    vm = vsphere_vm
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024 + 7))  # several blocks of every stream
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    for via, route in ROUTES.items():
        name = via or "auto"
        remote = f"/tmp/files-{name}.bin"
        vm.put(big, remote, via=via)
        assert vm.run(f"sha256sum {remote}").stdout.split()[0] == digest
        assert vm.run(f"stat -c %a {remote}").stdout.strip() == "644"
        vm.put(b"hello\n", f"/tmp/hello-{name}", via=via)
        assert vm.run(f"cat /tmp/hello-{name}").stdout == "hello\n"
        assert vm.get(f"/tmp/hello-{name}", via=via) == b"hello\n"
        back = tmp_path / f"back-{name}.bin"
        assert vm.get(remote, back, via=via) is None
        assert hashlib.sha256(back.read_bytes()).hexdigest() == digest

        with pytest.raises(FileTransferFailed) as raised:
            vm.get("/tmp/no-such-file", via=via)
        assert str(raised.value) == (f"get of /tmp/no-such-file from VM {vm.name!r} over {route} failed: no such "
                                     f"file in the guest: check the path (absolute, as the guest spells it)")
        assert (raised.value.reason, raised.value.path) == ("not-found", "/tmp/no-such-file")
        with pytest.raises(FileTransferFailed) as raised:
            vm.put(b"x", "/no-such-dir/x", via=via)
        assert str(raised.value) == (f"put of /no-such-dir/x to VM {vm.name!r} over {route} failed: its directory "
                                     f"does not exist in the guest: create it first (e.g. vm.run('mkdir -p DIR'))")
        with pytest.raises(FileTransferFailed, match=r"the file exists in the guest: pass overwrite=True"):
            vm.put(b"x", remote, via=via, overwrite=False)
        with pytest.raises(FileTransferFailed, match=r"it is a directory or not a regular file in the guest"):
            vm.get("/tmp", via=via)
        assert not (tmp_path / "nothing").exists()
        with pytest.raises(FileTransferFailed):
            vm.get("/tmp/no-such-file", tmp_path / "nothing", via=via)
        assert not (tmp_path / "nothing").exists()  # a failed download leaves no file

    assert sorted(p.name for p in tmp_path.iterdir()) == ["back-auto.bin", "back-guest.bin", "back-sftp.bin",
                                                          "big.bin"]  # no temporary names left
    missing = tmp_path / "missing.txt"
    with pytest.raises(FileTransferFailed) as raised:
        vm.put(missing, "/tmp/x")
    assert str(raised.value) == f"put: local path {missing} does not exist: pass an existing local file, or bytes"
    with pytest.raises(FileTransferFailed, match=r"^put: local path hello does not exist"):
        vm.put("hello", "/tmp/x")  # a str is a path; content is bytes
    with pytest.raises(FileTransferFailed, match=r"is in a directory that does not exist: pass a local path"):
        vm.get("/etc/hostname", tmp_path / "no-dir" / "hostname")
    vm.put(b"alias\n", "/tmp/ssh-alias", via="ssh")  # another name for sftp
    assert vm.get("/tmp/ssh-alias", via="auto") == b"alias\n"
    with pytest.raises(ValueError, match=r"via='ftp' is not one of None, 'auto', 'sftp', 'ssh', 'guest'"):
        vm.put(b"x", "/tmp/x", via="ftp")


def test_windows_files(vsphere_vm_factory, tmp_path):
    win = vsphere_vm_factory(template="windows-template", guest_user=os.environ["WIN_USER"],
                             guest_password=os.environ["WIN_PASSWORD"])
    win.put(b"hello windows\r\n", "C:\\files-bytes.txt")
    assert win.run("type C:\\files-bytes.txt").stdout == "hello windows\r\n"
    local = tmp_path / "local.txt"
    local.write_bytes(b"from a local file\r\n")
    win.put(local, "C:\\files-path.txt", overwrite=False)
    assert win.run("type C:\\files-path.txt").stdout == "from a local file\r\n"
    assert win.get("C:\\files-path.txt") == b"from a local file\r\n"
    win.get("C:\\files-bytes.txt", tmp_path / "back.txt", via="guest")
    assert (tmp_path / "back.txt").read_bytes() == b"hello windows\r\n"
    with pytest.raises(FileTransferFailed) as raised:
        win.get("C:\\no-such-file.txt")
    assert str(raised.value).startswith(f"get of C:\\no-such-file.txt from VM {win.name!r} over Guest Operations "
                                        f"failed: no such file in the guest")
    with pytest.raises(FileTransferFailed, match="pass overwrite=True"):
        win.put(local, "C:\\files-path.txt", overwrite=False)
    with pytest.raises(ValueError, match=r"runs Windows: leave via unset or pass via='guest'"):
        win.put(b"x", "C:\\x.txt", via="sftp")
'''


def test_put_and_get_on_linux_and_windows(inner: Inner, plugin_sim: SimHandle) -> None:
    inner.pytester.makepyfile(test_files=FILES_TESTS)
    namespaces = plugin_sim.namespaces()
    facts = plugin_sim.facts
    outcome = inner.run("--vsphere-template=linux-template", sim=plugin_sim,
                        env={"WIN_USER": facts["WINDOWS_GUEST_USER"], "WIN_PASSWORD": facts["WINDOWS_GUEST_PASSWORD"]},
                        timeout=300)
    assert outcome.ret == 0, outcome.out
    outcome.result.assert_outcomes(passed=2)
    assert facts["WINDOWS_GUEST_PASSWORD"] not in outcome.out
    inner.clean_after(outcome, plugin_sim, namespaces)
