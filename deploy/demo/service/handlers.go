package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/go-playground/validator/v10"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// CreateUserRequest is the body of POST /api/v1/users.
type CreateUserRequest struct {
	Name  string `json:"name" validate:"required"`
	Email string `json:"email" validate:"required,email"`
}

// User is a created user.
type User struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

type app struct {
	logger    *zap.Logger
	failures  *zap.Logger // one frame up: caller and stacktrace start in the handler
	panics    *zap.Logger // no automatic stacktrace: the recovered goroutine's stack is added
	validate  *validator.Validate
	inventory *inventoryClient

	mu    sync.Mutex
	users map[string]*User
}

func newApp(logger *zap.Logger, inv *inventoryClient) *app {
	return &app{
		logger:    logger,
		failures:  logger.WithOptions(zap.AddCallerSkip(1)),
		panics:    logger.WithOptions(zap.AddStacktrace(zapcore.FatalLevel)),
		validate:  validator.New(),
		inventory: inv,
		users:     map[string]*User{},
	}
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/users", a.createUser)
	mux.HandleFunc("GET /api/v1/users/{id}", a.getUser)
	mux.HandleFunc("GET /api/v1/panic", a.panicky)
	mux.HandleFunc("GET /api/v1/slow", a.slow)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return a.middleware(mux)
}

// request is what the middleware knows about the request being served.
type request struct {
	traceID string
	start   time.Time
	failed  bool // a handler logged an error line: no access line
}

type ctxKey struct{}

func reqOf(r *http.Request) *request {
	if rq, ok := r.Context().Value(ctxKey{}).(*request); ok {
		return rq
	}
	return &request{traceID: newTraceID(), start: time.Now()}
}

func newTraceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// middleware gives each request a trace id (X-Trace-Id response header), recovers
// panics into one error line carrying the goroutine stack, and writes an info access
// line for requests that no handler logged as failed (health probes excepted).
func (a *app) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rq := &request{traceID: newTraceID(), start: time.Now()}
		w.Header().Set("X-Trace-Id", rq.traceID)
		sw := &statusWriter{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, rq))
		defer func() {
			if rec := recover(); rec != nil {
				if rec == http.ErrAbortHandler {
					panic(rec)
				}
				a.logPanic(r, rq, rec, debug.Stack())
				if sw.status == 0 {
					writeJSON(sw, http.StatusInternalServerError, errorBody("internal error", rq.traceID, nil))
				}
				return
			}
			if !rq.failed && r.URL.Path != "/healthz" { // probes would drown the log
				status := sw.status
				if status == 0 {
					status = http.StatusOK
				}
				a.logger.Info("request completed", requestFields(r, rq, status)...)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

func (a *app) logPanic(r *http.Request, rq *request, rec any, stack []byte) {
	err, ok := rec.(error)
	if !ok {
		err = fmt.Errorf("%v", rec)
	}
	fields := requestFields(r, rq, http.StatusInternalServerError)
	fields = append(fields,
		zap.Error(err),
		zap.String("error_type", fmt.Sprintf("%T", rec)),
		zap.String("panic", fmt.Sprint(rec)),
		zap.ByteString("stacktrace", stack),
	)
	a.panics.Error("panic recovered", fields...)
}

func requestFields(r *http.Request, rq *request, status int) []zap.Field {
	return []zap.Field{
		zap.String("method", r.Method),
		zap.String("path", r.URL.Path),
		zap.Int("status", status),
		zap.Float64("duration_ms", float64(time.Since(rq.start).Microseconds())/1000),
		zap.String("trace_id", rq.traceID),
	}
}

// fail logs one error line for a failed request and answers it. It must be called
// from the handler itself: the caller and stacktrace of the line start there.
func (a *app) fail(w http.ResponseWriter, r *http.Request, status int, msg string, err error, extra ...zap.Field) {
	rq := reqOf(r)
	rq.failed = true
	fields := requestFields(r, rq, status)
	fields = append(fields, zap.Error(err), zap.String("error_type", fmt.Sprintf("%T", err)))
	fields = append(fields, extra...)
	a.failures.Error(msg, fields...)
	var invalid []fieldError
	var verrs validator.ValidationErrors
	if errors.As(err, &verrs) {
		for _, fe := range verrs {
			invalid = append(invalid, fieldError{Field: fe.Field(), Tag: fe.Tag()})
		}
	}
	writeJSON(w, status, errorBody(http.StatusText(status), rq.traceID, invalid))
}

type fieldError struct {
	Field string `json:"field"`
	Tag   string `json:"tag"`
}

func errorBody(msg, traceID string, invalid []fieldError) map[string]any {
	body := map[string]any{"error": msg, "trace_id": traceID}
	if len(invalid) > 0 {
		body["invalid_fields"] = invalid
	}
	return body
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (a *app) createUser(w http.ResponseWriter, r *http.Request) {
	var req CreateUserRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	if err := dec.Decode(&req); err != nil {
		a.fail(w, r, http.StatusBadRequest, "create user failed", err)
		return
	}
	if err := a.validate.Struct(req); err != nil {
		a.fail(w, r, http.StatusBadRequest, "create user failed", err)
		return
	}
	u := &User{ID: newTraceID()[:12], Name: req.Name, Email: req.Email}
	a.mu.Lock()
	a.users[u.ID] = u
	a.mu.Unlock()
	writeJSON(w, http.StatusCreated, u)
}

func (a *app) getUser(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	u, ok := a.users[r.PathValue("id")]
	a.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, errorBody("user not found", reqOf(r).traceID, nil))
		return
	}
	writeJSON(w, http.StatusOK, u)
}

// panicky has the classic bug: a cache miss returns a nil *User that is dereferenced.
func (a *app) panicky(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	u := a.users["featured"] // never set
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"featured": displayName(u)})
}

func displayName(u *User) string {
	return u.Name + " <" + u.Email + ">"
}

func (a *app) slow(w http.ResponseWriter, r *http.Request) {
	stock, err := a.inventory.stock(r.Context(), "sku-42")
	if err != nil {
		a.fail(w, r, http.StatusGatewayTimeout, "downstream call failed", err,
			zap.String("downstream", "inventory"),
			zap.Duration("timeout", a.inventory.timeout),
		)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"stock": stock})
}
