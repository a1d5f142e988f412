"""Users, sessions and privileges of the simulated vCenter."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyVmomi import vim

if TYPE_CHECKING:
    from .objects.base import SimObject

ADMIN_USER = "administrator@vsphere.local"

#: Every privilege the simulated flows check, with its group, as a vCenter lists them.
PRIVILEGES = (
    "System.Anonymous",
    "System.View",
    "System.Read",
    "Global.SetCustomField",
    "Global.ManageCustomFields",
    "Resource.AssignVMToPool",
    "Datastore.AllocateSpace",
    "Datastore.Browse",
    "Network.Assign",
    "VirtualMachine.Inventory.Create",
    "VirtualMachine.Inventory.CreateFromExisting",
    "VirtualMachine.Inventory.Delete",
    "VirtualMachine.Provisioning.Clone",
    "VirtualMachine.Provisioning.DeployTemplate",
    "VirtualMachine.Provisioning.CloneTemplate",
    "VirtualMachine.Provisioning.CreateTemplateFromVM",
    "VirtualMachine.Provisioning.Customize",
    "VirtualMachine.Provisioning.PromoteDisks",
    "VirtualMachine.Provisioning.MarkAsTemplate",
    "VirtualMachine.Provisioning.MarkAsVM",
    "VirtualMachine.Interact.PowerOn",
    "VirtualMachine.Interact.PowerOff",
    "VirtualMachine.Interact.Reset",
    "VirtualMachine.Interact.CreateScreenshot",
    "VirtualMachine.Config.EditDevice",
    "VirtualMachine.Config.AdvancedConfig",
    "VirtualMachine.Config.Rename",
    "VirtualMachine.Config.Annotation",
    "VirtualMachine.Config.Settings",
    "VirtualMachine.Config.CPUCount",
    "VirtualMachine.Config.Memory",
    "VirtualMachine.Config.AddNewDisk",
    "VirtualMachine.Config.AddRemoveDevice",
    "VirtualMachine.State.CreateSnapshot",
    "VirtualMachine.State.RemoveSnapshot",
    "VirtualMachine.State.RevertToSnapshot",
    "VirtualMachine.GuestOperations.Execute",
    "VirtualMachine.GuestOperations.Query",
    "VirtualMachine.GuestOperations.Modify",
)


#: pyVmomi's pseudo-method for reading one property; not in the WSDL, so it has no privilege of its own.
FETCH_METHOD = "Fetch"
#: The API reference's privilege of what may be done without a session: methods such as
#: RetrieveServiceContent, Login, RetrieveProperties and RetrievePropertiesEx, and properties such as
#: ServiceInstance.content and SessionManager.currentSession ("This property contains information
#: about the client's current session. If the client is not logged on, the value is null."). Other
#: methods need more: CurrentTime System.View, SessionIsActive Sessions.ValidateSession, so a
#: session-checking client (pyVim's VimSessionOrientedStub) sees NotAuthenticated once its session is gone.
ANONYMOUS_PRIVILEGE = "System.Anonymous"


def callable_without_session(method: str, info: Any) -> bool:
    """Whether ``method`` (its pyVmomi method info, None for Fetch) may be called before Login.

    Fetch is let through: whether it may read its property is decided per property
    (readable_without_session), as for the property collector's reads.
    """
    if method == FETCH_METHOD:
        return True
    return info is not None and info.privId == ANONYMOUS_PRIVILEGE


def readable_without_session(vim_type: type, prop: str) -> bool:
    """Whether top-level property ``prop`` of ``vim_type`` may be read without a session (pyVmomi's privId)."""
    for klass in vim_type.__mro__:
        info = getattr(klass, "_propInfo", {}).get(prop)
        if info is not None:
            return bool(info.privId == ANONYMOUS_PRIVILEGE)
    return False


def not_authenticated(obj: Any = None, privilege: str = "System.View") -> Any:
    """The NotAuthenticated fault a vCenter answers a caller without a valid session with."""
    return vim.fault.NotAuthenticated(msg="The session is not authenticated.", object=obj, privilegeId=privilege)


@dataclass
class User:
    """A simulated SSO user; ``denied`` lists privileges the user's role lacks."""

    name: str
    password: str = field(repr=False)
    denied: frozenset[str] = frozenset()
    full_name: str = ""

    def has(self, privilege: str) -> bool:
        return privilege not in self.denied


@dataclass
class Session:
    """A logged-in session (the ``vmware_soap_session`` cookie's value is ``key``)."""

    key: str
    user: str
    login_time: float
    last_active: float
    user_agent: str = ""
    peer: str = ""
    call_count: int = 0

    def to_vim(self) -> Any:
        from datetime import datetime, timezone

        def stamp(t: float) -> datetime:
            return datetime.fromtimestamp(t, tz=timezone.utc)

        return vim.UserSession(
            key=self.key, userName=self.user, fullName=self.user, loginTime=stamp(self.login_time),
            lastActiveTime=stamp(self.last_active), locale="en", messageLocale="en",
            extensionSession=False, ipAddress=self.peer or "127.0.0.1", userAgent=self.user_agent,
            callCount=self.call_count,
        )


class SessionStore:
    """Live sessions; a session idle longer than the timeout is gone, as on a vCenter."""

    def __init__(self, idle_timeout: float) -> None:
        self.idle_timeout = idle_timeout
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, user: str, peer: str = "", user_agent: str = "") -> Session:
        now = time.time()
        session = Session(secrets.token_hex(20), user, now, now, user_agent, peer)
        with self._lock:
            self._sessions[session.key] = session
        return session

    def get(self, key: str) -> Session | None:
        """The live session for ``key`` (touching it), or None if unknown or expired."""
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            now = time.time()
            if now - session.last_active > self.idle_timeout:
                del self._sessions[key]
                return None
            session.last_active = now
            session.call_count += 1
            return session

    def peek(self, key: str) -> Session | None:
        with self._lock:
            return self._sessions.get(key)

    def remove(self, key: str) -> None:
        with self._lock:
            self._sessions.pop(key, None)

    def expire_all(self) -> None:
        """Drop every session (for tests of session expiry)."""
        with self._lock:
            self._sessions.clear()

    def all(self) -> list[Session]:
        with self._lock:
            return list(self._sessions.values())


class Authorizer:
    """Who may do what: an administrator plus users whose roles lack chosen privileges."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}

    def add_user(self, name: str, password: str, denied: frozenset[str] | set[str] = frozenset()) -> User:
        user = User(name, password, frozenset(denied))
        self.users[name.lower()] = user
        return user

    def check_login(self, name: str, password: str) -> User | None:
        user = self.users.get(name.lower())
        if user is None or not secrets.compare_digest(user.password, password):
            return None
        return user

    def has(self, user: str, privilege: str) -> bool:
        account = self.users.get(user.lower())
        return account is not None and account.has(privilege)

    def require(self, user: str, privilege: str, entity: SimObject) -> None:
        if not self.has(user, privilege):
            raise vim.fault.NoPermission(
                msg=f"Permission to perform this operation was denied. Required privilege '{privilege}' "
                f"on '{entity.mo_id}'",
                object=entity.ref,
                privilegeId=privilege,
                missingPrivileges=[
                    vim.fault.NoPermission.EntityPrivileges(entity=entity.ref, privilegeIds=[privilege])
                ],
            )
