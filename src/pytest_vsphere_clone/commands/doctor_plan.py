"""What the doctor checks, from its options and the environment: the templates (``--template``,
repeatable, or ``VSPHERE_TEMPLATE`` comma-separated), the run's clone type, snapshot and collapse
mode, the guest credentials (optional) and how long to wait for a booting template's Tools. A bad
value from the environment is one usage error naming the variable and the option.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass

from ..client.clone_types import CLONE_TYPES, COLLAPSE_MODES
from ._common import GuestCredentials, UsageError, env_name, from_env, guest_credentials


@dataclass(frozen=True)
class Plan:
    templates: tuple[str, ...]
    clone_type: str
    snapshot: str | None
    collapse: str
    guest: GuestCredentials | None
    tools_wait: float = 15.0


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
                args.tools_wait)
