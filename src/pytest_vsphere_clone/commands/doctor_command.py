"""``vsphere-clone doctor``: check everything a run needs, one line per check (OK, WARN, FAIL, SKIP).

Connection, TLS, login, privileges for the whole flow (HasPrivilegeOnEntities on the
objects each privilege is checked on by vCenter; the console screenshots' ones are a WARN, since
screenshots are optional evidence), the hardware settings when given (their port groups, what
the clone type can take, their privileges), and each template's readiness for the clone type:
it exists, a snapshot (linked), powered on and preferably frozen (instant), VMware Tools, and
the guest credentials (a no-op command through Guest Operations).
The guest user is one for every template, as the plugin's --vsphere-guest-user is (only
``pytest --vsphere-simulator`` gives Windows templates the simulator's own Windows account):
each guest line names it and where it came from, and a WARN says when it does not fit a
template's guest OS (``root`` for Windows). Every FAIL line names the fix; the exit status
is 1 if any check failed. ``--json`` prints the checks as one JSON object instead.

The checks live beside this module: doctor_plan (what to check, from options and environment),
doctor_report (the lines and ``--json``), doctor_templates (inventory and each template's
readiness), doctor_hardware, doctor_privileges and doctor_guest.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..client.clone_types import CLONE_TYPES, COLLAPSE_MODES
from ..plugin.options import BY_NAME
from ._common import (
    Console,
    add_guest_options,
    add_json_option,
    common_parent,
    connection_settings,
    env_name,
    non_negative_float,
    run_command,
)
from .doctor_plan import HARDWARE_OPTIONS, HARDWARE_RENAMES, Plan, plan_of
from .doctor_report import Report
from .doctor_templates import check_all

if TYPE_CHECKING:
    from ..client.session import VSphereConnection


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "doctor", parents=[common_parent()], help="check connection, privileges and template readiness",
        description="Check connection, TLS, login, the privileges a run needs (console screenshots' as a WARN), "
                    "the hardware settings when given (port groups, what the clone type can take) and each "
                    "template's readiness for the clone type; one line per check: OK, WARN, FAIL (with the fix) "
                    "or SKIP (cannot be checked in the template's state). Exit status 1 if any check failed.")
    parser.add_argument("--template", action="append", metavar="TEMPLATE",
                        help=f"template to check, by name or inventory path; repeatable. Env {env_name('template')} "
                             f"(comma-separated).")
    parser.add_argument("--clone-type", choices=CLONE_TYPES,
                        help=f"how the run clones (default linked). Env {env_name('clone-type')}.")
    parser.add_argument("--snapshot", metavar="NAME",
                        help=f"snapshot linked clones branch from (default: the current one). Env "
                             f"{env_name('snapshot')}.")
    parser.add_argument("--collapse", choices=COLLAPSE_MODES,
                        help=f"collapse mode of the run, for its privileges (default none). Env "
                             f"{env_name('collapse')}.")
    parser.add_argument("--tools-wait", metavar="SECONDS", type=non_negative_float, default=15.0,
                        help="how long to wait for VMware Tools in a running template that is still booting "
                             "(default 15)")
    add_hardware_options(parser)
    add_guest_options(parser)
    add_json_option(parser, "the checks (each with name, verdict ok/warn/fail/skip and detail) and their counts")
    parser.set_defaults(run=lambda args: run_command(args, run), option_renames=HARDWARE_RENAMES)


def add_hardware_options(parser: argparse.ArgumentParser) -> None:
    """The plugin's hardware settings as ``--NAME`` (values checked as the plugin checks them)."""
    group = parser.add_argument_group("hardware settings of the run (checked when given: port groups, what the "
                                      "clone type can take, privileges)")
    for name in HARDWARE_OPTIONS:
        option = BY_NAME[name]
        # "... Env: comma-separated." says how the variable splits: name it there.
        text = option.help.replace("Env:", f"Env {option.env}:") if "Env:" in option.help else \
            f"{option.help} Env {option.env}."
        group.add_argument(f"--{name}", metavar=option.metavar or "N", action="append" if option.repeatable
                           else "store", help=text)


# --- connection, TLS, login, endpoint -------------------------------------------------------------


def run(args: argparse.Namespace, console: Console) -> int:
    from ..client.errors import ConnectionFailed, LoginFailed, TlsVerificationFailed, VSphereCloneError
    from ..client.session import VSphereConnection

    settings = connection_settings(args)
    plan = plan_of(args)
    report = Report(console, as_json=args.json)
    try:
        conn = VSphereConnection(settings.host, settings.user, settings.password, insecure=settings.insecure,
                                 ca_bundle=settings.ca_bundle, timeout=settings.timeout)
    except VSphereCloneError as exc:  # an unusable host value or CA bundle
        report.fail("settings", str(exc))
        return report.finish()
    try:
        with _quiet("pytest_vsphere_clone.client.session"):  # doctor reports TLS itself
            conn.connect()
    except ConnectionFailed as exc:
        report.fail("connection", str(exc))
        return report.finish()
    except TlsVerificationFailed as exc:
        report.ok("connection", f"vCenter {conn.endpoint} answers")
        report.fail("tls", str(exc))
        return report.finish()
    except LoginFailed as exc:
        report.ok("connection", f"vCenter {conn.endpoint} answers")
        _tls_line(report, settings.insecure, settings.ca_bundle)
        report.fail("login", str(exc))
        return report.finish()
    try:
        about = conn.content.about
        report.ok("connection", f"vCenter {conn.endpoint} answers ({about.fullName if about else 'unknown version'})")
        _tls_line(report, settings.insecure, settings.ca_bundle)
        report.ok("login", f"logged in as {settings.user!r}")
        _check_endpoint(conn, plan, report)
        check_all(conn, plan, report)
    finally:
        conn.close()
    return report.finish()


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _tls_line(report: Report, insecure: bool, ca_bundle: str | None) -> None:
    if insecure:
        report.warn("tls", "certificate NOT verified (--insecure): anyone on the network path could pose as the "
                           "vCenter and read the password; use --ca-bundle with the vCenter's CA (its VMCA root) "
                           "instead")
    else:
        report.ok("tls", f"certificate verified against {ca_bundle or 'the system CA store'}")


def _check_endpoint(conn: VSphereConnection, plan: Plan, report: Report) -> None:
    """A FAIL line when the endpoint is an ESXi host reached directly: it offers no cloning."""
    from ..client.clone_request import cloning_endpoint_problem

    problem = cloning_endpoint_problem(conn, plan.clone_type)
    if problem is not None:
        report.fail("endpoint", str(problem))
