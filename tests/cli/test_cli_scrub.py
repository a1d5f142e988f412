"""The commands' safety-net scrub: a password is replaced only where it stands as a whole value.

With the vCenter password ``pass``, ``doctor`` printed "read the ***word": the scrub replaced
substrings. It now replaces whole values of at least 4 characters and never touches words
that merely contain one.
"""

from __future__ import annotations

import argparse
import json
import re

import pytest

from pytest_vsphere_clone.cli import main
from pytest_vsphere_clone.commands._common import Console
from pytest_vsphere_clone.simulator import Simulator


def console(password: str | None = None, guest_password: str | None = None) -> Console:
    return Console(argparse.Namespace(password=password, guest_password=guest_password, command="doctor"))


@pytest.mark.parametrize(("text", "scrubbed"), [
    ("read the password; pass --ca-bundle", "read the password; *** --ca-bundle"),
    ("--password=pass", "--password=***"),
    ("https://user:pass@vc.example/sdk", "https://user:***@vc.example/sdk"),
    ("'pass'", "'***'"),
    ("passes, bypass, pass_word, pass2", "passes, bypass, pass_word, pass2"),
])
def test_only_whole_values_are_replaced(monkeypatch: pytest.MonkeyPatch, text: str, scrubbed: str) -> None:
    monkeypatch.delenv("VSPHERE_PASSWORD", raising=False)
    monkeypatch.delenv("VSPHERE_GUEST_PASSWORD", raising=False)
    assert console("pass").scrub(text) == scrubbed


def test_values_with_punctuation_at_their_edges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VSPHERE_PASSWORD", raising=False)
    monkeypatch.setenv("VSPHERE_GUEST_PASSWORD", "!Guest-1!")
    scrub = console("S3cret.").scrub
    assert scrub("login as root with S3cret. failed") == "login as root with *** failed"
    assert scrub("xS3cret.") == "xS3cret."  # part of a longer word: not the value
    assert scrub("guest:!Guest-1!x") == "guest:***x"  # its edges are not word characters: no boundary needed


def test_short_values_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VSPHERE_PASSWORD", raising=False)
    monkeypatch.delenv("VSPHERE_GUEST_PASSWORD", raising=False)
    assert console("abc").scrub("abc is too short to find reliably") == "abc is too short to find reliably"


def test_doctor_with_a_password_that_is_part_of_words(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str], sim: Simulator) -> None:
    sim.add_user("short@vsphere.local", "pass")
    for key in ("VSPHERE_CA_BUNDLE", "VSPHERE_GUEST_USER", "VSPHERE_GUEST_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("VSPHERE_HOST", f"{sim.host}:{sim.port}")
    monkeypatch.setenv("VSPHERE_USER", "short@vsphere.local")
    monkeypatch.setenv("VSPHERE_PASSWORD", "pass")
    status = main(["doctor", "--insecure"])
    out, err = capsys.readouterr()
    assert status == 0, out + err
    tls = next(line for line in out.splitlines() if " tls: " in line)
    assert "read the password; use --ca-bundle" in tls
    # No word lost a part to the scrub. (Where "pass" stands alone it is the password's whole value,
    # which a scrub cannot tell from the verb.)
    assert not re.search(r"\w\*\*\*|\*\*\*\w", out + err), out + err
    assert "logged in as 'short@vsphere.local'" in out


def test_json_output_is_scrubbed_before_encoding(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # JSON escapes a quote or backslash in a password: scrubbing the encoded text would miss it.
    monkeypatch.delenv("VSPHERE_PASSWORD", raising=False)
    monkeypatch.delenv("VSPHERE_GUEST_PASSWORD", raising=False)
    secret = 'se"cr\\et-1'
    console(secret).json({"detail": f"login with {secret} failed", secret: [secret, 1, None]})
    out = capsys.readouterr().out
    assert json.loads(out) == {"detail": "login with *** failed", "***": ["***", 1, None]}
    assert "cr" not in out
