"""pytest-vsphere-clone: fresh, disposable vSphere VMs for every test run."""

__version__ = "0.1.0"
