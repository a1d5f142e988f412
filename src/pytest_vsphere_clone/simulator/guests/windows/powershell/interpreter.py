"""The PowerShell interpreter: runs one script's statements for ``powershell.exe`` (program.py).

``ScriptRunner`` keeps the script's variables and errors and runs statements in order: assignments,
``exit``, flow control (``while``, ``if``/``else``, ``break``, ``$i++``), conditions, pipelines and
their filters (``Out-Null``, ``Out-String``, ``Select-Object``), the cmdlets (``Write-*``,
``Get-Content``, ``Test-Path``, ``Start-Sleep``, ``Get-NetIPAddress`` from net_ip_address.py) and
native programs through the cmd.exe dialect. Tokens, values and errors are language.py's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..cmd.base import CRLF, CTRL_C_EXIT, BufferSink, Invocation, Sink
from ..context import WindowsPathError
from .language import (
    COMPARISONS,
    Break,
    ExitScript,
    ScriptError,
    Statement,
    Stopwatch,
    Token,
    Value,
    balanced,
    compare,
    error_action,
    error_text,
    format_values,
    number,
    scalar,
    statements,
    tokenize,
    truthy,
)
from .net_ip_address import get_net_ip_address

__all__ = ["ScriptRunner"]

_STOPWATCH = re.compile(r"(?i)\[(system\.)?diagnostics\.stopwatch\]::startnew\(\)")

_NOT_RECOGNIZED = (
    "The term '{0}' is not recognized as the name of a cmdlet, function, script file, or operable "
    "program. Check the spelling of the name, or if a path was included, verify that the path is correct "
    "and try again."
)


class ScriptRunner:
    """Runs one script for one ``powershell.exe`` invocation: statements, values, pipelines, cmdlets."""

    def __init__(self, inv: Invocation) -> None:
        self.inv = inv
        self.shell = inv.shell
        self.variables: dict[str, Value] = {"null": None, "true": True, "false": False, "lastexitcode": 0}
        self.failed = False
        self.errors = BufferSink()

    def run_block(self, statements: Iterator[Statement], out: Sink) -> None:
        """Run statements in order; a statement's error is reported and the next one runs (as
        PowerShell's non-terminating errors do). ``exit`` and ``break`` leave the block."""
        for statement in statements:
            try:
                self.failed = False
                self.run_statement(statement, out)
            except ScriptError as exc:
                self.errors.write(error_text(exc, statement))
                self.failed = True

    # -- values -------------------------------------------------------------------------------

    def _variable(self, token: Token) -> list[Value]:
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
            values = self._variable(Token("var", match.group(0), 0))
            return " ".join(scalar(v) for v in values)

        return re.sub(r"\$(?:env:)?\w+", variable, text).replace("\x00", "")

    def evaluate(self, token: Token) -> list[Value]:
        if token.kind == "str":
            return [token.text]
        if token.kind == "xstr":
            return [self._expand(token.text)]
        if token.kind == "var":
            return self._variable(token)
        if token.kind == "paren":
            try:
                values = self.pipeline(tokenize(token.text), token.text)
            except ScriptError as exc:
                if exc.category == "ParserError" or exc.error_id == "CommandNotFoundException":
                    raise
                # A cmdlet's non-terminating error: reported, and the expression yields nothing.
                self.errors.write(error_text(exc, Statement(token.text, 1, token.column + 2)))
                self.failed = True
                values = []
            return self._member(values, token.member)
        if re.fullmatch(r"-?\d+", token.text):
            return [int(token.text)]
        return [token.text]

    # -- statements ---------------------------------------------------------------------------

    def run_statement(self, statement: Statement, out: Sink) -> None:
        text = statement.text
        if self._flow(text, out):
            return
        exit_match = re.fullmatch(r"(?i)exit(?:\s+(.*))?", text)
        if exit_match:
            values = self.evaluate(tokenize(exit_match.group(1))[0]) if exit_match.group(1) else [0]
            code = values[0] if values and isinstance(values[0], int) else 0
            raise ExitScript(int(code))
        assign = re.fullmatch(r"\$(env:)?(\w+)\s*=\s*(.+)", text, re.IGNORECASE)
        if assign:
            values = self.pipeline(tokenize(assign.group(3)), assign.group(3))
            value = values[0] if len(values) == 1 else " ".join(scalar(v) for v in values)
            if assign.group(1):
                self.shell.env[assign.group(2)] = scalar(value)
            else:
                self.variables[assign.group(2).lower()] = value
            return
        out.write(format_values(self.pipeline(tokenize(text), text, out)))

    # -- flow control ---------------------------------------------------------------------------

    def _flow(self, text: str, out: Sink) -> bool:
        """Run ``text`` if it is a loop, a branch, ``break`` or ``$i++``; False if it is none."""
        if text.lower() == "break":
            raise Break
        step = re.fullmatch(r"\$(\w+)\s*(\+\+|--)", text)
        if step:
            current = number(self.variables.get(step.group(1).lower())) or 0
            self.variables[step.group(1).lower()] = int(current) + (1 if step.group(2) == "++" else -1)
            return True
        keyword = re.match(r"(?i)(while|if)\s*(?=\()", text)
        if not keyword:
            return False
        condition, rest = balanced(text, keyword.end(), "(", ")")
        body, rest = self._block_text(rest)
        if keyword.group(1).lower() == "while":
            if rest.strip():
                raise ScriptError(f"Unexpected token '{rest.strip()}' in expression or statement.",
                                   "ParserError", "UnexpectedToken")
            while self.condition(condition):
                try:
                    self.run_block(statements(body), out)
                except Break:
                    break
            return True
        otherwise = ""
        if rest.strip():
            tail = re.match(r"(?i)\s*else\s*(?=\{)", rest)
            if not tail:
                raise ScriptError(f"Unexpected token '{rest.strip()}' in expression or statement.",
                                   "ParserError", "UnexpectedToken")
            otherwise, rest = self._block_text(rest[tail.end():])
        self.run_block(statements(body if self.condition(condition) else otherwise), out)
        return True

    @staticmethod
    def _block_text(text: str) -> tuple[str, str]:
        stripped = text.lstrip()
        if not stripped.startswith("{"):
            raise ScriptError("Missing statement block.", "ParserError", "MissingStatementBlock")
        return balanced(stripped, 0, "{", "}")

    def condition(self, text: str) -> bool:
        """A condition: clauses joined by ``-and``/``-or`` (left to right, short-circuit), each
        ``[-not] operand`` or ``operand -op operand``."""
        clauses: list[list[Token]] = [[]]
        joins: list[str] = []
        for token in tokenize(text):
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

    def _clause(self, tokens: list[Token]) -> bool:
        negate = False
        while tokens and tokens[0].kind == "word" and tokens[0].text.lower() in ("-not", "!"):
            negate, tokens = not negate, tokens[1:]
        if len(tokens) == 3 and tokens[1].kind == "word" and tokens[1].text.lower() in COMPARISONS:
            left, right = self.evaluate(tokens[0]), self.evaluate(tokens[2])
            value = compare(left[0] if left else None, tokens[1].text.lower(), right[0] if right else None)
        elif len(tokens) == 1:
            value = truthy(self.evaluate(tokens[0]))
        else:
            shown = " ".join(t.text for t in tokens) or "(empty)"
            raise ScriptError(f"Unexpected token in condition: {shown}", "ParserError", "UnexpectedToken")
        return value != negate

    def pipeline(self, tokens: list[Token], text: str, host: Sink | None = None) -> list[Value]:
        stages: list[list[Token]] = [[]]
        for token in tokens:
            if token.kind == "pipe":
                stages.append([])
            else:
                stages[-1].append(token)
        if any(not stage for stage in stages):
            raise ScriptError("An empty pipe element is not allowed.", "ParserError", "EmptyPipeElement")
        first, silent = error_action(stages[0])
        try:
            values = self.command(first, host, downstream=len(stages) > 1)
        except ScriptError:
            if not silent:
                raise
            values = []
        for stage in stages[1:]:
            values = self.filter(stage, values)
        return values

    def filter(self, stage: list[Token], values: list[Value]) -> list[Value]:
        name = stage[0].text.lower()
        params = self._params(stage[1:])
        if name == "out-null":
            return []
        if name == "out-string":
            return [format_values(values)]
        if name in ("select-object", "select"):
            if "expandproperty" in params:
                return self._member(values, scalar(params["expandproperty"]))
            if "first" in params:
                return values[: int(scalar(params["first"]) or 0)]
            return values
        raise ScriptError(
            _NOT_RECOGNIZED.format(stage[0].text), "ObjectNotFound", "CommandNotFoundException", stage[0].text
        )

    def _params(self, tokens: list[Token]) -> dict[str, Value]:
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

    def command(self, tokens: list[Token], host: Sink | None, downstream: bool) -> list[Value]:
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
            words = [scalar(v) for t in rest if not t.text.startswith("-") for v in self.evaluate(t)]
            (host or self.inv.out).write(" ".join(words) + CRLF)
            return []
        if name == "write-error":
            params = self._params(rest)
            message = scalar(params.get("message", params.get("#0", "")))
            raise ScriptError(message, "NotSpecified", "Microsoft.PowerShell.Commands.WriteErrorException")
        if name == "get-netipaddress":
            return get_net_ip_address(self.shell.context, self._params(rest))
        if name in ("get-content", "gc", "cat", "type"):
            params = self._params(rest)
            path = scalar(params.get("path", params.get("#0", "")))
            return self._read(path)
        if name == "test-path":
            params = self._params(rest)
            path = scalar(params.get("path", params.get("#0", "")))
            try:
                return [self.shell.host_path(path).exists()]
            except WindowsPathError:
                return [False]
        if name == "start-sleep":
            params = self._params(rest)
            seconds = float(scalar(params.get("seconds", params.get("s", params.get("#0", 0)))) or 0)
            seconds += float(scalar(params.get("milliseconds", params.get("m", 0))) or 0) / 1000
            if not self.shell.sleep(seconds):
                raise ExitScript(CTRL_C_EXIT)
            return []
        return self._native(head, tokens, downstream, host)

    def _native(self, head: Token, tokens: list[Token], downstream: bool, host: Sink | None) -> list[Value]:
        raw = ""
        for token in tokens[1:]:
            if token.kind in ("str", "xstr"):
                value = token.text if token.kind == "str" else self._expand(token.text)
                raw += f' "{value}"' if " " in value else f" {value}"
            elif token.kind == "var":
                raw += " " + " ".join(scalar(v) for v in self.evaluate(token))
            else:
                raw += " " + token.text
        captured = BufferSink()
        out: Sink = captured if downstream or host is None else host
        code = self.shell.call_program(head.text, raw, None, out, self.inv.err)
        if code is None:
            raise ScriptError(
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
            raise ScriptError(
                f"Cannot find path '{self.shell.context.absolute(path, self.shell.cwd)}' "
                "because it does not exist.",
                "ObjectNotFound",
                "PathNotFound,Microsoft.PowerShell.Commands.GetContentCommand",
                path,
            )
        text = host.read_bytes().decode("utf-8", "surrogateescape")
        return list(text.replace("\r\n", "\n").rstrip("\n").split("\n"))
