"""The PowerShell language of the simulated Windows guest: statements, tokens, values, conditions
and error records, apart from the commands that run them (:mod:`.program`)."""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from ..cmd.base import CRLF


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


class ExitScript(Exception):
    """``exit N``: end the script with exit code N."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class Break(Exception):
    """``break``: leave the innermost loop."""


#: Comparison operators of conditions (case-insensitive, as PowerShell's defaults are).
COMPARISONS = ("-eq", "-ne", "-lt", "-le", "-gt", "-ge", "-like", "-notlike")
SILENT_ACTIONS = ("silentlycontinue", "ignore", "0")


def balanced(text: str, start: int, opening: str, closing: str) -> tuple[str, str]:
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
    raise ScriptError(f"Missing closing '{closing}' in statement block or type definition.",
                       "ParserError", "MissingEndCurlyBrace" if closing == "}" else "MissingEndParenthesisInExpression")


def truthy(values: list[Value]) -> bool:
    """PowerShell's truth of a result: nothing is false, one value by itself, several are true."""
    if not values:
        return False
    if len(values) > 1:
        return True
    value = values[0]
    return bool(value) if not isinstance(value, dict) else True


def number(value: Value) -> float | None:
    """``value`` as a number, or None when it is not one (PowerShell then compares text)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def compare(left: Value, operator: str, right: Value) -> bool:
    """``left -op right``: numbers as numbers, anything else as case-insensitive text."""
    if operator in ("-like", "-notlike"):
        matched = fnmatch.fnmatch(scalar(left).lower(), scalar(right).lower())
        return matched if operator == "-like" else not matched
    a, b = number(left), number(right)
    pair: tuple[object, object] = (a, b) if a is not None and b is not None else (scalar(left).lower(),
                                                                                  scalar(right).lower())
    x, y = pair
    return {"-eq": x == y, "-ne": x != y, "-lt": x < y, "-le": x <= y,  # type: ignore[operator]
            "-gt": x > y, "-ge": x >= y}[operator]  # type: ignore[operator]


class ScriptError(Exception):
    """A PowerShell error record: message, category and id, reported against a statement."""

    def __init__(self, message: str, category: str, error_id: str, target: str = "") -> None:
        super().__init__(message)
        self.category = category
        self.error_id = error_id
        self.target = target


@dataclass
class Token:
    """One token of a statement, with its column (for error records)."""

    kind: str  # "str" | "xstr" (expandable) | "word" | "var" | "paren" | "pipe"
    text: str
    column: int
    member: str | None = None


@dataclass
class Statement:
    """One statement of a script, with where it starts (for error records)."""

    text: str
    line: int
    column: int
    tokens: list[Token] = field(default_factory=list)


def statements(script: str) -> Iterator[Statement]:
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
                yield Statement(text, start_line, start_column + offset)
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
        yield Statement(text, start_line, start_column)


def tokenize(text: str) -> list[Token]:
    """Words, quoted strings, variables, parenthesised expressions and pipes of one statement."""
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in " \t\r":
            i += 1
            continue
        start = i
        if ch == "|":
            tokens.append(Token("pipe", "|", start))
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
            tokens.append(Token("str" if ch == "'" else "xstr", "".join(body), start))
            continue
        if ch == "(":
            depth, i = 1, i + 1
            while i < len(text) and depth:
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
            token = Token("paren", text[start + 1 : i - 1], start)
        else:
            while i < len(text) and text[i] not in " \t|":
                i += 1
            word = text[start:i]
            token = Token("var" if word.startswith("$") else "word", word, start)
            if token.kind == "var" and "." in word:
                token.text, token.member = word.split(".", 1)
        if token.kind == "paren":
            member = re.match(r"\.(\w+)", text[i:])
            if member:
                token.member = member.group(1)
                i += member.end()
        tokens.append(token)
    return tokens


def format_values(values: list[Value]) -> str:
    """PowerShell's default formatting: scalars one per line, objects as lists."""
    lines: list[str] = []
    objects = False
    for value in values:
        if isinstance(value, dict):
            objects = True
            width = max(len(k) for k in value)
            lines.append("")
            lines += [f"{k:<{width}} : {scalar(v)}" for k, v in value.items()]
        elif value is not None:
            lines.append(scalar(value))
    if objects:
        lines += ["", ""]
    return "".join(line + CRLF for line in lines)


def scalar(value: object) -> str:
    """A value as PowerShell prints it alone (True/False, nothing for $null)."""
    if isinstance(value, bool):
        return "True" if value else "False"
    return "" if value is None else str(value)


def error_action(tokens: list[Token]) -> tuple[list[Token], bool]:
    """A command's tokens without ``-ErrorAction X`` (``-ea X``), and whether X silences errors."""
    kept: list[Token] = []
    silent = False
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.kind == "word" and token.text.lower().rstrip(":") in ("-erroraction", "-ea") \
                and index + 1 < len(tokens):
            silent = tokens[index + 1].text.lower() in SILENT_ACTIONS
            index += 2
            continue
        kept.append(token)
        index += 1
    return kept, silent


def error_text(error: ScriptError, statement: Statement) -> str:
    """The error record as powershell.exe prints it: message, position, category and id."""
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


def clixml(text: str) -> str:
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
