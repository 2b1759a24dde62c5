// golog prints real Go error output, on demand, for errloop's parser tests.
//
//	golog -format NAME -case NAME
//
// Formats: zap_json zap_console logrus_json logrus_text slog_json slog_text zerolog_json
// klog stdlog stdlog_micro stdlog_shortfile stdlog_longfile stdlog_utc stdlog_msgprefix logfmt.
// Cases for log lines: wrapped (an error wrapped twice with %w), plain (one error, no wrap),
// log_panic (zap_json, zap_console, logrus_json, logrus_text, zerolog_json: the logger's own
// Panic level, which logs the record and then panics: the runtime's dump follows; exits 2).
// Panic cases (the format is ignored; the runtime writes to stderr and exits 2):
// panic_nil, panic_value, panic_custom, panic_recovered, concurrent_map, deadlock, oom (under a
// small RLIMIT_AS), sigquit (the dump SIGQUIT gives), http_panic (net/http's log of a recovered
// handler panic; exits 0).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logfmt/logfmt"
	"github.com/rs/zerolog"
	"github.com/sirupsen/logrus"
	"go.uber.org/zap"
	"k8s.io/klog/v2"
)

var errNotFound = errors.New("record not found")

type QueryError struct {
	Table string
	Err   error
}

func (e *QueryError) Error() string { return "query " + e.Table + ": " + e.Err.Error() }
func (e *QueryError) Unwrap() error { return e.Err }

func lookupUser(id int) error {
	return fmt.Errorf("load user %d: %w", id, &QueryError{Table: "users", Err: errNotFound})
}

func handle(c string) error {
	switch c {
	case "plain":
		return errors.New("connection refused")
	default:
		return fmt.Errorf("handle request: %w", lookupUser(42))
	}
}

const (
	msg     = "request failed"
	traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	spanID  = "00f067aa0ba902b7"
)

// newZap is zap's production logger (zap_json) or its development one (zap_console), on stderr.
func newZap(format string) *zap.Logger {
	cfg := zap.NewProductionConfig()
	if format == "zap_console" {
		cfg = zap.NewDevelopmentConfig()
	}
	cfg.OutputPaths = []string{"stderr"}
	logger, _ := cfg.Build()
	return logger
}

// newLogrus is a logrus logger with the caller reported, JSON (logrus_json) or text (logrus_text).
func newLogrus(format string, out io.Writer) *logrus.Logger {
	l := logrus.New()
	l.SetOutput(out)
	l.SetReportCaller(true)
	if format == "logrus_json" {
		l.SetFormatter(&logrus.JSONFormatter{})
	} else {
		l.SetFormatter(&logrus.TextFormatter{DisableColors: true, FullTimestamp: true})
	}
	return l
}

// logPanic logs at the logger's panic level: the logger writes the record, then panics.
func logPanic(format string, out io.Writer) {
	err := handle("wrapped")
	switch format {
	case "zap_json", "zap_console":
		newZap(format).Named("api").Panic(msg, zap.Error(err), zap.String("trace_id", traceID))
	case "logrus_json", "logrus_text":
		l := newLogrus(format, out)
		l.WithError(err).WithField("traceID", traceID).Panic(msg)
	case "zerolog_json":
		l := zerolog.New(out).With().Timestamp().Caller().Logger()
		l.Panic().Err(err).Str("traceId", traceID).Msg(msg)
	default:
		fmt.Fprintf(os.Stderr, "no panic level in format %q\n", format)
		os.Exit(64)
	}
}

func logLine(format, c string, out io.Writer) {
	if c == "log_panic" {
		logPanic(format, out)
		return
	}
	err := handle(c)
	switch format {
	case "zap_json", "zap_console":
		logger := newZap(format)
		logger.Named("api").Error(msg, zap.Error(err), zap.String("trace_id", traceID), zap.String("span_id", spanID),
			zap.String("method", "GET"), zap.String("path", "/users/42"), zap.Int("status", 500))
		_ = logger.Sync()
	case "logrus_json", "logrus_text":
		l := newLogrus(format, out)
		l.WithError(err).WithFields(logrus.Fields{"traceID": traceID, "spanID": spanID, "method": "GET",
			"path": "/users/42", "status": 500}).Error(msg)
	case "slog_json", "slog_text":
		opts := &slog.HandlerOptions{AddSource: true}
		var h slog.Handler
		if format == "slog_json" {
			h = slog.NewJSONHandler(out, opts)
		} else {
			h = slog.NewTextHandler(out, opts)
		}
		slog.New(h).Error(msg, "err", err, "trace_id", traceID, "span_id", spanID, "method", "GET",
			"path", "/users/42", "status", 500)
	case "zerolog_json":
		l := zerolog.New(out).With().Timestamp().Caller().Logger()
		l.Error().Err(err).Str("traceId", traceID).Str("spanId", spanID).Str("method", "GET").
			Str("path", "/users/42").Int("status", 500).Msg(msg)
	case "klog":
		fs := flag.NewFlagSet("klog", flag.ContinueOnError)
		klog.InitFlags(fs)
		_ = fs.Set("logtostderr", "true")
		klog.ErrorS(err, msg, "trace_id", traceID, "method", "GET", "path", "/users/42", "status", 500)
		klog.Errorf("%s: %v", msg, err)
		klog.Flush()
	case "logfmt":
		// go-kit/log's logfmt logger: level, ts (RFC 3339 UTC), caller, msg, keyvals.
		enc := logfmt.NewEncoder(out)
		_ = enc.EncodeKeyvals("level", "error", "ts", time.Now().UTC().Format(time.RFC3339Nano), "caller", "main.go:42",
			"msg", msg, "err", err, "trace_id", traceID, "method", "GET", "path", "/users/42", "status", 500)
		_ = enc.EndRecord()
	default:
		if strings.HasPrefix(format, "stdlog") {
			flags, prefix := log.LstdFlags, ""
			switch format {
			case "stdlog_micro":
				flags |= log.Lmicroseconds
			case "stdlog_shortfile":
				flags |= log.Lshortfile
			case "stdlog_longfile":
				flags |= log.Llongfile | log.Lmicroseconds
			case "stdlog_utc":
				flags |= log.LUTC | log.Lmicroseconds
			case "stdlog_msgprefix":
				flags |= log.Lmsgprefix
				prefix = "[api] "
			}
			l := log.New(out, prefix, flags)
			l.Printf("ERROR: %s: %v", msg, err)
			l.Printf("%s: %v", msg, err)
			return
		}
		fmt.Fprintf(os.Stderr, "unknown format %q\n", format)
		os.Exit(64)
	}
}

type order struct{ ID int }

//go:noinline
func total(o *order) int { return o.ID * 2 }

func work(c string) {
	switch c {
	case "panic_nil":
		var o *order
		fmt.Println(total(o))
	case "panic_value":
		panic(fmt.Errorf("invariant broken: balance %d < 0", -7))
	case "panic_custom":
		panic(&QueryError{Table: "orders", Err: errNotFound})
	case "panic_recovered":
		defer func() {
			if r := recover(); r != nil {
				panic(r) // re-panic: the runtime prints "[recovered]"
			}
		}()
		panic("boom: config missing")
	case "concurrent_map":
		m := map[int]int{}
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					m[i%100] = i
				}
			}()
		}
		wg.Wait()
	case "oom":
		// run under a small address-space limit (golog.py sets RLIMIT_AS): the runtime cannot map more
		var keep [][]byte
		for {
			b := make([]byte, 64<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			keep = append(keep, b)
		}
	case "http_panic":
		// net/http recovers a handler's panic and logs it with the log package, stack included
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var o *order
			fmt.Fprint(w, total(o))
		}))
		srv.Config.ErrorLog = log.New(os.Stderr, "", log.LstdFlags)
		if resp, err := http.Get(srv.URL + "/orders/7"); err == nil {
			resp.Body.Close()
		}
		srv.Close()
	case "sigquit":
		blocked := make(chan struct{})
		go func() { <-blocked }()
		_ = syscall.Kill(os.Getpid(), syscall.SIGQUIT)
		time.Sleep(5 * time.Second)
	case "deadlock":
		// klog's init keeps a goroutine that hides a deadlock from the runtime: run the sibling program
		exe, err := os.Executable()
		if err == nil {
			err = syscall.Exec(filepath.Join(filepath.Dir(exe), "deadlock"), []string{"deadlock"}, os.Environ())
		}
		fmt.Fprintln(os.Stderr, "cannot run deadlock:", err)
		os.Exit(70)
	}
}

func main() {
	format := flag.String("format", "zap_json", "log format")
	c := flag.String("case", "wrapped", "what goes wrong")
	flag.Parse()
	if strings.HasPrefix(*c, "panic_") || *c == "concurrent_map" || *c == "deadlock" || *c == "oom" || *c == "sigquit" || *c == "http_panic" {
		done := make(chan struct{})
		go func() { defer close(done); work(*c) }()
		<-done
		return
	}
	logLine(*format, *c, os.Stderr)
}
