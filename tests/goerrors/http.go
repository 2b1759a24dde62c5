package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"
	"go.uber.org/zap"
)

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }

func httpScenarios(r *recorder) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/status/"))
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "2")
		}
		http.Error(w, http.StatusText(code), code)
	}))
	defer ts.Close()
	cases := []struct {
		code   int
		method string
		lbl    string
		kind   string
	}{
		{400, "POST", label("http_4xx", "business", false), "http_4xx"},
		{401, "GET", label("http_4xx", "business", false), "http_4xx"},
		{403, "DELETE", label("http_4xx", "business", false), "http_4xx"},
		{404, "GET", label("http_4xx", "business", false), "http_4xx"},
		{409, "PUT", label("http_4xx", "business", false), "http_4xx"},
		{422, "POST", label("http_4xx", "business", false), "http_4xx"},
		{429, "GET", label("http_4xx", "transient", true), "http_429"},
		{429, "POST", label("http_4xx", "transient", true), "http_429"},
		{500, "GET", label("http_5xx", "system", false), "http_5xx"},
		{501, "PATCH", label("http_5xx", "system", false), "http_5xx"},
		{502, "GET", label("http_5xx", "transient", true), "http_5xx_transient"},
		{503, "POST", label("http_5xx", "transient", true), "http_5xx_transient"},
		{504, "GET", label("http_5xx", "transient", true), "http_5xx_transient"},
	}
	for i, c := range cases {
		url := fmt.Sprintf("%s/status/%d", ts.URL, c.code)
		req, _ := http.NewRequest(c.method, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			r.skip(c.kind, err.Error())
			continue
		}
		_ = resp.Body.Close()
		// what client code does with a non-2xx answer: an error quoting resp.Status
		err = fmt.Errorf("%s %s: %s", c.method, "/v1/accounts/"+strconv.Itoa(100+i), resp.Status)
		r.emit(c.kind, c.lbl, "upstream request failed", err,
			zap.Int("status", resp.StatusCode), zap.String("method", c.method), zap.String("url", url))
	}

	// server side: MaxBytesReader refuses a large body (413)
	tooLarge := label("body_too_large", "business", false)
	var serverErrs []error
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		req.Body = http.MaxBytesReader(w, req.Body, 256)
		var err error
		if req.URL.Path == "/json" {
			var v map[string]any
			err = json.NewDecoder(req.Body).Decode(&v)
		} else {
			_, err = io.ReadAll(req.Body)
		}
		serverErrs = append(serverErrs, err)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		w.WriteHeader(204)
	}))
	defer srv.Close()
	big := `{"note": "` + strings.Repeat("x", 4096) + `"}`
	for _, p := range []string{"/json", "/raw"} {
		resp, err := http.Post(srv.URL+p, "application/json", strings.NewReader(big))
		if err == nil {
			_ = resp.Body.Close()
		}
	}
	time.Sleep(10 * time.Millisecond)
	for i, err := range serverErrs {
		var mbe *http.MaxBytesError
		if i == 0 {
			err = fmt.Errorf("decode create order request: %w", err)
		}
		r.emitIf(errors.As(err, &mbe), "body_too_large", tooLarge, "request rejected", err,
			zap.Int("status", 413), zap.String("method", "POST"), zap.String("path", "/v1/orders"))
	}
}

type CreateUserRequest struct {
	Name     string `json:"name" validate:"required"`
	Email    string `json:"email" validate:"required,email"`
	Age      int    `json:"age" validate:"gte=18,lte=130"`
	Plan     string `json:"plan" validate:"oneof=free pro enterprise"`
	Password string `json:"password" validate:"min=12"`
}

type Address struct {
	Street string `json:"street" validate:"required"`
	Zip    string `json:"zip" validate:"required_with=Street,omitempty,numeric,len=5"`
}

type Order struct {
	ID        int       `json:"id"`
	Amount    float64   `json:"amount"`
	CreatedAt time.Time `json:"created_at"`
	Items     []string  `json:"items"`
}

func decodeScenarios(r *recorder) {
	jl := label("json_decode", "business", false)
	var o Order
	err := json.Unmarshal([]byte(`{"id": "42", "amount": 9.5}`), &o)
	r.emit("json_decode", jl, "bad request body", fmt.Errorf("decode order: %w", err), zap.Int("status", 400))
	err = json.Unmarshal([]byte(`{"id": 42, "amount": 9.5,}`), &o)
	r.emit("json_decode", jl, "bad request body", fmt.Errorf("decode order: %w", err))
	err = json.Unmarshal([]byte(`{"id": 42, "items": ["a"`), &o)
	r.emit("json_decode", jl, "bad request body", err)
	dec := json.NewDecoder(strings.NewReader(`{"id": 1, "coupon": "SAVE10"}`))
	dec.DisallowUnknownFields()
	err = dec.Decode(&o)
	r.emit("json_decode", jl, "bad request body", fmt.Errorf("parse create order request: %w", err))
	err = json.Unmarshal([]byte(`[{"id": 1}]`), &o)
	r.emit("json_decode", jl, "webhook payload rejected", fmt.Errorf("decode webhook: %w", err))
	err = json.Unmarshal([]byte(`{"id": 1, "items": "single"}`), &o)
	r.emit("json_decode", jl, "bad request body", err)
	err = json.Unmarshal([]byte(`{"id": 1, "created_at": "yesterday"}`), &o)
	r.emit("json_decode", jl, "bad request body", fmt.Errorf("decode order: %w", err))
	err = json.Unmarshal([]byte(`nil`), &o)
	r.emit("json_decode", jl, "config load failed", fmt.Errorf("parse feature flags: %w", err))
	err = json.Unmarshal([]byte(`<html><body>502 Bad Gateway</body></html>`), &o)
	r.emit("json_decode", jl, "partner response unreadable", fmt.Errorf("decode partner response: %w", err))
	var n struct{ Qty uint8 }
	err = json.Unmarshal([]byte(`{"Qty": 300}`), &n)
	r.emit("json_decode", jl, "bad request body", err)

	vl := label("validation", "business", false)
	validate := validator.New(validator.WithRequiredStructEnabled())
	reqs := []CreateUserRequest{
		{Email: "ann@example.com", Age: 30, Plan: "pro", Password: "correct horse battery"},
		{Name: "Ann", Email: "not-an-email", Age: 30, Plan: "pro", Password: "correct horse battery"},
		{Name: "Bob", Email: "bob@example.com", Age: 12, Plan: "pro", Password: "correct horse battery"},
		{Name: "Cy", Email: "cy@example.com", Age: 40, Plan: "gold", Password: "short"},
		{Age: 40, Plan: "free", Password: "correct horse battery"},
	}
	for i, req := range reqs {
		err := validate.Struct(req)
		if i%2 == 0 {
			err = fmt.Errorf("validate create user request: %w", err)
		}
		r.emit("validation", vl, "invalid request", err, zap.Int("status", 400), zap.String("method", "POST"), zap.String("path", "/v1/users"))
	}
	err = validate.Struct(Address{Zip: "12"})
	r.emit("validation", vl, "invalid address", err)
	err = validate.Var("not a uuid", "required,uuid4")
	r.emit("validation", vl, "invalid path parameter", fmt.Errorf("order id: %w", err))

	il := label("invalid_input", "business", false)
	_, err = strconv.Atoi("abc")
	r.emit("invalid_input", il, "invalid query parameter", fmt.Errorf("parse page: %w", err), zap.Int("status", 400))
	_, err = strconv.ParseInt("99999999999999999999", 10, 64)
	r.emit("invalid_input", il, "invalid path parameter", fmt.Errorf("order id: %w", err))
	_, err = strconv.ParseBool("maybe")
	r.emit("invalid_input", il, "invalid query parameter", err)
	_, err = time.Parse(time.DateOnly, "2026-13-45")
	r.emit("invalid_input", il, "invalid query parameter", fmt.Errorf("parse from date: %w", err))
	_, err = time.ParseDuration("5 minutes")
	r.emit("invalid_input", il, "invalid config value", fmt.Errorf("cache ttl: %w", err))
}
