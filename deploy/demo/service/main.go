// Command demo-service is the Go service of errloop's quick-start scenario: a small
// user API that logs its failures the way production Go services do (zap, JSON lines,
// stack traces), so errloop has real errors to tail, fingerprint and act on.
//
// Routes:
//
//	POST /api/v1/users   validates {"name","email"}; 400 + one error line when invalid
//	GET  /api/v1/panic   a handler that dereferences a nil pointer; 500 + the goroutine stack
//	GET  /api/v1/slow    calls the in-process "inventory" downstream past its deadline; 504
//	GET  /healthz        200
//
// Logs go to --log-file (appended) when set, else to stdout. SIGTERM or SIGINT shut the
// server down gracefully and the process exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

type config struct {
	addr              string
	logFile           string
	service           string
	downstreamTimeout time.Duration
	downstreamDelay   time.Duration
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("demo-service", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "listen address (port 0 picks a free port, logged at startup)")
	fs.StringVar(&c.logFile, "log-file", "", "append JSON logs to this file instead of stdout")
	fs.StringVar(&c.service, "service", "user-api", "value of the service field on every log line")
	fs.DurationVar(&c.downstreamTimeout, "downstream-timeout", 200*time.Millisecond, "deadline of the inventory call")
	fs.DurationVar(&c.downstreamDelay, "downstream-delay", time.Second, "how long the inventory downstream takes to answer")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.downstreamTimeout <= 0 {
		return c, errors.New("--downstream-timeout must be positive")
	}
	return c, nil
}

// newLogger is zap's production config (JSON, epoch-float ts, caller, stacktrace from
// error level) with a service field on every line. Sampling is off: every failure is
// one line, which is what errloop counts.
func newLogger(c config) (*zap.Logger, error) {
	zc := zap.NewProductionConfig()
	zc.Sampling = nil
	zc.InitialFields = map[string]interface{}{"service": c.service}
	zc.OutputPaths = []string{"stdout"} // zap's production default is stderr
	if c.logFile != "" {
		zc.OutputPaths = []string{c.logFile}
	}
	return zc.Build()
}

func main() {
	c, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	logger, err := newLogger(c)
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo-service: logger: %v\n", err)
		os.Exit(1)
	}
	code := run(c, logger)
	_ = logger.Sync() // fails harmlessly on a terminal
	os.Exit(code)
}

func run(c config, logger *zap.Logger) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	inv, err := startInventory(c.downstreamDelay)
	if err != nil {
		logger.Error("start inventory downstream", zap.Error(err))
		return 1
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		logger.Error("listen", zap.String("addr", c.addr), zap.Error(err))
		_ = inv.Close()
		return 1
	}

	a := newApp(logger, newInventoryClient(inv.url, c.downstreamTimeout))
	srv := &http.Server{
		Handler:           a.routes(),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          zap.NewStdLog(logger.WithOptions(zap.AddStacktrace(zapcore.FatalLevel))),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("service started",
		zap.String("addr", ln.Addr().String()),
		zap.String("inventory_url", inv.url),
		zap.Duration("downstream_timeout", c.downstreamTimeout),
		zap.Int("pid", os.Getpid()),
	)

	code := 0
	select {
	case <-ctx.Done():
		logger.Info("shutting down", zap.String("reason", "signal"))
	case err := <-served:
		logger.Error("server stopped", zap.Error(err))
		code = 1
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		logger.Warn("graceful shutdown incomplete", zap.Error(err))
	}
	_ = inv.Close()
	logger.Info("service stopped")
	return code
}
