package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"go.uber.org/zap"
)

func osScenarios(r *recorder) {
	nf := label("file_not_found", "system", false)
	_, err := os.Open("/etc/orders-api/config.yaml")
	r.emitIf(errors.Is(err, fs.ErrNotExist), "file_not_found", nf, "startup failed", fmt.Errorf("load config: %w", err))
	_, err = os.ReadFile("/srv/templates/invoice.html.tmpl")
	r.emitIf(errors.Is(err, fs.ErrNotExist), "file_not_found", nf, "render invoice failed", fmt.Errorf("render invoice %d: %w", 5, err))
	_, err = os.Stat("/var/lib/orders/exports/2026-01.csv")
	r.emitIf(errors.Is(err, fs.ErrNotExist), "file_not_found", nf, "export download failed", err)

	full := label("disk_full", "system", false)
	err = os.WriteFile("/dev/full", []byte("row 1\n"), 0o644)
	r.emitIf(errors.Is(err, syscall.ENOSPC), "disk_full", full, "export failed", fmt.Errorf("write export: %w", err))
	if f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0); err == nil {
		w := bufio.NewWriter(f)
		_, _ = w.WriteString("spill segment 7\n")
		err = w.Flush()
		_ = f.Close()
		r.emitIf(errors.Is(err, syscall.ENOSPC), "disk_full", full, "spill to disk failed", fmt.Errorf("flush spill file: %w", err))
	}

	fdScenarios(r)
	permissionScenarios(r)
}

func fdScenarios(r *recorder) {
	fd := label("fd_exhausted", "system", false)
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		r.skip("fd_exhausted", err.Error())
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.skip("fd_exhausted", err.Error())
		return
	}
	defer ln.Close()
	low := syscall.Rlimit{Cur: 64, Max: old.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		r.skip("fd_exhausted", err.Error())
		return
	}
	var open []*os.File
	var openErr, dialErr error
	for i := 0; i < 200; i++ {
		f, err := os.Open("/dev/null")
		if err != nil {
			openErr = err
			break
		}
		open = append(open, f)
	}
	_, dialErr = net.Dial("tcp", ln.Addr().String())
	for _, f := range open {
		_ = f.Close()
	}
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
	r.emitIf(errors.Is(openErr, syscall.EMFILE), "fd_exhausted", fd, "open failed", fmt.Errorf("open upload buffer: %w", openErr))
	r.emitIf(errors.Is(dialErr, syscall.EMFILE), "fd_exhausted", fd, "dial failed", fmt.Errorf("connect payments: %w", dialErr))
}

// permissionScenarios runs last: as root it drops to nobody (root bypasses file modes).
func permissionScenarios(r *recorder) {
	pd := label("permission_denied", "system", false)
	if os.Geteuid() == 0 {
		if err := syscall.Setgid(65534); err != nil {
			r.skip("permission_denied", "setgid: "+err.Error())
			return
		}
		if err := syscall.Setuid(65534); err != nil {
			r.skip("permission_denied", "setuid: "+err.Error())
			return
		}
	}
	_, err := os.ReadFile("/etc/shadow")
	r.emitIf(errors.Is(err, fs.ErrPermission), "permission_denied", pd, "startup failed", fmt.Errorf("load credentials: %w", err))
	_, err = os.Create(filepath.Join("/etc", "orders-api.lock"))
	r.emitIf(errors.Is(err, fs.ErrPermission), "permission_denied", pd, "lock failed", err)
	_, err = net.Listen("tcp", "127.0.0.1:80")
	r.emitIf(errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EACCES), "permission_denied", pd, "server failed", fmt.Errorf("start http server: %w", err),
		zap.String("addr", ":80"))
}
