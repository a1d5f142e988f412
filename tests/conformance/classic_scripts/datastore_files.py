#!/usr/bin/env python3
"""List a datastore's VM folders and files with its browser (SearchDatastoreSubFolders_Task).

With ``--vm-name`` it checks that the VM's configuration file and disks are among the files found.
"""

from __future__ import annotations

import sys

from pyVmomi import vim
from tools import cli, pchelper, service_instance, tasks


def main() -> int:
    parser = cli.build_parser(__doc__.splitlines()[0])
    parser.add_argument("--datastore", required=True, help="datastore name")
    parser.add_argument("--pattern", action="append", default=[], help="file name pattern (repeatable)")
    parser.add_argument("-v", "--vm-name", help="VM whose files must be listed")
    args = cli.parse(parser)
    si = service_instance.connect(args)
    content = si.RetrieveContent()
    datastore = pchelper.get_obj(content, vim.Datastore, args.datastore)
    if datastore is None:
        tasks.fail(f"no datastore called {args.datastore}")

    spec = vim.host.DatastoreBrowser.SearchSpec(
        matchPattern=args.pattern or ["*"],
        details=vim.host.DatastoreBrowser.FileInfo.Details(fileType=True, fileSize=True, modification=True,
                                                          fileOwner=False))
    try:
        results = tasks.poll_task(datastore.browser.SearchDatastoreSubFolders_Task(
            datastorePath=f"[{datastore.name}]", searchSpec=spec), "SearchDatastoreSubFolders_Task")
    except tasks.TaskFailed as exc:
        tasks.fail(str(exc))
    found: set[str] = set()
    for result in results:
        print(f"{result.folderPath}")
        for info in result.file or []:
            # "[ds]" holds the VM folders; "[ds] web01" (or "[ds] web01/") a VM's files.
            folder = result.folderPath if result.folderPath.endswith(("/", "]")) else result.folderPath + "/"
            path = f"{folder}{info.path}" if folder.endswith("/") else f"{folder} {info.path}"
            found.add(path)
            print(f"  {info.path} {type(info).__name__.rsplit('.', 1)[-1]} size={info.fileSize} "
                  f"modified={info.modification:%Y-%m-%dT%H:%M:%S}")
    print(f"{len(results)} folder(s), {len(found)} file(s)")

    if args.vm_name:
        vm = pchelper.get_obj(content, vim.VirtualMachine, args.vm_name)
        if vm is None:
            tasks.fail(f"no VM called {args.vm_name}")
        wanted = [vm.config.files.vmPathName] + [
            d.backing.fileName for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
        missing = [path for path in wanted if path not in found]
        if missing:
            tasks.fail(f"{args.vm_name}'s files {missing} not found among {sorted(found)}")
        print(f"{args.vm_name}: {', '.join(wanted)} found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
