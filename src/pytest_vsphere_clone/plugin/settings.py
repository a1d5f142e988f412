"""Settings resolved once per run: CLI > environment > ini > default, validated, sources kept."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .options import BY_NAME, OPTIONS, Option

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class SettingsError(ValueError):
    """An invalid setting; the message names the setting, where it came from and what is allowed."""


@dataclass(frozen=True)
class Settings:
    """Every setting of the run (see options.py for meanings); ``sources`` says where each came from."""

    host: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    insecure: bool = False
    ca_bundle: Path | None = None
    datacenter: str | None = None
    cluster: str | None = None
    resource_pool: str | None = None
    esxi_host: str | None = None
    folder: str | None = None
    datastore: str | None = None
    network: str | None = None
    template: tuple[str, ...] = ()
    clone_type: str = "linked"
    snapshot: str | None = None
    scope: str = "worker"
    name_prefix: str = "pytest"
    os: str = "auto"
    guest_user: str | None = None
    guest_password: str | None = field(default=None, repr=False)
    ssh_key: Path | None = None
    ssh_port: int = 22
    winrm_port: int = 5985
    winrm_transport: str = "ntlm"
    winrm_ssl: bool = False
    discovery: str = "active"
    discovery_command: str | None = None
    ip_family: str = "ipv4"
    ip_network: str | None = None
    network_refresh_command: str | None = None
    clone_timeout: float = 300.0
    ip_timeout: float = 300.0
    connect_timeout: float = 120.0
    guest_op_retries: int = 5
    keep: str = "never"
    collapse: str = "none"
    ttl: float = 7200.0
    simulator: bool = False
    sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed (used by fixture factories and named fixtures)."""
        return dataclasses.replace(self, **changes)

    def describe(self) -> list[str]:
        """``name=value (source)`` for every setting not at its default; secrets masked."""
        lines = []
        for option in OPTIONS:
            source = self.sources.get(option.name, "default")
            if source == "default":
                continue
            value = getattr(self, option.attr)
            shown = "***" if option.secret else (",".join(value) if isinstance(value, tuple) else value)
            lines.append(f"{option.name}={shown} ({source})")
        return lines


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``15m``, ``2h`` or ``1d``."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError("expected a duration such as 90s, 15m, 2h or 1d")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _convert(option: Option, raw: Any) -> Any:
    """Turn a raw string (or list, for repeatable options) into the setting's value."""
    if option.repeatable:
        items = raw if isinstance(raw, list | tuple) else re.split(r"[,\s]+", str(raw))
        return tuple(str(i).strip() for i in items if str(i).strip())
    if isinstance(raw, bool) and option.kind == "bool":
        return raw
    text = str(raw).strip()
    if option.kind == "bool":
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError("expected true or false")
    if option.kind == "int":
        value = int(text)
        if value < 0:
            raise ValueError("must not be negative")
        return value
    if option.kind == "float":
        number = float(text)
        if number <= 0:
            raise ValueError("must be greater than 0")
        return number
    if option.kind == "duration":
        return parse_duration(text)
    if option.kind == "choice":
        if text not in option.choices:
            raise ValueError(f"allowed: {', '.join(option.choices)}")
        return text
    if option.kind == "cidr":
        import ipaddress  # only when the setting is used: the module costs start-up time

        ipaddress.ip_network(text, strict=False)
        return text
    if option.kind == "path":
        return Path(text).expanduser()
    return text or None


def _describe_source(option: Option, source: str) -> str:
    return {"cli": option.cli, "env": option.env, "ini": option.ini}.get(source, source)


def resolve(
    cli: Mapping[str, Any],
    ini: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build Settings from CLI values (None = not given), ini values and the environment."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        for source, raw in (("cli", cli.get(option.name)), ("env", environ.get(option.env)),
                            ("ini", ini.get(option.name))):
            if raw is None or raw == [] or (source == "ini" and raw == ""):
                continue
            try:
                values[option.attr] = _convert(option, raw)
            except ValueError as exc:
                shown = "***" if option.secret else raw
                raise SettingsError(
                    f"invalid value {shown!r} for {_describe_source(option, source)}: {exc}") from None
            sources[option.name] = source
            break
    settings = Settings(**values, sources=sources)
    check_consistency(settings)
    return settings


def check_consistency(settings: Settings) -> None:
    """Errors that involve several settings, each naming the fix."""
    if settings.simulator:
        return
    if settings.template and not settings.host:
        raise SettingsError("--vsphere-template needs a vCenter: set --vsphere-host (or VSPHERE_HOST), "
                            "or use --vsphere-simulator for the bundled simulator")
    if settings.host and not settings.user:
        raise SettingsError("--vsphere-host needs --vsphere-user (or VSPHERE_USER)")
    if settings.insecure and settings.ca_bundle:
        raise SettingsError("--vsphere-insecure and --vsphere-ca-bundle exclude each other: pick one")


def parse_named_fixtures(lines: list[str], base: Settings) -> dict[str, Settings]:
    """Named fixtures from ini ``vsphere_fixtures``: ``NAME: key=value key=value``."""
    fixtures: dict[str, Settings] = {}
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, rest = line.partition(":")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise SettingsError(f"vsphere_fixtures: {line!r} must look like 'NAME: key=value ...' with NAME a "
                                f"Python identifier")
        changes: dict[str, Any] = {}
        for pair in rest.split():
            key, eq, raw = pair.partition("=")
            option = BY_NAME.get(key.replace("_", "-"))
            if not eq or option is None or option.group in ("connection", "embedded"):
                raise SettingsError(f"vsphere_fixtures: {name}: {pair!r} is not KEY=VALUE with KEY a clone, "
                                    f"placement, guest, discovery, time or teardown setting")
            try:
                changes[option.attr] = _convert(option, raw)
            except ValueError as exc:
                raise SettingsError(f"vsphere_fixtures: {name}: invalid {key}={raw!r}: {exc}") from None
        if not changes.get("template") and not base.template:
            raise SettingsError(f"vsphere_fixtures: {name} needs template=NAME (or set --vsphere-template)")
        fixtures[name] = base.replace(**changes)
    return fixtures


