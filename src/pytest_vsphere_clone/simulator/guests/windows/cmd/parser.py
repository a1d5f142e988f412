"""The cmd.exe command-line grammar: a line parsed into sequences, chains, pipelines and commands.

cmd.exe's operators, in the order they bind: ``&`` (sequence), ``&&``/``||`` (chain), ``|``
(pipeline), parentheses (group), and per command the redirections ``>``/``>>``/``2>``/``2>&1``/``<``,
with ``^`` escapes and quotes. ``%VAR%`` expansion happens before parsing (see shell.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Chain", "CmdSyntaxError", "Group", "Parser", "Pipeline", "Redirect", "Sequence", "Simple", "parse"]

_UNEXPECTED = "{} was unexpected at this time."
_SYNTAX = "The syntax of the command is incorrect."


class CmdSyntaxError(Exception):
    """The command line does not parse; cmd.exe prints the message and sets ERRORLEVEL 255."""


@dataclass
class Redirect:
    """``handle`` redirected by ``op`` to ``target`` (a path, or a handle number for ``>&``/``<&``)."""

    handle: int
    op: str  # ">", ">>", "<", ">&", "<&"
    target: str


@dataclass
class Simple:
    """One command: its raw text (minus redirections and ``^``), which commands like echo print verbatim."""

    text: str
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class Group:
    """A parenthesised sequence with the redirections after its closing parenthesis."""

    body: Sequence
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class Pipeline:
    """Commands joined by ``|``; each side runs as its own cmd.exe."""

    parts: list[Simple | Group]


@dataclass
class Chain:
    """A pipeline followed by ``&&``/``||`` pipelines, run on success/failure of what came before."""

    first: Pipeline
    rest: list[tuple[str, Pipeline]] = field(default_factory=list)


@dataclass
class Sequence:
    """Chains separated by ``&``: the whole line, or a group's body."""

    items: list[Chain]


class Parser:
    """Recursive descent over cmd.exe's operators.  Simple commands keep their raw text (minus
    redirections and ``^``), because commands like ``echo`` print it verbatim, trailing spaces included."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def parse(self) -> Sequence:
        return self._sequence(0)

    def _at(self, token: str) -> bool:
        return self.s.startswith(token, self.i)

    def _skip_ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in " \t":
            self.i += 1

    def _sequence(self, depth: int) -> Sequence:
        items: list[Chain] = []
        while True:
            chain = self._chain(depth)
            if chain is not None:
                items.append(chain)
            if self._at("&") and not self._at("&&"):
                if chain is None:
                    raise CmdSyntaxError(_UNEXPECTED.format("&"))
                self.i += 1
                continue
            return Sequence(items)

    def _chain(self, depth: int) -> Chain | None:
        first = self._pipeline(depth)
        rest: list[tuple[str, Pipeline]] = []
        while self._at("&&") or self._at("||"):
            op = self.s[self.i : self.i + 2]
            self.i += 2
            following = self._pipeline(depth)
            if first is None or following is None:
                raise CmdSyntaxError(_UNEXPECTED.format(op))
            rest.append((op, following))
        return None if first is None else Chain(first, rest)

    def _pipeline(self, depth: int) -> Pipeline | None:
        parts = [self._unit(depth)]
        while self._at("|") and not self._at("||"):
            self.i += 1
            parts.append(self._unit(depth))
        if any(part is None for part in parts):
            if len(parts) == 1:
                return None
            raise CmdSyntaxError(_UNEXPECTED.format("|"))
        return Pipeline([part for part in parts if part is not None])

    def _unit(self, depth: int) -> Simple | Group | None:
        self._skip_ws()
        if self._at("@"):
            self.i += 1
            self._skip_ws()
        if self._at("("):
            self.i += 1
            body = self._sequence(depth + 1)
            if not self._at(")"):
                raise CmdSyntaxError(_SYNTAX)
            self.i += 1
            tail = self._simple(depth)
            if tail.text.strip():
                raise CmdSyntaxError(_UNEXPECTED.format(tail.text.split()[0]))
            return Group(body, tail.redirects)
        simple = self._simple(depth)
        if not simple.text.strip() and not simple.redirects:
            return None
        return simple

    def _simple(self, depth: int) -> Simple:
        s = self.s
        buf: list[str] = []
        redirects: list[Redirect] = []
        plain_digit = -1  # index in buf of the last digit that was neither quoted nor escaped
        quoted = False
        while self.i < len(s):
            ch = s[self.i]
            if quoted:
                buf.append(ch)
                quoted = ch != '"'
                self.i += 1
            elif ch == '"':
                buf.append(ch)
                quoted = True
                self.i += 1
            elif ch == "^":
                if self.i + 1 < len(s):
                    buf.append(s[self.i + 1])
                self.i += 2
            elif ch in "&|" or (ch == ")" and depth > 0):
                break
            elif ch in "<>":
                # cmd.exe takes a digit right before '>' as the handle, even in "echo x2>f".
                handle = None
                if buf and plain_digit == len(buf) - 1:
                    handle = int(buf.pop())
                redirects.append(self._redirect(handle, depth))
            else:
                if ch.isdigit():
                    plain_digit = len(buf)
                buf.append(ch)
                self.i += 1
        return Simple("".join(buf), redirects)

    def _redirect(self, handle: int | None, depth: int) -> Redirect:
        s = self.s
        if s[self.i] == ">":
            op = ">>" if self._at(">>") else ">"
            default = 1
        else:
            op, default = "<", 0
        self.i += len(op)
        if self._at("&"):
            self.i += 1
            self._skip_ws()
            if self.i < len(s) and s[self.i].isdigit():
                self.i += 1
                return Redirect(default if handle is None else handle, op[0] + "&", s[self.i - 1])
            raise CmdSyntaxError(_UNEXPECTED.format("&"))
        self._skip_ws()
        target: list[str] = []
        quoted = False
        while self.i < len(s):
            ch = s[self.i]
            if ch == '"':
                quoted = not quoted
            elif quoted:
                target.append(ch)
            elif ch == "^" and self.i + 1 < len(s):
                self.i += 1
                target.append(s[self.i])
            elif ch in " \t<>&|" or (ch == ")" and depth > 0):
                break
            else:
                target.append(ch)
            self.i += 1
        if not target:
            raise CmdSyntaxError(_SYNTAX)
        return Redirect(default if handle is None else handle, op, "".join(target))


def parse(line: str) -> Sequence:
    """The syntax tree of one (already expanded) command line; raises CmdSyntaxError."""
    return Parser(line).parse()
