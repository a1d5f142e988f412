"""Connections to guests: SSH (paramiko) and WinRM (pywinrm)."""
