"""The WinRM server's account file: NT hashes only, private, and no change to any environment."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pytest_vsphere_clone.simulator.guests.windows.context import WindowsGuestContext
from pytest_vsphere_clone.simulator.guests.windows.network import LinuxNetwork
from pytest_vsphere_clone.simulator.guests.windows.winrm.accounts import (
    ACCOUNT_FILE_ENV,
    nt_hash,
    read_nt_hash,
    verify_password,
    write_account_file,
)
from pytest_vsphere_clone.simulator.guests.windows.winrm.auth import AuthConfig
from pytest_vsphere_clone.simulator.guests.windows.winrm.server import WinRMServer

PASSWORD = "S3cret pass:word!"


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        # MS-NLMP 4.2.2.1.2 (NTOWFv1 of "Password") and the well-known hashes of "" and "password".
        ("Password", "a4f49c406510bdcab6824ee7c30fd852"),
        ("", "31d6cfe0d16ae931b73c59d7e0c089c0"),
        ("password", "8846f7eaee8fb117ad06bdd830b7586c"),
    ],
)
def test_nt_hash_is_ntowfv1(password: str, expected: str) -> None:
    assert nt_hash(password).hex() == expected


def test_nt_hash_of_long_and_non_ascii_passwords_differs_and_verifies() -> None:
    long = "é" * 40 + "x" * 100  # more than one MD4 block once UTF-16 encoded
    assert nt_hash(long) != nt_hash(long[:-1])
    assert verify_password(long, nt_hash(long))
    assert not verify_password(long[:-1], nt_hash(long))


def test_account_file_is_private_and_holds_no_password(tmp_path: Path) -> None:
    environment = dict(os.environ)
    path = tmp_path / "accounts"
    write_account_file(path, "vagrant", PASSWORD, "win-rm01.example.com")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert PASSWORD not in text
    names = [line.split(":", 1)[0] for line in text.splitlines()]
    assert names == ["vagrant", ".\\vagrant", "WIN-RM01\\vagrant", "win-rm01\\vagrant", "WORKGROUP\\vagrant"]
    assert read_nt_hash(path, "VAGRANT") == nt_hash(PASSWORD)
    assert read_nt_hash(path, "someone") is None
    # No LM hash is kept: its field is random, never the LM hash of any password.
    assert len({line.split(":")[2] for line in text.splitlines()}) == 1
    assert dict(os.environ) == environment
    with pytest.raises(FileExistsError):  # never overwrites (or follows a link planted at) the path
        write_account_file(path, "vagrant", PASSWORD, "win-rm01")


def test_ntlm_needs_the_account_file_in_the_server_environment(tmp_path: Path) -> None:
    path = tmp_path / "accounts"
    write_account_file(path, "vagrant", PASSWORD, "win-rm01")
    environment = dict(os.environ)
    assert os.environ.get(ACCOUNT_FILE_ENV) != str(path)
    with pytest.raises(ValueError, match=ACCOUNT_FILE_ENV):
        AuthConfig("vagrant", path, "win-rm01")
    basic = AuthConfig("vagrant", path, "win-rm01", frozenset({"basic"}))
    assert basic.check_password(PASSWORD) and not basic.check_password(PASSWORD.upper())
    with pytest.raises(ValueError, match="no account"):
        AuthConfig("someone", path, "win-rm01", frozenset({"basic"}))
    context = WindowsGuestContext("win-rm01", tmp_path / "disk", "vagrant", network=LinuxNetwork())
    with pytest.raises(ValueError, match=ACCOUNT_FILE_ENV):
        WinRMServer(context, username="vagrant", account_file=path, port=0)
    assert dict(os.environ) == environment
