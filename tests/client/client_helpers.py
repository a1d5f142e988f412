"""Helpers the client tests import (a conftest module cannot be imported reliably by name)."""

from __future__ import annotations

from pytest_vsphere_clone.client.retry import RetryPolicy

#: Retries without the production back-off, so fault tests stay fast.
FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)
