package main

import (
	"fmt"
	"net/http/httptrace"
	"net/url"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
)

// scenarioLogin: what a client sees before and after logging in.
func scenarioLogin(r *run) {
	r.must("connect", func() (string, error) {
		c, err := r.connect()
		if err != nil {
			return "", err
		}
		r.c = c
		return "RetrieveServiceContent: " + c.ServiceContent.About.FullName, nil
	})
	r.check("content without session", func() (string, error) {
		// The API reference gives ServiceInstance.content (like SessionManager.currentSession) the required
		// privilege System.Anonymous: readable before login, as RetrieveServiceContent is.
		var si mo.ServiceInstance
		err := property.DefaultCollector(r.c).RetrieveOne(r.ctx, vim25.ServiceInstance, []string{"content"}, &si)
		if err != nil {
			return "", fmt.Errorf("ServiceInstance.content without a session: %w", err)
		}
		if si.Content.RootFolder != r.c.ServiceContent.RootFolder {
			return "", fmt.Errorf("content.rootFolder %v differs from RetrieveServiceContent's %v",
				si.Content.RootFolder, r.c.ServiceContent.RootFolder)
		}
		return "ServiceInstance.content readable", nil
	})
	r.check("inventory without session", func() (string, error) {
		err := property.DefaultCollector(r.c).RetrieveOne(r.ctx, r.c.ServiceContent.RootFolder,
			[]string{"name"}, &mo.Folder{})
		return expectFault(err, "NotAuthenticated")
	})
	r.check("currentSession without session", func() (string, error) {
		s, err := r.currentSession()
		if err != nil {
			return "", fmt.Errorf("reading currentSession without a session faulted (the reference: unset): %w", err)
		}
		if s != nil {
			return "", fmt.Errorf("currentSession is %s before login, want unset", s.Key)
		}
		return "unset", nil
	})
	r.check("login with a wrong password", func() (string, error) {
		err := session.NewManager(r.c).Login(r.ctx, url.UserPassword(r.cfg.user, r.cfg.password+"-wrong"))
		return expectFault(err, "InvalidLogin")
	})
	m := session.NewManager(r.c)
	r.must("login", func() (string, error) {
		if err := m.Login(r.ctx, url.UserPassword(r.cfg.user, r.cfg.password)); err != nil {
			return "", err
		}
		return "logged in as " + r.cfg.user, nil
	})
	r.check("currentSession", func() (string, error) {
		s, err := r.currentSession()
		if err != nil {
			return "", err
		}
		if s == nil || s.Key == "" || s.UserName == "" {
			return "", fmt.Errorf("currentSession is %+v after login, want a session with key and user", s)
		}
		return fmt.Sprintf("user %s, key set", s.UserName), nil
	})
	r.check("keep-alive", func() (string, error) {
		// govmomi sends every body chunked; after each answer the connection must stay usable (HTTP/1.1
		// persistent connections), so a run of calls reuses one connection instead of opening one per call.
		var calls, reused int
		ctx := httptrace.WithClientTrace(r.ctx, &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
			calls++
			if info.Reused {
				reused++
			}
		}})
		for i := 0; i < 5; i++ {
			var folder mo.Folder
			if err := property.DefaultCollector(r.c).RetrieveOne(ctx, r.c.ServiceContent.RootFolder,
				[]string{"name"}, &folder); err != nil {
				return "", err
			}
		}
		if reused < calls-1 {
			return "", fmt.Errorf("%d of %d calls reused a connection, want all but the first", reused, calls)
		}
		return fmt.Sprintf("%d of %d calls on a reused connection", reused, calls), nil
	})
	r.check("SessionIsActive", func() (string, error) {
		active, err := m.SessionIsActive(r.ctx)
		if err != nil {
			return "", err
		}
		if !active {
			return "", fmt.Errorf("own session reported inactive")
		}
		return "active", nil
	})
	r.check("logout", func() (string, error) {
		return "logged out", m.Logout(r.ctx)
	})
}

// scenarioLogout: after Logout the session's cookie no longer authenticates.
func scenarioLogout(r *run) {
	r.login()
	r.must("logout", func() (string, error) {
		return "logged out", session.NewManager(r.c).Logout(r.ctx)
	})
	r.check("read after logout", func() (string, error) {
		err := property.DefaultCollector(r.c).RetrieveOne(r.ctx, r.c.ServiceContent.RootFolder,
			[]string{"name"}, &mo.Folder{})
		return expectFault(err, "NotAuthenticated")
	})
	r.check("currentSession after logout", func() (string, error) {
		s, err := r.currentSession()
		if err != nil {
			return "", fmt.Errorf("reading currentSession after logout faulted (the reference: unset): %w", err)
		}
		if s != nil {
			return "", fmt.Errorf("currentSession is still %s after logout", s.Key)
		}
		return "unset", nil
	})
}

// scenarioSessionExpiry: a session ends on the server; the client notices (currentSession unset, reads fault
// NotAuthenticated) and logs in again on the same connection, the way govc's saved sessions recover.
func scenarioSessionExpiry(r *run) {
	r.login()
	var oldKey string
	r.must("session before expiry", func() (string, error) {
		s, err := r.currentSession()
		if err != nil {
			return "", err
		}
		if s == nil {
			return "", fmt.Errorf("currentSession unset while logged in")
		}
		oldKey = s.Key
		return "user " + s.UserName, nil
	})
	r.must("expire sessions", func() (string, error) {
		return "the server ended every session", r.await("expire-sessions")
	})
	r.check("read after expiry", func() (string, error) {
		err := property.DefaultCollector(r.c).RetrieveOne(r.ctx, r.c.ServiceContent.RootFolder,
			[]string{"name"}, &mo.Folder{})
		return expectFault(err, "NotAuthenticated")
	})
	m := session.NewManager(r.c)
	r.check("currentSession after expiry", func() (string, error) {
		s, err := r.currentSession()
		if err != nil {
			return "", fmt.Errorf("reading currentSession of an expired session faulted (the reference: unset): %w",
				err)
		}
		if s != nil {
			return "", fmt.Errorf("currentSession still %s after expiry", s.Key)
		}
		// govmomi's own validity check (session.Manager.UserSession), as govc uses for saved sessions.
		us, err := m.UserSession(r.ctx)
		if err != nil || us != nil {
			return "", fmt.Errorf("session.Manager.UserSession = %v, %v; want nil, nil", us, err)
		}
		return "unset", nil
	})
	r.must("login again", func() (string, error) {
		if err := m.Login(r.ctx, url.UserPassword(r.cfg.user, r.cfg.password)); err != nil {
			return "", err
		}
		return "logged in as " + r.cfg.user, nil
	})
	r.check("session after re-login", func() (string, error) {
		s, err := r.currentSession()
		if err != nil {
			return "", err
		}
		if s == nil {
			return "", fmt.Errorf("currentSession unset after logging in again")
		}
		if s.Key == oldKey {
			return "", fmt.Errorf("the new session has the expired session's key %s", s.Key)
		}
		return "a new session", nil
	})
	r.check("read after re-login", func() (string, error) {
		vm, err := r.vm("linux-template")
		if err != nil {
			return "", err
		}
		name, err := vm.ObjectName(r.ctx)
		if err != nil {
			return "", err
		}
		return "name " + name, nil
	})
}
