"""The cmd.exe of simulated Windows guests: :class:`CmdShell` runs command lines and programs.

Guest Operations (StartProgramInGuest, through cli.py) and the WinRM server run programs through
:class:`CmdShell`. A line is expanded (``%VAR%``), parsed (parser.py) and run against a fixed set
of built-ins and programs, some of which act on the real network namespace (``ipconfig``,
``netsh``). Output uses CRLF line endings.
"""

from __future__ import annotations

import contextlib
import ntpath
import random
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..context import (
    FILE_NOT_FOUND,
    PATH_NOT_FOUND,
    WindowsGuestContext,
    WindowsPathError,
)
from ..powershell import program as powershell_program
from . import builtin, ipconfig_netsh, system_programs, vmware_tools
from .base import (
    CRLF,
    BufferSink,
    CallbackSink,
    CmdResult,
    Environment,
    FileSink,
    Invocation,
    NullSink,
    Program,
    Sink,
)
from .parser import Chain, CmdSyntaxError, Group, Pipeline, Redirect, Sequence, Simple, parse

__all__ = ["INTERNAL", "PROGRAMS", "CmdResult", "CmdShell"]

#: cmd.exe built-ins, recognised even when glued to their arguments (``echo.``, ``cd..``, ``dir/b``).
INTERNAL: dict[str, Program] = dict(builtin.INTERNAL)

#: Programs "installed" on the guest, found by base name with or without a path and ``.exe``.
PROGRAMS: dict[str, Program] = {
    **system_programs.PROGRAMS,
    "ipconfig": ipconfig_netsh.ipconfig,
    "netsh": ipconfig_netsh.netsh,
    "powershell": powershell_program.powershell,
    **vmware_tools.PROGRAMS,
}

#: The only built-ins that reset ERRORLEVEL to 0 on success; the others (echo, type, cd, ...)
#: set it when they fail and otherwise leave it alone, as in cmd.exe.
_CLEARS_ERRORLEVEL = frozenset({"set", "dir"})

#: Characters that end a built-in command name.
_NAME_DELIMITERS = ' \t,;=/.(+\\[]:"'


class _Exit(Exception):
    """``exit`` / ``exit /b``: stop the whole line."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class _IO:
    stdin: str | None
    out: Sink
    err: Sink


def _program_key(token: str) -> str:
    """``"C:\\Windows\\System32\\IPCONFIG.EXE"`` -> ``ipconfig``."""
    name = ntpath.basename(token.strip('"').replace("/", "\\")).lower()
    root, ext = ntpath.splitext(name)
    return root if ext in (".exe", ".com") else name


def _first_token(text: str) -> tuple[str, str]:
    quoted = False
    for index, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif ch in " \t" and not quoted:
            return text[:index], text[index:]
    return text, ""


class CmdShell:
    """One cmd.exe process: a working directory, environment and ERRORLEVEL on a guest.

    ``on_output(stream, text)`` is called as output is produced ("stdout"/"stderr"), so callers can
    stream it; ``cancel`` aborts waits (``sleep``, ``timeout``) as Ctrl+C would.
    """

    def __init__(
        self,
        context: WindowsGuestContext,
        *,
        cwd: str | None = None,
        environment: Mapping[str, str] | None = None,
        cancel: threading.Event | None = None,
        on_output: Callable[[str, str], None] | None = None,
    ) -> None:
        self.context = context
        self.env = Environment(context.environment())
        for key, value in (environment or {}).items():
            self.env[key] = value
        self.cwd = context.absolute(cwd or context.home)
        self.errorlevel = 0
        self.cancel = cancel or threading.Event()
        self._on_output = on_output

    # -- public API ---------------------------------------------------------------------------

    def run(self, command_line: str) -> CmdResult:
        """Run a command line as ``cmd.exe /c`` would; the exit code is the final ERRORLEVEL.

        Each call starts at ERRORLEVEL 0; the working directory and environment carry over.
        """
        self.errorlevel = 0
        line = self.unquote_c(command_line)
        return self._collect(lambda io: self.execute(line, io.stdin, io.out, io.err))

    def run_program(self, program: str, arguments: str = "") -> CmdResult:
        """Start a program directly, as CreateProcess does: no operators, no redirections.

        ``arguments`` is the raw argument string (vSphere's ``GuestProgramSpec.arguments``).
        """

        def start(io: _IO) -> int:
            key = _program_key(program)
            implementation = PROGRAMS.get(key)
            if implementation is None:
                io.err.write(FILE_NOT_FOUND + CRLF)
                return 2  # ERROR_FILE_NOT_FOUND, what CreateProcess reports
            raw = " " + arguments if arguments else ""
            return self._invoke(implementation, key, program, raw, io)

        return self._collect(start)

    def call_program(self, name: str, raw: str, stdin: str | None, out: Sink, err: Sink) -> int | None:
        """Run an installed program (not a built-in) by name; None if there is no such program."""
        key = _program_key(name)
        implementation = PROGRAMS.get(key)
        if implementation is None:
            return None
        return self._invoke(implementation, key, name, raw, _IO(stdin, out, err))

    def execute(self, command_line: str, stdin: str | None, out: Sink, err: Sink) -> int:
        """Parse and run one line on the given streams; returns (and sets) ERRORLEVEL."""
        # cmd.exe /c stops at the first line break.
        line = command_line.split("\n", 1)[0].replace("\r", "")
        try:
            tree = parse(self._expand(line))
        except CmdSyntaxError as exc:
            err.write(str(exc) + CRLF)
            self.errorlevel = 255
            return self.errorlevel
        try:
            self._sequence(tree, _IO(stdin, out, err))
        except _Exit as exc:
            self.errorlevel = exc.code
        return self.errorlevel

    def unquote_c(self, command: str, force: bool = False) -> str:
        """Apply ``cmd /c``'s quote rule to the text after ``/c`` (``force``: the ``/s`` switch).

        Quotes stay only around a lone quoted program name containing whitespace and no special
        characters (``"C:\\Program Files\\app.exe" args``); otherwise the first quote and the last
        one are removed, which is why ``cmd /c "echo a & echo b"`` runs both commands.
        """
        command = command.lstrip(" \t")
        if not command.startswith('"'):
            return command
        closing = command.rfind('"')
        if closing <= 0:
            return command[1:]
        inner = command[1:closing]
        if (
            not force
            and command.count('"') == 2
            and not any(ch in inner for ch in "&<>()@^|")
            and any(ch in inner for ch in " \t")
            and _program_key(inner) in PROGRAMS
        ):
            return command
        return inner + command[closing + 1 :]

    def child(self) -> CmdShell:
        """A nested cmd.exe inheriting directory and environment (``cmd /c`` inside a line)."""
        return CmdShell(self.context, cwd=self.cwd, environment=dict(self.env.items()), cancel=self.cancel)

    def sleep(self, seconds: float) -> bool:
        """Wait like ``timeout``/``sleep``; False if cancelled (Ctrl+C)."""
        return not self.cancel.wait(max(0.0, seconds))

    def host_path(self, path: str) -> Path:
        return self.context.host_path(path, self.cwd)

    def windows_path(self, path: str) -> str:
        """Absolute Windows path for ``path``, spelled like the existing entries on disk."""
        host = self.host_path(path)
        drive = self.context.absolute(path, self.cwd)[:2]
        relative = host.relative_to(self.context.disk_root / drive[0])
        return drive + "\\" + "\\".join(relative.parts)

    # -- execution ----------------------------------------------------------------------------

    def _collect(self, body: Callable[[_IO], int]) -> CmdResult:
        stdout, stderr = BufferSink(), BufferSink()
        callback = self._on_output

        def emit(stream: str) -> Callable[[str], None] | None:
            return None if callback is None else (lambda text: callback(stream, text))

        io = _IO(None, CallbackSink(stdout, emit("stdout")), CallbackSink(stderr, emit("stderr")))
        try:
            code = body(io)
        except _Exit as exc:
            code = exc.code
        self.errorlevel = code
        return CmdResult(code, stdout.value, stderr.value)

    def _expand(self, line: str) -> str:
        """``%VAR%`` expansion, done once for the whole line before parsing (as cmd.exe does)."""

        def dynamic(name: str) -> str | None:
            now = datetime.now()
            values = {
                "CD": self.cwd,
                "ERRORLEVEL": str(self.errorlevel),
                "DATE": now.strftime("%a %m/%d/%Y"),
                "TIME": f"{now.hour:>2}:{now:%M:%S}.{now.microsecond // 10000:02d}",
                "RANDOM": str(random.randint(0, 32767)),
                "CMDCMDLINE": "C:\\Windows\\system32\\cmd.exe",
            }
            return values.get(name.upper())

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in self.env:
                return self.env[name]
            value = dynamic(name)
            # On the command line an undefined variable stays as typed.
            return match.group(0) if value is None else value

        return re.sub(r"%([^%\s][^%]*)%", replace, line)

    def _sequence(self, seq: Sequence, io: _IO) -> int:
        status = 0
        for chain in seq.items:
            status = self._chain(chain, io)
        return status

    def _chain(self, chain: Chain, io: _IO) -> int:
        status = self._pipeline(chain.first, io)
        for op, pipeline in chain.rest:
            if (op == "&&") == (status == 0):
                status = self._pipeline(pipeline, io)
        return status

    def _pipeline(self, pipeline: Pipeline, io: _IO) -> int:
        if len(pipeline.parts) == 1:
            return self._unit(pipeline.parts[0], io)
        stdin = io.stdin
        for part in pipeline.parts[:-1]:
            captured = BufferSink()
            # Each side of a pipe is its own cmd.exe: an ``exit`` there ends only that side.
            with contextlib.suppress(_Exit):
                self._unit(part, _IO(stdin, captured, io.err))
            stdin = captured.value
        try:
            return self._unit(pipeline.parts[-1], _IO(stdin, io.out, io.err))
        except _Exit as exc:
            return exc.code

    def _unit(self, unit: Simple | Group, io: _IO) -> int:
        opened: list[FileSink] = []
        try:
            try:
                redirected = self._redirect(unit.redirects, io, opened)
            except (WindowsPathError, OSError) as exc:
                message = str(exc) if isinstance(exc, WindowsPathError) else PATH_NOT_FOUND
                io.err.write(message + CRLF)
                self.errorlevel = 1
                return 1
            if isinstance(unit, Group):
                return self._sequence(unit.body, redirected)
            return self._simple(unit.text, redirected)
        finally:
            for sink in opened:
                sink.close()

    def _redirect(self, redirects: list[Redirect], io: _IO, opened: list[FileSink]) -> _IO:
        stdin, outputs = io.stdin, {1: io.out, 2: io.err}
        for redirect in redirects:
            if redirect.op in (">", ">>"):
                sink = self._open_sink(redirect.target, redirect.op == ">>", io, opened)
                if redirect.handle in outputs:
                    outputs[redirect.handle] = sink
            elif redirect.op == ">&":
                source = int(redirect.target)
                if redirect.handle in outputs and source in outputs:
                    outputs[redirect.handle] = outputs[source]
            elif redirect.op == "<" and redirect.handle == 0:
                if redirect.target.lower() in ("nul", "nul:"):
                    stdin = ""
                    continue
                path = self.host_path(redirect.target)
                if not path.is_file():
                    raise WindowsPathError(FILE_NOT_FOUND)
                stdin = path.read_bytes().decode("utf-8", "surrogateescape")
        return _IO(stdin, outputs[1], outputs[2])

    def _open_sink(self, target: str, append: bool, io: _IO, opened: list[FileSink]) -> Sink:
        lowered = target.lower().rstrip(":")
        if lowered == "nul":
            return NullSink()
        if lowered == "con":
            return io.out
        path = self.host_path(target)
        if path.is_dir():
            raise WindowsPathError("Access is denied.")
        if not path.parent.is_dir():
            raise WindowsPathError(PATH_NOT_FOUND)
        sink = FileSink(path, append)
        opened.append(sink)
        return sink

    def _simple(self, text: str, io: _IO) -> int:
        text = text.lstrip(" \t;,=")
        if not text.strip():
            return 0  # e.g. a bare "> file", which only creates the file
        match = re.match(r"[A-Za-z]+", text)
        if match and match.group().lower() in INTERNAL:
            end = match.end()
            if end == len(text) or text[end] in _NAME_DELIMITERS:
                name = match.group().lower()
                return self._invoke(INTERNAL[name], name, text[:end], text[end:], io)
        token, rest = _first_token(text)
        if "/" in token and not token.startswith('"'):
            # "ipconfig/all" works in cmd.exe: the switch character ends the program name.
            head, _, tail = token.partition("/")
            if _program_key(head) in PROGRAMS:
                token, rest = head, "/" + tail + rest
        key = _program_key(token)
        implementation = PROGRAMS.get(key)
        if implementation is None:
            io.err.write(
                f"'{token}' is not recognized as an internal or external command,{CRLF}"
                f"operable program or batch file.{CRLF}"
            )
            self.errorlevel = 9009
            return 9009
        return self._invoke(implementation, key, token, rest, io)

    def _invoke(self, implementation: Program, key: str, typed: str, raw: str, io: _IO) -> int:
        invocation = Invocation(self, typed, raw, io.stdin, io.out, io.err)
        code = implementation(invocation)
        if code != 0 or key in _CLEARS_ERRORLEVEL or key not in INTERNAL:
            self.errorlevel = code
        return code

    def raise_exit(self, code: int) -> None:
        """Used by ``exit``: abandon the rest of the line."""
        raise _Exit(code)
