"""Building blocks shared by the cmd.exe dialect and its programs: results, output sinks, invocations."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .shell import CmdShell

__all__ = [
    "CRLF",
    "BufferSink",
    "CallbackSink",
    "CmdResult",
    "Environment",
    "FileSink",
    "Invocation",
    "NullSink",
    "Program",
    "Sink",
    "leading_int",
    "split_args",
    "text_to_crlf",
]

CRLF = "\r\n"

#: Exit code of a process stopped by Ctrl+C (STATUS_CONTROL_C_EXIT).
CTRL_C_EXIT = 0xC000013A


@dataclass(frozen=True)
class CmdResult:
    """Outcome of a command line: what cmd.exe would exit with and what it printed (CRLF text)."""

    exit_code: int
    stdout: str
    stderr: str


class Sink(Protocol):
    def write(self, text: str) -> None: ...


class BufferSink:
    """Collects text in memory (pipes, results)."""

    def __init__(self) -> None:
        self._parts: list[str] = []

    def write(self, text: str) -> None:
        self._parts.append(text)

    @property
    def value(self) -> str:
        return "".join(self._parts)


class NullSink:
    """``>nul``."""

    def write(self, text: str) -> None:
        pass


class CallbackSink:
    """Forwards every write to a callback, so a WinRM client sees output while a line still runs."""

    def __init__(self, forward: Sink, callback: Callable[[str], None] | None) -> None:
        self._forward = forward
        self._callback = callback

    def write(self, text: str) -> None:
        self._forward.write(text)
        if self._callback is not None and text:
            self._callback(text)


class FileSink:
    """A redirection target on the guest disk; text is stored as UTF-8 (lone surrogates round-trip bytes)."""

    def __init__(self, path: Path, append: bool) -> None:
        self._file: IO[bytes] = path.open("ab" if append else "wb")

    def write(self, text: str) -> None:
        self._file.write(text.encode("utf-8", "surrogateescape"))

    def close(self) -> None:
        self._file.close()


class Environment(MutableMapping[str, str]):
    """Environment variables as Windows has them: names case-insensitive, spelling preserved."""

    def __init__(self, initial: dict[str, str] | None = None) -> None:
        self._data: dict[str, tuple[str, str]] = {}
        for key, value in (initial or {}).items():
            self[key] = value

    def __getitem__(self, key: str) -> str:
        return self._data[key.upper()][1]

    def __setitem__(self, key: str, value: str) -> None:
        existing = self._data.get(key.upper())
        self._data[key.upper()] = (existing[0] if existing else key, value)

    def __delitem__(self, key: str) -> None:
        del self._data[key.upper()]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._data.values())

    def __len__(self) -> int:
        return len(self._data)

    def copy(self) -> Environment:
        return Environment(dict(self.items()))


@dataclass
class Invocation:
    """One command about to run: its name as typed, the raw rest of the line, and its streams."""

    shell: CmdShell
    name: str
    #: The text after the command name, including the delimiter that ended the name.
    raw: str
    stdin: str | None
    out: Sink
    err: Sink

    @property
    def args(self) -> list[str]:
        return split_args(self.raw)

    def print(self, text: str = "") -> None:
        self.out.write(text + CRLF)

    def error(self, text: str) -> None:
        self.err.write(text + CRLF)


#: A command implementation: writes to the invocation's streams and returns the exit code.
Program = Callable[[Invocation], int]


def split_args(text: str) -> list[str]:
    """Split arguments the way most Windows programs do: whitespace separates, quotes group."""
    args: list[str] = []
    current: list[str] = []
    in_arg = quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
            in_arg = True
        elif ch in " \t" and not quoted:
            if in_arg:
                args.append("".join(current))
                current, in_arg = [], False
        else:
            current.append(ch)
            in_arg = True
    if in_arg:
        args.append("".join(current))
    return args


def leading_int(text: str, default: int) -> int:
    """The integer ``text`` starts with (after blanks), else ``default``: how ``exit`` and ``timeout`` read theirs."""
    match = re.match(r"[+-]?\d+", text.strip())
    return int(match.group()) if match else default


def text_to_crlf(text: str) -> str:
    """Normalise line endings to CRLF (for text this dialect generates, never for file contents)."""
    return re.sub(r"\r?\n", CRLF, text)
