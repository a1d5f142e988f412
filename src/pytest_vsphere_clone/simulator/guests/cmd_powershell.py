"""A tiny PowerShell for the simulated Windows guest: enough for ``pywinrm``'s ``run_ps``.

``powershell -EncodedCommand <base64 UTF-16LE>`` (what ``run_ps`` sends), ``-Command`` and ``-File``
run scripts made of statements separated by ``;`` or new lines.  Supported: string literals and
``$env:X`` / ``$variables`` (with interpolation in double quotes), assignments, ``$i++``/``$i--``,
``exit N``, ``while (...) { ... }``, ``if (...) { ... } else { ... }``, ``break``, conditions made of
``-not``, ``-and``, ``-or`` and the comparisons ``-eq -ne -lt -le -gt -ge -like -notlike``,
``Write-Output``/``echo``/``Write-Host``/``Write-Error``, ``Get-NetIPAddress`` (real interfaces;
``-AddressFamily``, ``-PrefixOrigin``, ``-AddressState``, ``-InterfaceAlias``, ``-InterfaceIndex``),
``-ErrorAction SilentlyContinue``, ``[Diagnostics.Stopwatch]::StartNew()``, ``Get-Content``,
``Test-Path``, ``Start-Sleep``,
``(...).Property``, pipes into ``Out-Null``, ``Out-String`` and ``Select-Object
-ExpandProperty/-First``, and native programs (``hostname``, ``ipconfig``, ``cmd /c ...``).
Anything else fails as PowerShell does, with exit code 1. Starting powershell.exe takes the
guest's ``powershell_start`` time (the latency profile's), as the real one's start-up does.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from .cmd_base import CRLF, CTRL_C_EXIT, BufferSink, Invocation, Sink, split_args
from .cmd_context import Adapter, IpAddress, WindowsPathError

__all__ = ["powershell"]

class Stopwatch:
    """``[Diagnostics.Stopwatch]::StartNew()``: its Elapsed* properties read the time when asked."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def member(self, name: str) -> int | None:
        elapsed = time.monotonic() - self.started
        return {"elapsedmilliseconds": int(elapsed * 1000), "elapsedticks": int(elapsed * 10_000_000)}.get(
            name.lower())

    def __str__(self) -> str:
        return "System.Diagnostics.Stopwatch"


Value = str | int | float | bool | None | dict[str, object] | Stopwatch
_STOPWATCH = re.compile(r"(?i)\[(system\.)?diagnostics\.stopwatch\]::startnew\(\)")

_NOT_RECOGNIZED = (
    "The term '{0}' is not recognized as the name of a cmdlet, function, script file, or operable "
    "program. Check the spelling of the name, or if a path was included, verify that the path is correct "
    "and try again."
)

#: powershell.exe parameters: (full name, accepted short forms).
_PARAMETERS = {
    "command": ("c",),
    "encodedcommand": ("e", "ec", "enc"),
    "executionpolicy": ("ex", "ep"),
    "file": ("f",),
    "noprofile": ("nop",),
    "noninteractive": ("noni",),
    "nologo": ("nol",),
    "noexit": ("noe",),
    "inputformat": ("if", "inp"),
    "outputformat": ("of", "o"),
    "windowstyle": ("w",),
    "version": ("v",),
    "sta": (),
    "mta": (),
}
_TAKES_VALUE = frozenset({"executionpolicy", "inputformat", "outputformat", "windowstyle", "version"})


def _parameter(word: str) -> str | None:
    name = word[1:].lower()
    for full, aliases in _PARAMETERS.items():
        if name == full or name in aliases or (len(name) >= 3 and full.startswith(name)):
            return full
    return None


class _ExitScript(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _Break(Exception):
    """``break``: leave the innermost loop."""


#: Comparison operators of conditions (case-insensitive, as PowerShell's defaults are).
_COMPARISONS = ("-eq", "-ne", "-lt", "-le", "-gt", "-ge", "-like", "-notlike")
_SILENT_ACTIONS = ("silentlycontinue", "ignore", "0")


def _balanced(text: str, start: int, opening: str, closing: str) -> tuple[str, str]:
    """The text inside the bracket opening at ``text[start]`` and the text after its match."""
    depth, quote = 0, ""
    for index in range(start, len(text)):
        ch = text[index]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == opening:
            depth += 1
        elif ch == closing:
            depth -= 1
            if depth == 0:
                return text[start + 1 : index], text[index + 1 :]
    raise _ScriptError(f"Missing closing '{closing}' in statement block or type definition.",
                       "ParserError", "MissingEndCurlyBrace" if closing == "}" else "MissingEndParenthesisInExpression")


def _truthy(values: list[Value]) -> bool:
    """PowerShell's truth of a result: nothing is false, one value by itself, several are true."""
    if not values:
        return False
    if len(values) > 1:
        return True
    value = values[0]
    return bool(value) if not isinstance(value, dict) else True


def _number(value: Value) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _compare(left: Value, operator: str, right: Value) -> bool:
    if operator in ("-like", "-notlike"):
        matched = fnmatch.fnmatch(_scalar(left).lower(), _scalar(right).lower())
        return matched if operator == "-like" else not matched
    a, b = _number(left), _number(right)
    pair: tuple[object, object] = (a, b) if a is not None and b is not None else (_scalar(left).lower(),
                                                                                  _scalar(right).lower())
    x, y = pair
    return {"-eq": x == y, "-ne": x != y, "-lt": x < y, "-le": x <= y,  # type: ignore[operator]
            "-gt": x > y, "-ge": x >= y}[operator]  # type: ignore[operator]


class _ScriptError(Exception):
    """A PowerShell error record: message, category and id, reported against a statement."""

    def __init__(self, message: str, category: str, error_id: str, target: str = "") -> None:
        super().__init__(message)
        self.category = category
        self.error_id = error_id
        self.target = target


@dataclass
class _Token:
    kind: str  # "str" | "xstr" (expandable) | "word" | "var" | "paren" | "pipe"
    text: str
    column: int
    member: str | None = None


@dataclass
class _Statement:
    text: str
    line: int
    column: int
    tokens: list[_Token] = field(default_factory=list)


def _statements(script: str) -> Iterator[_Statement]:
    """Split on ``;`` and new lines outside quotes and brackets, remembering positions for errors."""
    line, column, start_line, start_column = 1, 1, 1, 1
    depth, quote = 0, ""
    current: list[str] = []
    for ch in script + "\n":
        boundary = not quote and depth == 0 and ch in ";\n"
        if boundary:
            text = "".join(current).strip()
            if text:
                offset = len("".join(current)) - len("".join(current).lstrip())
                yield _Statement(text, start_line, start_column + offset)
            current = []
        else:
            current.append(ch)
            if quote:
                quote = "" if ch == quote else quote
            elif ch in "'\"":
                quote = ch
            elif ch in "({":
                depth += 1
            elif ch in ")}":
                depth = max(0, depth - 1)
        if ch == "\n":
            line, column = line + 1, 1
        else:
            column += 1
        if boundary:
            start_line, start_column = line, column
    text = "".join(current).strip()
    if text:  # an unclosed bracket or quote: the statement runs, and fails to parse, as in PowerShell
        yield _Statement(text, start_line, start_column)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in " \t\r":
            i += 1
            continue
        start = i
        if ch == "|":
            tokens.append(_Token("pipe", "|", start))
            i += 1
            continue
        if ch in "'\"":
            i += 1
            body: list[str] = []
            while i < len(text):
                if text[i] == ch and text[i + 1 : i + 2] == ch:  # doubled quote = literal quote
                    body.append(ch)
                    i += 2
                elif text[i] == ch:
                    break
                elif ch == '"' and text[i] == "`" and i + 1 < len(text):
                    body.append(text[i : i + 2])
                    i += 2
                else:
                    body.append(text[i])
                    i += 1
            i += 1
            tokens.append(_Token("str" if ch == "'" else "xstr", "".join(body), start))
            continue
        if ch == "(":
            depth, i = 1, i + 1
            while i < len(text) and depth:
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
            token = _Token("paren", text[start + 1 : i - 1], start)
        else:
            while i < len(text) and text[i] not in " \t|":
                i += 1
            word = text[start:i]
            token = _Token("var" if word.startswith("$") else "word", word, start)
            if token.kind == "var" and "." in word:
                token.text, token.member = word.split(".", 1)
        if token.kind == "paren":
            member = re.match(r"\.(\w+)", text[i:])
            if member:
                token.member = member.group(1)
                i += member.end()
        tokens.append(token)
    return tokens


def _format(values: list[Value]) -> str:
    """PowerShell's default formatting: scalars one per line, objects as lists."""
    lines: list[str] = []
    objects = False
    for value in values:
        if isinstance(value, dict):
            objects = True
            width = max(len(k) for k in value)
            lines.append("")
            lines += [f"{k:<{width}} : {_scalar(v)}" for k, v in value.items()]
        elif value is not None:
            lines.append(_scalar(value))
    if objects:
        lines += ["", ""]
    return "".join(line + CRLF for line in lines)


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return "" if value is None else str(value)


def _lifetime(seconds: int | None) -> str:
    if seconds is None:
        return "Infinite ([TimeSpan]::MaxValue)"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{days}." if days else "") + f"{hours:02d}:{minutes:02d}:{secs:02d}"


def _net_ip_address(adapter: Adapter, address: IpAddress) -> dict[str, object]:
    loopback = adapter.interface.loopback
    link = address.scope == "link"
    origin = "WellKnown" if loopback or link else ("Dhcp" if address.dynamic else "Manual")
    suffix = "WellKnown" if loopback else ("Link" if link else ("Dhcp" if address.dynamic else "Manual"))
    shown = f"{address.address}%{adapter.interface.index}" if link else address.address
    return {
        "IPAddress": shown,
        "InterfaceIndex": adapter.interface.index,
        "InterfaceAlias": adapter.alias,
        "AddressFamily": "IPv4" if address.family == 4 else "IPv6",
        "Type": "Unicast",
        "PrefixLength": address.prefix_length,
        "PrefixOrigin": origin,
        "SuffixOrigin": suffix,
        "AddressState": "Deprecated" if address.preferred_lifetime == 0 else "Preferred",
        "ValidLifetime": _lifetime(address.valid_lifetime),
        "PreferredLifetime": _lifetime(address.preferred_lifetime),
        "SkipAsSource": False,
        "PolicyStore": "ActiveStore",
    }


class _Runner:
    """Runs one script for one ``powershell.exe`` invocation."""

    def __init__(self, inv: Invocation) -> None:
        self.inv = inv
        self.shell = inv.shell
        self.variables: dict[str, Value] = {"null": None, "true": True, "false": False, "lastexitcode": 0}
        self.failed = False
        self.errors = BufferSink()

    def run_block(self, statements: Iterator[_Statement], out: Sink) -> None:
        """Run statements in order; a statement's error is reported and the next one runs (as
        PowerShell's non-terminating errors do). ``exit`` and ``break`` leave the block."""
        for statement in statements:
            try:
                self.failed = False
                self.run_statement(statement, out)
            except _ScriptError as exc:
                self.errors.write(_error_text(exc, statement))
                self.failed = True

    # -- values -------------------------------------------------------------------------------

    def _variable(self, token: _Token) -> list[Value]:
        name = token.text[1:]
        if name.lower().startswith("env:"):
            value: Value = self.shell.env.get(name[4:])
        elif name.lower() in ("home", "pwd"):
            value = self.shell.context.home if name.lower() == "home" else self.shell.cwd
        else:
            value = self.variables.get(name.lower())
        return self._member([value], token.member)

    def _member(self, values: list[Value], member: str | None) -> list[Value]:
        if member is None:
            return values
        result: list[Value] = []
        for value in values:
            if isinstance(value, dict):
                match = next((k for k in value if k.lower() == member.lower()), None)
                result.append(value[match] if match else None)  # type: ignore[arg-type]
            elif isinstance(value, str) and member.lower() == "length":
                result.append(len(value))
            elif isinstance(value, Stopwatch):
                result.append(value.member(member))
        return result

    def _expand(self, text: str) -> str:
        escapes = {"n": "\n", "r": "\r", "t": "\t", "0": "\0", "`": "`", '"': '"', "$": "$"}
        text = re.sub(
            r"`(.)", lambda m: escapes.get(m.group(1), m.group(1)) if m.group(1) != "$" else "\x00$", text
        )

        def variable(match: re.Match[str]) -> str:
            if match.start() > 0 and text[match.start() - 1] == "\x00":
                return match.group(0)
            values = self._variable(_Token("var", match.group(0), 0))
            return " ".join(_scalar(v) for v in values)

        return re.sub(r"\$(?:env:)?\w+", variable, text).replace("\x00", "")

    def evaluate(self, token: _Token) -> list[Value]:
        if token.kind == "str":
            return [token.text]
        if token.kind == "xstr":
            return [self._expand(token.text)]
        if token.kind == "var":
            return self._variable(token)
        if token.kind == "paren":
            try:
                values = self.pipeline(_tokenize(token.text), token.text)
            except _ScriptError as exc:
                if exc.category == "ParserError" or exc.error_id == "CommandNotFoundException":
                    raise
                # A cmdlet's non-terminating error: reported, and the expression yields nothing.
                self.errors.write(_error_text(exc, _Statement(token.text, 1, token.column + 2)))
                self.failed = True
                values = []
            return self._member(values, token.member)
        if re.fullmatch(r"-?\d+", token.text):
            return [int(token.text)]
        return [token.text]

    # -- statements ---------------------------------------------------------------------------

    def run_statement(self, statement: _Statement, out: Sink) -> None:
        text = statement.text
        if self._flow(text, out):
            return
        exit_match = re.fullmatch(r"(?i)exit(?:\s+(.*))?", text)
        if exit_match:
            values = self.evaluate(_tokenize(exit_match.group(1))[0]) if exit_match.group(1) else [0]
            code = values[0] if values and isinstance(values[0], int) else 0
            raise _ExitScript(int(code))
        assign = re.fullmatch(r"\$(env:)?(\w+)\s*=\s*(.+)", text, re.IGNORECASE)
        if assign:
            values = self.pipeline(_tokenize(assign.group(3)), assign.group(3))
            value = values[0] if len(values) == 1 else " ".join(_scalar(v) for v in values)
            if assign.group(1):
                self.shell.env[assign.group(2)] = _scalar(value)
            else:
                self.variables[assign.group(2).lower()] = value
            return
        out.write(_format(self.pipeline(_tokenize(text), text, out)))

    # -- flow control ---------------------------------------------------------------------------

    def _flow(self, text: str, out: Sink) -> bool:
        """Run ``text`` if it is a loop, a branch, ``break`` or ``$i++``; False if it is none."""
        if text.lower() == "break":
            raise _Break
        step = re.fullmatch(r"\$(\w+)\s*(\+\+|--)", text)
        if step:
            current = _number(self.variables.get(step.group(1).lower())) or 0
            self.variables[step.group(1).lower()] = int(current) + (1 if step.group(2) == "++" else -1)
            return True
        keyword = re.match(r"(?i)(while|if)\s*(?=\()", text)
        if not keyword:
            return False
        condition, rest = _balanced(text, keyword.end(), "(", ")")
        body, rest = self._block_text(rest)
        if keyword.group(1).lower() == "while":
            if rest.strip():
                raise _ScriptError(f"Unexpected token '{rest.strip()}' in expression or statement.",
                                   "ParserError", "UnexpectedToken")
            while self.condition(condition):
                try:
                    self.run_block(_statements(body), out)
                except _Break:
                    break
            return True
        otherwise = ""
        if rest.strip():
            tail = re.match(r"(?i)\s*else\s*(?=\{)", rest)
            if not tail:
                raise _ScriptError(f"Unexpected token '{rest.strip()}' in expression or statement.",
                                   "ParserError", "UnexpectedToken")
            otherwise, rest = self._block_text(rest[tail.end():])
        self.run_block(_statements(body if self.condition(condition) else otherwise), out)
        return True

    @staticmethod
    def _block_text(text: str) -> tuple[str, str]:
        stripped = text.lstrip()
        if not stripped.startswith("{"):
            raise _ScriptError("Missing statement block.", "ParserError", "MissingStatementBlock")
        return _balanced(stripped, 0, "{", "}")

    def condition(self, text: str) -> bool:
        """A condition: clauses joined by ``-and``/``-or`` (left to right, short-circuit), each
        ``[-not] operand`` or ``operand -op operand``."""
        clauses: list[list[_Token]] = [[]]
        joins: list[str] = []
        for token in _tokenize(text):
            if token.kind == "word" and token.text.lower() in ("-and", "-or"):
                joins.append(token.text.lower())
                clauses.append([])
            else:
                clauses[-1].append(token)
        result = self._clause(clauses[0])
        for join, clause in zip(joins, clauses[1:], strict=True):
            if result == (join == "-and"):  # -and goes on while true, -or while false
                result = self._clause(clause)
        return result

    def _clause(self, tokens: list[_Token]) -> bool:
        negate = False
        while tokens and tokens[0].kind == "word" and tokens[0].text.lower() in ("-not", "!"):
            negate, tokens = not negate, tokens[1:]
        if len(tokens) == 3 and tokens[1].kind == "word" and tokens[1].text.lower() in _COMPARISONS:
            left, right = self.evaluate(tokens[0]), self.evaluate(tokens[2])
            value = _compare(left[0] if left else None, tokens[1].text.lower(), right[0] if right else None)
        elif len(tokens) == 1:
            value = _truthy(self.evaluate(tokens[0]))
        else:
            shown = " ".join(t.text for t in tokens) or "(empty)"
            raise _ScriptError(f"Unexpected token in condition: {shown}", "ParserError", "UnexpectedToken")
        return value != negate

    def pipeline(self, tokens: list[_Token], text: str, host: Sink | None = None) -> list[Value]:
        stages: list[list[_Token]] = [[]]
        for token in tokens:
            if token.kind == "pipe":
                stages.append([])
            else:
                stages[-1].append(token)
        if any(not stage for stage in stages):
            raise _ScriptError("An empty pipe element is not allowed.", "ParserError", "EmptyPipeElement")
        first, silent = _error_action(stages[0])
        try:
            values = self.command(first, host, downstream=len(stages) > 1)
        except _ScriptError:
            if not silent:
                raise
            values = []
        for stage in stages[1:]:
            values = self.filter(stage, values)
        return values

    def filter(self, stage: list[_Token], values: list[Value]) -> list[Value]:
        name = stage[0].text.lower()
        params = self._params(stage[1:])
        if name == "out-null":
            return []
        if name == "out-string":
            return [_format(values)]
        if name in ("select-object", "select"):
            if "expandproperty" in params:
                return self._member(values, _scalar(params["expandproperty"]))
            if "first" in params:
                return values[: int(_scalar(params["first"]) or 0)]
            return values
        raise _ScriptError(
            _NOT_RECOGNIZED.format(stage[0].text), "ObjectNotFound", "CommandNotFoundException", stage[0].text
        )

    def _params(self, tokens: list[_Token]) -> dict[str, Value]:
        """``-Name value`` pairs (a switch maps to True); positional values under "" in order."""
        params: dict[str, Value] = {}
        positional: list[Value] = []
        index = 0
        while index < len(tokens):
            token = tokens[index]
            if token.kind == "word" and token.text.startswith("-") and not re.fullmatch(r"-\d+", token.text):
                name = token.text[1:].rstrip(":").lower()
                following = tokens[index + 1] if index + 1 < len(tokens) else None
                if following is not None and not (
                    following.kind == "word" and following.text.startswith("-")
                ):
                    values = self.evaluate(following)
                    params[name] = values[0] if values else None
                    index += 2
                    continue
                params[name] = True
            else:
                positional += self.evaluate(token)
            index += 1
        for position, value in enumerate(positional):
            params[f"#{position}"] = value
        return params

    def command(self, tokens: list[_Token], host: Sink | None, downstream: bool) -> list[Value]:
        head = tokens[0]
        if head.kind != "word" or (len(tokens) == 1 and re.fullmatch(r"-?\d+", head.text)):
            values: list[Value] = []
            for token in tokens:
                values += self.evaluate(token)
            return values
        name = head.text.lower()
        rest = tokens[1:]
        if _STOPWATCH.fullmatch(name) and not rest:
            return [Stopwatch()]
        if name in ("write-output", "echo", "write"):
            values = []
            for token in rest:
                if not (token.kind == "word" and token.text.lower() == "-noenumerate"):
                    values += self.evaluate(token)
            return values
        if name == "write-host":
            words = [_scalar(v) for t in rest if not t.text.startswith("-") for v in self.evaluate(t)]
            (host or self.inv.out).write(" ".join(words) + CRLF)
            return []
        if name == "write-error":
            params = self._params(rest)
            message = _scalar(params.get("message", params.get("#0", "")))
            raise _ScriptError(message, "NotSpecified", "Microsoft.PowerShell.Commands.WriteErrorException")
        if name == "get-netipaddress":
            return self._get_net_ip_address(self._params(rest))
        if name in ("get-content", "gc", "cat", "type"):
            params = self._params(rest)
            path = _scalar(params.get("path", params.get("#0", "")))
            return self._read(path)
        if name == "test-path":
            params = self._params(rest)
            path = _scalar(params.get("path", params.get("#0", "")))
            try:
                return [self.shell.host_path(path).exists()]
            except WindowsPathError:
                return [False]
        if name == "start-sleep":
            params = self._params(rest)
            seconds = float(_scalar(params.get("seconds", params.get("s", params.get("#0", 0)))) or 0)
            seconds += float(_scalar(params.get("milliseconds", params.get("m", 0))) or 0) / 1000
            if not self.shell.sleep(seconds):
                raise _ExitScript(CTRL_C_EXIT)
            return []
        return self._native(head, tokens, downstream, host)

    def _native(self, head: _Token, tokens: list[_Token], downstream: bool, host: Sink | None) -> list[Value]:
        raw = ""
        for token in tokens[1:]:
            if token.kind in ("str", "xstr"):
                value = token.text if token.kind == "str" else self._expand(token.text)
                raw += f' "{value}"' if " " in value else f" {value}"
            elif token.kind == "var":
                raw += " " + " ".join(_scalar(v) for v in self.evaluate(token))
            else:
                raw += " " + token.text
        captured = BufferSink()
        out: Sink = captured if downstream or host is None else host
        code = self.shell.call_program(head.text, raw, None, out, self.inv.err)
        if code is None:
            raise _ScriptError(
                _NOT_RECOGNIZED.format(head.text), "ObjectNotFound", "CommandNotFoundException", head.text
            )
        self.variables["lastexitcode"] = code
        if code != 0:
            self.failed = True
        text = captured.value
        return list(text.replace("\r\n", "\n").rstrip("\n").split("\n")) if text else []

    def _read(self, path: str) -> list[Value]:
        try:
            host = self.shell.host_path(path)
        except WindowsPathError:
            host = None
        if host is None or not host.is_file():
            raise _ScriptError(
                f"Cannot find path '{self.shell.context.absolute(path, self.shell.cwd)}' "
                "because it does not exist.",
                "ObjectNotFound",
                "PathNotFound,Microsoft.PowerShell.Commands.GetContentCommand",
                path,
            )
        text = host.read_bytes().decode("utf-8", "surrogateescape")
        return list(text.replace("\r\n", "\n").rstrip("\n").split("\n"))

    def _get_net_ip_address(self, params: dict[str, Value]) -> list[Value]:
        family = _scalar(params.get("addressfamily", "")).lower()
        alias = _scalar(params.get("interfacealias", "*"))
        index = params.get("interfaceindex")
        origins = {o.strip().lower() for o in _scalar(params.get("prefixorigin", "")).split(",") if o.strip()}
        states = {o.strip().lower() for o in _scalar(params.get("addressstate", "")).split(",") if o.strip()}
        result: list[Value] = []
        # Windows lists IPv6 addresses before IPv4 ones.
        for wanted in (6, 4):
            if family and family != f"ipv{wanted}":
                continue
            for adapter in self.shell.context.adapters(include_loopback=True):
                if not adapter.interface.admin_up or not fnmatch.fnmatch(
                    adapter.alias.lower(), alias.lower()
                ):
                    continue
                if index is not None and str(index) != str(adapter.interface.index):
                    continue
                result += [
                    entry for entry in (
                        _net_ip_address(adapter, a) for a in adapter.interface.addresses if a.family == wanted)
                    if (not origins or str(entry["PrefixOrigin"]).lower() in origins)
                    and (not states or str(entry["AddressState"]).lower() in states)
                ]
        filtered = ("interfacealias", "interfaceindex", "prefixorigin", "addressstate")
        if not result and any(name in params for name in filtered):
            raise _ScriptError(
                "No matching MSFT_NetIPAddress objects found by CIM query for instances of the "
                "ROOT/StandardCimv2/MSFT_NetIPAddress class on the  CIM server.",
                "ObjectNotFound",
                "CmdletizationQuery_NotFound,Get-NetIPAddress",
            )
        return result


def _error_action(tokens: list[_Token]) -> tuple[list[_Token], bool]:
    """A command's tokens without ``-ErrorAction X`` (``-ea X``), and whether X silences errors."""
    kept: list[_Token] = []
    silent = False
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.kind == "word" and token.text.lower().rstrip(":") in ("-erroraction", "-ea") \
                and index + 1 < len(tokens):
            silent = tokens[index + 1].text.lower() in _SILENT_ACTIONS
            index += 2
            continue
        kept.append(token)
        index += 1
    return kept, silent


def _error_text(error: _ScriptError, statement: _Statement) -> str:
    target = error.target
    if error.error_id == "CommandNotFoundException":
        message = f"{target} : {error}"
        column = (
            statement.column + statement.text.find(target) if target in statement.text else statement.column
        )
        width = len(target)
    else:
        message = f"{statement.text.split()[0]} : {error}"
        column, width = statement.column, len(statement.text.split()[0])
    pointer = " " * (column - statement.column) + "~" * max(width, 1)
    exception = (
        error.error_id.split(",")[0] if error.error_id.endswith("Exception") else "ItemNotFoundException"
    )
    if error.category == "NotSpecified":
        exception = "WriteErrorException"
    return (
        CRLF.join(
            [
                message,
                f"At line:{statement.line} char:{column}",
                f"+ {statement.text}",
                f"+ {pointer}",
                f"    + CategoryInfo          : {error.category}: ({target}:String) [], {exception}",
                f"    + FullyQualifiedErrorId : {error.error_id}",
                " ",
            ]
        )
        + CRLF
    )


def _clixml(text: str) -> str:
    """stderr as powershell.exe writes it when redirected: CLIXML error strings (pywinrm decodes it)."""
    parts = [
        '<S S="Error">' + escape(line).replace("\r", "").replace("\n", "") + "_x000D__x000A_</S>"
        for line in text.split(CRLF)[:-1]
    ]
    return (
        '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
        + "".join(parts)
        + "</Objs>"
    )


def powershell(inv: Invocation) -> int:
    """``powershell.exe``: parse its command line, then run the script."""
    tokens = split_args(inv.raw)
    script: str | None = None
    encoded = False
    index = 0
    while index < len(tokens):
        word = tokens[index]
        parameter = _parameter(word) if word.startswith(("-", "/")) else None
        if word == "-":
            script = inv.stdin or ""
            break
        if parameter is None:
            script = " ".join(tokens[index:])
            break
        if parameter == "encodedcommand":
            try:
                script = base64.b64decode(tokens[index + 1], validate=True).decode("utf-16-le")
            except (IndexError, binascii.Error, UnicodeDecodeError):
                inv.error(
                    "Cannot process the command because the value specified with -EncodedCommand is not "
                    "properly encoded. The value must be Base64 encoded."
                )
                return 1
            encoded = True
            index += 2
            continue
        if parameter == "command":
            script = " ".join(tokens[index + 1 :])
            if script == "-":
                script = inv.stdin or ""
            break
        if parameter == "file":
            if index + 1 >= len(tokens):
                inv.error("Missing the argument to -File.")
                return 1
            path = tokens[index + 1]
            try:
                script = inv.shell.host_path(path).read_text(encoding="utf-8-sig", errors="replace")
            except (WindowsPathError, OSError):
                inv.error(
                    f"The argument '{path}' to the -File parameter does not exist. Provide the path to an "
                    "existing '.ps1' file as an argument to the -File parameter."
                )
                return 1
            break
        index += 2 if parameter in _TAKES_VALUE else 1
    if script is None:
        inv.print("Windows PowerShell")
        inv.print("Copyright (C) Microsoft Corporation. All rights reserved.")
        return 0

    low, high = inv.shell.context.powershell_start
    if high > 0 and not inv.shell.sleep(random.uniform(low, high)):  # powershell.exe's own start-up
        return CTRL_C_EXIT
    runner = _Runner(inv)
    code: int | None = None
    try:
        runner.run_block(_statements(script), inv.out)
    except _ExitScript as exc:
        code = exc.code
    except _Break:
        pass  # outside any loop, break ends the script
    if runner.errors.value:
        inv.err.write(_clixml(runner.errors.value) if encoded else runner.errors.value)
    if code is not None:
        return code
    return 1 if runner.failed else 0
