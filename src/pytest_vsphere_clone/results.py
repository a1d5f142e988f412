"""Results shared by every layer (no dependencies)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CommandResult:
    """Outcome of a command run in a guest, over SSH, WinRM or Guest Operations."""

    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def check(self) -> CommandResult:
        """Return self, or raise CommandFailed when the exit status is not 0."""
        if self.exit_status != 0:
            raise CommandFailed(self)
        return self


class CommandFailed(Exception):
    """A command exited with a non-zero status."""

    def __init__(self, result: CommandResult) -> None:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        super().__init__(f"command exited with status {result.exit_status}: {' | '.join(tail)}")
        self.result = result
