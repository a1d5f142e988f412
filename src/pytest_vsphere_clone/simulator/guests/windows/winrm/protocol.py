"""The WS-Management wire format: namespaces, actions, fault codes, requests parsed, envelopes rendered.

What MS-WSMV says a message looks like, for the remote shell resource only: ``WsmanRequest.parse``
reads a SOAP 1.2 envelope's WS-Addressing and WS-Man headers (refusing DTDs), ``envelope`` and
``fault_envelope`` write the answers, and ``WsmanFault`` carries a fault with its HTTP status from
wherever it is raised to the service's entry point (wsman.py), which turns it into the answer.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

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

#: Windows' default: Receive never blocks longer than a minute.
MAX_OPERATION_TIMEOUT = 60.0


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


def duration_seconds(text: str | None, default: float) -> float:
    """Seconds in an xs:duration such as ``PT20S``, ``PT60.000S`` or ``P0DT1H``."""
    match = re.fullmatch(
        r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d*)?)S)?)?", (text or "").strip()
    )
    if not text or not match:
        return default
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


@dataclass
class WsmanRequest:
    """One WS-Man request: the SOAP headers the service acts on, and the body."""

    action: str
    message_id: str
    resource_uri: str
    selectors: dict[str, str]
    options: dict[str, str]
    operation_timeout: float
    max_envelope: int
    body: ET.Element

    @classmethod
    def parse(cls, payload: bytes) -> WsmanRequest:
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
            operation_timeout=min(duration_seconds(text("{*}OperationTimeout"), 60.0), MAX_OPERATION_TIMEOUT),
            max_envelope=int(max_envelope) if max_envelope.isdigit() else 153600,
            body=body,
        )


def envelope(action: str, relates_to: str, body: str) -> bytes:
    """A response envelope: ``body`` answering the request whose MessageID is ``relates_to``."""
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


def fault_envelope(fault: WsmanFault, relates_to: str, machine: str) -> bytes:
    """A SOAP fault envelope; ``machine`` (the guest's hostname) is named in its WSManFault detail."""
    detail = ""
    if fault.wsman_code is not None:
        detail = (
            f'<s:Detail><f:WSManFault xmlns:f="{NS_FAULT}" Code="{fault.wsman_code}" '
            f"Machine={quoteattr(machine)}><f:Message>{escape(fault.reason)} </f:Message>"
            "</f:WSManFault></s:Detail>"
        )
    body = (
        "<s:Fault>"
        f"<s:Code><s:Value>{fault.code}</s:Value><s:Subcode><s:Value>{fault.subcode}</s:Value></s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{escape(fault.reason)} </s:Text></s:Reason>'
        f"{detail}"
        "</s:Fault>"
    )
    return envelope("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", relates_to, body)
