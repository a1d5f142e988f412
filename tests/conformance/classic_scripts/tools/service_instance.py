"""Log in the way the samples do: SmartConnect with an SSL context, Disconnect at exit."""

from __future__ import annotations

import argparse
import atexit
import ssl
import sys

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim


def ssl_context(args: argparse.Namespace) -> ssl.SSLContext:
    """The context for the vCenter and for guest file transfers to the ESXi hosts."""
    if args.disable_ssl_verification:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=args.ca_file)


def connect(args: argparse.Namespace) -> vim.ServiceInstance:
    """A logged-in ServiceInstance; exits 1 with the server's message when login fails."""
    try:
        si = SmartConnect(host=args.host, user=args.user, pwd=args.password, port=args.port,
                          sslContext=ssl_context(args))
    except vim.fault.InvalidLogin as exc:
        print(f"ERROR: cannot log in to {args.host}:{args.port} as {args.user}: {exc.msg}", file=sys.stderr)
        sys.exit(1)
    except (OSError, ssl.SSLError) as exc:
        print(f"ERROR: cannot connect to {args.host}:{args.port}: {exc}", file=sys.stderr)
        sys.exit(1)
    atexit.register(Disconnect, si)
    return si
