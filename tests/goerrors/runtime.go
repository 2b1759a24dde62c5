package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

type order struct {
	ID       int
	Items    []string
	Customer *customer
	byKey    map[string]int
}

type customer struct{ Name string }

type notifier interface{ Notify(string) error }

// recovered runs f in its own goroutine (as a worker or a request handler would) and returns
// what recover() saw there: a runtime.Error for the runtime's own panics.
func recovered(f func()) (v any) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { v = recover() }()
		f()
	}()
	<-done
	return v
}

// asError: how recovery middleware turns the recovered value into an error.
func asError(v any) error {
	if err, ok := v.(error); ok {
		return err
	}
	return fmt.Errorf("%v", v)
}

func runtimeScenarios(r *recorder) {
	nilPtr := label("nil_pointer", "system", false)
	var o *order
	v := recovered(func() { fmt.Println(o.ID) })
	r.emit("nil_pointer", nilPtr, "panic recovered", fmt.Errorf("panic: %w", asError(v)))
	o2 := &order{ID: 7}
	v = recovered(func() { fmt.Println(o2.Customer.Name) })
	r.emit("nil_pointer", nilPtr, "request handler panicked", fmt.Errorf("GET /orders/%d: panic: %v", o2.ID, v),
		zap.String("method", "GET"), zap.String("path", "/orders/7"))
	var n notifier
	v = recovered(func() { _ = n.Notify("x") })
	r.emit("nil_pointer", nilPtr, "worker panicked", fmt.Errorf("notify worker 3: %w", asError(v)))

	idx := label("index_out_of_range", "system", false)
	items := []string{"a", "b", "c"}
	i := 5
	v = recovered(func() { fmt.Println(items[i]) })
	r.emit("index_out_of_range", idx, "panic recovered", fmt.Errorf("panic: %w", asError(v)))
	j := -1
	v = recovered(func() { fmt.Println(items[j+0*len(items)]) })
	r.emit("index_out_of_range", idx, "batch failed", fmt.Errorf("process batch 12: %w", asError(v)))
	k := 7
	v = recovered(func() { fmt.Println(items[1:k]) })
	r.emit("index_out_of_range", idx, "request handler panicked", fmt.Errorf("panic: %v", v))
	buf := make([]byte, 4, 4)
	v = recovered(func() { fmt.Println(buf[:k]) })
	r.emit("index_out_of_range", idx, "decode frame panicked", fmt.Errorf("decode frame: %w", asError(v)))

	nilMap := label("nil_map", "system", false)
	var o3 order
	v = recovered(func() { o3.byKey["sku-1"]++ })
	r.emit("nil_map", nilMap, "panic recovered", fmt.Errorf("panic: %w", asError(v)))
	var counts map[int]string
	v = recovered(func() { counts[42] = "x" })
	r.emit("nil_map", nilMap, "aggregate failed", fmt.Errorf("aggregate orders for day %s: %w", "2026-01-01", asError(v)))

	closed := label("closed_channel", "system", false)
	ch := make(chan int, 1)
	close(ch)
	v = recovered(func() { ch <- 1 })
	r.emit("closed_channel", closed, "publisher panicked", fmt.Errorf("panic: %w", asError(v)))
	v = recovered(func() { close(ch) })
	r.emit("closed_channel", closed, "shutdown panicked", fmt.Errorf("stop worker pool: %w", asError(v)))
	var nilCh chan int
	v = recovered(func() { close(nilCh) })
	r.emit("closed_channel", closed, "panic recovered", fmt.Errorf("panic: %v", v))

	custom := label("custom_panic", "system", false)
	v = recovered(func() { panic("order 42 has no items") })
	r.emit("custom_panic", custom, "panic recovered", fmt.Errorf("panic: %v", v))
	v = recovered(func() { panic(fmt.Sprintf("unexpected state %q in reconcile loop", "PENDING_REFUND")) })
	r.emit("custom_panic", custom, "reconciler panicked", fmt.Errorf("panic: %v", v), zap.Int("attempt", 3))
	v = recovered(func() { panic(errors.New("invariant violated: negative balance")) })
	r.emit("custom_panic", custom, "request handler panicked", fmt.Errorf("POST /payments: panic: %w", asError(v)))
	v = recovered(func() { panic(struct{ Code int }{Code: 17}) })
	r.emit("custom_panic", custom, "panic recovered", fmt.Errorf("panic: %v", v))
	// a runtime.Error type check, as recovery middleware does, to be sure of the texts above
	if _, ok := recovered(func() { fmt.Println(o.ID) }).(runtime.Error); !ok {
		r.skip("nil_pointer", "recover() did not return a runtime.Error")
	}
}

// --- crashes: fatal errors cannot be recovered, so a child process dies and a supervisor logs it

func crashNow(mode string) {
	switch mode {
	case "concurrent_map_writes":
		m := map[int]int{}
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					m[i%64] = i
				}
			}()
		}
		wg.Wait()
	case "concurrent_map_read_write":
		m := map[int]int{1: 1}
		go func() {
			for i := 0; ; i++ {
				m[i%64] = i
			}
		}()
		for i := 0; ; i++ {
			_ = m[i%64]
		}
	case "out_of_memory":
		limit := uint64(512 << 20)
		_ = syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: limit, Max: limit})
		var keep [][]byte
		for {
			keep = append(keep, make([]byte, 64<<20))
		}
	case "stack_overflow":
		debug.SetMaxStack(1 << 20)
		var f func(int) int
		f = func(n int) int { return f(n+1) + 1 }
		f(0)
	case "nil_pointer":
		var o *order
		fmt.Println(o.Customer)
	case "custom_panic":
		panic("config: missing required key \"database.dsn\"")
	case "index_out_of_range":
		args := os.Args[1:]
		fmt.Println(args[len(args)+2])
	}
	os.Exit(3)
}

// crashOutput runs this program in child mode and returns the child's error (an
// *exec.ExitError) and its stderr, as a supervisor (job runner, init system) gets them.
func crashOutput(mode string) (error, string) {
	exe, err := os.Executable()
	if err != nil {
		return err, ""
	}
	cmd := exec.Command(exe, "-crash", mode)
	if name, ok := strings.CutPrefix(mode, "deadlock_"); ok {
		// the deadlock program is built beside this one (see goerrors.py)
		cmd = exec.Command(filepath.Join(filepath.Dir(exe), "deadlock"), name)
	}
	cmd.Env = append(os.Environ(), "GOTRACEBACK=single", "GOMAXPROCS=2")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return err, ""
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		err = <-done
	}
	return err, stderr.String()
}

// headline: the child's stderr up to its "fatal error:"/"panic:" line (the runtime prints
// "runtime: goroutine stack exceeds …" before "fatal error: stack overflow"), and the rest.
func headline(stderr string) (string, string) {
	lines := strings.Split(stderr, "\n")
	for i, ln := range lines {
		if strings.HasPrefix(ln, "fatal error: ") || strings.HasPrefix(ln, "panic: ") {
			var head []string
			for _, h := range lines[:i] {
				if strings.HasPrefix(h, "runtime: goroutine stack exceeds") {
					head = append(head, h)
				}
			}
			head = append(head, ln)
			return strings.Join(head, "; "), strings.TrimSpace(strings.Join(lines[i+1:], "\n"))
		}
	}
	return strings.TrimSpace(stderr), ""
}

func crashScenarios(r *recorder) {
	cases := []struct{ mode, kind, lbl string }{
		{"concurrent_map_writes", "concurrent_map", label("concurrent_map", "system", false)},
		{"concurrent_map_read_write", "concurrent_map", label("concurrent_map", "system", false)},
		{"deadlock_channel", "goroutine_deadlock", label("goroutine_deadlock", "system", false)},
		{"deadlock_waitgroup", "goroutine_deadlock", label("goroutine_deadlock", "system", false)},
		{"out_of_memory", "out_of_memory", label("out_of_memory", "system", false)},
		{"stack_overflow", "stack_overflow", label("stack_overflow", "system", false)},
		{"nil_pointer", "nil_pointer", label("nil_pointer", "system", false)},
		{"custom_panic", "custom_panic", label("custom_panic", "system", false)},
		{"index_out_of_range", "index_out_of_range", label("index_out_of_range", "system", false)},
	}
	for _, c := range cases {
		err, stderr := crashOutput(c.mode)
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 3 || stderr == "" {
			r.skip(c.kind, fmt.Sprintf("child %s did not crash: %v", c.mode, err))
			continue
		}
		head, dump := headline(stderr)
		r.emit(c.kind, c.lbl, "worker crashed",
			fmt.Errorf("worker %q exited (%w): %s", c.mode, err, head), zap.String("goroutines", dump))
	}
}
