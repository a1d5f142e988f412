"""The cmd.exe dialect: what Guest Operations and WinRM run Windows command lines with."""
