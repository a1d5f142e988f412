"""The package itself: cheap to import, one-line errors, no secrets in messages."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_vsphere_clone.client import errors


def test_importing_the_client_does_not_load_pyvmomi() -> None:
    code = ("import sys, pytest_vsphere_clone.client as c\n"
            "conn = c.VSphereConnection('vc.example.com', 'u', 'p')\n"
            "c.Marker.new('r'); c.AddressFilter('any'); c.RetryPolicy()\n"
            "assert not [m for m in sys.modules if m.startswith(('pyVmomi', 'pyVim'))], 'pyVmomi was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_lazy_names_resolve() -> None:
    import pytest_vsphere_clone.client as client

    for name in client.__all__:
        assert getattr(client, name) is not None
    with pytest.raises(AttributeError):
        _ = client.NoSuchThing


@pytest.mark.parametrize("error", [
    errors.ConnectionFailed("vc:443", "Connection refused"),
    errors.TlsVerificationFailed("vc", "self-signed\ncertificate"),
    errors.LoginFailed("admin", "vc"),
    errors.TemplateNotFound("x", ["y"]),
    errors.AmbiguousTemplate("x", ["dc/vm/a/x", "dc/vm/b/x"]),
    errors.MissingPrivileges("u", ["A.B", "C.D"], "vm"),
    errors.NoSnapshot("tpl"),
    errors.InvalidInstantSource("tpl", "poweredOff"),
    errors.GuestLoginFailed("vm", "root"),
    errors.NoUsableAddress("vm", 5, "IPv4", ["eth0 169.254.1.1 (link-local)"]),
    errors.WaitTimeout("task", 3, "state=running\nprogress=10%"),
    errors.RetriesExhausted("call", 3, "HostCommunication"),
    errors.OutcomeUnknown("CloneVM_Task", "RemoteDisconnected"),
])
def test_errors_are_one_line_and_name_a_fix(error: errors.VSphereCloneError) -> None:
    message = str(error)
    assert "\n" not in message
    assert any(word in message for word in ("--vsphere-", "vsphere-clone", "grant", "retry", "look for", "raise",
                                            "check"))


def test_no_snapshot_message_says_how_to_fix() -> None:
    message = str(errors.NoSnapshot("ubuntu24"))
    assert message.startswith("template 'ubuntu24' has no snapshot, which a linked clone needs:")
    assert "create a snapshot on ubuntu24" in message and "--vsphere-clone-type=full" in message


def test_many_items_are_clipped() -> None:
    error = errors.AmbiguousTemplate("x", [f"dc/vm/{i}/x" for i in range(20)])
    assert "(12 more)" in str(error)
