"""WinRM to a Windows guest with pywinrm."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..results import CommandResult

if TYPE_CHECKING:
    import winrm


class WinRMConnectError(Exception):
    """The WinRM endpoint did not answer in time, or refused the credentials."""


@dataclass(frozen=True)
class WinRMTarget:
    """Where and as whom to connect to WinRM."""

    host: str
    port: int
    username: str
    password: str = field(repr=False)
    transport: str = "ntlm"
    ssl: bool = False

    @property
    def endpoint(self) -> str:
        scheme = "https" if self.ssl else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/wsman"


def session(target: WinRMTarget) -> winrm.Session:
    """A pywinrm Session (connections are made per call)."""
    import winrm

    # ca_trust_path=None: no CA bundle taken silently from REQUESTS_CA_BUNDLE (pywinrm's legacy
    # default, which it warns about on every run where that variable is set).
    return winrm.Session(target.endpoint, auth=(target.username, target.password), transport=target.transport,
                         server_cert_validation="ignore" if target.ssl else "validate", ca_trust_path=None)


def connect(target: WinRMTarget, timeout: float) -> winrm.Session:
    """A Session that has answered one command, retrying until WinRM is up or ``timeout`` passes."""
    from winrm.exceptions import InvalidCredentialsError, WinRMTransportError

    deadline = time.monotonic() + timeout
    last_error = "no attempt made"
    delay = 0.1
    while True:
        candidate = session(target)
        try:
            candidate.run_cmd("hostname")
            return candidate
        except InvalidCredentialsError:
            raise WinRMConnectError(f"WinRM at {target.endpoint} refused the credentials of {target.username}: "
                                    "check --vsphere-guest-user / --vsphere-guest-password") from None
        except (WinRMTransportError, OSError, Exception) as exc:  # requests' errors vary by version
            last_error = f"{type(exc).__name__}: {exc}"
        if time.monotonic() + delay > deadline:
            raise WinRMConnectError(f"WinRM at {target.endpoint} not answering after {timeout:.0f} s "
                                    f"(last: {last_error}); raise --vsphere-connect-timeout")
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def run(winrm_session: Any, command: str) -> CommandResult:
    """Run a cmd.exe command line and collect its output."""
    response = winrm_session.run_cmd(command)
    return CommandResult(response.status_code, response.std_out.decode(errors="replace"),
                         response.std_err.decode(errors="replace"))
