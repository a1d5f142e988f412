"""What the vCenter-facing subcommands share: connection and guest options, errors, secret-free output.

Options mirror the pytest plugin's settings (``--vsphere-NAME`` there, ``--NAME`` here)
and fall back to the same environment variables (``VSPHERE_NAME``); the pytest ini file
is not read. Nothing printed here (lines, errors, log records) contains a password: messages
are built without them, and as a safety net every line passes through :meth:`Console.scrub`,
which replaces a password only where it stands as a whole value, never inside a word.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..plugin.options import BY_NAME
from ..plugin.settings import parse_duration

if TYPE_CHECKING:
    from ..client.secret import Secret
    from ..client.session import VSphereConnection

PROG = "vsphere-clone"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
#: Settings of the plugin that the commands take as ``--NAME``: client messages naming
#: ``--vsphere-NAME`` are rewritten to the command's spelling.
_CLI_NAMES = ("host", "user", "password", "insecure", "ca-bundle", "connect-timeout", "guest-user",
              "guest-password", "template", "clone-type", "snapshot")
#: Shorter "secrets" are not scrubbed: replacing every "ab" in the output would garble it, not protect anything.
_MIN_SECRET = 4


def whole_value(secret: str) -> re.Pattern[str]:
    """``secret`` where it stands as a whole value: not preceded or followed by a word character.

    With the password ``pass``, "--password=pass;" loses its value but "password" stays a word.
    A side of the secret that is not a word character needs no boundary there.
    """
    before = r"(?<!\w)" if re.match(r"\w", secret[:1]) else ""
    after = r"(?!\w)" if re.match(r"\w", secret[-1:]) else ""
    return re.compile(before + re.escape(secret) + after)
_VSPHERE_OPTION = re.compile(r"--vsphere-([a-z][a-z-]*[a-z])")


class CommandError(Exception):
    """A failure the command reports as one line; exit status 1."""

    exit_status = 1


class UsageError(CommandError):
    """Bad or missing input (options, environment); exit status 2."""

    exit_status = 2


def env_name(option: str) -> str:
    return BY_NAME[option].env if option in BY_NAME else f"VSPHERE_{option.replace('-', '_').upper()}"


def _help(option: str) -> str:
    return f"{BY_NAME[option].help} Env {env_name(option)}."


# --- options --------------------------------------------------------------------------------------


def add_verbose_option(parser: argparse.ArgumentParser, what: str = "what the client does") -> None:
    """``-v``/``-vv`` as every subcommand (and the top level) takes it: the advice "rerun with -vv" always works."""
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help=f"log {what} (-vv: debug, with tracebacks of unexpected errors)")


def add_json_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--json``: one JSON document on stdout instead of lines (errors stay one line on stderr)."""
    parser.add_argument("--json", action="store_true",
                        help=f"print {what} as one JSON object on stdout instead of lines (no passwords; a failure "
                             f"prints {{\"error\": LINE}} there, and the line on stderr)")


def common_parent() -> argparse.ArgumentParser:
    """Options every vCenter-facing subcommand has: -v and the connection."""
    parent = argparse.ArgumentParser(add_help=False)
    add_verbose_option(parent)
    group = parent.add_argument_group("vCenter connection (options win over the environment)")
    group.add_argument("--host", metavar="HOST", help=_help("host"))
    group.add_argument("--user", metavar="USER", help=_help("user"))
    group.add_argument("--password", metavar="PASSWORD",
                       help=f"Password of the user; prefer the environment variable {env_name('password')}, "
                            f"since command lines are visible to other users of the machine.")
    group.add_argument("--insecure", action="store_true", default=None,
                       help=f"{BY_NAME['insecure'].help} Env {env_name('insecure')} (true/false).")
    group.add_argument("--ca-bundle", metavar="PATH", help=_help("ca-bundle"))
    group.add_argument("--connect-timeout", metavar="SECONDS", type=positive_float,
                       help=f"Seconds to wait for the vCenter to answer (default 60). Env "
                            f"{env_name('connect-timeout')}.")
    return parent


def add_guest_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("guest OS credentials (for Guest Operations)")
    group.add_argument("--guest-user", metavar="USER", help=_help("guest-user"))
    group.add_argument("--guest-password", metavar="PASSWORD",
                       help=f"Password of the guest user; prefer the environment variable "
                            f"{env_name('guest-password')}.")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def duration(text: str) -> float:
    """argparse type for ``90s``, ``15m``, ``2h``, ``1d`` (a bare number is seconds)."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def from_env(args: argparse.Namespace, option: str, environ: Mapping[str, str] | None = None) -> str | None:
    """``--option`` if given, else ``VSPHERE_OPTION`` if set and not empty, else None."""
    value = getattr(args, option.replace("-", "_"), None)
    if value is not None:
        return str(value)
    text = (os.environ if environ is None else environ).get(env_name(option), "").strip()
    return text or None


def _bool_from_env(args: argparse.Namespace, option: str) -> bool:
    value = getattr(args, option.replace("-", "_"), None)
    if value is not None:
        return bool(value)
    text = os.environ.get(env_name(option), "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise UsageError(f"{env_name(option)}={text!r} is not a boolean: set it to true or false")


# --- settings -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionSettings:
    """Where and how to log in; the password is a Secret (its repr is ``***``)."""

    host: str
    user: str
    password: Secret = field(repr=False)
    insecure: bool = False
    ca_bundle: str | None = None
    timeout: float = 60.0

    def connect(self) -> VSphereConnection:
        """A connected session; raises the client's one-line errors (ConnectionFailed, LoginFailed, ...)."""
        from ..client.session import VSphereConnection

        return VSphereConnection(self.host, self.user, self.password, insecure=self.insecure,
                                 ca_bundle=self.ca_bundle, timeout=self.timeout).connect()


def connection_settings(args: argparse.Namespace) -> ConnectionSettings:
    """The connection from options and environment; a UsageError names what is missing."""
    from ..client.secret import Secret

    host = from_env(args, "host")
    if host is None:
        raise UsageError(f"no vCenter host given: pass --host HOST (host, host:port or https URL) or set "
                         f"{env_name('host')}")
    user = from_env(args, "user")
    if user is None:
        raise UsageError(f"no vCenter user given: pass --user USER or set {env_name('user')}")
    password = from_env(args, "password")
    if password is None:
        raise UsageError(f"no vCenter password given: set {env_name('password')} (or pass --password)")
    timeout_text = from_env(args, "connect-timeout")
    timeout = 60.0
    if timeout_text is not None:
        try:
            timeout = positive_float(timeout_text)
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"{env_name('connect-timeout')}: {exc}") from None
    ca_bundle = from_env(args, "ca-bundle")
    return ConnectionSettings(host, user, Secret(password), _bool_from_env(args, "insecure"),
                              os.path.expanduser(ca_bundle) if ca_bundle else None, timeout)


@dataclass(frozen=True)
class GuestCredentials:
    """Guest user and password; ``source`` says where the user came from (``--guest-user`` or the variable)."""

    user: str
    password: Secret = field(repr=False)
    source: str = "--guest-user"


def guest_credentials(args: argparse.Namespace, required: bool) -> GuestCredentials | None:
    """Guest user and password from options and environment (None when absent and not required)."""
    from ..client.secret import Secret

    user = from_env(args, "guest-user")
    password = from_env(args, "guest-password")
    if user is not None and password is not None:
        source = "--guest-user" if getattr(args, "guest_user", None) is not None else env_name("guest-user")
        return GuestCredentials(user, Secret(password), source)
    if not required and user is None and password is None:
        return None
    missing = " and ".join(what for what, value in (
        (f"--guest-user (or {env_name('guest-user')})", user),
        (f"{env_name('guest-password')} (or --guest-password)", password)) if value is None)
    raise UsageError(f"{'guest credentials are needed' if required else 'incomplete guest credentials'}: "
                     f"set {missing}")


def secrets_of(args: argparse.Namespace | None) -> list[str]:
    """Every password this invocation knows (options and environment), longest first."""
    found = []
    for option in ("password", "guest-password"):
        for value in (getattr(args, option.replace("-", "_"), None) if args is not None else None,
                      os.environ.get(env_name(option))):
            if value and len(str(value)) >= _MIN_SECRET:
                found.append(str(value))
    return sorted(set(found), key=len, reverse=True)


# --- output ---------------------------------------------------------------------------------------


def cli_spelling(text: str, renames: Mapping[str, str] | None = None) -> str:
    """Client messages name the plugin's ``--vsphere-NAME`` options; say the command's ``--NAME``."""

    def rename(match: re.Match[str]) -> str:
        name = match.group(1)
        if renames and name in renames:
            return renames[name]
        return f"--{name}" if name in _CLI_NAMES else match.group(0)

    return _VSPHERE_OPTION.sub(rename, text)


class Console:
    """Prints lines to stdout/stderr with every known secret replaced by ``***``."""

    def __init__(self, args: argparse.Namespace | None = None, command: str = "") -> None:
        self.secrets = secrets_of(args)
        self._patterns = [whole_value(secret) for secret in self.secrets]
        self.command = command or (getattr(args, "command", None) or "")
        self.renames: Mapping[str, str] = getattr(args, "option_renames", None) or {}

    def scrub(self, text: str) -> str:
        """``text`` with every known password (whole values of at least 4 characters) replaced by ``***``."""
        for pattern in self._patterns:
            text = pattern.sub("***", text)
        return text

    def out(self, text: str = "") -> None:
        print(self.scrub(text), file=sys.stdout, flush=True)

    def err(self, text: str) -> None:
        print(self.scrub(text), file=sys.stderr, flush=True)

    def one_line(self, message: str) -> str:
        """``message`` on one line, naming the command's options, secrets scrubbed."""
        return self.scrub(" ".join(cli_spelling(message, self.renames).split()))

    def error(self, message: str) -> None:
        """``vsphere-clone COMMAND: error: MESSAGE`` on one line."""
        prefix = f"{PROG} {self.command}" if self.command else PROG
        self.err(f"{prefix}: error: {self.one_line(message)}")

    def json(self, document: Any) -> None:
        """``document`` as JSON on stdout. Every string is scrubbed *before* encoding: a password with a
        quote or backslash in it would be escaped by the encoder and slip past a scrub of the encoded text."""
        print(json.dumps(self._scrubbed(document), indent=2), file=sys.stdout, flush=True)

    def _scrubbed(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, Mapping):
            return {self.scrub(str(key)): self._scrubbed(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._scrubbed(item) for item in value]
        return value


class _ConsoleLogHandler(logging.Handler):
    """Log records as ``vsphere-clone: warning: ...`` on the current sys.stderr, secrets scrubbed."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = cli_spelling(" ".join(record.getMessage().split()), self.console.renames)
            self.console.err(f"{PROG}: {record.levelname.lower()}: {message}")
        except Exception:  # never let logging break a command
            self.handleError(record)


@contextmanager
def client_logging(console: Console, verbosity: int) -> Iterator[None]:
    """Route the package's log records to the console for the duration of a command."""
    logger = logging.getLogger("pytest_vsphere_clone")
    handler = _ConsoleLogHandler(console)
    saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO if verbosity == 1 else logging.WARNING)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


# --- formatting -----------------------------------------------------------------------------------


def stamp(ts: float) -> str:
    """``2025-01-31T12:00:00Z``."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def span(seconds: float) -> str:
    """``45s``, ``12m``, ``3h05m``, ``2d04h``."""
    seconds = int(abs(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def table(rows: list[list[str]]) -> list[str]:
    """Rows as left-aligned columns (the first row is the header)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]


def describe_exception(exc: BaseException) -> str:
    """One line for anything a command may raise."""
    from ..client.errors import VSphereCloneError

    if isinstance(exc, CommandError | VSphereCloneError):
        return str(exc)
    from ..client import faults

    return faults.describe(exc)


def first_line(text: str) -> str:
    return " ".join(text.strip().splitlines()[0].split()) if text.strip() else ""


def run_command(args: argparse.Namespace, body: Any) -> int:
    """Run ``body(args, console)`` with client logging routed to the console; errors propagate to main."""
    console = Console(args)
    with client_logging(console, int(getattr(args, "verbose", 0) or 0)):
        return int(body(args, console))
