"""The outcome of a command run in a guest, shared by Guest Operations, SSH and WinRM."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CommandResult:
    """Exit status and decoded output of one command."""

    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """True when the command exited with status 0."""
        return self.exit_status == 0

    def check(self, what: str = "command") -> CommandResult:
        """Return self, or raise ``RuntimeError`` with the exit status and stderr if it failed."""
        if self.exit_status != 0:
            detail = self.stderr.strip() or self.stdout.strip() or "no output"
            raise RuntimeError(f"{what} exited with status {self.exit_status}: {detail[-2000:]}")
        return self
