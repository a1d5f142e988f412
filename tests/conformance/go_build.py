"""The Go client of the conformance tier: build it once per session and run its scenarios.

``go_client/`` is our own program on Debian's govmomi library (golang-github-vmware-govmomi-dev, 0.24),
built in GOPATH mode against /usr/share/gocode with a private GOCACHE. Each scenario prints one line per
step, ``PASS <step>: <detail>`` or ``FAIL <step>: <reason>``, and exits non-zero when a step failed. A
scenario that needs the harness to act prints ``WAIT <action>`` and reads a line once it is done.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

SOURCE_DIR = Path(__file__).parent / "go_client"
#: Where Debian's golang-github-vmware-govmomi-dev puts the govmomi sources.
GOCODE = Path("/usr/share/gocode")
BINARY_NAME = "govmomi-conformance"


class GoClientError(RuntimeError):
    """The Go client could not be built; the message says what is missing."""


@dataclass(frozen=True)
class GoBuild:
    """A built client and what the build cost."""

    binary: Path
    seconds: float  # 0.0 when another xdist worker built it


def build_go_client(shared_dir: Path) -> GoBuild:
    """``shared_dir/govmomi-conformance`` built from SOURCE_DIR, once for every xdist worker sharing the dir."""
    go = shutil.which("go")
    if go is None or not (GOCODE / "src/github.com/vmware/govmomi/find").is_dir():
        raise GoClientError("the Go conformance client needs golang-go and golang-github-vmware-govmomi-dev "
                            "(.ci/setup installs them)")
    shared_dir.mkdir(parents=True, exist_ok=True)
    binary = shared_dir / BINARY_NAME
    with open(shared_dir / f"{BINARY_NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the first worker builds, the others wait and reuse
        if binary.exists():
            return GoBuild(binary, 0.0)
        work = shared_dir / "go-build"
        env = {**os.environ, "GOPATH": f"{work / 'gopath'}:{GOCODE}", "GO111MODULE": "off",
               "GOCACHE": str(work / "gocache"), "GOFLAGS": "", "GOTOOLCHAIN": "local"}
        start = time.monotonic()
        done = subprocess.run([go, "build", "-o", str(binary) + ".tmp", "."], cwd=SOURCE_DIR, env=env,
                              capture_output=True, text=True, timeout=900)
        seconds = time.monotonic() - start
        # The compiled packages serve this one build only.
        shutil.rmtree(work, ignore_errors=True)
        if done.returncode != 0:
            raise GoClientError(f"go build of {SOURCE_DIR} failed:\n{done.stderr}")
        os.replace(str(binary) + ".tmp", binary)
        return GoBuild(binary, seconds)


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
