"""The small PowerShell of ``powershell.exe``: enough for pywinrm's ``run_ps`` and the plugin's scripts."""
