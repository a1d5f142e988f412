"""The Go client of the conformance tier: build it once per session and run its scenarios.

``go_client/`` is our own program on Debian's govmomi library (golang-github-vmware-govmomi-dev, 0.24),
built in GOPATH mode against /usr/share/gocode with a private GOCACHE. Each scenario prints one line per
step, ``PASS <step>: <detail>`` or ``FAIL <step>: <reason>``, and exits non-zero when a step failed. A
scenario that needs the harness to act prints ``WAIT <action>`` and reads a line once it is done.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from go_toolchain import GoBinary, GoToolchainError, build

SOURCE_DIR = Path(__file__).parent / "go_client"
BINARY_NAME = "govmomi-conformance"


class GoClientError(RuntimeError):
    """The Go client could not be built; the message says what is missing."""


GoBuild = GoBinary


def build_go_client(shared_dir: Path) -> GoBuild:
    """The conformance client built from SOURCE_DIR into ``shared_dir`` (see go_toolchain.build)."""
    try:
        return build(SOURCE_DIR, BINARY_NAME, shared_dir, needs="find")
    except GoToolchainError as exc:
        raise GoClientError(str(exc)) from None


@dataclass(frozen=True)
class ScenarioResult:
    """What one scenario run printed and how it ended."""

    name: str
    returncode: int
    lines: list[str]
    stderr: str

    @property
    def failures(self) -> list[str]:
        return [line for line in self.lines if line.startswith("FAIL ")]

    def report(self) -> str:
        """The whole transcript, for an assertion message."""
        text = "\n".join(self.lines)
        if self.stderr.strip():
            text += "\n--- stderr ---\n" + self.stderr.strip()
        return f"scenario {self.name} exited {self.returncode}:\n{text}"


def run_scenario(binary: Path, name: str, env: Mapping[str, str],
                 actions: Mapping[str, Callable[[], None]] | None = None, timeout: float = 300.0) -> ScenarioResult:
    """Run scenario ``name``; a ``WAIT <action>`` line runs ``actions[action]`` and then lets the client go on."""
    actions = actions or {}
    process = subprocess.Popen([str(binary), "-timeout", f"{int(timeout)}s", name], env={**os.environ, **env},
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # The client's own -timeout ends it; this kill is the backstop for a client that hangs anyway.
    killer = threading.Timer(timeout + 30.0, process.kill)
    killer.start()
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.append(process.stderr.read()))  # type: ignore[union-attr]
    reader.start()
    lines: list[str] = []
    try:
        assert process.stdout is not None and process.stdin is not None
        for raw in process.stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            if line.startswith("WAIT "):
                action = line.removeprefix("WAIT ")
                if action not in actions:
                    lines.append(f"FAIL harness: no action {action!r} for this scenario")
                    process.kill()
                    break
                actions[action]()
                process.stdin.write("done\n")
                process.stdin.flush()
        returncode = process.wait()
    finally:
        killer.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join()
        if process.stdin is not None:
            process.stdin.close()
    return ScenarioResult(name, returncode, lines, "".join(stderr))
