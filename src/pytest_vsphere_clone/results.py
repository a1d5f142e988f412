"""Results shared by every layer (no dependencies)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CommandResult:
    """Outcome of a command run in a guest, over SSH, WinRM or Guest Operations.

    Attributes:
        exit_status: The command's exit status (0: success).
        stdout: Its standard output, decoded as UTF-8 (undecodable bytes replaced).
        stderr: Its standard error, decoded likewise.
    """

    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """True when the exit status is 0."""
        return self.exit_status == 0

    def check(self, what: str = "command") -> CommandResult:
        """Return self, or raise CommandFailed (with the exit status and the output's tail) if it failed."""
        if self.exit_status != 0:
            raise CommandFailed(self, what)
        return self


class CommandFailed(RuntimeError):
    """A command exited with a non-zero status."""

    def __init__(self, result: CommandResult, what: str = "command") -> None:
        detail = result.stderr.strip() or result.stdout.strip() or "no output"
        super().__init__(f"{what} exited with status {result.exit_status}: {detail[-2000:]}")
        self.result = result
