"""ServiceInstance, SessionManager and AuthorizationManager."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from ..auth import PRIVILEGES
from .base import ManagedEntity, SimObject, vmomi_method
from .events import event_manager
from .unmodelled import Unmodelled

if TYPE_CHECKING:
    from ..vcenter import CallContext, VCenter

ADMIN_ROLE_ID = -1


class ServiceInstance(Unmodelled):
    """The root object: hands out the ServiceContent."""

    vim_type = vim.ServiceInstance

    def __init__(self, vc: VCenter, content: Any) -> None:
        super().__init__(vc, "ServiceInstance")
        self.content_value = content

    def prop_content(self) -> Any:
        return self.content_value

    def prop_serverClock(self) -> datetime:
        return datetime.now(timezone.utc)

    def prop_capability(self) -> Any:
        return vim.Capability(provisioningSupported=True, multiHostSupported=True, userShellAccessSupported=False,
                              networkBackupAndRestoreSupported=False, ftDrsWithoutEvcSupported=False,
                              hciWorkflowSupported=False)

    @vmomi_method()
    def RetrieveServiceContent(self, ctx: CallContext) -> Any:
        return self.content_value

    @vmomi_method()
    def CurrentTime(self, ctx: CallContext) -> datetime:
        return datetime.now(timezone.utc)


class SessionManager(Unmodelled):
    """vim.SessionManager: Login, Logout, SessionIsActive, TerminateSession."""

    vim_type = vim.SessionManager

    def prop_currentSession(self) -> Any:
        ctx = self.vc.current_context()
        if ctx is None or ctx.session is None:
            return None
        return ctx.session.to_vim()

    def prop_sessionList(self) -> list[Any]:
        return [s.to_vim() for s in self.vc.sessions.all()]

    def prop_message(self) -> str:
        return ""

    def prop_defaultLocale(self) -> str:
        return "en"

    def prop_supportedLocaleList(self) -> list[str]:
        return ["en"]

    @vmomi_method()
    def Login(self, ctx: CallContext, userName: str, password: str, locale: str | None = None) -> Any:
        user = self.vc.authorizer.check_login(userName, password)
        if user is None:
            raise vim.fault.InvalidLogin(msg="Cannot complete login due to an incorrect user name or password.")
        session = self.vc.sessions.create(user.name, ctx.peer, ctx.user_agent)
        ctx.session = session
        ctx.new_session_key = session.key
        events = event_manager(self.vc)
        if events is not None:
            events.post(vim.event.UserLoginSessionEvent(
                userName=user.name, ipAddress=ctx.peer or "127.0.0.1", userAgent=ctx.user_agent,
                locale=locale or "en", sessionId=session.key))
        return session.to_vim()

    @vmomi_method()
    def Logout(self, ctx: CallContext) -> None:
        if ctx.session is not None:
            session = ctx.session
            events = event_manager(self.vc)
            if events is not None:
                events.post(vim.event.UserLogoutSessionEvent(
                    userName=session.user, ipAddress=session.peer or "127.0.0.1", userAgent=session.user_agent,
                    callCount=session.call_count, sessionId=session.key,
                    loginTime=datetime.fromtimestamp(session.login_time, tz=timezone.utc)))
            self.vc.sessions.remove(ctx.session.key)
            with self.vc.lock:
                self.vc.drop_session_state(ctx.session.key)

    @vmomi_method("Sessions.ValidateSession")
    def SessionIsActive(self, ctx: CallContext, sessionID: str, userName: str) -> bool:
        if ctx.session is None:
            raise vim.fault.NotAuthenticated(msg="The session is not authenticated.")
        session = self.vc.sessions.peek(sessionID)
        return session is not None and session.user.lower() == userName.lower()

    @vmomi_method("Sessions.TerminateSession")
    def TerminateSession(self, ctx: CallContext, sessionId: list[str]) -> None:
        for key in sessionId:
            if self.vc.sessions.peek(key) is None:
                raise vim.fault.NotFound(msg=f"Session {key} does not exist.")
            self.vc.sessions.remove(key)

    @vmomi_method()
    def AcquireCloneTicket(self, ctx: CallContext) -> str:
        raise vmodl.fault.NotSupported(msg="Clone tickets are not supported by the simulator.")


class AuthorizationManager(Unmodelled):
    """vim.AuthorizationManager: privileges, roles and privilege checks."""

    vim_type = vim.AuthorizationManager

    def prop_privilegeList(self) -> list[Any]:
        return [vim.AuthorizationManager.Privilege(privId=p, onParent=False, name=p.rsplit(".", 1)[-1],
                                                   privGroupName=p.rsplit(".", 1)[0]) for p in PRIVILEGES]

    def prop_roleList(self) -> list[Any]:
        admin = vim.AuthorizationManager.Role(roleId=ADMIN_ROLE_ID, system=True, name="Admin",
                                              info=vim.Description(label="Administrator", summary="Full access"),
                                              privilege=list(PRIVILEGES))
        return [admin]

    def prop_description(self) -> Any:
        # The serializer refuses these required arrays empty, so describe every privilege and group.
        def describe(key: str) -> Any:
            return vim.ElementDescription(key=key, label=key.rsplit(".", 1)[-1], summary=key)

        groups = sorted({p.rsplit(".", 1)[0] for p in PRIVILEGES})
        return vim.AuthorizationDescription(privilege=[describe(p) for p in PRIVILEGES],
                                            privilegeGroup=[describe(g) for g in groups])

    def _privileges(self, user: str, entity: SimObject, priv_ids: list[str] | None) -> list[Any]:
        ids = priv_ids if priv_ids else list(PRIVILEGES)
        return [vim.AuthorizationManager.PrivilegeAvailability(privId=p, isGranted=self.vc.authorizer.has(user, p))
                for p in ids]

    @vmomi_method("System.View")
    def HasPrivilegeOnEntities(self, ctx: CallContext, entity: list[Any], sessionId: str,
                               privId: list[str] | None = None) -> list[Any]:
        session = self.vc.sessions.peek(sessionId)
        if session is None:
            raise vim.fault.NotFound(msg=f"Session {sessionId} does not exist.")
        with self.vc.lock:
            return [vim.AuthorizationManager.EntityPrivilege(entity=ref, privAvailability=self._privileges(
                session.user, self.vc.lookup(ref), privId)) for ref in entity]

    @vmomi_method("System.View")
    def HasPrivilegeOnEntity(self, ctx: CallContext, entity: Any, sessionId: str,
                             privId: list[str] | None = None) -> list[bool]:
        session = self.vc.sessions.peek(sessionId)
        if session is None:
            raise vim.fault.NotFound(msg=f"Session {sessionId} does not exist.")
        return [self.vc.authorizer.has(session.user, p) for p in privId or []]

    @vmomi_method("System.View")
    def HasUserPrivilegeOnEntities(self, ctx: CallContext, entities: list[Any], userName: str,
                                   privId: list[str] | None = None) -> list[Any]:
        with self.vc.lock:
            return [vim.AuthorizationManager.EntityPrivilege(entity=ref, privAvailability=self._privileges(
                userName, self.vc.lookup(ref), privId)) for ref in entities]

    @vmomi_method("System.View")
    def FetchUserPrivilegeOnEntities(self, ctx: CallContext, entities: list[Any], userName: str) -> list[Any]:
        account = self.vc.authorizer.users.get(userName.lower())
        granted = [p for p in PRIVILEGES if account is not None and account.has(p)]
        with self.vc.lock:
            return [vim.AuthorizationManager.UserPrivilegeResult(entity=ref, privileges=granted)
                    for ref in entities if self.vc.lookup(ref)]

    @vmomi_method("System.View")
    def RetrieveEntityPermissions(self, ctx: CallContext, entity: Any, inherited: bool) -> list[Any]:
        with self.vc.lock:
            target = self.vc.lookup(entity)
            if not isinstance(target, ManagedEntity):
                raise vmodl.fault.InvalidArgument(msg="Not an entity", invalidProperty="entity")
        return [vim.AuthorizationManager.Permission(entity=entity, principal=name, group=False,
                                                    roleId=ADMIN_ROLE_ID, propagate=True)
                for name in self.vc.authorizer.users]
