"""WS-Management (MS-WSMV) remote shell protocol: the subset pywinrm uses.

Actions on ``.../windows/shell/cmd``: Create, Command, Receive, Send, Signal and Delete, plus the
WS-Man Identify request.  Commands run through the cmd.exe dialect on their own thread; Receive
long-polls for output (up to the request's OperationTimeout, then the ``w:TimedOut`` fault that
clients retry on) and returns it base64-encoded in chunks bounded by MaxEnvelopeSize.
"""

from __future__ import annotations

import base64
import codecs
import logging
import re
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from ..cmd.shell import CmdShell
from ..context import WindowsGuestContext, WindowsPathError

__all__ = ["WsmanFault", "WsmanService"]

log = logging.getLogger(__name__)

NS_SOAP = "http://www.w3.org/2003/05/soap-envelope"
NS_ADDRESSING = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
NS_WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
NS_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
NS_FAULT = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
NS_IDENTITY = "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"

RESOURCE_CMD = f"{NS_SHELL}/cmd"
ACTION_CREATE = f"{NS_TRANSFER}/Create"
ACTION_DELETE = f"{NS_TRANSFER}/Delete"
ACTION_COMMAND = f"{NS_SHELL}/Command"
ACTION_RECEIVE = f"{NS_SHELL}/Receive"
ACTION_SEND = f"{NS_SHELL}/Send"
ACTION_SIGNAL = f"{NS_SHELL}/Signal"
SIGNAL_TERMINATE = f"{NS_SHELL}/signal/terminate"
SIGNAL_CTRL_C = f"{NS_SHELL}/signal/ctrl_c"
SIGNAL_CTRL_BREAK = f"{NS_SHELL}/signal/ctrl_break"
STATE_DONE = f"{NS_SHELL}/CommandState/Done"
STATE_RUNNING = f"{NS_SHELL}/CommandState/Running"
ANONYMOUS = f"{NS_ADDRESSING}/role/anonymous"

#: WSManFault codes clients act on (pywinrm retries 2150858793; the Ruby gem reopens on 2150858843).
CODE_TIMED_OUT = 2150858793
CODE_SCHEMA_VALIDATION = 2150858817
CODE_SHELL_NOT_FOUND = 2150858843

_NAMESPACES = (
    f'xmlns:s="{NS_SOAP}" xmlns:a="{NS_ADDRESSING}" xmlns:x="{NS_TRANSFER}" '
    f'xmlns:w="{NS_WSMAN}" xmlns:rsp="{NS_SHELL}" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"'
)

#: Windows' defaults: 30 shells per user, and Receive never blocks longer than a minute.
MAX_SHELLS = 30
MAX_OPERATION_TIMEOUT = 60.0
_CHUNK = 8192


class WsmanFault(Exception):
    """A SOAP fault to send back; ``status`` is the HTTP status code."""

    def __init__(
        self,
        subcode: str,
        reason: str,
        *,
        code: str = "s:Sender",
        wsman_code: int | None = None,
        status: int = 500,
    ) -> None:
        super().__init__(reason)
        self.subcode = subcode
        self.reason = reason
        self.code = code
        self.wsman_code = wsman_code
        self.status = status


def _duration(text: str | None, default: float) -> float:
    """Seconds in an xs:duration such as ``PT20S``, ``PT60.000S`` or ``P0DT1H``."""
    match = re.fullmatch(
        r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d*)?)S)?)?", (text or "").strip()
    )
    if not text or not match:
        return default
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def _encoding(codepage: str | None) -> str:
    if codepage is None or codepage.strip() == "65001":
        return "utf-8"
    try:
        return codecs.lookup(f"cp{int(codepage)}").name
    except (ValueError, LookupError):
        return "utf-8"


@dataclass
class _Request:
    action: str
    message_id: str
    resource_uri: str
    selectors: dict[str, str]
    options: dict[str, str]
    operation_timeout: float
    max_envelope: int
    body: ET.Element

    @classmethod
    def parse(cls, payload: bytes) -> _Request:
        # Entity declarations serve no purpose in WS-Man and invite entity-expansion attacks.
        if b"<!DOCTYPE" in payload or b"<!ENTITY" in payload:
            raise WsmanFault(
                "w:SchemaValidationError",
                "DTDs are not allowed.",
                wsman_code=CODE_SCHEMA_VALIDATION,
                status=400,
            )
        try:
            root = ET.fromstring(payload)
        except ET.ParseError as exc:
            raise WsmanFault(
                "w:SchemaValidationError",
                f"The SOAP XML in the message is not well-formed: {exc}.",
                wsman_code=CODE_SCHEMA_VALIDATION,
                status=400,
            ) from exc
        header = root.find(f"{{{NS_SOAP}}}Header")
        body = root.find(f"{{{NS_SOAP}}}Body")
        if root.tag != f"{{{NS_SOAP}}}Envelope" or body is None:
            raise WsmanFault(
                "w:SchemaValidationError",
                "The message is not a SOAP 1.2 envelope.",
                wsman_code=CODE_SCHEMA_VALIDATION,
                status=400,
            )

        def text(path: str) -> str:
            node = header.find(path) if header is not None else None
            return (node.text or "").strip() if node is not None else ""

        selectors = {
            node.get("Name", ""): (node.text or "").strip()
            for node in (header.iterfind("{*}SelectorSet/{*}Selector") if header is not None else ())
        }
        options = {
            node.get("Name", "").upper(): (node.text or "").strip()
            for node in (header.iterfind("{*}OptionSet/{*}Option") if header is not None else ())
        }
        max_envelope = text("{*}MaxEnvelopeSize")
        return cls(
            action=text("{*}Action"),
            message_id=text("{*}MessageID"),
            resource_uri=text("{*}ResourceURI"),
            selectors=selectors,
            options=options,
            operation_timeout=min(_duration(text("{*}OperationTimeout"), 60.0), MAX_OPERATION_TIMEOUT),
            max_envelope=int(max_envelope) if max_envelope.isdigit() else 153600,
            body=body,
        )


class _Command:
    """A running (or finished) command and the output not yet received."""

    def __init__(self, command_id: str, encoding: str) -> None:
        self.id = command_id
        self.encoding = encoding
        self.cancel = threading.Event()
        self._cond = threading.Condition()
        self._pending: list[tuple[str, bytearray]] = []
        self.exit_code: int | None = None

    def feed(self, stream: str, text: str) -> None:
        try:
            data = text.encode(self.encoding, "surrogateescape")
        except UnicodeEncodeError:
            data = text.encode(self.encoding, "replace")
        with self._cond:
            # Consecutive writes to one stream coalesce; stream order is preserved otherwise.
            if self._pending and self._pending[-1][0] == stream:
                self._pending[-1][1].extend(data)
            else:
                self._pending.append((stream, bytearray(data)))
            self._cond.notify_all()

    def finish(self, exit_code: int) -> None:
        with self._cond:
            self.exit_code = exit_code
            self._cond.notify_all()

    def take(self, budget: int, timeout: float) -> tuple[list[tuple[str, bytes]], int | None] | None:
        """Wait for output or completion; None when ``timeout`` passes with neither."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._pending and self.exit_code is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            chunks: list[tuple[str, bytes]] = []
            while self._pending and budget > 0:
                stream, data = self._pending[0]
                piece = bytes(data[: min(_CHUNK, budget)])
                del data[: len(piece)]
                if not data:
                    self._pending.pop(0)
                chunks.append((stream, piece))
                budget -= len(piece)
            done = self.exit_code if not self._pending else None
            return chunks, done


@dataclass
class _Shell:
    id: str
    owner: str
    client_ip: str
    encoding: str
    working_directory: str | None
    environment: dict[str, str]
    idle_timeout: float
    input_streams: str
    output_streams: str
    created: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.monotonic)
    commands: dict[str, _Command] = field(default_factory=dict)


class WsmanService:
    """Dispatches WS-Man requests for one guest; thread-safe."""

    def __init__(self, context: WindowsGuestContext, *, max_shells: int = MAX_SHELLS) -> None:
        self.context = context
        self.max_shells = max_shells
        self._shells: dict[str, _Shell] = {}
        self._lock = threading.Lock()

    # -- entry point ----------------------------------------------------------------------------

    def handle(self, payload: bytes, *, user: str, client_ip: str) -> tuple[int, bytes]:
        """Process one SOAP request; returns the HTTP status and the response envelope."""
        message_id = ""
        try:
            request = _Request.parse(payload)
            message_id = request.message_id
            if not request.action and request.body.find(f"{{{NS_IDENTITY}}}Identify") is not None:
                return 200, self.identify()
            action, body = self._dispatch(request, user, client_ip)
            return 200, self._envelope(action, message_id, body)
        except WsmanFault as fault:
            return fault.status, self._fault(fault, message_id)
        except Exception:  # the service must outlive any single bad request
            log.exception("internal error handling a WS-Man request")
            internal = WsmanFault(
                "w:InternalError",
                "The WS-Management service encountered an internal error.",
                code="s:Receiver",
            )
            return internal.status, self._fault(internal, message_id)

    def close(self) -> None:
        """Stop every running command (server shutdown)."""
        with self._lock:
            shells, self._shells = list(self._shells.values()), {}
        for shell in shells:
            for command in shell.commands.values():
                command.cancel.set()

    # -- actions --------------------------------------------------------------------------------

    def _dispatch(self, request: _Request, user: str, client_ip: str) -> tuple[str, str]:
        handlers = {
            ACTION_CREATE: self._create,
            ACTION_COMMAND: self._command,
            ACTION_RECEIVE: self._receive,
            ACTION_SEND: self._send,
            ACTION_SIGNAL: self._signal,
            ACTION_DELETE: self._delete,
        }
        handler = handlers.get(request.action)
        if handler is None:
            raise WsmanFault(
                "a:ActionNotSupported",
                f"The action is not supported by the service: {request.action or '(none)'}.",
            )
        if request.resource_uri.lower() != RESOURCE_CMD.lower():
            raise WsmanFault(
                "w:DestinationUnreachable",
                "The WS-Management service cannot process the request because the resource URI "
                f"{request.resource_uri or '(none)'} is not supported; only {RESOURCE_CMD} is.",
            )
        return handler(request, user, client_ip)

    def _shell(self, request: _Request, user: str) -> _Shell:
        shell_id = request.selectors.get("ShellId", "")
        with self._lock:
            shell = self._shells.get(shell_id.upper())
            if shell is None or shell.owner != user:
                raise WsmanFault(
                    "w:InvalidSelectors",
                    "The WS-Management service cannot process the request because the request contained "
                    "invalid selectors for the resource.",
                    wsman_code=CODE_SHELL_NOT_FOUND,
                )
            shell.last_used = time.monotonic()
            return shell

    def _reap_idle(self) -> None:
        now = time.monotonic()
        for shell_id, shell in list(self._shells.items()):
            idle = now - shell.last_used
            running = any(c.exit_code is None for c in shell.commands.values())
            if idle > shell.idle_timeout and not running:
                del self._shells[shell_id]

    def _create(self, request: _Request, user: str, client_ip: str) -> tuple[str, str]:
        spec = request.body.find("{*}Shell")
        if spec is None:
            raise WsmanFault(
                "w:SchemaValidationError",
                "Create needs an rsp:Shell element.",
                wsman_code=CODE_SCHEMA_VALIDATION,
            )
        working_directory = (spec.findtext("{*}WorkingDirectory") or "").strip() or None
        if working_directory is not None:
            try:
                if not self.context.host_path(working_directory).is_dir():
                    raise WindowsPathError("The directory name is invalid.")
            except WindowsPathError as exc:
                raise WsmanFault("w:InvalidParameter", str(exc)) from exc
        environment = {
            node.get("Name", ""): node.text or "" for node in spec.iterfind("{*}Environment/{*}Variable")
        }
        shell = _Shell(
            id=str(uuid.uuid4()).upper(),
            owner=user,
            client_ip=client_ip,
            encoding=_encoding(request.options.get("WINRS_CODEPAGE")),
            working_directory=working_directory,
            environment={k: v for k, v in environment.items() if k},
            idle_timeout=_duration(spec.findtext("{*}IdleTimeOut"), 7200.0),
            input_streams=(spec.findtext("{*}InputStreams") or "stdin").strip(),
            output_streams=(spec.findtext("{*}OutputStreams") or "stdout stderr").strip(),
        )
        with self._lock:
            self._reap_idle()
            if sum(1 for s in self._shells.values() if s.owner == user) >= self.max_shells:
                raise WsmanFault(
                    "w:QuotaLimit",
                    f"The WS-Management service cannot process the request. This user is allowed a maximum "
                    f"number of {self.max_shells} concurrent shells, which has been exceeded.",
                )
            self._shells[shell.id] = shell
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(shell.created))
        body = (
            "<x:ResourceCreated>"
            f"<a:Address>{escape(ANONYMOUS)}</a:Address>"
            "<a:ReferenceParameters>"
            f"<w:ResourceURI>{RESOURCE_CMD}</w:ResourceURI>"
            f'<w:SelectorSet><w:Selector Name="ShellId">{shell.id}</w:Selector></w:SelectorSet>'
            "</a:ReferenceParameters>"
            "</x:ResourceCreated>"
            "<rsp:Shell>"
            f"<rsp:ShellId>{shell.id}</rsp:ShellId>"
            f"<rsp:ResourceUri>{RESOURCE_CMD}</rsp:ResourceUri>"
            f"<rsp:Owner>{escape(user)}</rsp:Owner>"
            f"<rsp:ClientIP>{escape(client_ip)}</rsp:ClientIP>"
            f"<rsp:IdleTimeOut>PT{shell.idle_timeout:.3f}S</rsp:IdleTimeOut>"
            f"<rsp:InputStreams>{escape(shell.input_streams)}</rsp:InputStreams>"
            f"<rsp:OutputStreams>{escape(shell.output_streams)}</rsp:OutputStreams>"
            f"<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime>"
            f"<rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity>"
            f"<rsp:CreationTime>{created}</rsp:CreationTime>"
            "</rsp:Shell>"
        )
        log.debug("shell %s created for %s from %s", shell.id, user, client_ip)
        return f"{NS_TRANSFER}/CreateResponse", body

    def _command(self, request: _Request, user: str, client_ip: str) -> tuple[str, str]:
        shell = self._shell(request, user)
        spec = request.body.find("{*}CommandLine")
        program = (spec.findtext("{*}Command") or "").strip() if spec is not None else ""
        if spec is None or not program:
            raise WsmanFault(
                "w:SchemaValidationError",
                "Command needs rsp:CommandLine/rsp:Command.",
                wsman_code=CODE_SCHEMA_VALIDATION,
            )
        arguments = " ".join((node.text or "") for node in spec.iterfind("{*}Arguments"))
        # Some clients (the Ruby winrm gem) choose the CommandId themselves.
        command_id = (spec.get("CommandId") or str(uuid.uuid4())).upper()
        skip_cmd = request.options.get("WINRS_SKIP_CMD_SHELL", "FALSE").upper() == "TRUE"
        command = _Command(command_id, shell.encoding)
        with self._lock:
            shell.commands[command_id] = command
        thread = threading.Thread(
            target=self._execute,
            args=(shell, command, program, arguments, skip_cmd),
            name=f"winrm-command-{command_id[:8]}",
            daemon=True,
        )
        thread.start()
        return (
            f"{NS_SHELL}/CommandResponse",
            f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId></rsp:CommandResponse>",
        )

    def _execute(
        self, shell: _Shell, command: _Command, program: str, arguments: str, skip_cmd: bool
    ) -> None:
        exit_code = 1
        try:
            cmd_shell = CmdShell(
                self.context,
                cwd=shell.working_directory,
                environment=shell.environment,
                cancel=command.cancel,
                on_output=command.feed,
            )
            if skip_cmd:
                exit_code = cmd_shell.run_program(program, arguments).exit_code
            else:
                # Without WINRS_SKIP_CMD_SHELL, WinRM runs "cmd.exe /c <command> <arguments>".
                exit_code = cmd_shell.run(f"{program} {arguments}" if arguments else program).exit_code
        except Exception:
            log.exception("command %s failed", command.id)
            command.feed("stderr", "The simulated guest failed to run the command.\r\n")
        finally:
            command.finish(exit_code)

    def _find_command(self, shell: _Shell, command_id: str | None) -> _Command:
        with self._lock:
            command = shell.commands.get((command_id or "").upper())
        if command is None:
            raise WsmanFault(
                "w:InvalidParameter",
                f"The request for the Windows Remote Shell with ShellId {shell.id} failed because the "
                f"command with CommandId {command_id or '(none)'} was not found.",
            )
        return command

    def _receive(self, request: _Request, user: str, client_ip: str) -> tuple[str, str]:
        shell = self._shell(request, user)
        desired = request.body.find("{*}Receive/{*}DesiredStream")
        command = self._find_command(shell, desired.get("CommandId") if desired is not None else None)
        # Leave room for the envelope and per-chunk markup; base64 grows data by a third.
        budget = max(1024, (request.max_envelope - 8192) * 3 // 4)
        taken = command.take(budget, request.operation_timeout)
        if taken is None:
            raise WsmanFault(
                "w:TimedOut",
                "The WS-Management service cannot complete the operation within the time specified in "
                "OperationTimeout.",
                code="s:Receiver",
                wsman_code=CODE_TIMED_OUT,
            )
        chunks, exit_code = taken
        cid = quoteattr(command.id)
        parts = [
            f'<rsp:Stream Name="{stream}" CommandId={cid}>{base64.b64encode(data).decode()}</rsp:Stream>'
            for stream, data in chunks
        ]
        if exit_code is None:
            parts.append(f'<rsp:CommandState CommandId={cid} State="{STATE_RUNNING}"/>')
        else:
            parts += [
                f'<rsp:Stream Name="{name}" CommandId={cid} End="true"></rsp:Stream>'
                for name in ("stdout", "stderr")
            ]
            parts.append(
                f'<rsp:CommandState CommandId={cid} State="{STATE_DONE}">'
                f"<rsp:ExitCode>{exit_code}</rsp:ExitCode></rsp:CommandState>"
            )
        return f"{NS_SHELL}/ReceiveResponse", "<rsp:ReceiveResponse>" + "".join(
            parts
        ) + "</rsp:ReceiveResponse>"

    def _send(self, request: _Request, user: str, client_ip: str) -> tuple[str, str]:
        shell = self._shell(request, user)
        stream = request.body.find("{*}Send/{*}Stream")
        self._find_command(shell, stream.get("CommandId") if stream is not None else None)
        # No program of this dialect reads interactive input; accepting it keeps clients going.
        return f"{NS_SHELL}/SendResponse", "<rsp:SendResponse/>"

    def _signal(self, request: _Request, user: str, client_ip: str) -> tuple[str, str]:
        shell = self._shell(request, user)
        signal = request.body.find("{*}Signal")
        command = self._find_command(shell, signal.get("CommandId") if signal is not None else None)
        code = (signal.findtext("{*}Code") if signal is not None else "") or ""
        code = code.strip()
        if code == SIGNAL_TERMINATE:
            command.cancel.set()
            with self._lock:
                shell.commands.pop(command.id, None)
        elif code in (SIGNAL_CTRL_C, SIGNAL_CTRL_BREAK):
            command.cancel.set()
        else:
            raise WsmanFault("w:InvalidParameter", f"Unsupported signal code {code or '(none)'}.")
        return f"{NS_SHELL}/SignalResponse", "<rsp:SignalResponse/>"

    def _delete(self, request: _Request, user: str, client_ip: str) -> tuple[str, str]:
        shell = self._shell(request, user)
        with self._lock:
            self._shells.pop(shell.id, None)
        for command in shell.commands.values():
            command.cancel.set()
        return f"{NS_TRANSFER}/DeleteResponse", ""

    # -- envelopes ------------------------------------------------------------------------------

    def _envelope(self, action: str, relates_to: str, body: str) -> bytes:
        relates = f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo>" if relates_to else ""
        return (
            f'<s:Envelope xml:lang="en-US" {_NAMESPACES}>'
            "<s:Header>"
            f"<a:Action>{escape(action)}</a:Action>"
            f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
            f"<a:To>{ANONYMOUS}</a:To>"
            f"{relates}"
            "</s:Header>"
            f"<s:Body>{body}</s:Body>"
            "</s:Envelope>"
        ).encode()

    def _fault(self, fault: WsmanFault, relates_to: str) -> bytes:
        detail = ""
        if fault.wsman_code is not None:
            detail = (
                f'<s:Detail><f:WSManFault xmlns:f="{NS_FAULT}" Code="{fault.wsman_code}" '
                f"Machine={quoteattr(self.context.hostname)}><f:Message>{escape(fault.reason)} </f:Message>"
                "</f:WSManFault></s:Detail>"
            )
        body = (
            "<s:Fault>"
            f"<s:Code><s:Value>{fault.code}</s:Value><s:Subcode><s:Value>{fault.subcode}</s:Value></s:Subcode></s:Code>"
            f'<s:Reason><s:Text xml:lang="en-US">{escape(fault.reason)} </s:Text></s:Reason>'
            f"{detail}"
            "</s:Fault>"
        )
        return self._envelope("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", relates_to, body)

    def identify(self) -> bytes:
        """The answer to a WS-Man Identify request (also served unauthenticated)."""
        build = self.context.os_version.rsplit(".", 1)[0]
        return (
            f'<s:Envelope xmlns:s="{NS_SOAP}" xmlns:wsmid="{NS_IDENTITY}"><s:Header/><s:Body>'
            "<wsmid:IdentifyResponse>"
            f"<wsmid:ProtocolVersion>{NS_WSMAN}</wsmid:ProtocolVersion>"
            "<wsmid:ProductVendor>Microsoft Corporation</wsmid:ProductVendor>"
            f"<wsmid:ProductVersion>OS: {escape(build)} SP: 0.0 Stack: 3.0</wsmid:ProductVersion>"
            "</wsmid:IdentifyResponse></s:Body></s:Envelope>"
        ).encode()
