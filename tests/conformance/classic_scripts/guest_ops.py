#!/usr/bin/env python3
"""Run a program in a guest and move files in and out of it through VMware Tools Guest Operations.

Uploads with InitiateFileTransferToGuest and an HTTP PUT (requests), runs a program with
StartProgramInGuest and polls ListProcessesInGuest until it has an exit code, then downloads its
output with InitiateFileTransferFromGuest and an HTTP GET (urllib). Transfer URLs name the ESXi
host that runs the VM; only a URL whose host is ``*`` (an ESXi host reached directly) is pointed at
the host this script connected to.
"""

from __future__ import annotations

import os
import re
import sys
import time
import urllib.request

import requests
from pyVmomi import vim
from tools import cli, pchelper, service_instance, tasks

LINUX = {"shell": "/bin/sh", "in": "/tmp/classic-in.txt", "out": "/tmp/classic-out.txt",
         "convert": '-c "tr a-z A-Z < {src} > {dst}"', "exit": '-c "exit {code}"'}
WINDOWS = {"shell": r"C:\Windows\System32\cmd.exe", "in": r"C:\Windows\Temp\classic-in.txt",
           "out": r"C:\Windows\Temp\classic-out.txt", "convert": "/c type {src} > {dst}",
           "exit": "/c exit {code}"}


def transfer_url(url: str, host: str) -> str:
    """The community samples' fix-up: ESXi answers ``https://*:443/...``; put the server's host there."""
    return re.sub(r"^https://\*:", f"https://{host}:", url)


def run(pm: vim.vm.guest.ProcessManager, vm: vim.VirtualMachine, creds: vim.vm.guest.GuestAuthentication,
        program: str, arguments: str, timeout: float = 60.0) -> int:
    """Start ``program arguments`` in the guest and poll ListProcessesInGuest until it exits; its exit code."""
    spec = vim.vm.guest.ProcessManager.ProgramSpec(programPath=program, arguments=arguments)
    pid = pm.StartProgramInGuest(vm, creds, spec)
    print(f"StartProgramInGuest: pid {pid}: {program} {arguments}")
    deadline = time.monotonic() + timeout
    while True:
        info = pm.ListProcessesInGuest(vm, creds, [pid])[0]
        if info.exitCode is not None and info.endTime is not None:
            print(f"ListProcessesInGuest: pid {pid} exited {info.exitCode} (owner {info.owner}, "
                  f"started {info.startTime:%H:%M:%S}, ended {info.endTime:%H:%M:%S})")
            return int(info.exitCode)
        if time.monotonic() > deadline:
            tasks.fail(f"pid {pid} still running after {timeout:.0f} s")
        time.sleep(0.5)


def main() -> int:
    parser = cli.build_parser(__doc__.splitlines()[0])
    parser.add_argument("-v", "--vm-name", required=True, help="name of the VM")
    parser.add_argument("--guest-user", default=os.environ.get("GUEST_USER"), help="guest user ($GUEST_USER)")
    parser.add_argument("--guest-password", default=os.environ.get("GUEST_PASSWORD"),
                        help="guest password ($GUEST_PASSWORD)")
    parser.add_argument("--tools-timeout", type=float, default=120.0, help="seconds to wait for VMware Tools")
    args = cli.parse(parser)
    if not args.guest_user or not args.guest_password:
        parser.error("--guest-user and --guest-password (or GUEST_USER, GUEST_PASSWORD) are required")
    si = service_instance.connect(args)
    content = si.RetrieveContent()
    vm = pchelper.get_obj(content, vim.VirtualMachine, args.vm_name)
    if vm is None:
        tasks.fail(f"no VM called {args.vm_name}")

    deadline = time.monotonic() + args.tools_timeout
    while vm.guest.toolsRunningStatus != "guestToolsRunning":
        if time.monotonic() > deadline:
            tasks.fail(f"VMware Tools not running in {args.vm_name} ({vm.guest.toolsRunningStatus})")
        time.sleep(1)
    family = vm.guest.guestFamily
    paths = WINDOWS if family == "windowsGuest" else LINUX
    print(f"{vm.name}: tools {vm.guest.toolsRunningStatus}, {family}, host {vm.runtime.host.name}")

    creds = vim.vm.guest.NamePasswordAuthentication(username=args.guest_user, password=args.guest_password)
    manager = content.guestOperationsManager
    pm = manager.processManager
    fm = manager.fileManager
    context = service_instance.ssl_context(args)
    verify: str | bool = False if args.disable_ssl_verification else (args.ca_file or True)

    data = b"uploaded by guest_ops.py\nsecond line\n"
    url = fm.InitiateFileTransferToGuest(vm, creds, paths["in"], vim.vm.guest.FileManager.FileAttributes(),
                                         len(data), True)
    target = transfer_url(url, args.host)
    print(f"InitiateFileTransferToGuest: {url.split('?')[0]}")
    if target != url:
        print(f"  '*' is the host this script talks to: {target.split('?')[0]}")
    response = requests.put(target, data=data, verify=verify, timeout=30)
    if response.status_code != 200:
        tasks.fail(f"PUT {target.split('?')[0]} answered {response.status_code}: {response.text[:200]}")
    print(f"Uploaded {len(data)} bytes to {paths['in']}")

    code = run(pm, vm, creds, paths["shell"], paths["convert"].format(src=paths["in"], dst=paths["out"]))
    if code != 0:
        tasks.fail(f"the conversion exited {code}")
    code = run(pm, vm, creds, paths["shell"], paths["exit"].format(code=3))
    if code != 3:
        tasks.fail(f"'exit 3' exited {code}")

    info = fm.InitiateFileTransferFromGuest(vm, creds, paths["out"])
    source = transfer_url(info.url, args.host)
    print(f"InitiateFileTransferFromGuest: {info.url.split('?')[0]} size={info.size}")
    if source != info.url:
        print(f"  '*' is the host this script talks to: {source.split('?')[0]}")
    with urllib.request.urlopen(source, context=context, timeout=30) as reply:
        body = reply.read()
    expected = data.upper() if paths is LINUX else data
    if body != expected:
        tasks.fail(f"downloaded {body!r}, expected {expected!r}")
    if info.size != len(body):
        tasks.fail(f"FileTransferInformation.size {info.size}, downloaded {len(body)} bytes")
    print(f"Downloaded {len(body)} bytes from {paths['out']}: {body.splitlines()[0].decode()!r}")

    for path in (paths["in"], paths["out"]):
        fm.DeleteFileInGuest(vm, creds, path)
    try:
        fm.InitiateFileTransferFromGuest(vm, creds, paths["out"])
    except vim.fault.FileNotFound:
        print("DeleteFileInGuest: files removed")
    else:
        tasks.fail(f"{paths['out']} still there after DeleteFileInGuest")
    return 0


if __name__ == "__main__":
    sys.exit(main())
