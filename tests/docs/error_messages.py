"""The one-line error messages the project can print, read from its source, and the page's patterns.

:func:`code_messages` walks the syntax tree of every module under ``src/pytest_vsphere_clone`` and
collects each message *template*: the text of an error with every run-time value replaced by a
placeholder. Where a message is made:

* **Error classes.** :data:`ROOT_CLASSES` are the exceptions whose ``str()`` reaches the user as their
  line (the client's ``VSphereCloneError``, the commands' ``CommandError``, the plugin's
  ``SettingsError``, the SSH/WinRM connection errors, ...); every class deriving from one of them, in
  any module, is one too. A class whose ``__init__`` builds its message (``super().__init__(f"...")``)
  contributes that template, and its call sites pass values, not messages; any other class takes its
  message from its call sites (first argument or ``message=``).
* **Failure calls.** :data:`SINK_CALLS`: ``pytest.fail``, ``pytest.exit``, ``pytest.UsageError``,
  ``argparse.ArgumentTypeError``, the CLI's ``_fail``, ``console.error``, the doctor's ``report.fail``,
  and ``print(..., file=sys.stderr)``.

A message argument is resolved through what the module says about it: string literals, f-strings,
``+``, ``a if c else b``, ``"...".format()``, a local variable (every assignment to it in the function,
``+=`` appending), and a call of a function of the same module (its ``return`` values). Whatever cannot
be followed (a parameter, ``str(exc)``, an attribute) is a placeholder: it forwards a message made
elsewhere, which is collected where it is made. A template with no letters outside its placeholders
(``f"{name} ({ip}): {exc}"``) only forwards one, and needs no entry of its own.

:func:`page_patterns` reads the first column of every table in the troubleshooting page whose header
starts with ``message``: its leading backticked spans (``A`` / ``B``) are how messages start, where
``...`` and the upper-case words of :data:`PLACEHOLDER_WORDS` (``HOST``, ``N``, ``FILE``...) stand for
any text. :func:`matches` decides whether a pattern describes a template, through regular expressions
(:attr:`Pattern.regexes`): the pattern's words must be the template's words, in order, from its start;
a wildcard matches anything; a word with wildcards (``FILE::TEST:``) may be one value; and in a row of
at least :data:`MIN_WORDS_FOR_STAND_IN` words one plain word may stand for a value, so the page can
write ``no usable ipv4 address`` for ``no usable {family} address``. A row that matches no template is
stale, unless it is about one value of a placeholder (a particular reason) whose text is still in the
code (:func:`is_live`).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, cached_property, lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "src" / "pytest_vsphere_clone"
PAGE = ROOT / "docs" / "troubleshooting.md"

#: Exceptions whose str() is the line the user reads (pytest prints it as a usage error or a test's
#: failure, the CLI as its error line). Classes derived from these are found by the walk.
ROOT_CLASSES = ("VSphereCloneError", "CommandError", "SettingsError", "SshConnectError", "WinRMConnectError",
                "_Rejected", "CommandFailed", "InventoryError")
#: Calls that print or raise a message: dotted callee -> (position, keyword) of the message argument.
SINK_CALLS = {
    "pytest.fail": (0, "reason"),
    "pytest.exit": (0, "reason"),
    "pytest.UsageError": (0, None),
    "argparse.ArgumentTypeError": (0, None),
    "_fail": (2, "message"),            # cli.py: the CLI's failure line (and its --json error)
    "console.error": (0, "message"),    # the commands' error line on stderr
    "report.fail": (1, "detail"),       # vsphere-clone doctor: FAIL LABEL: DETAIL
    "print": (0, None),                 # with file=sys.stderr only
}
#: Upper-case words that stand for a value in the page's patterns, as `HOST`, `N` or `FILE`.
PLACEHOLDER_WORDS = frozenset({"N", "HOST", "FILE", "PATH", "NAME", "USER", "CLONE", "IP", "OTHER",
                               "TEMPLATE", "TEST", "SOURCE", "MODE", "KEY", "VALUE", "LABEL", "CMD", "URL"})

STAR = "\x00"  # a placeholder: any text
_MAX_TEMPLATES = 64  # per argument: enough for every branch the code has, bounded against blow-up


@dataclass(frozen=True)
class Template:
    """A message with its run-time values as STAR, and where the code makes it."""

    text: str
    where: str  # path:line

    @property
    def shown(self) -> str:
        return self.text.replace(STAR, "...")

    @property
    def forwards_only(self) -> bool:
        """No letters outside placeholders: it only wraps a message made elsewhere."""
        return not re.search(r"[A-Za-z]", self.text.replace(STAR, ""))


@dataclass(frozen=True)
class Pattern:
    """A row's message pattern from the troubleshooting page."""

    text: str
    line: int

    @cached_property
    def glob(self) -> str:
        glob = self.text.replace("'...'", STAR).replace("...", STAR)  # quotes are the repr's, not the text
        glob = re.sub(r"(?<![\w-])([A-Z]+)(?![\w-])",
                      lambda m: STAR if m.group(1) in PLACEHOLDER_WORDS else m.group(1), glob)
        return glob  # a prefix: the regular expressions match the start of a message

    @cached_property
    def literal_length(self) -> int:
        return len(re.sub(r"[^A-Za-z]", "", self.glob.replace(STAR, "")))

    @cached_property
    def words(self) -> list[int]:
        """Token indexes (of ``re.split(r"(\\s+)", glob)``) of the words that are not wildcards."""
        return [i for i, token in enumerate(re.split(r"(\s+)", self.glob))
                if token.strip() and token.replace(STAR, "").strip(_PUNCTUATION)]

    @cached_property
    def stand_in_first(self) -> bool:
        return len(self.words) >= MIN_WORDS_FOR_STAND_IN and self.words[0] == 0

    @cached_property
    def regexes(self) -> list[re.Pattern[str]]:
        """The pattern as a regular expression over a template's text, anchored at its start.

        One expression per reading: a wildcard matches any text (values included), and each word of
        the pattern is itself, except in a row of at least :data:`MIN_WORDS_FOR_STAND_IN` words, where
        one word may stand for a value of the template: the page may write out an example (``ipv4``,
        ``put``) where the code has a value. A value may also be empty (an optional hint), so values
        may appear between the pattern's words. Quotes are optional: the code's ``!r`` adds them.
        """
        stand_ins = self.words if len(self.words) >= MIN_WORDS_FOR_STAND_IN else []
        return [_compile(self.glob, None), *(_compile(self.glob, i) for i in stand_ins)]


# --- the code ------------------------------------------------------------------------------------


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    return ""


def _base_names(cls: ast.ClassDef) -> list[str]:
    return [_dotted(b).rsplit(".", 1)[-1] for b in cls.bases]


#: Not the project's messages: the simulator's guests are programs of their own (a guest's cmd.exe,
#: its WinRM server), whose errors reach the guest's output, not the user's terminal.
EXCLUDED = ("simulator/guests/",)


def _modules() -> list[tuple[Path, ast.Module]]:
    paths = [p for p in sorted(SOURCE.rglob("*.py"))
             if not p.relative_to(SOURCE).as_posix().startswith(EXCLUDED)]
    return [(p, ast.parse(p.read_text(), str(p))) for p in paths]


class _Resolver:
    """Turns a message expression into the templates it can produce, within one module."""

    def __init__(self, module: ast.Module) -> None:
        self.module = module
        self.functions: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = {}
        for node in ast.walk(module):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self.functions.setdefault(node.name, []).append(node)

    def resolve(self, expr: ast.expr | None, scope: ast.AST | None, depth: int = 0) -> list[str]:
        if expr is None or depth > 6:
            return [STAR]
        if isinstance(expr, ast.Constant):
            return [expr.value] if isinstance(expr.value, str) else [STAR]
        if isinstance(expr, ast.JoinedStr):
            out = [""]
            for part in expr.values:
                if isinstance(part, ast.Constant):
                    out = [o + str(part.value) for o in out]
                elif (isinstance(part, ast.FormattedValue) and part.conversion == -1 and part.format_spec is None
                      and isinstance(part.value, ast.Name | ast.IfExp | ast.Constant | ast.JoinedStr)):
                    # Part of the message held in a variable (``what = f"..."`` then ``f"{what}: ..."``) or
                    # chosen in place (``f"{'needed' if required else 'incomplete'}: ..."``).
                    pieces = self.resolve(part.value, scope, depth + 1)
                    out = [o + p for o in out for p in pieces][:_MAX_TEMPLATES]
                else:
                    out = [o + STAR for o in out]
            return out
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
            left, right = self.resolve(expr.left, scope, depth + 1), self.resolve(expr.right, scope, depth + 1)
            return [a + b for a in left for b in right][:_MAX_TEMPLATES]
        if isinstance(expr, ast.IfExp):
            return (self.resolve(expr.body, scope, depth + 1) + self.resolve(expr.orelse, scope, depth + 1))
        if isinstance(expr, ast.Call):
            func = expr.func
            if (isinstance(func, ast.Attribute) and func.attr == "format" and isinstance(func.value, ast.Constant)
                    and isinstance(func.value.value, str)):
                return [re.sub(r"\{[^{}]*\}", STAR, func.value.value)]
            name = _dotted(func).rsplit(".", 1)[-1]
            if name in self.functions and not name.startswith("__"):
                out = []
                for definition in self.functions[name]:
                    for node in ast.walk(definition):
                        if isinstance(node, ast.Return) and node.value is not None and not (
                                isinstance(node.value, ast.Constant) and node.value.value is None):
                            out += self.resolve(node.value, definition, depth + 1)
                return out[:_MAX_TEMPLATES] or [STAR]
            return [STAR]
        if isinstance(expr, ast.Name) and scope is not None:
            values: list[str] = []
            suffixes: list[list[str]] = []
            # A module's own assignments only at its top level: not every function's locals.
            nodes = scope.body if isinstance(scope, ast.Module) else ast.walk(scope)
            for node in nodes:
                assigned = isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == expr.id
                                                                for t in node.targets)
                annotated = (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                             and node.target.id == expr.id and node.value is not None)
                if assigned or annotated:
                    values += self.resolve(node.value, scope, depth + 1)  # type: ignore[attr-defined]
                elif (isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add)
                      and isinstance(node.target, ast.Name) and node.target.id == expr.id):
                    suffixes.append(self.resolve(node.value, scope, depth + 1))
            if not values and scope is not self.module:
                return self.resolve(expr, self.module, depth + 1)  # a module constant (MARKER = "vsphere")
            if not values:
                return [STAR]  # a parameter, a loop variable, a name from elsewhere: a forwarded message
            for suffix in suffixes:  # `x += "..."` appends to some of the values: keep both readings
                values += [v + s for v in values for s in suffix]
            return values[:_MAX_TEMPLATES]
        return [STAR]


def _enclosing_functions(module: ast.Module) -> dict[ast.AST, ast.AST]:
    """Each node -> the innermost function containing it (the scope its names resolve in)."""
    owner: dict[ast.AST, ast.AST] = {}

    def visit(node: ast.AST, function: ast.AST | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            if inner is not None:
                owner[child] = inner
            visit(child, inner)

    visit(module, None)
    return owner


def _error_classes(modules: list[tuple[Path, ast.Module]]) -> dict[str, ast.ClassDef]:
    """Every class deriving, directly or not, from one of ROOT_CLASSES (the roots included)."""
    classes = {node.name: node for _, module in modules for node in ast.walk(module)
               if isinstance(node, ast.ClassDef)}
    found = {name: classes[name] for name in ROOT_CLASSES if name in classes}
    while True:
        more = {name: cls for name, cls in classes.items()
                if name not in found and any(base in found for base in _base_names(cls))}
        if not more:
            return found
        found.update(more)


def _init_of(cls: ast.ClassDef) -> ast.FunctionDef | None:
    return next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)


def _super_init_args(init: ast.FunctionDef) -> list[ast.expr]:
    for node in ast.walk(init):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "__init__"
                and isinstance(node.func.value, ast.Call) and _dotted(node.func.value.func) == "super"):
            return list(node.args)
    return []


def _message_argument(call: ast.Call, position: int, keyword: str | None) -> ast.expr | None:
    if len(call.args) > position and not any(isinstance(a, ast.Starred) for a in call.args[:position + 1]):
        return call.args[position]
    return next((k.value for k in call.keywords if keyword and k.arg == keyword), None)


def _to_stderr(call: ast.Call) -> bool:
    return any(k.arg == "file" and _dotted(k.value) == "sys.stderr" for k in call.keywords)


@lru_cache(maxsize=1)
def code_messages() -> tuple[Template, ...]:
    """Every message template the code can print, with where it is made."""
    modules = _modules()
    errors = _error_classes(modules)
    path_of = {id(node): path for path, module in modules for node in ast.walk(module)
               if isinstance(node, ast.ClassDef)}
    resolvers = {path: _Resolver(module) for path, module in modules}

    # Classes whose __init__ makes the message (own or inherited): their call sites pass values.
    templated: dict[str, bool] = {}

    def is_templated(name: str) -> bool:
        if name not in templated:
            templated[name] = False  # cycles: no
            cls = errors[name]
            init = _init_of(cls)
            if init is None:
                templated[name] = any(is_templated(b) for b in _base_names(cls) if b in errors)
            else:
                resolver = resolvers[path_of[id(cls)]]
                own = [t for a in _super_init_args(init)[:1] for t in resolver.resolve(a, init)
                       if re.search(r"[A-Za-z]", t.replace(STAR, ""))]
                templated[name] = bool(own) or any(is_templated(b) for b in _base_names(cls) if b in errors)
        return templated[name]

    found: list[Template] = []
    for name, cls in errors.items():
        init = _init_of(cls)
        if init is not None and is_templated(name):
            relative = path_of[id(cls)].relative_to(ROOT)
            for arg in _super_init_args(init)[:1]:
                for text in resolvers[path_of[id(cls)]].resolve(arg, init):
                    found.append(Template(text, f"{relative}:{arg.lineno}"))

    # Each method -> the name of the class it is defined in.
    classes_of = {item: cls.name for _, module in modules for cls in ast.walk(module) if isinstance(cls, ast.ClassDef)
                  for item in cls.body if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)}
    for path, module in modules:
        resolver = resolvers[path]
        owners = _enclosing_functions(module)
        relative = path.relative_to(ROOT)
        for node in ast.walk(module):
            if not isinstance(node, ast.Call):
                continue
            callee = _dotted(node.func)
            short = callee.rsplit(".", 1)[-1]
            if callee == "cls" and owners.get(node) is not None:
                # A classmethod building an error (``cls(f"...")``): a call site of its class.
                klass = classes_of.get(owners[node])
                if klass is None or klass not in errors or is_templated(klass):
                    continue
                argument = _message_argument(node, 0, "message")
            elif callee in SINK_CALLS:
                if callee == "print" and not _to_stderr(node):
                    continue
                argument = _message_argument(node, *SINK_CALLS[callee])
            elif short in errors and callee in (short, f"errors.{short}") and not is_templated(short):
                argument = _message_argument(node, 0, "message")
            else:
                continue
            if argument is None:
                continue
            for text in resolver.resolve(argument, owners.get(node)):
                found.append(Template(text, f"{relative}:{node.lineno}"))
    unique: dict[str, Template] = {}
    for template in found:
        unique.setdefault(template.text, template)
    return tuple(unique.values())


# --- the page ------------------------------------------------------------------------------------


def page_patterns(page: Path = PAGE) -> list[Pattern]:
    """The backticked spans of the first cells of the page's tables whose header starts with ``message``."""
    patterns = []
    in_table = False
    for number, line in enumerate(page.read_text().splitlines(), 1):
        if not line.startswith("|"):
            in_table = False
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not in_table:
            in_table = cells[0].lower().startswith("message")
            continue
        if set(cells[0]) <= set("-: "):
            continue
        # The cell's leading backticked spans, separated by " / ": one row may describe a message's
        # variants. Text after them (an example: "e.g. `...`") is prose.
        position = 0
        for span in re.finditer(r"`([^`]+)`", cells[0]):
            if cells[0][position:span.start()].strip() not in ("", "/"):
                break
            patterns.append(Pattern(span.group(1), number))
            position = span.end()
    return patterns


def matches(pattern: Pattern, template: Template) -> bool:
    """Whether the pattern describes the start of the template (see :meth:`Pattern.regexes`)."""
    return _matches(pattern, template.text)


@cache
def _matches(pattern: Pattern, text: str) -> bool:
    # Cheap looks first. Up to the first wildcard or value of either, the two read the same ...
    for a, b in zip(pattern.glob, text, strict=False):
        if STAR in (a, b):
            break
        if a != b and not pattern.stand_in_first:
            return False
    # ... and a word of the pattern missing from the message can only be the one standing for a value.
    tokens = re.split(r"(\s+)", pattern.glob)
    absent = [i for i in pattern.words if STAR not in tokens[i] and tokens[i].strip(_PUNCTUATION) not in text]
    regexes = pattern.regexes
    if len(absent) > 1 or (absent and len(regexes) == 1):
        return False
    if absent:
        regexes = [_compile(pattern.glob, absent[0])]
    return any(regex.match(text) for regex in regexes)


#: A row may write out a value (``ipv4``, ``put``) only when it has at least this many words of its own.
MIN_WORDS_FOR_STAND_IN = 4
_VALUE = re.escape(STAR)
_PUNCTUATION = "'\"(),:;.?"


@cache
def _compile(glob: str, stand_in: int | None) -> re.Pattern[str]:
    """The glob as a regular expression; the word at token index ``stand_in`` may be a value instead."""
    parts = [f"{_VALUE}*"]
    for number, token in enumerate(re.split(r"(\s+)", glob)):
        if token.isspace():
            parts.append(r"\s+")
        elif token:
            core = token.strip(_PUNCTUATION)
            lead = token[:len(token) - len(token.lstrip(_PUNCTUATION))] if core else token
            tail = token[len(lead) + len(core):]
            text = "(?s:.*?)".join(re.escape(piece) for piece in core.split(STAR)) if core else ""
            word = f"{_literal(lead)}{text}{_literal(tail)}"
            # The stand-in word, or a word with wildcards (FILE::TEST:, the shape of one value): itself,
            # a value in its place within its punctuation, or a value for all of it.
            if number == stand_in or STAR in token:
                word = f"(?:{word}|{_literal(lead)}{_VALUE}{_literal(tail)}|{_VALUE})"
            parts += [word, f"{_VALUE}*"]
    return re.compile("".join(parts))


def _literal(punctuation: str) -> str:
    """Punctuation around a word: itself (wildcards any text), quotes optional."""
    out = []
    for c in punctuation:
        out.append("(?s:.*?)" if c == STAR else "'?" if c == "'" else '"?' if c == '"' else re.escape(c))
    return "".join(out)


@lru_cache(maxsize=1)
def source_strings() -> tuple[str, ...]:
    """Every string literal of the scanned modules (f-strings' literal parts included)."""
    found = []
    for _, module in _modules():
        for node in ast.walk(module):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.append(node.value)
    return tuple(found)


def is_live(pattern: Pattern, templates: tuple[Template, ...]) -> bool:
    """The pattern describes a template, or (a row about one value of a template's placeholder, such as
    a particular reason) its longest literal piece is still written in the code."""
    if any(matches(pattern, t) for t in templates):
        return True
    pieces = sorted((p.strip(" (),;:.") for p in pattern.glob.split(STAR)), key=len)
    longest = pieces[-1] if pieces else ""
    return len(longest) >= 12 and any(longest in text for text in source_strings())


def undocumented(templates: tuple[Template, ...], patterns: list[Pattern]) -> Iterator[Template]:
    for template in templates:
        if not template.forwards_only and not any(matches(p, template) for p in patterns):
            yield template
