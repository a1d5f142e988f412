"""The Linux host plumbing that makes a guest: namespaces, NIC, DHCP, processes, services.

- ``host_tools``: running host programs (ip, bridge, nsenter, ...) with errors that say what failed.
- ``namespace``, ``pidns``: a guest's network, PID, IPC, mount and UTS namespaces and its init.
- ``vnic``, ``linkwatch``, ``dhcp``: the guest's veth on the bridge, its link state, the bridge's DHCP server.
- ``procfs``: guest processes as the host's /proc shows them.
- ``daemons``: the guest OS services (sshd, dhclient, the WinRM server).
- ``events``: the one asyncio loop thread per GuestHost (child exits, backdoor sockets, link events).
- ``host_registry``, ``sweep``: which simulator owns which names, and removing what dead ones left.
"""
