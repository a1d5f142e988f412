"""The simulated VMware Tools: the programs installed in a guest and the backdoor they talk over.

- ``shims``: ``vmtoolsd --cmd``, ``vmware-rpctool`` and the guest's init, installed in its tools directory.
- ``backdoor``: the host side of the guest's backdoor socket (one RPC per connection).
"""
