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

const guestDir = "/tmp/go-conformance/sub"

// scenarioGuestOperations: Guest Operations on a running instant clone, as govc guest.* runs them.
func scenarioGuestOperations(r *run) {
	r.login()
	if r.cfg.guestUser == "" {
		r.must("guest credentials", func() (string, error) { return "", fmt.Errorf("GUEST_USER is not set") })
	}
	auth := &types.NamePasswordAuthentication{Username: r.cfg.guestUser, Password: r.cfg.guestPassword}
	var vm *object.VirtualMachine
	r.must("instant clone", func() (string, error) {
		var err error
		vm, err = r.instantClone("linux-frozen", "go-guest")
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
			ProgramPath: "/bin/sh", Arguments: `-c "exit 7"`, WorkingDirectory: "/tmp"})
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
		return "made " + guestDir, fm.MakeDirectory(r.ctx, auth, guestDir, true)
	})
	content := []byte("uploaded by govmomi\nline two\n")
	upload := guestDir + "/up.txt"
	r.check("upload", func() (string, error) {
		turl, err := fm.InitiateFileTransferToGuest(r.ctx, auth, upload, &types.GuestPosixFileAttributes{},
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
		pid, err := pm.StartProgram(r.ctx, auth, &types.GuestProgramSpec{ProgramPath: "/bin/sh",
			Arguments: fmt.Sprintf(`-c "grep -qx 'line two' %s && cp %s %s/copy.txt"`, upload, upload, guestDir)})
		if err != nil {
			return "", err
		}
		info, err := waitProcess(r, pm, auth, pid)
		if err != nil {
			return "", err
		}
		if info.ExitCode != 0 {
			return "", fmt.Errorf("grep/cp in the guest exited %d", info.ExitCode)
		}
		return "content checked in the guest", nil
	})
	r.check("download", func() (string, error) {
		info, err := fm.InitiateFileTransferFromGuest(r.ctx, auth, guestDir+"/copy.txt")
		if err != nil {
			return "", fmt.Errorf("InitiateFileTransferFromGuest: %w", err)
		}
		if info.Size != int64(len(content)) {
			return "", fmt.Errorf("FileTransferInformation.size %d, want %d", info.Size, len(content))
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
		if !bytes.Equal(got, content) {
			return "", fmt.Errorf("downloaded %q, want %q", got, content)
		}
		return fmt.Sprintf("GET %d bytes", len(got)), nil
	})
	r.check("ListFilesInGuest", func() (string, error) {
		res, err := fm.ListFiles(r.ctx, auth, guestDir, 0, 0, "")
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
		if _, ok := names["copy.txt"]; !ok {
			return "", fmt.Errorf("copy.txt not among %v", fileNames(res.Files))
		}
		return strings.Join(fileNames(res.Files), ", "), nil
	})
	r.check("ListFilesInGuest pattern", func() (string, error) {
		// matchPattern: "A filter for the return values. Match patterns are specified using perl-compatible
		// regular expressions."
		res, err := fm.ListFiles(r.ctx, auth, guestDir, 0, 0, "^up")
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
		res, err := fm.ListFiles(r.ctx, auth, guestDir, 0, 0, "")
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
		bad := &types.NamePasswordAuthentication{Username: r.cfg.guestUser, Password: r.cfg.guestPassword + "x"}
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
