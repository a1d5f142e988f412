"""Which host directories a Windows guest must be shown so that its Python runs (no root needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pytest_vsphere_clone.simulator.guests.host.namespace import python_host_binds


def test_a_venv_under_tmp_is_shown_to_the_guest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    venv = tmp_path / "clone" / ".venv"
    venv.mkdir(parents=True)
    monkeypatch.setattr(sys, "prefix", str(venv))
    assert str(venv) in python_host_binds()  # /tmp is a private tmpfs inside guests


def test_directories_the_guest_sees_anyway_are_not_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "prefix", "/usr")
    monkeypatch.setattr(sys, "base_prefix", "/usr")
    assert "/usr" not in python_host_binds()


def test_nested_directories_need_one_mount(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outer = tmp_path / "project"
    inner = outer / ".venv"
    inner.mkdir(parents=True)
    monkeypatch.setattr(sys, "prefix", str(inner))
    monkeypatch.setattr(sys, "base_prefix", str(outer))
    binds = python_host_binds()
    assert str(outer) in binds and str(inner) not in binds
