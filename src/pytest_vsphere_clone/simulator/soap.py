"""SOAP codec of the simulator: vSphere requests in, responses and faults out.

Everything goes through pyVmomi's own deserializer and serializer, so what the
simulator accepts and produces is exactly what the real pyVmomi client speaks.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from io import StringIO
from typing import Any
from xml.parsers.expat import ExpatError, ParserCreate

from pyVmomi import SoapAdapter, VmomiSupport, vmodl

#: The API version the simulator announces (vCenter 8.0 U3).
API_VERSION_ID = "8.0.3.0"
API_VERSION = VmomiSupport.versionMap[f"vim25/{API_VERSION_ID}"]
PRIOR_VERSION_IDS = ("8.0.2.0", "8.0.1.0", "8.0.0.0", "7.0.3.0", "7.0.2.0", "7.0.1.0", "7.0.0.0", "6.7.3", "6.7")

_NS_SEP = SoapAdapter.NS_SEP
_SOAPENV = SoapAdapter.XMLNS_SOAPENV
_BODY_TAG = f"{_SOAPENV}{_NS_SEP}Body"
_ENVELOPE_TAG = f"{_SOAPENV}{_NS_SEP}Envelope"
_HEADER_TAG = f"{_SOAPENV}{_NS_SEP}Header"

#: Not in the WSDL: pyVmomi reads a managed property with this pseudo-method.
FETCH_METHOD = "Fetch"


class SoapRequestError(Exception):
    """A request that cannot be decoded; carries the vSphere fault to answer with."""

    def __init__(self, fault: Any) -> None:
        super().__init__(fault.msg)
        self.fault = fault


@dataclass
class MethodCall:
    """A decoded SOAP call: the method, the target object and named arguments."""

    method: str
    this: Any
    args: dict[str, Any] = field(default_factory=dict)
    info: Any = None  # pyVmomi method info; None for Fetch


def version_for_action(soap_action: str | None) -> str:
    """The pyVmomi version a client asked for in its SOAPAction header."""
    if soap_action:
        action = soap_action.strip('"')
        version = VmomiSupport.versionMap.get(action)
        if version is not None:
            return str(version)
    return str(API_VERSION)


def _fault(kind: str, msg: str, **fields: Any) -> SoapRequestError:
    fault = getattr(vmodl.fault, kind)(msg=msg, **fields)
    return SoapRequestError(fault)


class _RequestParser:
    """Expat handlers for the envelope; each parameter is handed to pyVmomi's SoapDeserializer.

    The deserializer takes the parser over for one parameter element and gives
    the handlers back when that element closes, so the next event we see is
    the moment to collect its value.
    """

    def __init__(self, version: str) -> None:
        self.version = version
        self.ns_map: dict[str | None, list[str]] = {}
        self.depth = 0
        self.in_body = False
        self.call: MethodCall | None = None
        self.params: dict[str, Any] = {}
        self.pending: tuple[str, bool, Any] | None = None
        #: A method pyVmomi does not know: its arguments are skipped, its _this is kept for the fault.
        self.unknown_method: str | None = None
        self.parser = ParserCreate(namespace_separator=_NS_SEP)
        self.parser.buffer_text = True
        SoapAdapter.SetHandlers(
            self.parser,
            (self.start_element, self.end_element, self.character_data, self.start_ns, self.end_ns),
        )

    def parse(self, body: bytes) -> MethodCall | None:
        self.parser.Parse(body, True)
        self.collect()
        return self.call

    def start_ns(self, prefix: str | None, uri: str) -> None:
        self.ns_map.setdefault(prefix, []).append(uri)

    def end_ns(self, prefix: str | None) -> None:
        self.ns_map[prefix].pop()

    def character_data(self, data: str) -> None:
        """Text outside parameters carries nothing."""

    def start_element(self, tag: str, attr: dict[str, str]) -> None:
        self.collect()
        self.depth += 1
        if self.depth == 1 and tag != _ENVELOPE_TAG:
            raise _fault("InvalidRequest", "Request is not a SOAP envelope")
        if self.depth == 2:
            self.in_body = tag == _BODY_TAG
        elif self.depth == 3 and self.in_body:
            self._start_method(tag)
        elif self.depth == 4 and self.in_body:
            self._start_param(tag, attr)

    def end_element(self, tag: str) -> None:
        self.collect()
        self.depth -= 1

    def _start_method(self, tag: str) -> None:
        _, _, name = tag.rpartition(_NS_SEP)
        if self.call is not None:
            raise _fault("InvalidRequest", "A SOAP body must hold exactly one call")
        if name == FETCH_METHOD:
            self.call = MethodCall(method=FETCH_METHOD, this=None)
            self.params = {"prop": str}
            return
        try:
            method = VmomiSupport.GetWsdlMethod("urn:vim25", name)
        except KeyError:
            # MethodNotFound needs its receiver, which comes later as _this: decide after the parse.
            self.unknown_method = name
            self.call = MethodCall(method=name, this=None)
            self.params = {}
            return
        info = method.info
        self.call = MethodCall(method=info.wsdlName, this=None, info=info)
        self.params = {p.name: p.type for p in info.params}

    def _start_param(self, tag: str, attr: dict[str, str]) -> None:
        assert self.call is not None
        _, _, name = tag.rpartition(_NS_SEP)
        if name == "_this":
            param_type: Any = VmomiSupport.ManagedObject
        elif self.unknown_method is not None:
            return  # nested elements are ignored too: only depths 3 and 4 are looked at
        else:
            param_type = self.params.get(name)
            if param_type is None:
                raise _fault("InvalidRequest", f"Unexpected parameter {name} for {self.call.method}")
        is_list = issubclass(param_type, list)
        deserializer = SoapAdapter.SoapDeserializer(version=self.version)
        deserializer.Deserialize(self.parser, param_type.Item if is_list else param_type, False, self.ns_map)
        self.depth -= 1  # the deserializer consumes this element's end
        self.pending = (name, is_list, deserializer)
        deserializer.StartElementHandler(tag, attr)

    def collect(self) -> None:
        """Move a finished parameter's value into the call."""
        if self.pending is None or self.call is None:
            return
        name, is_list, deserializer = self.pending
        self.pending = None
        value = deserializer.GetResult()
        if name == "_this":
            self.call.this = value
        elif is_list:
            self.call.args.setdefault(name, []).append(value)
        else:
            self.call.args[name] = value


def parse_request(body: bytes, version: str) -> MethodCall:
    """Decode one SOAP request body into a MethodCall, or raise SoapRequestError."""
    parser = _RequestParser(version)
    try:
        call = parser.parse(body)
    except SoapRequestError:
        raise
    except ExpatError as exc:
        raise _fault("InvalidRequest", f"Malformed XML: {exc}") from None
    except (TypeError, KeyError, AttributeError, ValueError, IndexError) as exc:
        raise _fault("InvalidRequest", f"Cannot decode request: {type(exc).__name__}: {exc}") from None
    if call is None:
        raise _fault("InvalidRequest", "The SOAP body holds no call")
    if call.this is None:
        raise _fault("InvalidRequest", f"{call.method}: missing _this")
    if parser.unknown_method is not None:
        raise _fault("MethodNotFound", f"Method {call.method} is not known", receiver=call.this, method=call.method)
    if call.info is not None:
        for param in call.info.params:
            if param.name in call.args:
                continue
            if issubclass(param.type, list):
                call.args[param.name] = [] if not param.flags & VmomiSupport.F_OPTIONAL else None
            elif not param.flags & VmomiSupport.F_OPTIONAL:
                raise _fault("InvalidRequest", f"{call.method}: missing required argument {param.name}")
    return call


def _envelope(body: str) -> bytes:
    return (SoapAdapter.XML_HEADER + "\n" + SoapAdapter.SOAP_START + body + SoapAdapter.SOAP_END).encode(
        "utf-8"
    )


def _ns_map() -> dict[str, str]:
    ns_map: dict[str, str] = SoapAdapter.SOAP_NSMAP.copy()
    ns_map["urn:vim25"] = ""
    return ns_map


class _WireSerializer(SoapAdapter.SoapSerializer):
    """pyVmomi's serializer, writing what a vCenter writes where pyVmomi's client side differs.

    As recorded from vCenter 8.0 (pyVmomi's test fixtures): a value in an ``xsd:anyType`` slot
    (a property collector ``val``, a Fetch result, ``OptionValue.value``) always names its type.
    A single reference is ``<val type="Folder" xsi:type="ManagedObjectReference">`` (pyVmomi
    writes ``ManagedObject``, which govmomi cannot decode: ``parent`` and ``vmFolder`` read as nil);
    an array is one ``ArrayOfX`` element whose items name their type too, e.g.
    ``<ManagedObjectReference type="Datastore" xsi:type="ManagedObjectReference">``; an empty
    array is an empty ``ArrayOfX`` element. No element carries pyVmomi's ``versionId`` attribute.
    """

    xsiPrefix: str  # set by pyVmomi's constructor: "xsi:"

    def __init__(self, writer: StringIO, version: str, ns_map: dict[str, str]) -> None:
        super().__init__(writer, version, ns_map)
        self.outermostAttrs = ""  # pyVmomi's versionId: xsi and xsd are declared by the envelope

    def _Serialize(self, val: Any, info: Any, defNS: str) -> None:
        if (info.type is object and isinstance(val, (VmomiSupport.ManagedObject, list))
                and VmomiSupport.IsChildVersion(self.version, info.version)
                and VmomiSupport.GetWsdlNamespace(info.version) == defNS):
            if isinstance(val, VmomiSupport.ManagedObject):
                self._any_reference(val, info)
                return
            if hasattr(val, "Item"):  # a native list has no type to name: pyVmomi's own error follows
                self._any_array(val, info, defNS)
                return
        super()._Serialize(val, info, defNS)

    def _any_reference(self, ref: Any, info: Any) -> None:
        guid = f' serverGuid="{ref._serverGuid}"' if ref._serverGuid is not None else ""
        kind = VmomiSupport.GetWsdlName(type(ref))
        self.writer.write(f'<{info.name}{guid} type="{kind}" {self.xsiPrefix}type="ManagedObjectReference">'
                          f"{SoapAdapter.XmlEscape(ref._moId)}</{info.name}>")

    def _any_array(self, values: list[Any], info: Any, defNS: str) -> None:
        item_type = values.Item  # type: ignore[attr-defined]
        if SoapAdapter.isDynamicType(item_type):
            tag, array_name = "string", "ArrayOfString"
        elif issubclass(item_type, VmomiSupport.ManagedObject):
            tag, array_name = "ManagedObjectReference", "ArrayOfManagedObjectReference"
        else:
            tag = VmomiSupport.GetWsdlName(item_type)
            ns_attr, array_name = self._QName(VmomiSupport.Type(values), defNS)
            assert not ns_attr, f"{array_name} outside the default namespace"
        self.writer.write(f'<{info.name} {self.xsiPrefix}type="{array_name}">')
        item_info = VmomiSupport.Object(name=tag, type=object, version=info.version, flags=info.flags)
        for item in values:
            self._Serialize(item, item_info, defNS)
        self.writer.write(f"</{info.name}>")

    def fault_detail(self, fault: Any, name: str, defNS: str) -> None:
        """``<XFault xmlns="urn:vim25" xsi:type="X">``: govmomi decodes a fault by its xsi:type."""
        info = VmomiSupport.Object(name=name, type=object, version=self.version, flags=0)
        self._SerializeDataObject(fault, info, f' xmlns="{defNS}"', defNS)


def _serialize(value: Any, info: Any, version: str) -> str:
    writer = StringIO()
    _WireSerializer(writer, version, _ns_map()).Serialize(value, info)
    return writer.getvalue()


def serialize_response(method: str, result_type: Any, result: Any, version: str) -> bytes:
    """The SOAP envelope answering ``method`` with ``result``."""
    parts = [f'<{method}Response xmlns="urn:vim25">']
    if method == FETCH_METHOD:
        # FetchResponse's returnval is xsd:anyType: one element naming its type, an array as
        # one ArrayOfX (empty when the array is), and no returnval at all for an unset value.
        if isinstance(result, list) and not hasattr(result, "Item"):
            result = result_type(result)
        result_type = object
    if result is not None:
        # Optional: a method's empty array result is answered with no returnval at all, as a
        # vCenter does (with flags=0 the serializer refuses it).
        info = VmomiSupport.Object(name="returnval", type=result_type, version=version,
                                   flags=VmomiSupport.F_OPTIONAL)
        parts.append(_serialize(result, info, version))
    parts.append(f"</{method}Response>")
    return _envelope("".join(parts))


def serialize_fault(fault: Any, version: str) -> bytes:
    """A SOAP Fault envelope carrying ``fault`` as its detail (HTTP 500)."""
    message = fault.msg or type(fault).__name__
    fault_name = VmomiSupport.GetWsdlName(type(fault))
    # The message travels in faultstring; vCenter's detail has the fault's WSDL fields only
    # (pyVmomi's ``msg`` is not one), as recorded: <InvalidLoginFault xmlns="urn:vim25" xsi:type=...>.
    bare = copy.copy(fault)
    bare.msg = None
    writer = StringIO()
    _WireSerializer(writer, version, _ns_map()).fault_detail(bare, f"{fault_name}Fault", "urn:vim25")
    detail = writer.getvalue()
    code = "ServerFaultCode"
    body = (
        "<soapenv:Fault>"
        f"<faultcode>{code}</faultcode>"
        f"<faultstring>{SoapAdapter.XmlEscape(message)}</faultstring>"
        f"<detail>{detail}</detail>"
        "</soapenv:Fault>"
    )
    return _envelope(body)


def service_versions_xml() -> bytes:
    """The /sdk/vimServiceVersions.xml document the client reads before connecting."""
    prior = "".join(f"<version>{v}</version>" for v in PRIOR_VERSION_IDS)
    return (
        '<?xml version="1.0" encoding="UTF-8" ?>\n'
        '<namespaces version="1.0">\n'
        "  <namespace>\n"
        "    <name>urn:vim25</name>\n"
        f"    <version>{API_VERSION_ID}</version>\n"
        f"    <priorVersions>{prior}</priorVersions>\n"
        "  </namespace>\n"
        "</namespaces>\n"
    ).encode()
