"""What the doctor checks, from its options and the environment: the templates (``--template``,
repeatable, or ``VSPHERE_TEMPLATE`` comma-separated), the run's clone type, snapshot and collapse
mode, the hardware settings (``--cpus``, ``--memory-mb``, ``--networks``, ``--disks``,
``--extra-config``, read as the plugin reads its ``--vsphere-*`` ones), the guest credentials
(optional) and how long to wait for a booting template's Tools. A bad value from the environment
is one usage error naming the variable and the option.
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..client.clone_types import CLONE_TYPES, COLLAPSE_MODES
from ..plugin.options import BY_NAME
from ._common import GuestCredentials, UsageError, env_name, from_env, guest_credentials

if TYPE_CHECKING:
    from ..client.hardware import HardwareRequest

#: The plugin's hardware settings the doctor takes, as ``--NAME`` (the plugin's ``--vsphere-NAME``).
HARDWARE_OPTIONS = ("cpus", "memory-mb", "networks", "disks", "extra-config")
#: Client and settings messages name ``--vsphere-cpus``...: the doctor's lines say its own options.
HARDWARE_RENAMES = {name: f"--{name}" for name in HARDWARE_OPTIONS}


@dataclass(frozen=True)
class Plan:
    templates: tuple[str, ...]
    clone_type: str
    snapshot: str | None
    collapse: str
    guest: GuestCredentials | None
    tools_wait: float = 15.0
    #: The run's hardware settings; None when none is given (the template's own hardware).
    hardware: HardwareRequest | None = None


def _choice(args: argparse.Namespace, option: str, choices: tuple[str, ...], default: str) -> str:
    value = from_env(args, option) or default
    if value not in choices:
        raise UsageError(f"{env_name(option)}={value!r} is not one of {', '.join(choices)}: fix the environment "
                         f"variable or pass --{option}")
    return value


def plan_of(args: argparse.Namespace) -> Plan:
    templates = tuple(args.template or ())
    if not templates:
        templates = tuple(t for t in re.split(r"[,\s]+", from_env(args, "template") or "") if t)
    return Plan(templates, _choice(args, "clone-type", CLONE_TYPES, "linked"), from_env(args, "snapshot"),
                _choice(args, "collapse", COLLAPSE_MODES, "none"), guest_credentials(args, required=False),
                args.tools_wait, hardware_of(args))


def hardware_of(args: argparse.Namespace, environ: dict[str, str] | None = None) -> HardwareRequest | None:
    """The hardware settings from the options, else the plugin's environment variables, parsed and checked
    by the plugin's own settings code (VSPHERE_NETWORKS comma-separated, ...); None when none is given."""
    from ..client.hardware import HardwareRequest
    from ..plugin.settings import SettingsError, resolve

    source = os.environ if environ is None else environ
    cli = {name: getattr(args, name.replace("-", "_"), None) for name in HARDWARE_OPTIONS}
    env = {BY_NAME[name].env: source[BY_NAME[name].env] for name in HARDWARE_OPTIONS
           if source.get(BY_NAME[name].env, "").strip()}
    try:
        settings = resolve(cli, {}, env)
    except SettingsError as exc:  # "invalid value '0' for --vsphere-cpus: must be at least 1"
        raise UsageError(str(exc)) from None
    request = HardwareRequest(cpus=settings.cpus, memory_mb=settings.memory_mb, networks=settings.networks,
                              disks_gb=settings.disks, extra_config=settings.extra_config)
    return None if request.empty else request
