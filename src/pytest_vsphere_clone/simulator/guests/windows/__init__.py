"""The Windows a Windows-family guest shows: cmd.exe, PowerShell and WinRM over a Linux namespace.

Its programs run inside the guest with the simulator's interpreter (``python -m``), so this package
and its sub-packages import nothing at import time: a guest's program start stays cheap.

- ``context``: what the guest knows about itself (identity, drives, network backend).
- ``cmd``: the cmd.exe dialect (parser, shell, built-ins, system programs, ipconfig/netsh, VMware
  Tools' programs, CLI).
- ``powershell``: the small PowerShell: ``powershell.exe`` (program), its interpreter, language and
  Get-NetIPAddress.
- ``winrm``: the WinRM service (WS-Management service, wire format and shells; HTTP server,
  authentication).
"""
