"""WS-Management (MS-WSMV) remote shell protocol: the subset pywinrm uses.

Actions on ``.../windows/shell/cmd``: Create, Command, Receive, Send, Signal and Delete, plus the
WS-Man Identify request.  Commands run through the cmd.exe dialect on their own thread; Receive
long-polls for output (up to the request's OperationTimeout, then the ``w:TimedOut`` fault that
clients retry on) and returns it base64-encoded in chunks bounded by MaxEnvelopeSize.
This module is the service (dispatch, quotas, the actions); the wire format is protocol.py's, the
shells' and commands' state shells.py's.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import uuid
from xml.sax.saxutils import escape, quoteattr

from ..cmd.shell import CmdShell
from ..context import WindowsGuestContext, WindowsPathError
from .protocol import (
    ACTION_COMMAND,
    ACTION_CREATE,
    ACTION_DELETE,
    ACTION_RECEIVE,
    ACTION_SEND,
    ACTION_SIGNAL,
    ANONYMOUS,
    CODE_SCHEMA_VALIDATION,
    CODE_SHELL_NOT_FOUND,
    CODE_TIMED_OUT,
    NS_IDENTITY,
    NS_SHELL,
    NS_SOAP,
    NS_TRANSFER,
    NS_WSMAN,
    RESOURCE_CMD,
    SIGNAL_CTRL_BREAK,
    SIGNAL_CTRL_C,
    SIGNAL_TERMINATE,
    STATE_DONE,
    STATE_RUNNING,
    WsmanFault,
    WsmanRequest,
    duration_seconds,
    envelope,
    fault_envelope,
)
from .shells import RemoteCommand, RemoteShell, codepage_encoding

__all__ = ["WsmanService"]

log = logging.getLogger(__name__)

#: Windows' default: 30 shells per user.
MAX_SHELLS = 30


class WsmanService:
    """Dispatches WS-Man requests for one guest; thread-safe."""

    def __init__(self, context: WindowsGuestContext, *, max_shells: int = MAX_SHELLS) -> None:
        self.context = context
        self.max_shells = max_shells
        self._shells: dict[str, RemoteShell] = {}
        self._lock = threading.Lock()

    # -- entry point ----------------------------------------------------------------------------

    def handle(self, payload: bytes, *, user: str, client_ip: str) -> tuple[int, bytes]:
        """Process one SOAP request; returns the HTTP status and the response envelope."""
        message_id = ""
        try:
            request = WsmanRequest.parse(payload)
            message_id = request.message_id
            if not request.action and request.body.find(f"{{{NS_IDENTITY}}}Identify") is not None:
                return 200, self.identify()
            action, body = self._dispatch(request, user, client_ip)
            return 200, envelope(action, message_id, body)
        except WsmanFault as fault:
            return fault.status, fault_envelope(fault, message_id, self.context.hostname)
        except Exception:  # the service must outlive any single bad request
            log.exception("internal error handling a WS-Man request")
            internal = WsmanFault(
                "w:InternalError",
                "The WS-Management service encountered an internal error.",
                code="s:Receiver",
            )
            return internal.status, fault_envelope(internal, message_id, self.context.hostname)

    def close(self) -> None:
        """Stop every running command (server shutdown)."""
        with self._lock:
            shells, self._shells = list(self._shells.values()), {}
        for shell in shells:
            for command in shell.commands.values():
                command.cancel.set()

    # -- actions --------------------------------------------------------------------------------

    def _dispatch(self, request: WsmanRequest, user: str, client_ip: str) -> tuple[str, str]:
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

    def _shell(self, request: WsmanRequest, user: str) -> RemoteShell:
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

    def _create(self, request: WsmanRequest, user: str, client_ip: str) -> tuple[str, str]:
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
        shell = RemoteShell(
            id=str(uuid.uuid4()).upper(),
            owner=user,
            client_ip=client_ip,
            encoding=codepage_encoding(request.options.get("WINRS_CODEPAGE")),
            working_directory=working_directory,
            environment={k: v for k, v in environment.items() if k},
            idle_timeout=duration_seconds(spec.findtext("{*}IdleTimeOut"), 7200.0),
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

    def _command(self, request: WsmanRequest, user: str, client_ip: str) -> tuple[str, str]:
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
        command = RemoteCommand(command_id, shell.encoding)
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
        self, shell: RemoteShell, command: RemoteCommand, program: str, arguments: str, skip_cmd: bool
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

    def _find_command(self, shell: RemoteShell, command_id: str | None) -> RemoteCommand:
        with self._lock:
            command = shell.commands.get((command_id or "").upper())
        if command is None:
            raise WsmanFault(
                "w:InvalidParameter",
                f"The request for the Windows Remote Shell with ShellId {shell.id} failed because the "
                f"command with CommandId {command_id or '(none)'} was not found.",
            )
        return command

    def _receive(self, request: WsmanRequest, user: str, client_ip: str) -> tuple[str, str]:
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

    def _send(self, request: WsmanRequest, user: str, client_ip: str) -> tuple[str, str]:
        shell = self._shell(request, user)
        stream = request.body.find("{*}Send/{*}Stream")
        self._find_command(shell, stream.get("CommandId") if stream is not None else None)
        # No program of this dialect reads interactive input; accepting it keeps clients going.
        return f"{NS_SHELL}/SendResponse", "<rsp:SendResponse/>"

    def _signal(self, request: WsmanRequest, user: str, client_ip: str) -> tuple[str, str]:
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

    def _delete(self, request: WsmanRequest, user: str, client_ip: str) -> tuple[str, str]:
        shell = self._shell(request, user)
        with self._lock:
            self._shells.pop(shell.id, None)
        for command in shell.commands.values():
            command.cancel.set()
        return f"{NS_TRANSFER}/DeleteResponse", ""

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
