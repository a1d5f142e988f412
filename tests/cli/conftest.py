"""Fixtures of the ``vsphere-clone`` tests: simulators (with real guests where needed) and a command runner.

Nothing is mocked: the command talks to the bundled simulator over verified HTTPS through
the real client layer, and guest tests drive real guests (network namespaces, as root).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

import pytest
from cli_helpers import Result, Run, assert_no_secrets, connect, secrets_of, sim_env

from pytest_vsphere_clone.cli import main
from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """A fresh simulator without guests (no root needed)."""
    with Simulator(SimulatorConfig()) as simulator:
        yield simulator


@pytest.fixture
def conn(sim: Simulator) -> Iterator[VSphereConnection]:
    connection = connect(sim)
    yield connection
    connection.close()


@pytest.fixture
def guest_conn(guest_sim: Simulator) -> Iterator[VSphereConnection]:
    connection = connect(guest_sim)
    yield connection
    connection.close()


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """``cli(sim, *argv, env={...}, secrets=[...])`` runs ``vsphere-clone`` in-process against ``sim``.

    The environment carries only ``sim``'s VSPHERE_* settings (``env`` overrides; None unsets),
    and every run asserts that no known password shows up in its output.
    """

    def run(sim: Simulator | None, *argv: str, env: Mapping[str, str | None] | None = None,
            secrets: tuple[str, ...] = ()) -> Result:
        for key in [k for k in os.environ if k.startswith("VSPHERE_")]:
            monkeypatch.delenv(key)
        settings: dict[str, str | None] = dict(sim_env(sim)) if sim is not None else {}
        settings.update(env or {})
        for key, value in settings.items():
            if value is not None:
                monkeypatch.setenv(key, value)
        capsys.readouterr()
        status = main(list(argv))
        out, err = capsys.readouterr()
        result = Result(status, out, err)
        assert_no_secrets(result, [*(secrets_of(sim) if sim is not None else []), *secrets])
        return result

    return run
