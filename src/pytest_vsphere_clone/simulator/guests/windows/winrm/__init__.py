"""The WinRM service of a Windows guest: WS-Management remote shells over HTTP, Basic and NTLM."""
