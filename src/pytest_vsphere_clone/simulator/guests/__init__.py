"""Real guests behind simulated VMs: network namespaces with sshd, DHCP, WinRM."""
