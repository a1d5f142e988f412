package main

import (
	"bytes"
	"fmt"
	"io/ioutil"
	"strings"
	"time"

	"github.com/vmware/govmomi/guest"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// guestFamily is what differs between Linux and Windows guests for the same Guest Operations.
type guestFamily struct {
	source   string // the frozen VM instant-cloned for the scenario
	user     string
	password string
	shell    string
	exit7    string // shell arguments that exit with code 7
	dir      string // the directory the scenario makes (with a missing parent)
	sep      string
	// check: shell arguments that exit 0 when the uploaded file holds the line "line two" and then write
	// "made-in-guest" and a line break to the file made.
	check     func(upload, made string) string
	madeBytes string
	attrs     types.BaseGuestFileAttributes
}

func linuxFamily(r *run) guestFamily {
	return guestFamily{
		source: "linux-frozen", user: r.cfg.guestUser, password: r.cfg.guestPassword, shell: "/bin/sh",
		exit7: `-c "exit 7"`, dir: "/tmp/go-conformance/sub", sep: "/",
		check: func(upload, made string) string {
			return fmt.Sprintf(`-c "grep -qx 'line two' %s && echo made-in-guest > %s"`, upload, made)
		},
		madeBytes: "made-in-guest\n", attrs: &types.GuestPosixFileAttributes{},
	}
}

func windowsFamily(r *run) guestFamily {
	return guestFamily{
		source: "windows-frozen", user: r.cfg.windowsGuestUser, password: r.cfg.windowsGuestPassword,
		shell: `C:\Windows\System32\cmd.exe`, exit7: `/c exit 7`,
		dir: `C:\Users\` + r.cfg.windowsGuestUser + `\AppData\Local\Temp\go-conformance\sub`, sep: `\`,
		check: func(upload, made string) string {
			return fmt.Sprintf(`/c findstr /x /c:"line two" %s && echo made-in-guest> %s`, upload, made)
		},
		madeBytes: "made-in-guest\r\n", attrs: &types.GuestWindowsFileAttributes{},
	}
}

// scenarioGuestOperations: Guest Operations on a running Linux instant clone, as govc guest.* runs them.
func scenarioGuestOperations(r *run) {
	guestOperations(r, linuxFamily(r))
}

// scenarioGuestOperationsWindows: the same Guest Operations on a Windows instant clone.
func scenarioGuestOperationsWindows(r *run) {
	guestOperations(r, windowsFamily(r))
}

func guestOperations(r *run, family guestFamily) {
	r.login()
	if family.user == "" {
		r.must("guest credentials", func() (string, error) { return "", fmt.Errorf("no guest user configured") })
	}
	auth := &types.NamePasswordAuthentication{Username: family.user, Password: family.password}
	var vm *object.VirtualMachine
	r.must("instant clone", func() (string, error) {
		var err error
		vm, err = r.instantClone(family.source, "go-guest")
		if err != nil {
			return "", err
		}
		return vm.Reference().Value, nil
	})
	r.must("tools", func() (string, error) {
		return r.waitToolsRunning(vm)
	})
	ops := guest.NewOperationsManager(r.c, vm.Reference())
	var pm *guest.ProcessManager
	var fm *guest.FileManager
	r.must("guest managers", func() (string, error) {
		var err error
		if pm, err = ops.ProcessManager(r.ctx); err != nil {
			return "", err
		}
		if fm, err = ops.FileManager(r.ctx); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s, %s", pm.Reference().Value, fm.Reference().Value), nil
	})
	r.check("StartProgramInGuest and ListProcessesInGuest", func() (string, error) {
		pid, err := pm.StartProgram(r.ctx, auth, &types.GuestProgramSpec{
			ProgramPath: family.shell, Arguments: family.exit7})
		if err != nil {
			return "", err
		}
		info, err := waitProcess(r, pm, auth, pid)
		if err != nil {
			return "", err
		}
		if info.ExitCode != 7 {
			return "", fmt.Errorf("pid %d exit code %d, want 7", pid, info.ExitCode)
		}
		return fmt.Sprintf("pid %d exited 7 (%s)", pid, info.CmdLine), nil
	})
	r.check("ListProcessesInGuest of all", func() (string, error) {
		procs, err := pm.ListProcesses(r.ctx, auth, nil)
		if err != nil {
			return "", err
		}
		if len(procs) == 0 {
			return "", fmt.Errorf("no processes in a running guest")
		}
		return fmt.Sprintf("%d processes", len(procs)), nil
	})
	r.check("MakeDirectoryInGuest", func() (string, error) {
		return "made " + family.dir, fm.MakeDirectory(r.ctx, auth, family.dir, true)
	})
	content := []byte("uploaded by govmomi\nline two\n")
	upload := family.dir + family.sep + "up.txt"
	made := family.dir + family.sep + "made.txt"
	r.check("upload", func() (string, error) {
		turl, err := fm.InitiateFileTransferToGuest(r.ctx, auth, upload, family.attrs,
			int64(len(content)), true)
		if err != nil {
			return "", fmt.Errorf("InitiateFileTransferToGuest: %w", err)
		}
		u, err := fm.TransferURL(r.ctx, turl)
		if err != nil {
			return "", fmt.Errorf("TransferURL(%s): %w", turl, err)
		}
		p := soap.DefaultUpload
		p.ContentLength = int64(len(content))
		if err := r.c.Client.Upload(r.ctx, bytes.NewReader(content), u, &p); err != nil {
			return "", fmt.Errorf("PUT %s (from %s): %w", u, turl, err)
		}
		return fmt.Sprintf("PUT %d bytes to %s", len(content), redact(u.String())), nil
	})
	r.check("guest sees the upload", func() (string, error) {
		pid, err := pm.StartProgram(r.ctx, auth, &types.GuestProgramSpec{ProgramPath: family.shell,
			Arguments: family.check(upload, made)})
		if err != nil {
			return "", err
		}
		info, err := waitProcess(r, pm, auth, pid)
		if err != nil {
			return "", err
		}
		if info.ExitCode != 0 {
			return "", fmt.Errorf("%s %s exited %d", family.shell, info.CmdLine, info.ExitCode)
		}
		return "content checked in the guest", nil
	})
	r.check("download", func() (string, error) {
		want := []byte(family.madeBytes)
		info, err := fm.InitiateFileTransferFromGuest(r.ctx, auth, made)
		if err != nil {
			return "", fmt.Errorf("InitiateFileTransferFromGuest: %w", err)
		}
		if info.Size != int64(len(want)) {
			return "", fmt.Errorf("FileTransferInformation.size %d, want %d", info.Size, len(want))
		}
		u, err := fm.TransferURL(r.ctx, info.Url)
		if err != nil {
			return "", fmt.Errorf("TransferURL(%s): %w", info.Url, err)
		}
		body, _, err := r.c.Client.Download(r.ctx, u, &soap.DefaultDownload)
		if err != nil {
			return "", fmt.Errorf("GET %s: %w", u, err)
		}
		defer body.Close()
		got, err := ioutil.ReadAll(body)
		if err != nil {
			return "", err
		}
		if !bytes.Equal(got, want) {
			return "", fmt.Errorf("downloaded %q, want %q", got, want)
		}
		return fmt.Sprintf("GET %d bytes", len(got)), nil
	})
	r.check("ListFilesInGuest", func() (string, error) {
		res, err := fm.ListFiles(r.ctx, auth, family.dir, 0, 0, "")
		if err != nil {
			return "", err
		}
		names := map[string]types.GuestFileInfo{}
		for _, f := range res.Files {
			names[f.Path] = f
		}
		up, ok := names["up.txt"]
		if !ok {
			return "", fmt.Errorf("up.txt not among %v", fileNames(res.Files))
		}
		if up.Size != int64(len(content)) || up.Type != string(types.GuestFileTypeFile) {
			return "", fmt.Errorf("up.txt listed as %s of %d bytes, want a file of %d", up.Type, up.Size,
				len(content))
		}
		if _, ok := names["made.txt"]; !ok {
			return "", fmt.Errorf("made.txt not among %v", fileNames(res.Files))
		}
		return strings.Join(fileNames(res.Files), ", "), nil
	})
	r.check("ListFilesInGuest pattern", func() (string, error) {
		// matchPattern: "A filter for the return values. Match patterns are specified using perl-compatible
		// regular expressions."
		res, err := fm.ListFiles(r.ctx, auth, family.dir, 0, 0, "^up")
		if err != nil {
			return "", err
		}
		if names := fileNames(res.Files); len(names) != 1 || names[0] != "up.txt" {
			return "", fmt.Errorf("pattern ^up listed %v, want [up.txt]", names)
		}
		return "up.txt", nil
	})
	r.check("DeleteFileInGuest", func() (string, error) {
		if err := fm.DeleteFile(r.ctx, auth, upload); err != nil {
			return "", err
		}
		res, err := fm.ListFiles(r.ctx, auth, family.dir, 0, 0, "")
		if err != nil {
			return "", err
		}
		for _, name := range fileNames(res.Files) {
			if name == "up.txt" {
				return "", fmt.Errorf("up.txt still listed after DeleteFileInGuest")
			}
		}
		return "deleted", nil
	})
	r.check("wrong guest password", func() (string, error) {
		bad := &types.NamePasswordAuthentication{Username: family.user, Password: family.password + "x"}
		_, err := pm.ListProcesses(r.ctx, bad, nil)
		return expectFault(err, "InvalidGuestLogin")
	})
}

// waitProcess polls ListProcessesInGuest until the process has ended (endTime set).
func waitProcess(r *run, pm *guest.ProcessManager, auth types.BaseGuestAuthentication,
	pid int64) (*types.GuestProcessInfo, error) {
	for delay := 50 * time.Millisecond; ; delay *= 2 {
		procs, err := pm.ListProcesses(r.ctx, auth, []int64{pid})
		if err != nil {
			return nil, err
		}
		if len(procs) != 1 || procs[0].Pid != pid {
			return nil, fmt.Errorf("ListProcessesInGuest for pid %d answered %+v", pid, procs)
		}
		if procs[0].EndTime != nil {
			return &procs[0], nil
		}
		if delay > time.Second {
			delay = time.Second
		}
		select {
		case <-r.ctx.Done():
			return nil, fmt.Errorf("pid %d still running: %w", pid, r.ctx.Err())
		case <-time.After(delay):
		}
	}
}

func fileNames(files []types.GuestFileInfo) []string {
	names := make([]string, 0, len(files))
	for _, f := range files {
		names = append(names, f.Path)
	}
	return names
}

// redact drops a transfer URL's query (its one-use ticket) from output.
func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?..."
	}
	return u
}
