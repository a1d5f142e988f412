"""Settings resolved once per run: CLI > environment > ini > default, validated, sources kept."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .options import BY_NAME, GROUPS, OPTIONS, Option

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
    ssh_host_key_policy: str = "guest"
    known_hosts: Path | None = None  # None: ~/.ssh/known_hosts
    winrm_port: int = 5985
    winrm_transport: str = "ntlm"
    winrm_ssl: bool = False
    discovery: str = "active"
    discovery_command: str | None = None
    ip_family: str = "ipv4"
    ip_network: str | None = None
    network_refresh_command: str | None = None
    cpus: int | None = None
    memory_mb: int | None = None
    networks: tuple[str, ...] = ()
    disks: tuple[int, ...] = ()
    #: ``KEY=VALUE`` items, in the order given.
    extra_config: tuple[str, ...] = ()
    clone_timeout: float = 300.0
    ip_timeout: float = 300.0
    connect_timeout: float = 120.0
    guest_op_retries: int = 5
    keep: str = "never"
    collapse: str = "none"
    ttl: float = 7200.0
    #: Reporting settings belong to the run, not to a clone: they never tell two clones apart.
    report: Path | None = field(default=None, compare=False)
    artifacts: Path | None = field(default=None, compare=False)
    simulator: bool = False
    sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    #: Environment variables that --vsphere-simulator set aside (names only, never values).
    ignored_env: tuple[str, ...] = field(default=(), repr=False, compare=False)

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
            if option.kind == "keyvalue":
                # Keys only: extraConfig values may be tokens for the guest (guestinfo.join-token=...).
                value = tuple(item.partition("=")[0] + "=***" for item in value)
            shown = "***" if option.secret else (",".join(map(str, value)) if isinstance(value, tuple) else value)
            lines.append(f"{option.name}={shown} ({source})")
        return lines

    def header(self) -> list[str]:
        """The pytest header's lines: the settings not at their default, then what the user should know."""
        lines = []
        described = self.describe()
        if described:
            lines.append("vsphere-clone: " + ", ".join(described))
        if self.ignored_env:
            lines.append(f"vsphere-clone: --vsphere-simulator ignores {', '.join(self.ignored_env)} from the "
                         f"environment: the simulator brings its own vCenter and guests")
        if self.ssh_host_key_policy == "accept-new":
            lines.append("vsphere-clone: warning: --vsphere-ssh-host-key-policy=accept-new trusts each clone's SSH "
                         "host key on first use: a machine answering at a clone's address in its place would go "
                         "unnoticed")
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
        if isinstance(raw, Mapping):  # extra_config={"guestinfo.role": "web"} from a marker or factory
            raw = [f"{key}={value}" for key, value in raw.items()]
        items = raw if isinstance(raw, list | tuple) else re.split(option.separator, str(raw))
        return tuple(_item(option, str(i).strip()) for i in items if str(i).strip())
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
    if option.kind in ("int", "port"):
        try:
            value = int(text)
        except ValueError:
            raise ValueError("expected a whole number") from None
        if option.kind == "port" and not 1 <= value <= 65535:
            raise ValueError("must be a port number from 1 to 65535")
        if option.minimum is not None and value < option.minimum:
            raise ValueError(f"must be at least {option.minimum:g}")
        if value < 0:
            raise ValueError("must not be negative")
        if option.step and value % option.step:
            lower = value - value % option.step
            raise ValueError(f"must be a multiple of {option.step}, e.g. {lower or option.step} or "
                             f"{lower + option.step}")
        return value
    if option.kind == "float":
        number = float(text)
        if number <= 0:
            raise ValueError("must be greater than 0")
        return number
    if option.kind == "duration":
        seconds = parse_duration(text)
        if option.minimum is not None and seconds < option.minimum:
            raise ValueError(f"must be at least {_span(option.minimum)}")
        return seconds
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


#: An extraConfig key: letters, digits and . _ - : (as vSphere's advanced settings are named).
_CONFIG_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")


def _item(option: Option, text: str) -> Any:
    """One item of a repeatable setting."""
    if option.kind == "keyvalue":
        key, eq, _ = text.partition("=")
        if not eq or not _CONFIG_KEY.match(key.strip()):
            raise ValueError(f"{text!r} is not KEY=VALUE with KEY made of letters, digits and . _ - : "
                             f"(e.g. guestinfo.role=web)")
        return f"{key.strip()}={text.partition('=')[2]}"
    if option.kind == "int":
        return _convert(dataclasses.replace(option, repeatable=False), text)
    return text


def _span(seconds: float) -> str:
    """``1 minute``, ``5 minutes``, ``30 s``: a minimum as people say it."""
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} s"


def _describe_source(option: Option, source: str) -> str:
    return {"cli": option.cli, "env": option.env, "ini": option.ini}.get(source, source)


#: Setting groups the bundled simulator dictates: values for a real vCenter and its guests that the
#: environment holds (VSPHERE_HOST, VSPHERE_GUEST_PASSWORD, ...) would point the run away from it.
SIMULATOR_GROUPS = ("connection", "placement", "guest")


def resolve(
    cli: Mapping[str, Any],
    ini: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build Settings from CLI values (None = not given), ini values and the environment.

    With --vsphere-simulator, connection, placement and guest settings from the environment are
    set aside (and listed in ``ignored_env``): they describe the user's real vCenter, not the simulator.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    simulator_first = sorted(OPTIONS, key=lambda option: option.name != "simulator")
    ignored: list[str] = []
    for option in simulator_first:
        env_value = environ.get(option.env)
        if values.get("simulator") and option.group in SIMULATOR_GROUPS and env_value is not None:
            if env_value.strip():
                ignored.append(option.env)
            env_value = None
        for source, raw in (("cli", cli.get(option.name)), ("env", env_value), ("ini", ini.get(option.name))):
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
    ordered = {o.name: sources[o.name] for o in OPTIONS if o.name in sources}
    settings = Settings(**values, sources=ordered, ignored_env=tuple(sorted(ignored)))
    check_consistency(settings)
    return settings


def check_consistency(settings: Settings) -> None:
    """Errors that involve several settings, each naming the fix."""
    check_clone_settings(settings)
    if settings.simulator:
        return
    if settings.template and not settings.host:
        raise SettingsError("--vsphere-template needs a vCenter: set --vsphere-host (or VSPHERE_HOST), "
                            "or use --vsphere-simulator for the bundled simulator")
    if settings.host and not settings.user:
        raise SettingsError("--vsphere-host needs --vsphere-user (or VSPHERE_USER)")
    if settings.insecure and settings.ca_bundle:
        raise SettingsError("--vsphere-insecure and --vsphere-ca-bundle exclude each other: pick one")


def check_clone_settings(settings: Settings, where: str = "") -> None:
    """Errors within one clone's settings (the run's, a named fixture's, a factory call's).

    ``where`` prefixes the message, e.g. ``"vsphere_fixtures: web: "``.
    """
    check_hardware_settings(settings, where)
    if settings.ip_network and settings.ip_family != "any":
        import ipaddress  # only when the setting is used: the module costs start-up time

        network = ipaddress.ip_network(settings.ip_network, strict=False)
        wanted = 4 if settings.ip_family == "ipv4" else 6
        if network.version != wanted:
            raise SettingsError(
                f"{where}--vsphere-ip-network={settings.ip_network} is an IPv{network.version} network, but "
                f"--vsphere-ip-family={settings.ip_family} accepts only IPv{wanted} addresses, so no address "
                f"could ever match: pass --vsphere-ip-family=ipv{network.version} (or any), or an IPv{wanted} "
                f"--vsphere-ip-network")


def check_hardware_settings(settings: Settings, where: str = "") -> None:
    """The hardware settings against the clone type (and --vsphere-network), each error naming the fix.

    InstantCloneSpec (API reference, vSphere API 6.7) takes ``config``, "key value pairs ... queryable via
    destination VM's extraConfig", and a ``location`` whose device changes may only be "edits of
    VirtualEthernetCard and filebacked Serial/Parallel ports. All other settings are NOT supported":
    no CPU count, memory size or new disk (new NICs are checked against the template at the start).
    """
    from ..clone_types import BY_NAME as KINDS

    kind = KINDS.get(settings.clone_type)
    if kind is not None and not kind.configurable_hardware:
        refused = [name for name, value in (("--vsphere-cpus", settings.cpus), ("--vsphere-memory-mb",
                                                                               settings.memory_mb),
                                             ("--vsphere-disks", settings.disks)) if value]
        if refused:
            others = " or ".join(name for name, other in KINDS.items() if other.configurable_hardware)
            raise SettingsError(
                f"{where}{' and '.join(refused)} cannot apply to {settings.clone_type} clones (an instant clone "
                f"resumes its source's running hardware; InstantCloneSpec takes only extraConfig and NIC port "
                f"groups): use --vsphere-clone-type {others}, or drop {', '.join(refused)}")
    if settings.network and settings.networks and settings.network != settings.networks[0]:
        raise SettingsError(f"{where}--vsphere-network={settings.network} and --vsphere-networks (NIC 1 on "
                            f"{settings.networks[0]}) disagree about NIC 1: give NIC 1's port group once, as the "
                            f"first --vsphere-networks")


#: Setting groups that belong to the run, not to one clone: one vCenter connection, one embedded simulator,
#: one run report. Every other group (a new one such as hardware too, once options.GROUPS lists it) may be
#: set per clone by a factory call, a named fixture or @pytest.mark.vsphere.
RUN_GROUPS = ("connection", "embedded", "reporting")
CLONE_GROUPS = tuple(group for group in GROUPS if group not in RUN_GROUPS)


def overrides_from(overrides: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Settings attributes and values for one clone's overrides (setting names with underscores, e.g.
    ``clone_type="instant"``), each checked like the same setting on the command line.

    ``where`` starts every message, e.g. ``"vsphere_vm_factory"``; a secret's value is never shown.
    """
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        option = BY_NAME.get(key.replace("_", "-"))
        if option is None or option.group not in CLONE_GROUPS:
            raise SettingsError(f"{where}: {key!r} is not a {_clone_groups_text()} setting{_did_you_mean(key)}")
        shown = "***" if option.secret else value
        # None is "unset" where unset means something: a name left to the default, or the template's own
        # hardware (cpus=None for an instant clone of a run with --vsphere-cpus).
        if value is None and (option.repeatable or (option.kind not in ("str", "path", "cidr")
                                                    and option.default is not None)):
            raise SettingsError(f"{where}: {key}=None: {key} needs a value")
        try:
            changes[option.attr] = None if value is None else _convert(option, value)
        except ValueError as exc:
            raise SettingsError(f"{where}: invalid {key}={shown!r}: {exc}") from None
    return changes


def _clone_groups_text() -> str:
    """``clone, placement, guest, discovery, time or teardown``: the groups a clone may set."""
    return f"{', '.join(CLONE_GROUPS[:-1])} or {CLONE_GROUPS[-1]}"


def _did_you_mean(key: str) -> str:
    import difflib  # only for a message

    names = [o.attr for o in OPTIONS if o.group in CLONE_GROUPS]
    close = difflib.get_close_matches(key.replace("-", "_"), names, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


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
        if name == "request":  # pytest's own pseudo fixture: no fixture may take its name
            raise SettingsError("vsphere_fixtures: request is pytest's own request object, which no fixture may "
                                "replace: give the clone fixture another name in vsphere_fixtures")
        if name in fixtures:
            raise SettingsError(f"vsphere_fixtures: {name} is declared twice: give each named fixture its own name")
        changes: dict[str, Any] = {}
        import shlex  # quotes allow spaces: networks="VM Network,Lab"

        try:
            pairs = shlex.split(rest)
        except ValueError as exc:
            raise SettingsError(f"vsphere_fixtures: {name}: {exc}: close the quote") from None
        for pair in pairs:
            key, eq, raw = pair.partition("=")
            option = BY_NAME.get(key.replace("_", "-"))
            if not eq or option is None or option.group in RUN_GROUPS:
                raise SettingsError(f"vsphere_fixtures: {name}: {pair!r} is not KEY=VALUE with KEY a "
                                    f"{_clone_groups_text()} setting")
            try:
                value = _convert(option, raw)
                # A repeatable key given twice adds up: extra_config=a=1 extra_config=b=2.
                changes[option.attr] = changes.get(option.attr, ()) + value if option.repeatable else value
            except ValueError as exc:
                shown = "***" if option.secret else raw
                raise SettingsError(f"vsphere_fixtures: {name}: invalid {key}={shown!r}: {exc}") from None
        if not changes.get("template") and not base.template:
            raise SettingsError(f"vsphere_fixtures: {name} needs template=NAME (or set --vsphere-template)")
        fixtures[name] = base.replace(**changes)
        check_clone_settings(fixtures[name], f"vsphere_fixtures: {name}: ")
    return fixtures


