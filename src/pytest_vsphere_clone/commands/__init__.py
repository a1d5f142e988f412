"""Subcommands of ``vsphere-clone``, one module each."""
