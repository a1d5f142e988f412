"""Connection arguments every script takes: from the command line, else from the environment.

The names follow the community samples (``-s/--host``, ``-o/--port``, ``-u/--user``, ``-p/--password``,
``--disable-ssl-verification``); the environment variables (``VSPHERE_HOST``...) are how CI jobs and
Ansible pass them without putting a password on a command line.
"""

from __future__ import annotations

import argparse
import os


def build_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the standard connection arguments."""
    parser = argparse.ArgumentParser(description=description)
    env = os.environ.get
    parser.add_argument("-s", "--host", default=env("VSPHERE_HOST"), help="vCenter host name or address")
    parser.add_argument("-o", "--port", type=int, default=int(env("VSPHERE_PORT", "443")), help="vCenter port")
    parser.add_argument("-u", "--user", default=env("VSPHERE_USER"), help="user name")
    parser.add_argument("-p", "--password", default=env("VSPHERE_PASSWORD"),
                        help="password (default: $VSPHERE_PASSWORD)")
    parser.add_argument("--ca-file", default=env("VSPHERE_CA_FILE"),
                        help="CA bundle that signed the vCenter's (and the ESXi hosts') certificates")
    parser.add_argument("-nossl", "--disable-ssl-verification", action="store_true",
                        help="do not verify the server's certificate")
    return parser


def parse(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the command line; a missing connection argument is a usage error (exit 2)."""
    args = parser.parse_args()
    for name in ("host", "user", "password"):
        if not getattr(args, name):
            parser.error(f"--{name} (or VSPHERE_{name.upper()}) is required")
    return args
