"""Fixtures of the plugin-against-vcsim tier (imported by conftest.py).

Per session: the vcsim build (shared by xdist workers), its TLS certificate and the real sshd
the clones "run". Per test: a fresh vcsim with the templates, a Tools player, and a user's shell.
A missing capability (no Go, no govmomi sources, not root) fails the test, never skips it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from go_toolchain import session_go_dir
from local_sshd import SshdGuest, sshd_guest
from plugin_run import UserShell
from vcsim_nudge import nudging
from vcsim_server import Vcsim, VcsimBuild, VcsimError, build_vcsim, make_certificate, run_vcsim
from vcsim_tools import ToolsPlayer, playing_tools


@dataclass
class VcsimTier:
    """One test's vCenter (vcsim), the Tools player on it, the guest behind its clones, and a user's shell."""

    server: Vcsim
    player: ToolsPlayer
    guest: SshdGuest
    shell: UserShell


@pytest.fixture(scope="session")
def vcsim_build(tmp_path_factory: pytest.TempPathFactory) -> VcsimBuild:
    """vcsim built once per session (the directory is shared by xdist workers and keyed by the source)."""
    try:
        return build_vcsim(session_go_dir(tmp_path_factory))
    except VcsimError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def vcsim_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("vcsim-tls"))


@pytest.fixture(scope="session")
def guest_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdGuest]:
    """The one real sshd every clone's reported address leads to."""
    try:
        context = sshd_guest(tmp_path_factory.mktemp("sshd"))
        guest = context.__enter__()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield guest
    finally:
        context.__exit__(None, None, None)


@pytest.fixture
def vcsim_tier(vcsim_build: VcsimBuild, vcsim_certificate: tuple[Path, Path], guest_sshd: SshdGuest,
               tmp_path: Path) -> Iterator[VcsimTier]:
    """A fresh vcsim with the templates, its Tools player and a user's shell, for one test.

    The nudge works around vcsim's late first updates of new property filters (vcsim_nudge.py).
    """
    with run_vcsim(vcsim_build.binary, tmp_path / "vcsim", vcsim_certificate) as server, nudging(server), \
            playing_tools(server, guest_sshd.addresses) as player:
        yield VcsimTier(server, player, guest_sshd, UserShell(tmp_path / "user", server, guest_sshd))
